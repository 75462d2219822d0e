package raylet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/pb"
)

func TestStderrTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"empty", "", 10, ""},
		{"blank lines only", "\n  \n\t\n", 10, ""},
		{"one line without newline", "boom", 10, "boom"},
		{"keeps order", "a\nb\nc\n", 10, "a\nb\nc"},
		{"last n", "1\n2\n3\n4\n5\n", 2, "4\n5"},
		{"skips blank and trims trailing space", "a  \r\n\n\nb\t\n\n", 10, "a\nb"},
		{"blank lines do not count", "x\ny\n\n\n\nz\n", 2, "y\nz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stderrTail([]byte(tc.in), tc.n); got != tc.want {
				t.Fatalf("stderrTail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestTailBufferKeepsTheLastBytes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"under the bound", []string{"ab", "cd"}, "abcd"},
		{"exactly the bound", []string{"abcde", "fgh"}, "abcdefgh"},
		{"drops the oldest", []string{"abcdef", "ghij"}, "cdefghij"},
		{"one write over the bound", []string{"x", "0123456789"}, "23456789"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &tailBuffer{max: 8}
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := string(b.bytes()); got != tc.want {
				t.Fatalf("kept %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLookCommand(t *testing.T) {
	bin := t.TempDir()
	exe := filepath.Join(bin, "tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "plain"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, dir string
		want            string // "": not found
	}{
		{"tool", bin, "", exe},
		{"tool", "relative:" + bin, "", exe},
		{"tool", "relative", bin, ""}, // relative PATH entries are skipped
		{"plain", bin, "", ""},        // not executable
		{"missing", bin, "", ""},
		{"./tool", "", bin, exe},
		{exe, "", "", exe},
		{"./tool", bin, t.TempDir(), ""},
	} {
		got, err := lookCommand(tc.name, tc.path, tc.dir)
		if tc.want == "" {
			if err == nil {
				t.Errorf("lookCommand(%q, %q, %q) = %q, want not found", tc.name, tc.path, tc.dir, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("lookCommand(%q, %q, %q) = %q, %v, want %q", tc.name, tc.path, tc.dir, got, err, tc.want)
		}
	}
	if _, err := lookCommand("missing", "/nowhere", ""); err == nil || !strings.Contains(err.Error(), "PATH=/nowhere") {
		t.Errorf("not found error: %v", err)
	}
}

func TestCheckReplicaStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		st    *pb.ReplicaStart
		stdin int
		want  replicaSpec
		err   string // "": accepted
	}{
		{"mcp with defaults", &pb.ReplicaStart{Kind: KindMCP, Server: "memory", ReplicaId: "m-1"}, 5,
			replicaSpec{kind: KindMCP, server: "memory", id: "m-1", stopGrace: DefaultReplicaStopGrace}, ""},
		{"serve with defaults", &pb.ReplicaStart{Kind: KindServe, Server: "shop", ReplicaId: "s-1"}, 0,
			replicaSpec{kind: KindServe, server: "shop", id: "s-1", portEnv: "PORT", stopGrace: DefaultReplicaStopGrace}, ""},
		{"serve with its own variable and grace", &pb.ReplicaStart{Kind: KindServe, Server: "shop", ReplicaId: "s-1", PortEnv: "HTTP_PORT_2", StopGraceMs: 20000}, 0,
			replicaSpec{kind: KindServe, server: "shop", id: "s-1", portEnv: "HTTP_PORT_2", stopGrace: 20 * time.Second}, ""},
		{"the longest grace", &pb.ReplicaStart{Kind: KindServe, Server: "shop", ReplicaId: "s-1", StopGraceMs: MaxReplicaStopGrace.Milliseconds()}, 0,
			replicaSpec{kind: KindServe, server: "shop", id: "s-1", portEnv: "PORT", stopGrace: MaxReplicaStopGrace}, ""},
		{"no kind", &pb.ReplicaStart{Server: "memory", ReplicaId: "m-1"}, 0, replicaSpec{}, `kind "": want "mcp" or "serve"`},
		{"kind is case-sensitive", &pb.ReplicaStart{Kind: "Serve", Server: "shop", ReplicaId: "s-1"}, 0, replicaSpec{}, `kind "Serve"`},
		{"bad deployment", &pb.ReplicaStart{Kind: KindServe, Server: ".x", ReplicaId: "s-1"}, 0, replicaSpec{}, `deployment name ".x"`},
		{"bad replica id", &pb.ReplicaStart{Kind: KindServe, Server: "shop", ReplicaId: "s/1"}, 0, replicaSpec{}, `serve shop: replica id "s/1"`},
		{"mcp with a port variable", &pb.ReplicaStart{Kind: KindMCP, Server: "memory", ReplicaId: "m-1", PortEnv: "PORT"}, 0, replicaSpec{}, "for serve replicas only"},
		{"serve with stdin", &pb.ReplicaStart{Kind: KindServe, Server: "shop", ReplicaId: "s-1"}, 3, replicaSpec{}, "3 stdin bytes"},
		{"serve bad variable", &pb.ReplicaStart{Kind: KindServe, Server: "shop", ReplicaId: "s-1", PortEnv: "2PORT"}, 0, replicaSpec{}, `port_env "2PORT"`},
		{"negative grace", &pb.ReplicaStart{Kind: KindServe, Server: "shop", ReplicaId: "s-1", StopGraceMs: -5}, 0, replicaSpec{}, "stop_grace_ms -5 is negative"},
		{"grace over the max", &pb.ReplicaStart{Kind: KindMCP, Server: "memory", ReplicaId: "m-1", StopGraceMs: 600001}, 0, replicaSpec{}, "stop_grace_ms 600001 is over the maximum, 600000 (10m0s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checkReplicaStart(tc.st, tc.stdin)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one naming %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestValidPortEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  string // "": valid
	}{
		{"PORT", ""},
		{"_PORT", ""},
		{"http_port8", ""},
		{"raygo_port", ""}, // variables are case-sensitive: not RAYGO_'s
		{strings.Repeat("P", maxPortEnvLen), ""},
		{strings.Repeat("P", maxPortEnvLen+1), "longer than 128 bytes"},
		{"8PORT", "not starting with a digit"},
		{"MY-PORT", "want letters, digits and '_'"},
		{"MY PORT", "want letters, digits and '_'"},
		{"PORTÉ", "want letters, digits and '_'"},
		{"PORT=1", "want letters, digits and '_'"},
		{"RAYGO_PORT", "raygo's own"},
		{"PATH", "finds the command"},
	} {
		err := validPortEnv(tc.name)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("validPortEnv(%q) = %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestReplicaLogName(t *testing.T) {
	for _, tc := range []struct{ kind, server, id, want string }{
		{KindMCP, "memory", "memory-1a2b", "mcp-memory-memory-1a2b.log"},
		{KindServe, "shop", "shop-3", "serve-shop-shop-3.log"},
	} {
		if got := ReplicaLogName(tc.kind, tc.server, tc.id); got != tc.want {
			t.Errorf("ReplicaLogName(%q, %q, %q) = %q, want %q", tc.kind, tc.server, tc.id, got, tc.want)
		}
	}
}

func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serve-x-1.log")
	if err := os.WriteFile(path, []byte("earlier run\nthis run: 0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, max int64
		want      string
	}{
		{12, 100, "this run: 0123456789"}, // only what came after from
		{12, 4, "6789"},                   // at most max bytes, the last ones
		{0, 100, "earlier run\nthis run: 0123456789"},
		{32, 100, ""}, // nothing written since
	} {
		if got := string(logTail(path, tc.from, tc.max)); got != tc.want {
			t.Errorf("logTail(from %d, max %d) = %q, want %q", tc.from, tc.max, got, tc.want)
		}
	}
	if got := logTail(filepath.Join(t.TempDir(), "absent"), 0, 10); got != nil {
		t.Errorf("logTail of a missing file = %q", got)
	}
}
