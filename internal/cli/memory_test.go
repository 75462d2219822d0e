package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/session"
)

// squash collapses runs of spaces (indentation too) to one, so that checks
// do not depend on column widths.
func squash(s string) string { return manySpaces.ReplaceAllString(s, " ") }

var manySpaces = regexp.MustCompile(` {2,}`)

func containsAll(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// memoryFixture is two answering nodes and one that failed.
func memoryFixture() []nodeMemory {
	const mib, gib = 1 << 20, 1 << 30
	objID := make([]byte, 16)
	objID[2], objID[3], objID[12], objID[13] = 0xab, 0xcd, 0x00, 0x07
	return []nodeMemory{
		{
			node: &pb.NodeInfo{NodeId: nodeID(1), Address: "10.0.0.1:4000", Hostname: "host-a", State: pb.NodeState_NODE_STATE_ALIVE},
			reply: &pb.NodeStatsReply{
				Memory: &pb.MemoryUsage{Used: 8 * gib, Total: 32 * gib, Source: "/proc/meminfo", Threshold: 0.95, OomKills: 2},
				Store: &pb.StoreStats{
					Capacity: 64 * mib, Used: 48 * mib, Objects: 7,
					PrimaryBytes: 40 * mib, PrimaryCount: 3, SecondaryBytes: 8 * mib, SecondaryCount: 1,
					InUseBytes: 8 * mib, InUseCount: 1, CreatingBytes: 0, CreatingCount: 0,
					SpilledBytes: 100 * mib, SpilledCount: 2, FileBytes: 2 * gib, FileCount: 1,
					SpillsTotal: 5, RestoresTotal: 1, EvictionsTotal: 4, SpillDir: "/tmp/sess/spill",
					Largest: []*pb.StoreObjectInfo{
						{ObjectId: objID, Size: 2 * gib, OwnerAddress: "10.0.0.1:5001", CallSite: "main.makeBig", State: pb.StoreObjectState_STORE_OBJECT_STATE_FILE},
						{ObjectId: nodeID(3), Size: 8 * mib, OwnerAddress: "10.0.0.2:5002", CallSite: "remote put", State: pb.StoreObjectState_STORE_OBJECT_STATE_IN_MEMORY, Readers: 2, Secondary: true},
					},
				},
			},
		},
		{
			node: &pb.NodeInfo{NodeId: nodeID(2), Address: "10.0.0.2:4000", Hostname: "host-b", State: pb.NodeState_NODE_STATE_ALIVE},
			err:  errors.New("no answer from the node daemon at 10.0.0.2:4000 within 5s: context deadline exceeded"),
		},
		{
			node: &pb.NodeInfo{NodeId: nodeID(4), Address: "10.0.0.4:4000", State: pb.NodeState_NODE_STATE_ALIVE},
			reply: &pb.NodeStatsReply{
				Node:   &pb.NodeInfo{Hostname: "host-d"},
				Memory: &pb.MemoryUsage{Used: 1 * gib, Total: 4 * gib, Source: "cgroup v2 /a", Threshold: -1},
				Store:  &pb.StoreStats{Capacity: 64 * mib, Used: 16 * mib, Objects: 1, PrimaryBytes: 16 * mib, PrimaryCount: 1},
			},
		},
	}
}

func TestFormatMemory(t *testing.T) {
	got := squash(formatMemory(memoryFixture(), false))
	containsAll(t, "formatMemory", got,
		"Node 000000010000 10.0.0.1:4000 (host-a)\n",
		" Memory: 8.0GiB / 32.0GiB (25.0%), monitor threshold 95.0%, source /proc/meminfo, OOM kills 2\n",
		" Object store: 48.0MiB / 64.0MiB used (75.0%), 7 objects\n",
		" primary (pinned): 40.0MiB 3 objects\n",
		" secondary (evictable): 8.0MiB 1 object\n",
		" in use by readers: 8.0MiB 1 object\n",
		" being created: 0B 0 objects\n",
		" spilled: 100.0MiB 2 objects\n",
		" in files (larger than the store): 2.0GiB 1 object\n",
		" since start: 5 spills, 1 restore, 4 evictions\n",
		" spill directory: /tmp/sess/spill\n",
		" Largest objects (2):\n",
		" OBJECT SIZE STATE READERS SECONDARY OWNER CALL SITE\n",
		" 000000070000 2.0GiB file 0 no 10.0.0.1:5001 main.makeBig\n",
		" 000000030000 8.0MiB in_memory 2 yes 10.0.0.2:5002 remote put\n",
		// The failed node is listed with its error.
		"Node 000000020000 10.0.0.2:4000 (host-b)\n Error: no answer from the node daemon at 10.0.0.2:4000 within 5s",
		// The hostname falls back to the reply's; a negative threshold is a disabled monitor.
		"Node 000000040000 10.0.0.4:4000 (host-d)\n",
		" Memory: 1.0GiB / 4.0GiB (25.0%), monitor disabled, source cgroup v2 /a, OOM kills 0\n",
		" Largest objects: (none)\n",
		"\nCluster: 2 of 3 nodes answered; object store 64.0MiB / 128.0MiB used (50.0%), 8 objects, 100.0MiB spilled (2 objects)\n",
	)
	if !strings.HasPrefix(got, "Node 000000010000") {
		t.Errorf("formatMemory does not keep the nodes' order:\n%s", got)
	}

	stats := squash(formatMemory(memoryFixture(), true))
	if strings.Contains(stats, "Largest objects") || strings.Contains(stats, "main.makeBig") {
		t.Errorf("formatMemory with statsOnly lists objects:\n%s", stats)
	}
	containsAll(t, "formatMemory(statsOnly)", stats, " spill directory: /tmp/sess/spill\n", "Cluster: 2 of 3 nodes answered")
}

func TestFormatMemoryEdgeCases(t *testing.T) {
	got := squash(formatMemory([]nodeMemory{
		{node: &pb.NodeInfo{NodeId: nodeID(1), Address: "a:1"}, reply: &pb.NodeStatsReply{}},
	}, false))
	containsAll(t, "formatMemory(empty reply)", got,
		" Memory: unknown (the node could not read it)\n",
		" Object store: unknown\n",
		"Cluster: 1 of 1 nodes answered; object store 0B / 0B used (-), 0 objects, 0B spilled (0 objects)\n")
}

func TestMemoryJSON(t *testing.T) {
	b, err := memoryJSON(memoryFixture(), false)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("memoryJSON is not a JSON array: %v\n%s", err, b)
	}
	if len(got) != 3 {
		t.Fatalf("memoryJSON has %d nodes, want 3:\n%s", len(got), b)
	}
	n0 := got[0]
	if n0["node_id"] != hex.EncodeToString(nodeID(1)) || n0["address"] != "10.0.0.1:4000" || n0["hostname"] != "host-a" {
		t.Errorf("node 0 identity: %v", n0)
	}
	mem := n0["memory"].(map[string]any)
	if mem["used_bytes"] != float64(8<<30) || mem["threshold"] != 0.95 || mem["oom_kills"] != float64(2) {
		t.Errorf("node 0 memory: %v", mem)
	}
	st := n0["store"].(map[string]any)
	for k, v := range map[string]float64{"capacity_bytes": 64 << 20, "file_bytes": 2 << 30, "spills_total": 5, "evictions_total": 4, "secondary_count": 1} {
		if st[k] != v {
			t.Errorf("node 0 store %s = %v, want %v", k, st[k], v)
		}
	}
	largest := st["largest"].([]any)
	obj := largest[0].(map[string]any)
	if obj["object_id"] != "0000abcd000000000000000000070000" || obj["size_bytes"] != float64(2<<30) || obj["call_site"] != "main.makeBig" || obj["state"] != "file" {
		t.Errorf("largest object: %v", obj)
	}
	if got[1]["error"] == nil || got[1]["store"] != nil {
		t.Errorf("failed node: %v", got[1])
	}
	if l, ok := got[2]["store"].(map[string]any)["largest"]; !ok || len(l.([]any)) != 0 {
		t.Errorf("node without objects: largest = %v, want []", l)
	}

	b, _ = memoryJSON(memoryFixture(), true)
	if bytes.Contains(b, []byte(`"largest"`)) {
		t.Errorf("memoryJSON(statsOnly) lists objects:\n%s", b)
	}
}

// startMemoryHead starts an in-process head with a small object store.
func startMemoryHead(t *testing.T, token string) *node.Head {
	t.Helper()
	sess, err := session.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Remove() })
	rc := raylet.DefaultConfig()
	rc.Resources, rc.SessionDir = resources.Set{resources.CPU: 1}, string(sess)
	rc.ObjectStoreBytes = 16 << 20
	head, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(head.Stop)
	return head
}

// runCLI runs the raygo command line in this process.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

func TestMemoryCommand(t *testing.T) {
	t.Parallel()
	const token = "memory-test-token"
	head := startMemoryHead(t, token)
	addr := head.GCSAddress()

	big, small := ids.New(), ids.New()
	if err := head.Raylet().Store().Put(big, make([]byte, 3<<20), "127.0.0.1:7777", ids.Nil); err != nil {
		t.Fatal(err)
	}
	if err := head.Raylet().Store().Put(small, make([]byte, 1000), "127.0.0.1:7777", ids.Nil); err != nil {
		t.Fatal(err)
	}

	// A node that registered but whose daemon is gone: listed with its
	// error, the head still printed.
	dead := closedAddress(t)
	conn, err := rpc.Dial(addr, token)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ghost := ids.New()
	if _, err := pb.NewControlStoreClient(conn).RegisterNode(ctx, &pb.RegisterNodeRequest{Node: &pb.NodeInfo{
		NodeId: ghost.Bytes(), Address: dead, Hostname: "ghost", StartUnixMs: time.Now().Add(time.Hour).UnixMilli(),
	}}); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, "memory", "--address", addr, "--token", token)
	if r.code != 0 {
		t.Fatalf("memory: %v", r)
	}
	t.Logf("raygo memory:\n%s", r.stdout)
	got := squash(r.stdout)
	containsAll(t, "memory output", got,
		"======== Object store memory: "+addr+" ========",
		" Memory: ",
		" Object store: 3.0MiB / 16.0MiB used",
		"2 objects",
		" primary (pinned): 3.0MiB 2 objects\n",
		" Largest objects (2):\n",
		" "+big.Short()+" 3.0MiB in_memory 0 no 127.0.0.1:7777 remote put\n",
		" "+small.Short()+" 1000B in_memory 0 no 127.0.0.1:7777 remote put\n",
		"Node "+ghost.Short()+" "+dead+" (ghost)\n Error: cannot reach the node daemon at "+dead,
		"Cluster: 1 of 2 nodes answered; object store 3.0MiB / 16.0MiB used",
	)
	if i, j := strings.Index(got, "remote put"), strings.Index(got, "(ghost)"); i < 0 || j < i {
		t.Errorf("the head (started first) is not listed before the later node:\n%s", got)
	}

	r = runCLI(t, "memory", "--address", addr, "--token", token, "--top", "1", "--stats-only")
	if r.code != 0 || strings.Contains(r.stdout, "remote put") || !strings.Contains(squash(r.stdout), "primary (pinned): 3.0MiB 2 objects") {
		t.Errorf("memory --stats-only: %v", r)
	}

	r = runCLI(t, "memory", "--address", addr, "--token", token, "--top", "1", "--json")
	if r.code != 0 {
		t.Fatalf("memory --json: %v", r)
	}
	var nodes []memoryNodeJSON
	if err := json.Unmarshal([]byte(r.stdout), &nodes); err != nil {
		t.Fatalf("memory --json output does not parse: %v\n%s", err, r.stdout)
	}
	if len(nodes) != 2 || nodes[0].Store == nil || nodes[1].Error == "" {
		t.Fatalf("memory --json: want the head's store and the ghost's error:\n%s", r.stdout)
	}
	st := nodes[0].Store
	if st.Objects != 2 || st.PrimaryBytes != 3<<20+1000 || len(st.Largest) != 1 ||
		st.Largest[0].ObjectID != big.String() || st.Largest[0].Size != 3<<20 || st.Largest[0].CallSite != "remote put" {
		t.Errorf("memory --json store: %+v", st)
	}
	if nodes[0].Memory == nil || nodes[0].Memory.Total <= 0 {
		t.Errorf("memory --json memory: %+v", nodes[0].Memory)
	}

	r = runCLI(t, "memory", "--address", addr, "--token", "wrong")
	if r.code != 1 || !strings.Contains(r.stderr, "rejected the token") {
		t.Errorf("memory with a wrong token: %v", r)
	}
}

func TestMemoryUsageErrors(t *testing.T) {
	t.Parallel()
	for _, top := range []string{"0", "-3", "1001"} {
		r := runCLI(t, "memory", "--address", "127.0.0.1:1", "--token", "x", "--top", top)
		if r.code != 2 || !strings.Contains(r.stderr, "--top must be in 1..1000") {
			t.Errorf("memory --top %s: want exit 2 and a --top usage error; %v", top, r)
		}
	}
	if r := runCLI(t, "memory", "--top", "many"); r.code != 2 || !strings.Contains(r.stderr, "invalid argument") {
		t.Errorf("memory --top many: %v", r)
	}
	if r := runCLI(t, "memory", "extra"); r.code != 2 {
		t.Errorf("memory extra: %v", r)
	}
	if r := runCLI(t, "memory", "--address", "nonsense", "--token", "x"); r.code != 2 || !strings.Contains(r.stderr, "want host:port") {
		t.Errorf("memory --address nonsense: %v", r)
	}

	addr := closedAddress(t)
	start := time.Now()
	r := runCLI(t, "memory", "--address", addr, "--token", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach a raygo cluster at "+addr) {
		t.Errorf("memory against %s: want exit 1 naming the address; %v", addr, r)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("memory against a closed address took %s", d)
	}
}

// TestCollectNodeStatsFailures checks that a node that refuses connections
// and one that accepts but never answers each come back with an error, and
// that the wait is bounded by the timeout.
func TestCollectNodeStatsFailures(t *testing.T) {
	t.Parallel()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn // accepted and never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	closed := closedAddress(t)
	nodes := []*pb.NodeInfo{{Address: closed}, {Address: silent.Addr().String()}}
	start := time.Now()
	got := collectNodeStats(context.Background(), "x", nodes, 10, 300*time.Millisecond)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("collectNodeStats took %s with a 300ms timeout", d)
	}
	if len(got) != 2 || got[0].node != nodes[0] || got[1].node != nodes[1] {
		t.Fatalf("collectNodeStats = %+v, want the nodes in order", got)
	}
	if got[0].err == nil || !strings.Contains(got[0].err.Error(), "cannot reach the node daemon at "+closed) {
		t.Errorf("closed address: err = %v", got[0].err)
	}
	if got[1].err == nil || !strings.Contains(got[1].err.Error(), "within 300ms") {
		t.Errorf("silent address: err = %v", got[1].err)
	}
}
