// Command mcpagent is an agent loop running as a raygo actor: it works
// towards a goal with MCP tools from two places, raygo's own MCP server on
// the head (cluster_status, list_jobs, …) and a memory server hosted on
// the cluster (the reference @modelcontextprotocol/server-memory, two
// replicas behind the head's gateway), all through ray/raymcp.
//
//	go run ./examples/mcpagent
//	go run ./examples/mcpagent -goal "How busy is the cluster?" -memory "/path/to/mcp-server-memory"
//
// The Agent actor (agent.go) asks a Planner (planner.go) for the next
// tool call, makes it over MCP, and hands the result back, until the
// planner answers. By default the planner is scripted: it reads
// cluster_status, stores what it learned with create_entities, reads it
// back with search_nodes and answers from what it read. With
// RAYGO_AGENT_LLM_URL and RAYGO_AGENT_LLM_MODEL set (and
// RAYGO_AGENT_LLM_KEY when the endpoint needs one), an LLM behind an
// OpenAI-compatible chat-completions API plans instead (llm.go), offered
// every tool the two servers list.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/ray/raymcp"
)

// options are the command's flags.
type options struct {
	goal     string
	memory   []string // the memory server's command
	name     string   // its hosted name
	replicas int
	llmURL   string
	llmModel string
}

func main() {
	if ray.IsWorker() {
		_ = ray.Init(context.Background()) // a worker serves the Agent actor; never returns
	}
	var o options
	var memory string
	flag.StringVar(&o.goal, "goal", "Find out what the cluster has, remember it, and tell me.", "the agent's goal")
	flag.StringVar(&memory, "memory", "npx -y @modelcontextprotocol/server-memory", "the stdio memory MCP server to host (split on spaces)")
	flag.StringVar(&o.name, "name", "agent-memory", "the hosted memory server's name")
	flag.IntVar(&o.replicas, "replicas", 2, "the memory server's replicas")
	flag.Parse()
	o.memory = strings.Fields(memory)
	o.llmURL, o.llmModel = os.Getenv(EnvLLMURL), os.Getenv(EnvLLMModel)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := ray.Init(ctx); err != nil {
		log.Fatal(err)
	}
	_, err := run(ctx, o, os.Stdout)
	if serr := ray.Shutdown(); err == nil {
		err = serr
	}
	if err != nil {
		log.Fatal(err)
	}
}

// run hosts the memory server, runs the goal on an Agent actor, prints
// the transcript to w, and stops the server.
func run(ctx context.Context, o options, w io.Writer) (Transcript, error) {
	// The replicas share one memory file, so that whichever replica a
	// session lands on sees what the others stored.
	dir, err := os.MkdirTemp("", "mcpagent-")
	if err != nil {
		return Transcript{}, err
	}
	defer os.RemoveAll(dir)
	if _, err := raymcp.Host(ctx, raymcp.HostOptions{Name: o.name, Command: o.memory, Replicas: o.replicas,
		Env: map[string]string{"MEMORY_FILE_PATH": filepath.Join(dir, "memory.jsonl")}}); err != nil {
		return Transcript{}, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := raymcp.Stop(stopCtx, o.name); err != nil {
			log.Printf("stop the memory server: %v", err)
		}
	}()
	// npx may download the package first: give it time.
	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if _, err := raymcp.WaitReady(waitCtx, o.name); err != nil {
		return Transcript{}, err
	}

	agent := AgentActor.Remote(ctx, Config{Memory: o.name, LLMURL: o.llmURL, LLMModel: o.llmModel})
	tr, err := RunGoal.Remote(ctx, agent, o.goal).Get(ctx)
	if kerr := ray.Kill(ctx, agent); kerr != nil && err == nil {
		err = kerr
	}
	fmt.Fprint(w, tr)
	return tr, err
}
