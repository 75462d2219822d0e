package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/coreworker/registry"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// The tests run inside testing/synctest bubbles, so a test that would
// wait forever fails at a deadline on the bubble's clock instead of
// hanging, and synctest.Wait tells when every goroutine of the executor
// is idle. Nothing sleeps.

// fakeEnv is the rest of the worker process: arguments are the inline
// values of the spec, results are stored inline.
type fakeEnv struct {
	mu       sync.Mutex
	resolved []*pb.TaskSpec
	released int
	flushes  int
	exited   []exitCall
	changed  chan struct{} // closed and replaced on every ActorExited

	resolveErr map[string]error // by function
	storeErr   error
}

type exitCall struct {
	actor  ids.ID
	reason string
}

func newEnv() *fakeEnv {
	return &fakeEnv{resolveErr: map[string]error{}, changed: make(chan struct{})}
}

func (e *fakeEnv) ResolveArgs(_ context.Context, spec *pb.TaskSpec) ([][]byte, func(), error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.resolved = append(e.resolved, spec)
	release := func() {
		e.mu.Lock()
		e.released++
		e.mu.Unlock()
	}
	if err := e.resolveErr[spec.GetFunction()]; err != nil {
		return nil, release, err
	}
	args := make([][]byte, len(spec.GetArgs()))
	for i, a := range spec.GetArgs() {
		args[i] = a.GetValue().GetData()
	}
	return args, release, nil
}

func (e *fakeEnv) StoreReturns(_ context.Context, _ *pb.TaskSpec, rets []registry.Encoded) ([]*pb.Value, error) {
	e.mu.Lock()
	err := e.storeErr
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]*pb.Value, len(rets))
	for i, r := range rets {
		out[i] = &pb.Value{Data: r.Data}
	}
	return out, nil
}

func (e *fakeEnv) FlushBorrows(context.Context) {
	e.mu.Lock()
	e.flushes++
	e.mu.Unlock()
}

func (e *fakeEnv) ActorExited(actor ids.ID, reason string) {
	e.mu.Lock()
	e.exited = append(e.exited, exitCall{actor, reason})
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

// waitExited waits until n actors have reported exiting.
func (e *fakeEnv) waitExited(t *testing.T, n int) []exitCall {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		e.mu.Lock()
		got, ch := slices.Clone(e.exited), e.changed
		e.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d actors exited, want %d", len(got), n)
		}
	}
}

// fakeSrv is the worker's end of a push stream: the test sends batches
// and reads what the executor sends back.
type fakeSrv struct {
	ctx     context.Context
	cancel  context.CancelFunc
	in      chan *pb.TaskBatch  // closed: the owner closed its side (io.EOF)
	broken  chan error          // an error here: the stream broke
	out     chan *pb.ReplyBatch // every batch the executor sent
	gate    chan struct{}       // when set, each Send says so on sending and waits for a token
	sending chan struct{}
	sendErr error
}

func newSrv() *fakeSrv {
	ctx, cancel := context.WithCancel(context.Background())
	return &fakeSrv{ctx: ctx, cancel: cancel, in: make(chan *pb.TaskBatch, 64), broken: make(chan error, 1),
		out: make(chan *pb.ReplyBatch, 4096), sending: make(chan struct{}, 64)}
}

func (s *fakeSrv) Recv() (*pb.TaskBatch, error) {
	select {
	case b, ok := <-s.in:
		if !ok {
			return nil, io.EOF
		}
		return b, nil
	case err := <-s.broken:
		return nil, err
	}
}

func (s *fakeSrv) Send(b *pb.ReplyBatch) error {
	if s.gate != nil {
		s.sending <- struct{}{}
		<-s.gate
	}
	if s.sendErr != nil {
		return s.sendErr
	}
	// The writer reuses its array: copy, as the wire would.
	s.out <- &pb.ReplyBatch{Replies: slices.Clone(b.GetReplies()), Stolen: slices.Clone(b.GetStolen())}
	return nil
}

func (s *fakeSrv) Context() context.Context { return s.ctx }

// serve runs e.Serve(s) in a goroutine; the returned channel gives its
// result.
func serve(e *Executor, s *fakeSrv) <-chan error {
	done := make(chan error, 1)
	go func() { done <- e.Serve(s) }()
	return done
}

// replies reads batches until n replies have come, and returns them by
// task id, and in order of arrival.
func (s *fakeSrv) replies(t *testing.T, n int) (map[ids.ID]*pb.TaskReply, []ids.ID) {
	t.Helper()
	byID := map[ids.ID]*pb.TaskReply{}
	var order []ids.ID
	deadline := time.After(time.Minute)
	for len(order) < n {
		select {
		case b := <-s.out:
			for _, r := range b.GetReplies() {
				id := ids.MustFromBytes(r.GetTaskId())
				byID[id] = r
				order = append(order, id)
			}
		case <-deadline:
			t.Fatalf("%d replies came, want %d", len(order), n)
		}
	}
	return byID, order
}

// task makes a spec of function fn with inline arguments.
func task(fn string, args ...string) *pb.TaskSpec {
	id := ids.New()
	spec := &pb.TaskSpec{TaskId: id.Bytes(), Function: fn, NumReturns: 1}
	for _, a := range args {
		spec.Args = append(spec.Args, &pb.Arg{Kind: &pb.Arg_Value{Value: &pb.Value{Data: []byte(a)}}})
	}
	return spec
}

func idOf(spec *pb.TaskSpec) ids.ID { return ids.MustFromBytes(spec.GetTaskId()) }

// testJob is the job every test batch belongs to.
var testJob = ids.New()

func batch(specs ...*pb.TaskSpec) *pb.TaskBatch {
	return &pb.TaskBatch{Tasks: specs, Common: &pb.TaskSpec{JobId: testJob.Bytes(), OwnerAddress: "owner:1", OwnerId: ids.New().Bytes()}}
}

// one returns a registered function's single result.
func one(b []byte) []registry.Encoded { return []registry.Encoded{{Data: b}} }

// newExec makes an executor over reg with a fake env; it is closed when
// the test ends.
func newExec(t *testing.T, reg *registry.Registry, cfg Config) (*Executor, *fakeEnv) {
	env := newEnv()
	if cfg.AnnounceTo == nil {
		cfg.AnnounceTo = []io.Writer{io.Discard}
	}
	e := New(cfg, reg, env)
	t.Cleanup(e.Close)
	return e, env
}

var errBoom = errors.New("boom")

// data is a reply's first return value, or its error.
func data(r *pb.TaskReply) string {
	if r.GetError() != nil {
		return fmt.Sprintf("error %v: %s", r.GetError().GetKind(), r.GetError().GetMessage())
	}
	if len(r.GetReturns()) == 0 {
		return "no returns"
	}
	return string(r.GetReturns()[0].GetData())
}
