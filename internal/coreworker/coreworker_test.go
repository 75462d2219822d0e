package coreworker

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
)

// startDriver starts a head node and a driver-mode core worker on it. No
// tasks run here (that needs worker processes; the ray package's tests do
// it): these tests cover what a driver does alone with its objects.
func startDriver(t *testing.T) *CoreWorker {
	t.Helper()
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	rc := raylet.DefaultConfig()
	rc.Resources, rc.SessionDir = resources.Set{resources.CPU: 1}, t.TempDir()
	head, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	cw, err := Start(Config{Mode: Driver, GCSAddress: head.GCSAddress(), NodeAddress: head.Raylet().Address(),
		Token: "tok", JobID: ids.New(), NodeID: head.Raylet().NodeID(), InlineThreshold: 1024}, NewRegistry())
	if err != nil {
		head.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cw.Close()
		head.Stop()
		goleak.VerifyNone(t, goleak.IgnoreCurrent())
	})
	return cw
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPutGetFree(t *testing.T) {
	cw := startDriver(t)
	ctx := context.Background()
	small, err := cw.Put(ctx, [][]byte{[]byte("small")}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	big, err := cw.Put(ctx, [][]byte{make([]byte, 4096)}, nil, "test") // above the 1 KiB threshold: into the node's store
	if err != nil {
		t.Fatal(err)
	}
	data, objErrs, release, err := cw.Get(ctx, []*Ref{small, big})
	if err != nil || objErrs[0] != nil || objErrs[1] != nil {
		t.Fatalf("Get: %v %v", err, objErrs)
	}
	if string(data[0]) != "small" || len(data[1]) != 4096 {
		t.Fatalf("Get returned %q and %d bytes", data[0], len(data[1]))
	}
	release()
	st, _ := cw.raylet.NodeStats(ctx, &pb.NodeStatsRequest{})
	if st.GetStoreObjects() != 1 {
		t.Fatalf("store holds %d objects, want 1", st.GetStoreObjects())
	}
	cw.Free([]*Ref{big})
	if _, _, _, err := cw.Get(ctx, []*Ref{big}); !errors.Is(err, errs.ErrObjectFreed) {
		t.Fatalf("Get after Free: %v", err)
	}
	waitFor(t, "the store copy to be deleted", func() bool {
		st, _ := cw.raylet.NodeStats(ctx, &pb.NodeStatsRequest{})
		return st.GetStoreObjects() == 0
	})
}

func TestHandlesAreCountedByTheCollector(t *testing.T) {
	cw := startDriver(t)
	ctx := context.Background()
	func() {
		for range 100 {
			if _, err := cw.Put(ctx, [][]byte{[]byte("x")}, nil, ""); err != nil {
				t.Fatal(err)
			}
		}
	}()
	waitFor(t, "unreachable handles to free their objects", func() bool { return cw.ObjectCount() == 0 })

	// A value holding a ref keeps it alive until the value itself goes.
	inner, _ := cw.Put(ctx, [][]byte{[]byte("inner")}, nil, "")
	outer, _ := cw.Put(ctx, [][]byte{[]byte("outer")}, []codec.Ref{inner.Wire()}, "")
	innerID := inner.ID
	inner = nil
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	runtime.GC()
	cw.mu.Lock()
	_, alive := cw.objects[innerID]
	cw.mu.Unlock()
	if !alive {
		t.Fatal("an object held by another object's value was freed")
	}
	runtime.KeepAlive(outer)
	outer = nil
	waitFor(t, "both objects to be freed", func() bool { return cw.ObjectCount() == 0 })
}

func TestBorrowersKeepObjectsAlive(t *testing.T) {
	cw := startDriver(t)
	ctx := context.Background()
	h, _ := cw.Put(ctx, [][]byte{[]byte("lent")}, nil, "")
	id := h.ID
	if _, err := (service{cw: cw}).Borrow(ctx, &pb.BorrowRequest{ObjectIds: [][]byte{id.Bytes()}, BorrowerAddress: "127.0.0.1:9"}); err != nil {
		t.Fatal(err)
	}
	h = nil
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	runtime.GC()
	// Still there for the borrower: WaitObject answers.
	reply, err := (service{cw: cw}).WaitObject(ctx, &pb.WaitObjectRequest{ObjectId: id.Bytes()})
	if err != nil || string(reply.GetValue().GetData()) != "lent" {
		t.Fatalf("WaitObject for a borrowed object: %v", err)
	}
	if _, err := (service{cw: cw}).Borrow(ctx, &pb.BorrowRequest{ObjectIds: [][]byte{id.Bytes()}, BorrowerAddress: "127.0.0.1:9", Remove: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the object to be freed when its last borrower left", func() bool { return cw.ObjectCount() == 0 })
	if _, err := (service{cw: cw}).WaitObject(ctx, &pb.WaitObjectRequest{ObjectId: id.Bytes()}); !errors.Is(err, errs.ErrObjectFreed) {
		t.Fatalf("WaitObject for a freed object: %v", err)
	}
}

func TestWaitOnOwnedObjects(t *testing.T) {
	cw := startDriver(t)
	ctx := context.Background()
	a, _ := cw.Put(ctx, [][]byte{[]byte("a")}, nil, "")
	b, _ := cw.Put(ctx, [][]byte{[]byte("b")}, nil, "")
	ready, err := cw.Wait(ctx, []*Ref{a, b}, 1, 0)
	if err != nil || !ready[0] || ready[1] {
		t.Fatalf("Wait(1) = %v, %v: want only the first ready", ready, err)
	}
	ready, err = cw.Wait(ctx, []*Ref{a, b}, 2, time.Second)
	if err != nil || !ready[0] || !ready[1] {
		t.Fatalf("Wait(2) = %v, %v", ready, err)
	}
}

func TestSubmitRejectsBadRequests(t *testing.T) {
	cw := startDriver(t)
	if _, err := cw.SubmitTask("f", nil, TaskOptions{Resources: resources.Set{"CPU": -1}}); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("negative CPU: %v", err)
	}
	if _, err := cw.SubmitTask("f", nil, TaskOptions{NumReturns: 1 << 16}); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("65536 returns: %v", err)
	}
	if _, err := cw.SubmitTask("f", nil, TaskOptions{Resources: resources.Set{"CPU": 1.5}}); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("1.5 CPUs: %v", err)
	}
	// With FailIfInfeasible, a request no node can satisfy fails its
	// returns, not the submission.
	refs, err := cw.SubmitTask("f", nil, TaskOptions{Resources: resources.Set{"CPU": 64}, FailIfInfeasible: true})
	if err != nil {
		t.Fatal(err)
	}
	_, objErrs, _, err := cw.Get(context.Background(), refs)
	if err != nil || !errors.Is(objErrs[0], errs.ErrInfeasible) {
		t.Fatalf("infeasible task: %v %v", err, objErrs)
	}
}

// TestInfeasibleTaskWaits: by default a task no node can hold waits (its
// demand reported as infeasible) instead of failing, and cancelling it
// withdraws the demand.
func TestInfeasibleTaskWaits(t *testing.T) {
	cw := startDriver(t)
	ctx := context.Background()
	refs, err := cw.SubmitTask("f", nil, TaskOptions{Resources: resources.Set{"CPU": 64}})
	if err != nil {
		t.Fatal(err)
	}
	infeasible := func() int {
		r, err := cw.GCS().GetNodes(ctx, &pb.GetNodesRequest{})
		if err != nil || len(r.GetNodes()) != 1 {
			t.Fatalf("GetNodes = %v, %v", r, err)
		}
		return len(r.GetNodes()[0].GetInfeasibleDemands())
	}
	waitFor(t, "the infeasible demand to be reported", func() bool { return infeasible() == 1 })
	if ready, err := cw.Wait(ctx, refs, 1, 0); err != nil || ready[0] {
		t.Fatalf("infeasible task finished: %v, %v", ready, err)
	}
	if err := cw.Cancel(ctx, refs[0], false); err != nil {
		t.Fatal(err)
	}
	_, objErrs, _, err := cw.Get(ctx, refs)
	if err != nil || !errors.Is(objErrs[0], errs.ErrTaskCancelled) {
		t.Fatalf("cancelled infeasible task: %v %v", err, objErrs)
	}
	waitFor(t, "the infeasible demand to be withdrawn", func() bool { return infeasible() == 0 })
}

func TestPureHelpers(t *testing.T) {
	if got := trimReady([]bool{true, false, true, true}, 2); !got[0] || got[1] || !got[2] || got[3] {
		t.Fatalf("trimReady = %v", got)
	}
	for _, c := range []struct {
		types []string
		name  string
		want  bool
	}{
		{nil, "anything", true},
		{[]string{"a.E"}, "a.E", true},
		{[]string{"a.E"}, "b.E", false},
		{[]string{"a.Sentinel"}, "sentinel:a.Sentinel", true},
	} {
		if got := retryableType(c.types, c.name); got != c.want {
			t.Errorf("retryableType(%v, %q) = %v", c.types, c.name, got)
		}
	}
}
