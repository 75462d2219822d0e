package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestLLMPlanner drives the LLM planner against a chat-completions
// endpoint that calls one tool and then answers, and checks what the
// planner sends: the tools as functions with their schemas, and the
// steps so far replayed as tool calls and results.
func TestLLMPlanner(t *testing.T) {
	var got []chatRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, `{"error":{"message":"bad path or key"}}`, http.StatusUnauthorized)
			return
		}
		var req chatRequest
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &req); err != nil {
			t.Errorf("request: %v", err)
		}
		got = append(got, req)
		if len(req.Messages) == 2 { // system and goal: call a tool
			_, _ = io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"","tool_calls":[
				{"id":"x","type":"function","function":{"name":"agent-memory__search_nodes","arguments":"{\"query\":\"raygo\"}"}}]}}]}`)
			return
		}
		_, _ = io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"nothing stored yet"}}]}`)
	}))
	defer srv.Close()

	p, err := NewLLMPlanner(srv.URL+"/v1/", "m", "k")
	if err != nil {
		t.Fatal(err)
	}
	tools := []Tool{
		{Server: ClusterLabel, Tool: &mcp.Tool{Name: "cluster_status", Description: "status"}},
		{Server: "agent-memory", Tool: &mcp.Tool{Name: "search_nodes", InputSchema: map[string]any{"type": "object",
			"properties": map[string]any{"query": map[string]any{"type": "string"}}}}},
	}
	d, err := p.Next(t.Context(), "goal", tools, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Call == nil || d.Call.Server != "agent-memory" || d.Call.Tool != "search_nodes" || d.Call.Arguments["query"] != "raygo" {
		t.Fatalf("first move %+v", d)
	}
	history := []Step{{Server: "agent-memory", Tool: "search_nodes", Arguments: `{"query":"raygo"}`, Result: `{"entities":[]}`}}
	d, err = p.Next(t.Context(), "goal", tools, history)
	if err != nil {
		t.Fatal(err)
	}
	if d.Call != nil || d.Answer != "nothing stored yet" {
		t.Fatalf("second move %+v", d)
	}

	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	first, second := got[0], got[1]
	if first.Model != "m" || len(first.Tools) != 2 || first.Tools[0].Function.Name != "raygo__cluster_status" ||
		first.Tools[1].Function.Name != "agent-memory__search_nodes" {
		t.Errorf("first request: %+v", first)
	}
	if schema, _ := json.Marshal(first.Tools[1].Function.Parameters); !strings.Contains(string(schema), `"query"`) {
		t.Errorf("search_nodes parameters %s lack its input schema", schema)
	}
	if n := len(second.Messages); n != 4 || second.Messages[2].Role != "assistant" || len(second.Messages[2].ToolCalls) != 1 ||
		second.Messages[3].Role != "tool" || second.Messages[3].ToolCallID != second.Messages[2].ToolCalls[0].ID ||
		second.Messages[3].Content != `{"entities":[]}` {
		t.Errorf("second request's messages: %+v", second.Messages)
	}

	// A refused request names the endpoint's own error.
	bad, _ := NewLLMPlanner(srv.URL+"/v1", "m", "wrong")
	if _, err := bad.Next(t.Context(), "goal", tools, nil); err == nil || !strings.Contains(err.Error(), "bad path or key") {
		t.Errorf("refused request: %v", err)
	}
}

func TestDecodeCall(t *testing.T) {
	tools := []Tool{{Server: "agent-memory", Tool: &mcp.Tool{Name: "read_graph"}}}
	for _, tc := range []struct {
		name, args   string
		server, tool string
		ok           bool
	}{
		{"agent-memory__read_graph", "", "agent-memory", "read_graph", true},
		{"agent-memory__read_graph", "{}", "agent-memory", "read_graph", true},
		{"made__up", `{"a":1}`, "made", "up", true}, // the agent reports it back as a failed call
		{"agent-memory__read_graph", "[1]", "", "", false},
	} {
		var c chatCall
		c.Function.Name, c.Function.Arguments = tc.name, tc.args
		d, err := decodeCall(c, tools)
		if (err == nil) != tc.ok {
			t.Errorf("%s(%s): %v", tc.name, tc.args, err)
			continue
		}
		if tc.ok && (d.Call.Server != tc.server || d.Call.Tool != tc.tool) {
			t.Errorf("%s(%s): %+v", tc.name, tc.args, d.Call)
		}
	}
}

func TestNewLLMPlannerChecksConfig(t *testing.T) {
	for _, tc := range []struct{ url, model, want string }{
		{"ftp://x", "m", EnvLLMURL},
		{"http://x/v1", "", EnvLLMModel},
	} {
		if _, err := NewLLMPlanner(tc.url, tc.model, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewLLMPlanner(%q, %q): %v, want an error naming %s", tc.url, tc.model, err, tc.want)
		}
	}
}
