//go:build !windows

package endtoend

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/mcphost"
	"github.com/raygo/raygo/internal/mcphost/hostspec"
	"github.com/raygo/raygo/internal/mcptest"
	"github.com/raygo/raygo/ray"
)

// TestHostedMCPAcrossHosts: a head on one host and a node on another; a
// hosted MCP server (the reference npm server-everything) with two
// replicas is spread over both hosts, and two gateway sessions on the
// head reach one replica each (each replica says which it is through its
// environment). Killing the node's host daemon takes its replica with it;
// the replica is started again on the head's host, and the session that
// used it goes on there.
func TestHostedMCPAcrossHosts(t *testing.T) {
	mcptest.Dir(t)
	everything := mcptest.Bin(t, "mcp-server-everything")
	bed := namespaceBed(t)
	hh, err := bed.AddHost("head")
	if err != nil {
		t.Fatal(err)
	}
	nh, err := bed.AddHost("node")
	if err != nil {
		t.Fatal(err)
	}
	const token = "e2e-mcp-token"
	tok := ray.EnvToken + "=" + token
	up := startRole(t, hh, roleOpsHead, tok)
	gcs, apiURL, _ := strings.Cut(up, ",")
	_, nodeCmd := startRoleCmd(t, nh, roleMHNode, tok, ray.EnvAddress+"="+gcs)

	c, err := apiclient.New(apiURL, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for {
		st, err := c.ClusterStatus(ctx)
		if err == nil && st.AliveNodes == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("two nodes never alive: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.HostMCPServer(ctx, hostspec.Spec{Name: "everything", Command: []string{everything}, Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	st := waitHosted(t, ctx, c, func(st hostspec.Status) bool { return st.Ready == 2 })
	if st.ReplicaStates[0].NodeID == st.ReplicaStates[1].NodeID {
		t.Fatalf("both replicas on node %s, want them spread over the two hosts", st.ReplicaStates[0].NodeID)
	}

	hc := &http.Client{Transport: bearerRT(token)}
	connect := func() *mcp.ClientSession {
		cl := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
		cs, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: apiURL + hostspec.GatewayPath("everything"), HTTPClient: hc}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cs.Close() })
		return cs
	}
	// replicaOf asks the server which replica answers (RAYGO_MCP_REPLICA
	// in its environment, through server-everything's get-env tool).
	replicaOf := func(cs *mcp.ClientSession) (string, error) {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-env"})
		if err != nil {
			return "", err
		}
		var env map[string]string
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok && json.Unmarshal([]byte(tc.Text), &env) == nil {
				return env["RAYGO_MCP_REPLICA"], nil
			}
		}
		return "", errors.New("get-env: no environment in its answer")
	}
	a, b := connect(), connect()
	ra, err := replicaOf(a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := replicaOf(b)
	if err != nil {
		t.Fatal(err)
	}
	onNode := map[string]string{}
	for _, r := range st.ReplicaStates {
		onNode[r.ID] = r.NodeID
	}
	if ra == rb || onNode[ra] == "" || onNode[rb] == "" {
		t.Fatalf("two sessions reached replicas %q and %q (hosted: %v), want one each", ra, rb, onNode)
	}
	// Which host each replica is on.
	nodes, err := c.List(ctx, "nodes", apiclient.ListOptions{Detail: true})
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		NodeID string `json:"node_id"`
		NodeIP string `json:"node_ip"`
	}
	if err := nodes.DecodeRows(&rows); err != nil {
		t.Fatal(err)
	}
	var headNode, nodeID string
	for _, r := range rows {
		switch r.NodeIP {
		case hh.IP:
			headNode = r.NodeID
		case nh.IP:
			nodeID = r.NodeID
		}
	}
	// lost: the session on the node host's replica; kept, the other.
	lost, kept, keptReplica := a, b, rb
	if onNode[ra] == headNode {
		lost, kept, keptReplica = b, a, ra
	}

	if err := nodeCmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	st = waitHosted(t, ctx, c, func(st hostspec.Status) bool {
		return st.Ready == 2 && st.ReplicaStates[0].NodeID == headNode && st.ReplicaStates[1].NodeID == headNode
	})
	t.Logf("node %s killed; both replicas ready on the head's host %v later", nodeID, time.Since(killed))
	// The session whose replica went goes on, on a replica of the head's
	// host (its first call may be told its replica went away).
	got, err := replicaOf(lost)
	var werr *jsonrpc.Error
	if errors.As(err, &werr) && werr.Code == mcphost.CodeReplicaGone {
		t.Logf("the session's first call after the loss: %v", err)
		got, err = replicaOf(lost)
	}
	if err != nil || got == "" {
		t.Fatalf("the session after its replica's host died: %q, %v", got, err)
	}
	if now, err := replicaOf(kept); err != nil || now != keptReplica {
		t.Errorf("the other session moved: on %q, was on %q (%v)", now, keptReplica, err)
	}
}

func waitHosted(t *testing.T, ctx context.Context, c *apiclient.Client, ok func(hostspec.Status) bool) hostspec.Status {
	t.Helper()
	for {
		st, err := c.MCPServer(ctx, "everything")
		if err == nil && ok(st) {
			return st
		}
		if ctx.Err() != nil {
			t.Fatalf("hosted server never as wanted: %+v %v", st.ReplicaStates, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type bearerRT string

func (b bearerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}
