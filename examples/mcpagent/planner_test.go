package main

import (
	"strings"
	"testing"
)

func TestScriptedPlanner(t *testing.T) {
	p := Scripted{Memory: "mem"}
	status := Step{Server: ClusterLabel, Tool: "cluster_status", Result: `{"alive_nodes":2,"dead_nodes":1,"resources_total":{"CPU":8},"resources_used":{"CPU":3}}`}
	stored := Step{Server: "mem", Tool: "create_entities"}
	found := Step{Server: "mem", Tool: "search_nodes", Result: `{"entities":[{"name":"raygo-cluster","observations":["alive nodes: 2"]}]}`}
	for _, tc := range []struct {
		name    string
		history []Step
		call    string // server.tool, or "" for an answer
		want    string // in the arguments or the answer
		err     bool
	}{
		{"start", nil, "raygo.cluster_status", "", false},
		{"store", []Step{status}, "mem.create_entities", "CPUs in use: 3 of 8", false},
		{"read back", []Step{status, stored}, "mem.search_nodes", "raygo-cluster", false},
		{"answer", []Step{status, stored, found}, "", "alive nodes: 2", false},
		{"not found", []Step{status, stored, {Result: `{"entities":[]}`}}, "", "did not give it back", false},
		{"tool failed", []Step{{Server: ClusterLabel, Tool: "cluster_status", IsError: true, Result: "denied"}}, "", "failed: denied", false},
		{"bad status", []Step{{Result: "not json"}}, "", "", true},
	} {
		d, err := p.Next(t.Context(), "g", nil, tc.history)
		if (err != nil) != tc.err {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if err != nil {
			continue
		}
		var call, text string
		if d.Call != nil {
			call, text = d.Call.Server+"."+d.Call.Tool, compactJSON(d.Call.Arguments)
		} else {
			text = d.Answer
		}
		if call != tc.call || !strings.Contains(text, tc.want) {
			t.Errorf("%s: %q %q, want %q containing %q", tc.name, call, text, tc.call, tc.want)
		}
	}
}
