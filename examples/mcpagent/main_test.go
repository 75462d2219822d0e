package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/mcptest"
	"github.com/raygo/raygo/ray"
)

func TestMain(m *testing.M) {
	if ray.IsWorker() {
		_ = ray.Init(context.Background()) // serves the Agent actor; never returns
	}
	os.Exit(m.Run())
}

// TestAgent runs the whole example with the scripted planner: an
// embedded cluster, the npm memory server hosted with two replicas, the
// Agent actor calling raygo's cluster_status and the memory server's
// create_entities and search_nodes over MCP.
func TestAgent(t *testing.T) {
	bin := mcptest.Bin(t, "mcp-server-memory") // skips (or fails, in CI) without the npm packages
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.LogWorkers(false)); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ray.Shutdown(); err != nil {
			t.Error(err)
		}
	}()

	var out bytes.Buffer
	tr, err := run(ctx, options{goal: "What does the cluster have?", memory: []string{bin}, name: "agent-memory", replicas: 2}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())

	var calls []string
	for _, s := range tr.Steps {
		calls = append(calls, s.Server+"."+s.Tool)
		if s.IsError {
			t.Errorf("%s.%s failed: %s", s.Server, s.Tool, s.Result)
		}
	}
	if got, want := strings.Join(calls, " "), "raygo.cluster_status agent-memory.create_entities agent-memory.search_nodes"; got != want {
		t.Fatalf("tool calls %q, want %q", got, want)
	}
	if tr.Planner != "scripted" || tr.Goal != "What does the cluster have?" {
		t.Errorf("transcript header: planner %q goal %q", tr.Planner, tr.Goal)
	}

	// What search_nodes read back is what create_entities stored.
	var stored struct {
		Entities []struct {
			Name         string   `json:"name"`
			Observations []string `json:"observations"`
		} `json:"entities"`
	}
	if err := json.Unmarshal([]byte(tr.Steps[1].Arguments), &stored); err != nil || len(stored.Entities) != 1 {
		t.Fatalf("create_entities arguments %s: %v", tr.Steps[1].Arguments, err)
	}
	facts := stored.Entities[0].Observations
	if len(facts) == 0 || facts[0] != "alive nodes: 1" {
		t.Errorf("stored observations %q, want the cluster's one alive node first", facts)
	}
	for _, f := range facts {
		if !strings.Contains(tr.Steps[2].Result, f) {
			t.Errorf("search_nodes read back %s, without %q", tr.Steps[2].Result, f)
		}
		if !strings.Contains(tr.Answer, f) {
			t.Errorf("answer %q lacks %q", tr.Answer, f)
		}
	}
	if !strings.Contains(tr.Answer, "read back from agent-memory") {
		t.Errorf("answer %q", tr.Answer)
	}
	if !strings.Contains(out.String(), "answer: "+tr.Answer) {
		t.Errorf("printed transcript lacks the answer:\n%s", out.String())
	}
}
