package microbench

import (
	"context"
	"fmt"

	"github.com/raygo/raygo/ray"
)

// The remote functions and actor types below are registered at package
// initialization, so every process started from a binary that imports this
// package (the raygo binary, or a test binary) can run them. Their names
// are stable and prefixed "microbench.".

// okValue is what every trivial task and method returns, as Ray's benchmarks
// return b"ok".
var okValue = []byte("ok")

// smallValue is Ray's small_value task.
var smallValue = ray.Func0(func(context.Context) ([]byte, error) {
	return okValue, nil
}, ray.RegisterName("microbench.SmallValue"))

// server is Ray's Actor: trivial methods, plus batches that a client actor
// runs from inside the actor (multi_client_tasks_async,
// multi_client_put_calls).
type server struct {
	large []byte // putLarge's value, made on first use
}

var (
	serverActor = ray.Actor0(func(context.Context) (*server, error) {
		return &server{}, nil
	}, ray.RegisterName("microbench.Server"))
	serverSmallValue    = ray.Method0(serverActor, (*server).smallValue, ray.RegisterName("SmallValue"))
	serverSmallValueArg = ray.Method1(serverActor, (*server).smallValueArg, ray.RegisterName("SmallValueArg"))
	serverTaskBatch     = ray.Method1(serverActor, (*server).taskBatch, ray.RegisterName("TaskBatch"))
	serverPutBatch      = ray.Method1(serverActor, (*server).putBatch, ray.RegisterName("PutBatch"))
	serverPutLarge      = ray.Method1(serverActor, (*server).putLarge, ray.RegisterName("PutLarge"))
)

func (*server) smallValue(context.Context) ([]byte, error) { return okValue, nil }

func (*server) smallValueArg(context.Context, []byte) ([]byte, error) { return okValue, nil }

// taskBatch submits n trivial tasks and waits for all of them.
func (*server) taskBatch(ctx context.Context, n int) (int, error) {
	refs := make([]ray.ObjectRef[[]byte], n)
	for i := range refs {
		refs[i] = smallValue.Remote(ctx)
	}
	if _, err := ray.Get(ctx, refs...); err != nil {
		return 0, err
	}
	return n, nil
}

// putBatch puts n small values.
func (*server) putBatch(ctx context.Context, n int) (int, error) {
	for range n {
		if _, err := ray.Put(ctx, 0); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// putLarge puts n 100 MiB values, freeing each.
func (s *server) putLarge(ctx context.Context, n int) (int, error) {
	if s.large == nil {
		s.large = largeValue()
	}
	for range n {
		ref, err := ray.Put(ctx, s.large)
		if err != nil {
			return 0, err
		}
		if err := ray.Free(ref); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// client is Ray's Client actor: it calls its servers' methods
// asynchronously from inside an actor.
type client struct{ servers []ray.ActorHandle[server] }

var (
	clientActor = ray.Actor1(func(_ context.Context, servers []ray.ActorHandle[server]) (*client, error) {
		if len(servers) == 0 {
			return nil, fmt.Errorf("microbench: a client needs at least one server")
		}
		return &client{servers: servers}, nil
	}, ray.RegisterName("microbench.Client"))
	clientPing         = ray.Method0(clientActor, (*client).ping, ray.RegisterName("Ping"))
	clientCallBatch    = ray.Method1(clientActor, (*client).callBatch, ray.RegisterName("CallBatch"))
	clientCallBatchArg = ray.Method1(clientActor, (*client).callBatchArg, ray.RegisterName("CallBatchArg"))
)

// ping returns the number of servers; a reply means the actor is up.
func (c *client) ping(context.Context) (int, error) { return len(c.servers), nil }

// callBatch makes n calls to each server, then waits for all of them.
func (c *client) callBatch(ctx context.Context, n int) (int, error) {
	refs := make([]ray.ObjectRef[[]byte], 0, n*len(c.servers))
	for _, s := range c.servers {
		for range n {
			refs = append(refs, serverSmallValue.Remote(ctx, s))
		}
	}
	if _, err := ray.Get(ctx, refs...); err != nil {
		return 0, err
	}
	return len(refs), nil
}

// callBatchArg is callBatch with an argument: like Ray's
// small_value_batch_arg it puts one small value and passes its ref to
// every call, so each call resolves an argument.
func (c *client) callBatchArg(ctx context.Context, n int) (int, error) {
	arg, err := ray.Put(ctx, make([]byte, argBytes))
	if err != nil {
		return 0, err
	}
	refs := make([]ray.ObjectRef[[]byte], 0, n*len(c.servers))
	for _, s := range c.servers {
		for range n {
			refs = append(refs, serverSmallValueArg.RemoteArgs(ctx, s, arg))
		}
	}
	if _, err := ray.Get(ctx, refs...); err != nil {
		return 0, err
	}
	return len(refs), nil
}

// argBytes is the size of the argument of n_n_actor_calls_with_arg_async.
const argBytes = 16

// roundRobin is Ray's `work` task of n_n_actor_calls_async: n calls spread
// round-robin over servers, then a wait for all of them.
var roundRobin = ray.Func2(func(ctx context.Context, servers []ray.ActorHandle[server], n int) (int, error) {
	if len(servers) == 0 {
		return 0, fmt.Errorf("microbench: RoundRobin needs at least one server")
	}
	refs := make([]ray.ObjectRef[[]byte], n)
	for i := range refs {
		refs[i] = serverSmallValue.Remote(ctx, servers[i%len(servers)])
	}
	if _, err := ray.Get(ctx, refs...); err != nil {
		return 0, err
	}
	return n, nil
}, ray.RegisterName("microbench.RoundRobin"))

// refsObject is Ray's create_object_containing_ref: a task that puts n
// small values and returns their refs, so the caller gets a value holding
// n refs owned by a worker.
var refsObject = ray.Func1(func(ctx context.Context, n int) ([]ray.ObjectRef[int], error) {
	refs := make([]ray.ObjectRef[int], n)
	for i := range refs {
		r, err := ray.Put(ctx, 1)
		if err != nil {
			return nil, err
		}
		refs[i] = r
	}
	return refs, nil
}, ray.RegisterName("microbench.RefsObject"))
