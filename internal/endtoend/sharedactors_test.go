//go:build !windows

package endtoend

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

// sharedObjectBytes is the size of the object each shared-process actor
// puts and keeps.
const sharedObjectBytes = 10 << 20

// A zero-CPU actor (so that several share one worker process) that puts
// an object and keeps its ref.
type sharedHolder struct{ held ray.ObjectRef[[]byte] }

// sharedPut is what SharedPut answers: the kept object's id and the pid
// of the process hosting the actor.
type sharedPut struct {
	ID  string
	Pid int
}

var (
	SharedHolder = ray.Actor0(func(context.Context) (*sharedHolder, error) { return &sharedHolder{}, nil },
		ray.RegisterName("e2e.SharedHolder"))
	SharedPut = ray.Method0(SharedHolder, func(h *sharedHolder, ctx context.Context) (sharedPut, error) {
		ref, err := ray.Put(ctx, make([]byte, sharedObjectBytes))
		h.held = ref
		return sharedPut{ID: ref.ID(), Pid: os.Getpid()}, err
	}, ray.RegisterName("SharedPut"))
)

// sharedHolders joins head as a driver and starts n zero-CPU actors, each
// holding a 10 MiB object of its own; it checks that they share one
// process and returns the handles, the objects' ids and the pid.
func sharedHolders(t *testing.T, ctx context.Context, addr, token string, n int) ([]ray.ActorHandle[sharedHolder], []string, int) {
	t.Helper()
	if err := ray.Init(ctx, ray.Address(addr), ray.Token(token)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ray.Shutdown() })
	var (
		actors []ray.ActorHandle[sharedHolder]
		objs   []string
		pid    int
	)
	for i := range n {
		a := SharedHolder.Options(ray.NumCPUs(0)).Remote(ctx)
		got, err := SharedPut.Remote(ctx, a).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && got.Pid != pid {
			t.Fatalf("zero-CPU actor %d runs in process %d, the first in %d: want one shared process", i, got.Pid, pid)
		}
		pid = got.Pid
		actors = append(actors, a)
		objs = append(objs, got.ID)
	}
	return actors, objs, pid
}

// TestSharedProcessKilledFreesActorObjects: three zero-CPU actors share
// one worker process, each holding a 10 MiB object it put. When that
// process is SIGKILLed, every one of the objects is freed from the node's
// store (they were the process's: its actors own what they put) within
// 10 s.
func TestSharedProcessKilledFreesActorObjects(t *testing.T) {
	privateRoot(t)
	const token = "e2e-shared-kill"
	head := startHead(t, token)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	actors, objs, pid := sharedHolders(t, ctx, head.GCSAddress(), token, 3)
	for i, held := range storeHolds(t, head, objs) {
		if !held {
			t.Fatalf("actor %d's object %s is not in the store before the kill", i, objs[i])
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 10*time.Second, "the objects of the killed process's actors to be freed", func() bool {
		for _, held := range storeHolds(t, head, objs) {
			if held {
				return false
			}
		}
		return true
	})
	t.Logf("the three actors' objects were freed %v after their shared process was killed", took.Round(time.Millisecond))
	for _, a := range actors {
		_ = ray.Kill(ctx, a)
	}
}

// TestKilledSharedActorFreesItsObjects: of three zero-CPU actors sharing
// one process, one is killed with ray.Kill (no restart): the process
// lives on for the other two, and the object the killed actor put and
// held is freed within 10 s, as Ray frees what a dead actor owned (its
// process dies with it there); the others' objects stay. Then a second
// one is terminated (it ends itself): its object goes too, the last
// one's stay.
func TestKilledSharedActorFreesItsObjects(t *testing.T) {
	privateRoot(t)
	const token = "e2e-shared-actor-kill"
	head := startHead(t, token)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	actors, objs, pid := sharedHolders(t, ctx, head.GCSAddress(), token, 3)
	if err := ray.Kill(ctx, actors[0]); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 10*time.Second, "the killed actor's object to be freed", func() bool {
		return !storeHolds(t, head, objs[:1])[0]
	})
	t.Logf("the killed actor's object was freed %v after ray.Kill", took.Round(time.Millisecond))
	for i, held := range storeHolds(t, head, objs[1:]) {
		if !held {
			t.Fatalf("actor %d's object was freed with another actor of its process", i+1)
		}
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the shared process is gone after one of its actors was killed: %v", err)
	}
	got, err := SharedPut.Remote(ctx, actors[2]).Get(ctx)
	if err != nil || got.Pid != pid {
		t.Fatalf("a surviving actor after another in its process was killed: pid %d (want %d), %v", got.Pid, pid, err)
	}
	objs = append(objs, got.ID) // its second object

	// An actor that ends itself (Terminate: ExitActor after the calls
	// before it) takes its objects with it too.
	if _, err := ray.Terminate(ctx, actors[1]).Get(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the terminated actor's object to be freed", func() bool {
		return !storeHolds(t, head, objs[1:2])[0]
	})
	for i, held := range storeHolds(t, head, objs[2:]) {
		if !held {
			t.Fatalf("the last actor's object %d was freed with another actor of its process", i)
		}
	}
	_ = ray.Kill(ctx, actors[2])
}
