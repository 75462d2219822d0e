package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Environment variables that turn on the LLM planner.
const (
	// EnvLLMURL is an OpenAI-compatible API's base URL
	// (https://api.openai.com/v1, http://localhost:11434/v1, …) or its
	// full …/chat/completions URL.
	EnvLLMURL = "RAYGO_AGENT_LLM_URL"
	// EnvLLMModel is the model to ask.
	EnvLLMModel = "RAYGO_AGENT_LLM_MODEL"
	// EnvLLMKey is the API key, read by the Agent actor from its own
	// environment (workers of an embedded cluster inherit the driver's).
	EnvLLMKey = "RAYGO_AGENT_LLM_KEY"
)

// LLM planner limits.
const (
	// LLMTimeout bounds one chat-completions request.
	LLMTimeout = 2 * time.Minute
	// MaxLLMAnswerBytes bounds the answer read from the endpoint.
	MaxLLMAnswerBytes = 4 << 20
)

func envKey() string { return os.Getenv(EnvLLMKey) }

// LLMPlanner asks a chat-completions endpoint with tool calling for each
// move. The MCP tools are offered as functions named SERVER__TOOL, with
// their tools/list input schemas as parameters; the steps so far are
// replayed as the assistant's tool calls and the tools' answers.
type LLMPlanner struct {
	endpoint, model, key string
	hc                   *http.Client
}

// NewLLMPlanner returns a planner that asks the model at base (see
// EnvLLMURL), sending key as a bearer token when it is not empty.
func NewLLMPlanner(base, model, key string) (*LLMPlanner, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("agent: %s=%q: want an http(s) URL", EnvLLMURL, base)
	}
	if model == "" {
		return nil, fmt.Errorf("agent: %s is set but %s is not: name the model", EnvLLMURL, EnvLLMModel)
	}
	endpoint := strings.TrimRight(base, "/")
	if !strings.HasSuffix(endpoint, "/chat/completions") {
		endpoint += "/chat/completions"
	}
	return &LLMPlanner{endpoint: endpoint, model: model, key: key, hc: &http.Client{Timeout: LLMTimeout}}, nil
}

// Name implements Planner.
func (p *LLMPlanner) Name() string { return "llm " + p.model }

// The chat-completions wire types this planner uses.
type (
	chatMessage struct {
		Role       string     `json:"role"`
		Content    string     `json:"content"`
		ToolCalls  []chatCall `json:"tool_calls,omitempty"`
		ToolCallID string     `json:"tool_call_id,omitempty"`
	}
	chatCall struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	chatTool struct {
		Type     string       `json:"type"`
		Function chatFunction `json:"function"`
	}
	chatFunction struct {
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
		Parameters  any    `json:"parameters"`
	}
	chatRequest struct {
		Model    string        `json:"model"`
		Messages []chatMessage `json:"messages"`
		Tools    []chatTool    `json:"tools"`
	}
	chatResponse struct {
		Choices []struct {
			Message chatMessage `json:"message"`
		} `json:"choices"`
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
)

const systemPrompt = "You are an operator of a raygo cluster. Use the tools to reach the user's goal: " +
	"raygo__* tools read the cluster; the memory server's tools keep notes in a knowledge graph. " +
	"Call one tool at a time. When you are done, answer in plain text without calling a tool."

// functionName is a tool's function name: SERVER__TOOL.
func functionName(server, tool string) string { return server + "__" + tool }

// request builds the chat request for the next move.
func (p *LLMPlanner) request(goal string, tools []Tool, history []Step) chatRequest {
	req := chatRequest{Model: p.model, Messages: []chatMessage{{Role: "system", Content: systemPrompt}, {Role: "user", Content: goal}}}
	for _, t := range tools {
		var params any = map[string]any{"type": "object", "properties": map[string]any{}}
		if t.InputSchema != nil {
			params = t.InputSchema
		}
		req.Tools = append(req.Tools, chatTool{Type: "function", Function: chatFunction{
			Name: functionName(t.Server, t.Name), Description: t.Description, Parameters: params}})
	}
	for i, s := range history {
		call := chatCall{ID: fmt.Sprintf("call_%d", i+1), Type: "function"}
		call.Function.Name, call.Function.Arguments = functionName(s.Server, s.Tool), s.Arguments
		result := s.Result
		if s.IsError {
			result = "ERROR: " + result
		}
		req.Messages = append(req.Messages,
			chatMessage{Role: "assistant", ToolCalls: []chatCall{call}},
			chatMessage{Role: "tool", ToolCallID: call.ID, Content: result})
	}
	return req
}

// Next implements Planner: it takes the model's first tool call, or its
// text when it calls none.
func (p *LLMPlanner) Next(ctx context.Context, goal string, tools []Tool, history []Step) (Decision, error) {
	body, err := json.Marshal(p.request(goal, tools, history))
	if err != nil {
		return Decision{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return Decision{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if p.key != "" {
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return Decision{}, fmt.Errorf("ask %s: %w", p.endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxLLMAnswerBytes))
	if err != nil {
		return Decision{}, fmt.Errorf("read the answer of %s: %w", p.endpoint, err)
	}
	var out chatResponse
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode/100 != 2 {
		if out.Error != nil {
			return Decision{}, fmt.Errorf("%s: HTTP %d: %s", p.endpoint, resp.StatusCode, out.Error.Message)
		}
		return Decision{}, fmt.Errorf("%s: HTTP %d: %s", p.endpoint, resp.StatusCode, oneLine(string(raw), 300))
	}
	if len(out.Choices) == 0 {
		return Decision{}, fmt.Errorf("%s answered no choices", p.endpoint)
	}
	msg := out.Choices[0].Message
	if len(msg.ToolCalls) == 0 {
		return Decision{Answer: msg.Content}, nil
	}
	return decodeCall(msg.ToolCalls[0], tools)
}

// decodeCall maps the model's function call back to an MCP tool; a name
// it made up becomes a call the agent records as failed, so the model
// sees its mistake.
func decodeCall(c chatCall, tools []Tool) (Decision, error) {
	args := map[string]any{}
	if a := strings.TrimSpace(c.Function.Arguments); a != "" {
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			return Decision{}, fmt.Errorf("the model called %s with arguments that are not a JSON object: %q", c.Function.Name, oneLine(a, 200))
		}
	}
	for _, t := range tools {
		if functionName(t.Server, t.Name) == c.Function.Name {
			return Decision{Call: &ToolCall{Server: t.Server, Tool: t.Name, Arguments: args}}, nil
		}
	}
	server, tool, _ := strings.Cut(c.Function.Name, "__")
	return Decision{Call: &ToolCall{Server: server, Tool: tool, Arguments: args}}, nil
}
