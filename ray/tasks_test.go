//go:build !windows

package ray_test

import (
	"context"
	"errors"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

var (
	Square = ray.Func1(func(ctx context.Context, x int) (int, error) { return x * x, nil }, ray.RegisterName("test.Square"))
	Add    = ray.Func2(func(ctx context.Context, a, b int) (int, error) { return a + b, nil }, ray.RegisterName("test.Add"))
	Concat = ray.Func3(func(ctx context.Context, a string, b []byte, c float64) (string, error) {
		return a + string(b) + "-" + time.Duration(c).String(), nil
	}, ray.RegisterName("test.Concat"))
	Const  = ray.Func0(func(ctx context.Context) (string, error) { return "ok", nil }, ray.RegisterName("test.Const"))
	DivMod = ray.Func1x2(func(ctx context.Context, x [2]int) (int, int, error) { return x[0] / x[1], x[0] % x[1], nil }, ray.RegisterName("test.DivMod"))
	// SumRefs gets every nested ref itself: the refs are borrowed.
	SumRefs = ray.Func1(func(ctx context.Context, refs []ray.ObjectRef[int]) (int, error) {
		vals, err := ray.Get(ctx, refs...)
		if err != nil {
			return 0, err
		}
		s := 0
		for _, v := range vals {
			s += v
		}
		return s, nil
	}, ray.RegisterName("test.SumRefs"))
	// SquareTree submits child tasks from inside a task.
	SquareTree = ray.Func1(func(ctx context.Context, n int) (int, error) {
		refs := make([]ray.ObjectRef[int], n)
		for i := range refs {
			refs[i] = Square.Remote(ctx, i)
		}
		vals, err := ray.Get(ctx, refs...)
		if err != nil {
			return 0, err
		}
		s := 0
		for _, v := range vals {
			s += v
		}
		return s, nil
	}, ray.RegisterName("test.SquareTree"))
	// MakeRefs returns refs created inside the task (owned by the worker).
	MakeRefs = ray.Func1(func(ctx context.Context, n int) ([]ray.ObjectRef[int], error) {
		out := make([]ray.ObjectRef[int], n)
		for i := range out {
			r, err := ray.Put(ctx, i*10)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}, ray.RegisterName("test.MakeRefs"))
	Sleep = ray.Func1(func(ctx context.Context, ms int) (int, error) {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return ms, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}, ray.RegisterName("test.Sleep"))
	Env = ray.Func1(func(ctx context.Context, name string) (string, error) { return os.Getenv(name), nil }, ray.RegisterName("test.Env"))
	Pid = ray.Func0(func(ctx context.Context) (int, error) { return os.Getpid(), nil }, ray.RegisterName("test.Pid"))
	Big = ray.Func1(func(ctx context.Context, n int) ([]byte, error) {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return b, nil
	}, ray.RegisterName("test.Big"))
	Len = ray.Func1(func(ctx context.Context, b []byte) (int, error) { return len(b), nil }, ray.RegisterName("test.Len"))
)

func TestTasks(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))

	if v, err := Square.Remote(ctx, 7).Get(ctx); err != nil || v != 49 {
		t.Fatalf("Square(7) = %v, %v", v, err)
	}
	if v, err := Const.Remote(ctx).Get(ctx); err != nil || v != "ok" {
		t.Fatalf("Const() = %v, %v", v, err)
	}
	if v, err := Concat.Remote(ctx, "a", []byte("b"), float64(time.Second)).Get(ctx); err != nil || v != "ab-1s" {
		t.Fatalf("Concat = %q, %v", v, err)
	}

	refs := make([]ray.ObjectRef[int], 20)
	for i := range refs {
		refs[i] = Square.Remote(ctx, i)
	}
	vals, err := ray.Get(ctx, refs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if v != i*i {
			t.Fatalf("result %d = %d", i, v)
		}
	}

	q, r := DivMod.Remote(ctx, [2]int{17, 5})
	if a, err := q.Get(ctx); err != nil || a != 3 {
		t.Fatalf("quotient = %v, %v", a, err)
	}
	if b, err := r.Get(ctx); err != nil || b != 2 {
		t.Fatalf("remainder = %v, %v", b, err)
	}
}

func TestRefsAsArgumentsAndNested(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))

	// A ref passed as an argument is resolved before the task runs, even
	// when it is the output of a task still running.
	slow := Sleep.Remote(ctx, 50)
	sum := Add.RemoteArgs(ctx, slow, ray.Val(1))
	if v, err := sum.Get(ctx); err != nil || v != 51 {
		t.Fatalf("Add(ref, 1) = %v, %v", v, err)
	}

	// Put, then pass the ref.
	p, err := ray.Put(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Add.RemoteArgs(ctx, p, p).Get(ctx); err != nil || v != 40 {
		t.Fatalf("Add(put, put) = %v, %v", v, err)
	}

	// Refs nested in a value are borrowed by the task.
	nested := []ray.ObjectRef[int]{Square.Remote(ctx, 2), Square.Remote(ctx, 3), p}
	if v, err := SumRefs.Remote(ctx, nested).Get(ctx); err != nil || v != 4+9+20 {
		t.Fatalf("SumRefs = %v, %v", v, err)
	}

	// Tasks that submit tasks.
	if v, err := SquareTree.Remote(ctx, 10).Get(ctx); err != nil || v != 285 {
		t.Fatalf("SquareTree(10) = %v, %v", v, err)
	}

	// Refs created and owned by a worker, returned inside a value.
	inner, err := MakeRefs.Remote(ctx, 3).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ray.Get(ctx, inner...)
	if err != nil || len(got) != 3 || got[2] != 20 {
		t.Fatalf("refs returned by a task: %v, %v", got, err)
	}

	// Large values travel through the object store, both ways.
	big := Big.Remote(ctx, 1<<20)
	if n, err := Len.RemoteArgs(ctx, big).Get(ctx); err != nil || n != 1<<20 {
		t.Fatalf("Len(big) = %v, %v", n, err)
	}
	b, err := big.Get(ctx)
	if err != nil || len(b) != 1<<20 || b[1000] != byte(1000%256) {
		t.Fatalf("big value: len %d, %v", len(b), err)
	}
}

func TestWait(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	fast1 := Sleep.Remote(ctx, 0)
	slow := Sleep.Remote(ctx, 3000)
	fast2 := Sleep.Options(ray.NumCPUs(0)).Remote(ctx, 10)
	refs := []ray.ObjectRef[int]{slow, fast1, fast2}

	ready, notReady, err := ray.Wait(ctx, refs, 2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ready) != 2 || len(notReady) != 1 || notReady[0].ID() != slow.ID() {
		t.Fatalf("Wait(2) ready=%d notReady=%d", len(ready), len(notReady))
	}
	// Input order is kept in both lists.
	if ready[0].ID() != fast1.ID() || ready[1].ID() != fast2.ID() {
		t.Fatal("ready refs not in input order")
	}
	// Timeout: fewer than asked.
	start := time.Now()
	ready, notReady, err = ray.Wait(ctx, refs, 3, 50*time.Millisecond)
	if err != nil || len(ready) != 2 || len(notReady) != 1 {
		t.Fatalf("Wait with timeout: %d ready, %d not, %v", len(ready), len(notReady), err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("Wait ignored its timeout")
	}
	// numReturns 1 returns at most one even though two are ready.
	ready, _, _ = ray.Wait(ctx, refs, 1, 0)
	if len(ready) != 1 {
		t.Fatalf("Wait(1) returned %d ready", len(ready))
	}
	if _, _, err := ray.Wait(ctx, refs, 4, 0); !errors.Is(err, ray.ErrInvalidRequest) {
		t.Fatalf("Wait(numReturns > len) = %v", err)
	}
	if err := ray.Cancel(ctx, slow); err != nil {
		t.Fatal(err)
	}
}

func TestResources(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2), ray.NumGPUs(2), ray.Resources(map[string]float64{"widget": 1}))

	// Fractional CPUs: four half-CPU tasks fit on two CPUs at once.
	refs := make([]ray.ObjectRef[int], 4)
	for i := range refs {
		refs[i] = Pid.Options(ray.NumCPUs(0.5)).Remote(ctx)
	}
	if _, err := ray.Get(ctx, refs...); err != nil {
		t.Fatal(err)
	}
	// GPU tasks see exactly their GPU; others see none.
	seen := map[string]bool{}
	for range 4 {
		v, err := Env.Options(ray.NumGPUs(1)).Remote(ctx, "CUDA_VISIBLE_DEVICES").Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v != "0" && v != "1" {
			t.Fatalf("one-GPU task sees CUDA_VISIBLE_DEVICES=%q", v)
		}
		seen[v] = true
	}
	if v, err := Env.Options(ray.NumGPUs(2)).Remote(ctx, "CUDA_VISIBLE_DEVICES").Get(ctx); err != nil || (v != "0,1" && v != "1,0") {
		t.Fatalf("two-GPU task sees %q, %v", v, err)
	}
	if v, err := Env.Remote(ctx, "CUDA_VISIBLE_DEVICES").Get(ctx); err != nil || v != "" {
		t.Fatalf("zero-GPU task sees CUDA_VISIBLE_DEVICES=%q, %v", v, err)
	}
	// Custom resources.
	if _, err := Square.Options(ray.Resources(map[string]float64{"widget": 1})).Remote(ctx, 2).Get(ctx); err != nil {
		t.Fatal(err)
	}

	// Requests no node can satisfy stay pending, as in Ray (a node that
	// fits may join; the driver is warned), and Cancel ends them.
	for name, opt := range infeasibleOptions() {
		ref := Square.Options(opt).Remote(ctx, 1)
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := ref.Get(wctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ray.ErrTimeout) {
			t.Fatalf("%s: Get of a pending infeasible task: %v, want a timeout", name, err)
		}
		if err := ray.Cancel(ctx, ref); err != nil {
			t.Fatalf("%s: Cancel: %v", name, err)
		}
		if _, err := ref.Get(ctx); !errors.Is(err, ray.ErrTaskCancelled) {
			t.Fatalf("%s: Get after Cancel: %v, want cancelled", name, err)
		}
	}
	// Negative or absurd requests are rejected at submission.
	for name, opt := range map[string]ray.ResourceOption{
		"negative": ray.NumCPUs(-1),
		"absurd":   ray.NumCPUs(1e12),
		"halfgpus": ray.NumGPUs(1.5),
		"halfcpus": ray.NumCPUs(1.5),
	} {
		ref := Square.Options(opt).Remote(ctx, 1)
		if !errors.Is(ref.Err(), ray.ErrInvalidRequest) {
			t.Fatalf("%s: got %v", name, ref.Err())
		}
	}
	_ = sort.Ints
}

func infeasibleOptions() map[string]ray.ResourceOption {
	return map[string]ray.ResourceOption{
		"cpus":   ray.NumCPUs(64),
		"gpus":   ray.NumGPUs(3),
		"custom": ray.Resources(map[string]float64{"unicorn": 1}),
	}
}

// TestInfeasibleFailFast: with FailIfInfeasible (for scripts), a request
// no node can satisfy fails at once with a clear error.
func TestInfeasibleFailFast(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2), ray.NumGPUs(2), ray.FailIfInfeasible())
	for name, opt := range infeasibleOptions() {
		_, err := Square.Options(opt).Remote(ctx, 1).Get(ctx)
		var ie *ray.InfeasibleError
		if !errors.As(err, &ie) || !errors.Is(err, ray.ErrInfeasible) || ie.Function != "test.Square" {
			t.Fatalf("%s: infeasible request gave %v", name, err)
		}
	}
}

func TestLargeArguments(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	big := make([]byte, 3<<20)
	big[len(big)-1] = 7
	refs := make([]ray.ObjectRef[int], 8)
	for i := range refs {
		refs[i] = Len.Remote(ctx, big) // passed through the object store, not inline
	}
	vals, err := ray.Get(ctx, refs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if v != len(big) {
			t.Fatalf("Len = %d", v)
		}
	}
	eventually(t, 30*time.Second, "stored arguments to be freed", func() bool { return ray.StoreObjectsForTest() == 0 })
	if err := ray.Init(ctx, ray.InlineThreshold(-1)); !errors.Is(err, ray.ErrAlreadyInitialized) && !errors.Is(err, ray.ErrInvalidRequest) {
		t.Fatalf("InlineThreshold(-1): %v", err)
	}
}

type mailbox struct{ refs []ray.ObjectRef[int] }

var (
	Mailbox     = ray.Actor0(func(ctx context.Context) (*mailbox, error) { return &mailbox{}, nil }, ray.RegisterName("test.Mailbox"))
	MailboxPost = ray.Method1(Mailbox, func(m *mailbox, ctx context.Context, refs []ray.ObjectRef[int]) (int, error) {
		m.refs = refs
		return len(refs), nil
	}, ray.RegisterName("Post"))
	MailboxPeek = ray.Method0(Mailbox, func(m *mailbox, ctx context.Context) ([]ray.ObjectRef[int], error) { return m.refs, nil }, ray.RegisterName("Peek"))
	// AwaitMail waits until a ref is posted, then for its value.
	AwaitMail = ray.Func1(func(ctx context.Context, box ray.ActorHandle[mailbox]) (int, error) {
		for {
			refs, err := MailboxPeek.Remote(ctx, box).Get(ctx)
			if err != nil {
				return 0, err
			}
			if len(refs) > 0 {
				return refs[0].Get(ctx)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}, ray.RegisterName("test.AwaitMail"))
)

// TestBlockedTaskDoesNotStallPipeline: a task that waits for the result of
// a task pipelined behind it on the same worker must not deadlock.
func TestBlockedTaskDoesNotStallPipeline(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(1))
	warm := make([]ray.ObjectRef[int], 300)
	for i := range warm {
		warm[i] = Square.Remote(ctx, i) // short tasks deepen the pipeline
	}
	if _, err := ray.Get(ctx, warm...); err != nil {
		t.Fatal(err)
	}
	box := Mailbox.Remote(ctx)
	if err := box.Err(); err != nil {
		t.Fatal(err)
	}
	waiter := AwaitMail.Remote(ctx, box)
	later := Square.Remote(ctx, 12) // queued behind the waiter
	if _, err := MailboxPost.Remote(ctx, box, []ray.ObjectRef[int]{later}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if v, err := waiter.Get(tctx); err != nil || v != 144 {
		t.Fatalf("waiter = %v, %v", v, err)
	}
}

var Split = ray.Func1xN(func(ctx context.Context, n int) ([]int, error) {
	out := make([]int, n)
	for i := range out {
		out[i] = i * i
	}
	return out, nil
}, ray.RegisterName("test.Split"))

func TestManyReturns(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(1))
	refs := Split.Remote(ctx, 3000, 3000)
	vals, err := ray.Get(ctx, refs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 3000 || vals[2999] != 2999*2999 {
		t.Fatalf("got %d values, last %d", len(vals), vals[len(vals)-1])
	}
	// A count that does not match what the function returns fails the call.
	if _, err := Split.Remote(ctx, 3, 4)[0].Get(ctx); err == nil || !strings.Contains(err.Error(), "returned 3 values, want 4") {
		t.Fatalf("mismatched count: %v", err)
	}
	if err := Split.Remote(ctx, 1, 0)[0].Err(); !errors.Is(err, ray.ErrInvalidRequest) {
		t.Fatalf("zero results: %v", err)
	}
}

var SumAll = ray.FuncV(func(ctx context.Context, xs ...int) (int, error) {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s, nil
}, ray.RegisterName("test.SumAll"))

func TestVariadicWithManyRefArguments(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	if v, err := SumAll.Remote(ctx, 1, 2, 3).Get(ctx); err != nil || v != 6 {
		t.Fatalf("SumAll(1,2,3) = %v, %v", v, err)
	}
	if v, err := SumAll.Remote(ctx).Get(ctx); err != nil || v != 0 {
		t.Fatalf("SumAll() = %v, %v", v, err)
	}
	args := make([]ray.Arg[int], 0, 2000)
	want := 0
	for i := range 1000 {
		r, err := ray.Put(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, r, ray.Val(i))
		want += 2 * i
	}
	if v, err := SumAll.RemoteArgs(ctx, args...).Get(ctx); err != nil || v != want {
		t.Fatalf("SumAll(1000 refs, 1000 values) = %v, %v; want %d", v, err, want)
	}
}

// Wait's notReady may be the tail of its input; appending to it must not
// write into the input.
func TestWaitNotReadyAliasing(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(1))
	refs := []ray.ObjectRef[int]{Square.Remote(ctx, 1), Sleep.Remote(ctx, 2000), Square.Remote(ctx, 3)}
	if _, err := refs[0].Get(ctx); err != nil {
		t.Fatal(err)
	}
	ready, notReady, err := ray.Wait(ctx, refs[:2], 1, 0)
	if err != nil || len(ready) != 1 || len(notReady) != 1 || notReady[0].ID() != refs[1].ID() {
		t.Fatalf("Wait: %d ready, %d not, %v", len(ready), len(notReady), err)
	}
	notReady = append(notReady, refs[0])
	if refs[2].ID() == refs[0].ID() {
		t.Fatal("appending to notReady overwrote the caller's slice")
	}
	_ = notReady
}
