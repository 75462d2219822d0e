package replicaset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/scheduler"
)

// Process is a started replica process, wherever it runs: its stdio,
// where it listens, and how it ended.
type Process struct {
	Pid     int
	LogFile string
	// HostPort is where a "serve" replica is to listen, as other nodes
	// reach it ("10.0.0.5:41234"); empty for "mcp" replicas.
	HostPort string
	// Stdin and Stdout are an "mcp" replica's stdio (a "serve" replica's
	// stdin is /dev/null and its stdout goes to its log: Stdout then
	// reads nothing). Closing Stdout stops the replica.
	Stdin  io.WriteCloser
	Stdout io.ReadCloser
	// Done is closed once the process has ended, or the link to it is
	// lost; Err then says how.
	Done <-chan struct{}
	Err  func() error
}

// Launcher starts replica processes on nodes. The head's is the node
// daemons' RunReplica (NodeLauncher); tests use local processes. A
// replica runs until the context given to Start ends. Implementations
// are safe for concurrent use.
type Launcher interface {
	// Nodes lists the cluster's nodes with their free resources.
	Nodes(ctx context.Context) ([]scheduler.Node, error)
	// Start starts a replica on node; ctx's end stops it.
	Start(ctx context.Context, node scheduler.Node, start *pb.ReplicaStart) (*Process, error)
}

// NodeLauncher starts replicas through the node daemons' RunReplica
// stream: the stream is the replica's life (its stdin and stdout travel
// on it; cancelling it stops the process; the process's exit ends it).
type NodeLauncher struct {
	GCS  *gcs.Server
	Pool *rpc.Pool
}

// Nodes implements Launcher.
func (l NodeLauncher) Nodes(ctx context.Context) ([]scheduler.Node, error) {
	reply, err := l.GCS.GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		return nil, err
	}
	var nodes []scheduler.Node
	for _, n := range reply.GetNodes() {
		if n.GetState() != pb.NodeState_NODE_STATE_ALIVE {
			continue
		}
		nodes = append(nodes, scheduler.Node{ID: ids.MustFromBytes(n.GetNodeId()).String(), Address: n.GetAddress(), Alive: true,
			Total: resources.Set(n.GetTotal().GetAmounts()), Available: resources.Set(n.GetAvailable().GetAmounts()), Labels: n.GetLabels()})
	}
	slices.SortFunc(nodes, func(a, b scheduler.Node) int { return strings.Compare(a.ID, b.ID) })
	return nodes, nil
}

// Start implements Launcher.
func (l NodeLauncher) Start(ctx context.Context, node scheduler.Node, start *pb.ReplicaStart) (*Process, error) {
	conn, err := l.Pool.Get(node.Address)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	st, err := pb.NewNodeDaemonClient(conn).RunReplica(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	if err := st.Send(&pb.ReplicaInput{Start: start}); err != nil {
		cancel()
		return nil, err
	}
	first, err := st.Recv()
	if err != nil {
		cancel()
		return nil, err
	}
	s := &streamProc{st: st, cancel: cancel, done: make(chan struct{})}
	pr, pw := io.Pipe()
	s.pr = pr
	go s.read(pw, first.GetStdout()) // ends when the stream does: the process's exit, or cancel
	return &Process{Pid: int(first.GetPid()), LogFile: first.GetLogFile(), HostPort: first.GetHostPort(), Stdin: s, Stdout: readCloser{pr, cancel},
		Done: s.done, Err: s.error}, nil
}

// streamProc is a replica's RunReplica stream seen as a process.
type streamProc struct {
	st     pb.NodeDaemon_RunReplicaClient
	cancel context.CancelFunc
	pr     *io.PipeReader
	done   chan struct{}

	mu  sync.Mutex // serializes Send and CloseSend; guards err
	err error
}

// read copies the replica's stdout from the stream into pw until the
// stream ends, then records why.
func (s *streamProc) read(pw *io.PipeWriter, first []byte) {
	var err error
	if len(first) > 0 {
		_, err = pw.Write(first)
	}
	for err == nil {
		var out *pb.ReplicaOutput
		if out, err = s.st.Recv(); err == nil && len(out.GetStdout()) > 0 {
			_, err = pw.Write(out.GetStdout())
		}
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("the replica's stream ended")
	}
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	pw.CloseWithError(err)
	s.cancel()
	close(s.done)
}

func (s *streamProc) error() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Write sends bytes to the replica's stdin.
func (s *streamProc) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.Send(&pb.ReplicaInput{Stdin: p}); err != nil {
		return 0, fmt.Errorf("replicaset: write to replica: %w", err)
	}
	return len(p), nil
}

// Close closes the replica's stdin.
func (s *streamProc) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.CloseSend()
}

// readCloser is a replica's stdout: closing it stops the replica.
type readCloser struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (r readCloser) Close() error {
	r.cancel()
	return r.PipeReader.Close()
}
