package mcphost

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/replicaset"
)

// Replica supervision (docs/mcp-hosting.md) is internal/replicaset's,
// with the MCP client as its probe.
const (
	// StartTimeout bounds a replica's start: its process starting and
	// answering initialize and a first ping (`npx -y` may download the
	// package first).
	StartTimeout = replicaset.DefaultStartTimeout
	// HealthPeriod is how often a ready replica is pinged; a ping that
	// fails (or takes longer than HealthPeriod) has it replaced.
	HealthPeriod = replicaset.DefaultHealthPeriod
)

// mcpProbe is a hosted server's replicaset.Probe: a replica is ready
// once the SDK's client has initialized it over its stdio and it has
// answered a first ping; it is healthy while it answers pings.
type mcpProbe struct{ h *hosted }

// mcpConn is a ready replica: its one MCP client session.
type mcpConn struct {
	cs   *mcp.ClientSession
	lost chan error
}

// Ready implements replicaset.Probe.
func (p mcpProbe) Ready(ctx context.Context, proc *replicaset.Process) (replicaset.Conn, error) {
	h := p.h
	client := mcp.NewClient(&mcp.Implementation{Name: "raygo-mcp-gateway", Version: h.m.cfg.Version}, &mcp.ClientOptions{
		ProgressNotificationHandler: h.progress,
		Logger:                      h.sdkLog,
	})
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: proc.Stdout, Writer: proc.Stdin}, nil)
	if err == nil {
		err = cs.Ping(ctx, nil)
		if err != nil {
			_ = cs.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	c := &mcpConn{cs: cs, lost: make(chan error, 1)}
	_ = h.stop.Go("mcphost.replica.session", func(context.Context) {
		_ = cs.Wait() // ends with Close (the slot's, when the replica goes) at the latest
		c.lost <- errors.New("the MCP session with the replica closed")
	})
	return c, nil
}

// Check implements replicaset.Conn.
func (c *mcpConn) Check(ctx context.Context) error {
	if err := c.cs.Ping(ctx, nil); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// Lost implements replicaset.Conn.
func (c *mcpConn) Lost() <-chan error { return c.lost }

// Close implements replicaset.Conn.
func (c *mcpConn) Close() error { return c.cs.Close() }

// slot is one of a hosted server's replicas: its supervision
// (replicaset's) and the gateway's counts of what is routed to it.
type slot struct {
	rs    *replicaset.Slot
	index int

	mu       sync.Mutex
	sessions int // gateway sessions routed here
	inFlight int
}

// current is the slot's ready client session and a channel closed when
// that replica goes (nil, nil when none is ready).
func (sl *slot) current() (*mcp.ClientSession, <-chan struct{}) {
	c, gone := sl.rs.Current()
	if c == nil {
		return nil, nil
	}
	return c.(*mcpConn).cs, gone
}

// status is the slot as ReplicaStatus.
func (sl *slot) status() ReplicaStatus {
	st := sl.rs.Status()
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return ReplicaStatus{Index: st.Index, ID: st.ID, State: st.State, Message: st.Message, Since: st.Since, NodeID: st.NodeID,
		Restarts: st.Restarts, Pid: st.Pid, LogFile: st.LogFile, Sessions: sl.sessions, InFlight: sl.inFlight}
}

// shortNode is a node id as messages show it.
func shortNode(id string) string { return ids.ShortString(id) }
