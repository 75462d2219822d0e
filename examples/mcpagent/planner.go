package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Planner decides an Agent's next move from the goal, the tools on offer
// and the steps so far.
type Planner interface {
	// Name names the planner in transcripts.
	Name() string
	// Next returns the next tool call, or an answer (Call nil).
	Next(ctx context.Context, goal string, tools []Tool, history []Step) (Decision, error)
}

// Tool is a tool the planner may call: the MCP tool (its name, schema and
// description from tools/list) and the server that has it.
type Tool struct {
	Server string
	*mcp.Tool
}

// Decision is a planner's move: a tool call, or the answer.
type Decision struct {
	Call   *ToolCall
	Answer string
}

// ToolCall is one call a planner asks for.
type ToolCall struct {
	Server    string
	Tool      string
	Arguments map[string]any
}

func sortTools(ts []Tool) {
	slices.SortFunc(ts, func(a, b Tool) int {
		return strings.Compare(a.Server+"."+a.Name, b.Server+"."+b.Name)
	})
}

// Scripted is a deterministic planner: it reads the cluster's status,
// stores what it learned in the memory server, reads it back, and
// answers with what it read back. Each move depends only on the steps so
// far, so it is what the tests (and the default run) use.
type Scripted struct {
	Memory string // the memory server's name
}

// Entity is the memory entity the scripted planner stores.
const Entity = "raygo-cluster"

// Name implements Planner.
func (Scripted) Name() string { return "scripted" }

// Next implements Planner.
func (p Scripted) Next(_ context.Context, goal string, _ []Tool, history []Step) (Decision, error) {
	if n := len(history); n > 0 && history[n-1].IsError {
		last := history[n-1]
		return Decision{Answer: fmt.Sprintf("I could not finish: %s.%s failed: %s", last.Server, last.Tool, last.Result)}, nil
	}
	switch len(history) {
	case 0:
		return Decision{Call: &ToolCall{Server: ClusterLabel, Tool: "cluster_status", Arguments: map[string]any{}}}, nil
	case 1:
		facts, err := clusterFacts(history[0].Result)
		if err != nil {
			return Decision{}, err
		}
		return Decision{Call: &ToolCall{Server: p.Memory, Tool: "create_entities", Arguments: map[string]any{
			"entities": []map[string]any{{"name": Entity, "entityType": "cluster", "observations": facts}}}}}, nil
	case 2:
		return Decision{Call: &ToolCall{Server: p.Memory, Tool: "search_nodes", Arguments: map[string]any{"query": Entity}}}, nil
	default:
		var g struct {
			Entities []struct {
				Name         string   `json:"name"`
				Observations []string `json:"observations"`
			} `json:"entities"`
		}
		if err := json.Unmarshal([]byte(history[2].Result), &g); err != nil {
			return Decision{}, fmt.Errorf("search_nodes answered %q: %w", oneLine(history[2].Result, 200), err)
		}
		for _, e := range g.Entities {
			if e.Name == Entity {
				return Decision{Answer: fmt.Sprintf("For %q: the cluster has %s (stored in and read back from %s).",
					goal, strings.Join(e.Observations, ", "), p.Memory)}, nil
			}
		}
		return Decision{Answer: fmt.Sprintf("I stored what I learned, but %s did not give it back.", p.Memory)}, nil
	}
}

// clusterFacts turns cluster_status's answer into observations.
func clusterFacts(result string) ([]string, error) {
	var st struct {
		AliveNodes     int                `json:"alive_nodes"`
		DeadNodes      int                `json:"dead_nodes"`
		ResourcesTotal map[string]float64 `json:"resources_total"`
		ResourcesUsed  map[string]float64 `json:"resources_used"`
		Pending        []json.RawMessage  `json:"pending_demands"`
	}
	if err := json.Unmarshal([]byte(result), &st); err != nil {
		return nil, fmt.Errorf("cluster_status answered %q: %w", oneLine(result, 200), err)
	}
	return []string{
		fmt.Sprintf("alive nodes: %d", st.AliveNodes),
		fmt.Sprintf("dead nodes: %d", st.DeadNodes),
		fmt.Sprintf("CPUs in use: %g of %g", st.ResourcesUsed["CPU"], st.ResourcesTotal["CPU"]),
		fmt.Sprintf("pending resource demands: %d", len(st.Pending)),
	}, nil
}
