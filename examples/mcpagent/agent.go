package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/ray/raymcp"
)

// Limits of one Run.
const (
	// MaxSteps bounds the tool calls of one goal: a planner that has not
	// answered by then fails the run.
	MaxSteps = 16
	// MaxResultBytes bounds how much of one tool result the planner sees
	// and the transcript keeps.
	MaxResultBytes = 16 << 10
)

// ClusterLabel is what the planner calls raygo's own MCP server.
const ClusterLabel = "raygo"

// Config configures an Agent. It travels to the actor as its constructor
// argument, so it holds no secrets: the LLM planner's key comes from the
// actor's environment (RAYGO_AGENT_LLM_KEY).
type Config struct {
	// Memory is the hosted memory server's name.
	Memory string
	// LLMURL and LLMModel select the LLM planner (an OpenAI-compatible
	// chat-completions endpoint); empty LLMURL means the scripted one.
	LLMURL, LLMModel string
}

// Transcript is what an Agent did for one goal.
type Transcript struct {
	Goal    string
	Planner string
	Steps   []Step
	Answer  string
}

// Step is one tool call and what it returned.
type Step struct {
	Server    string // ClusterLabel or the hosted server's name
	Tool      string
	Arguments string // JSON
	Result    string // the tool's text, at most MaxResultBytes
	IsError   bool   // the tool reported a failure
}

// String prints a transcript for people.
func (t Transcript) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "goal: %s\nplanner: %s\n", t.Goal, t.Planner)
	for i, s := range t.Steps {
		status := "ok"
		if s.IsError {
			status = "tool error"
		}
		fmt.Fprintf(&b, "step %d: %s.%s %s -> %s: %s\n", i+1, s.Server, s.Tool, s.Arguments, status, oneLine(s.Result, 200))
	}
	fmt.Fprintf(&b, "answer: %s\n", t.Answer)
	return b.String()
}

// Agent is an actor that works towards a goal with MCP tools: raygo's
// own (cluster_status, list_jobs, …) and the hosted memory server's.
type Agent struct {
	cfg     Config
	planner Planner
}

// NewAgent makes an Agent with the planner cfg selects.
func NewAgent(ctx context.Context, cfg Config) (*Agent, error) {
	if cfg.Memory == "" {
		return nil, fmt.Errorf("agent: no memory server name in the config")
	}
	var p Planner = Scripted{Memory: cfg.Memory}
	if cfg.LLMURL != "" {
		llm, err := NewLLMPlanner(cfg.LLMURL, cfg.LLMModel, envKey())
		if err != nil {
			return nil, err
		}
		p = llm
	}
	return &Agent{cfg: cfg, planner: p}, nil
}

// Run loops: the planner picks the next tool call, the agent makes it
// over MCP and records the result, until the planner answers (or
// MaxSteps calls were made). Tool failures go back to the planner; a
// failed MCP session or planner ends the run with an error.
func (a *Agent) Run(ctx context.Context, goal string) (Transcript, error) {
	tr := Transcript{Goal: goal, Planner: a.planner.Name()}
	c := raymcp.NewClient(nil) // one session per server for this run
	defer c.Close()

	servers := map[string]string{ClusterLabel: raymcp.ClusterServer, a.cfg.Memory: a.cfg.Memory}
	var tools []Tool
	known := map[[2]string]bool{}
	for label, server := range servers {
		ts, err := c.Tools(ctx, server)
		if err != nil {
			return tr, fmt.Errorf("agent: list the tools of %s: %w", label, err)
		}
		for _, t := range ts {
			tools = append(tools, Tool{Server: label, Tool: t})
			known[[2]string{label, t.Name}] = true
		}
	}
	sortTools(tools)

	for len(tr.Steps) < MaxSteps {
		d, err := a.planner.Next(ctx, goal, tools, tr.Steps)
		if err != nil {
			return tr, fmt.Errorf("agent: planner %s: %w", a.planner.Name(), err)
		}
		if d.Call == nil {
			tr.Answer = d.Answer
			return tr, nil
		}
		step := Step{Server: d.Call.Server, Tool: d.Call.Tool, Arguments: compactJSON(d.Call.Arguments)}
		if !known[[2]string{d.Call.Server, d.Call.Tool}] {
			// A planner's mistake goes back to it, as a failed call.
			step.IsError, step.Result = true, fmt.Sprintf("no tool %q on %q: pick one of the tools offered", d.Call.Tool, d.Call.Server)
			tr.Steps = append(tr.Steps, step)
			continue
		}
		res, err := c.CallTool(ctx, servers[d.Call.Server], d.Call.Tool, d.Call.Arguments)
		var rpcErr *jsonrpc.Error
		switch {
		case errors.As(err, &rpcErr):
			// The server refused the call (bad arguments, its replica
			// died): the planner decides what to do next.
			step.IsError, step.Result = true, rpcErr.Error()
		case err != nil:
			return tr, fmt.Errorf("agent: call %s.%s: %w", d.Call.Server, d.Call.Tool, err)
		default:
			step.IsError, step.Result = res.IsError, resultText(res)
		}
		tr.Steps = append(tr.Steps, step)
	}
	return tr, fmt.Errorf("agent: no answer after %d tool calls", MaxSteps)
}

// The Agent actor and its method, registered at init so that worker
// processes (this same binary) know them.
var (
	AgentActor = ray.Actor1(NewAgent)
	RunGoal    = ray.Method1(AgentActor, (*Agent).Run)
)

// resultText is a tool result as the planner reads it: its text content,
// or its structured content as JSON when it has no text.
func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	if b.Len() == 0 && res.StructuredContent != nil {
		raw, _ := json.Marshal(res.StructuredContent)
		b.Write(raw)
	}
	s := b.String()
	if len(s) > MaxResultBytes {
		s = s[:MaxResultBytes] + "…(truncated)"
	}
	return s
}

func compactJSON(v any) string {
	if v == nil {
		return "{}"
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(raw)
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
