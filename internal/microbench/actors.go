package microbench

import (
	"context"
	"time"

	"github.com/raygo/raygo/ray"
)

// killTimeout bounds the teardown of one benchmark's actors.
const killTimeout = 10 * time.Second

// newServers creates n server actors of class and waits until each
// answers a call, so actor start-up stays out of the measurement.
func newServers(ctx context.Context, n int, class *ray.ActorClass0[server]) ([]ray.ActorHandle[server], error) {
	hs := make([]ray.ActorHandle[server], 0, n)
	for range n {
		h := class.Remote(ctx)
		if err := h.Err(); err != nil {
			killAll(hs)
			return nil, err
		}
		hs = append(hs, h)
	}
	refs := make([]ray.ObjectRef[[]byte], n)
	for i, h := range hs {
		refs[i] = serverSmallValue.Remote(ctx, h)
	}
	if _, err := ray.Get(ctx, refs...); err != nil {
		killAll(hs)
		return nil, err
	}
	return hs, nil
}

// newClients creates one client actor per element of servers, each
// calling the servers in that element, and waits until each answers.
func newClients(ctx context.Context, servers [][]ray.ActorHandle[server]) ([]ray.ActorHandle[client], error) {
	hs := make([]ray.ActorHandle[client], 0, len(servers))
	for _, ss := range servers {
		h := clientActor.Remote(ctx, ss)
		if err := h.Err(); err != nil {
			killAll(hs)
			return nil, err
		}
		hs = append(hs, h)
	}
	refs := make([]ray.ObjectRef[int], len(hs))
	for i, h := range hs {
		refs[i] = clientPing.Remote(ctx, h)
	}
	if _, err := ray.Get(ctx, refs...); err != nil {
		killAll(hs)
		return nil, err
	}
	return hs, nil
}

// killAll kills actors at the end of a benchmark, so that one benchmark's
// actors do not take CPU from the next. Errors are ignored: the job's end
// kills whatever is left.
func killAll[T any](hs []ray.ActorHandle[T]) {
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	for _, h := range hs {
		_ = ray.Kill(ctx, h)
	}
}

// callBatch makes n calls of a trivial method to a, then gets them all.
func callBatch(ctx context.Context, a ray.ActorHandle[server], n int) error {
	refs := make([]ray.ObjectRef[[]byte], n)
	for i := range refs {
		refs[i] = serverSmallValue.Remote(ctx, a)
	}
	_, err := ray.Get(ctx, refs...)
	return err
}

// actorCallsSync is 1_1_actor_calls_sync: one call, then its Get.
func actorCallsSync(ctx context.Context, cfg Config) (float64, error) {
	s, err := newServers(ctx, 1, serverActor)
	if err != nil {
		return 0, err
	}
	defer killAll(s)
	return measure(ctx, cfg, 1, func(ctx context.Context) error {
		_, err := serverSmallValue.Remote(ctx, s[0]).Get(ctx)
		return err
	})
}

// actorCallsAsync is 1_1_actor_calls_async: batches of 1000 calls to one
// actor, each batch submitted and then got; calls per second.
func actorCallsAsync(ctx context.Context, cfg Config) (float64, error) {
	s, err := newServers(ctx, 1, serverActor)
	if err != nil {
		return 0, err
	}
	defer killAll(s)
	return measure(ctx, cfg, batchSize, func(ctx context.Context) error { return callBatch(ctx, s[0], batchSize) })
}

// concurrentCalls is the MaxConcurrency of 1_1_actor_calls_concurrent's
// actor, as in ray_perf.py.
const concurrentCalls = 16

// actorCallsConcurrent is 1_1_actor_calls_concurrent: actorCallsAsync
// against an actor that runs 16 calls at once.
func actorCallsConcurrent(ctx context.Context, cfg Config) (float64, error) {
	s, err := newServers(ctx, 1, serverActor.Options(ray.MaxConcurrency(concurrentCalls)))
	if err != nil {
		return 0, err
	}
	defer killAll(s)
	return measure(ctx, cfg, batchSize, func(ctx context.Context) error { return callBatch(ctx, s[0], batchSize) })
}

// callsPerServer is how many calls per server one round of
// 1_n_actor_calls_async and n_n_actor_calls_async makes, as in
// ray_perf.py.
const callsPerServer = 5000

// oneToNActorCallsAsync is 1_n_actor_calls_async: one client actor calls
// cfg.Clients server actors asynchronously (5000 calls to each per round,
// then a Get of all); calls per second.
func oneToNActorCallsAsync(ctx context.Context, cfg Config) (float64, error) {
	servers, err := newServers(ctx, cfg.Clients, serverActor)
	if err != nil {
		return 0, err
	}
	defer killAll(servers)
	c, err := newClients(ctx, [][]ray.ActorHandle[server]{servers})
	if err != nil {
		return 0, err
	}
	defer killAll(c)
	want := callsPerServer * len(servers)
	return measure(ctx, cfg, float64(want), func(ctx context.Context) error {
		return checkCounts(ctx, []ray.ObjectRef[int]{clientCallBatch.Remote(ctx, c[0], callsPerServer)}, want)
	})
}

// nToNActorCallsAsync is n_n_actor_calls_async: cfg.Clients tasks each
// make 5000 calls spread round-robin over cfg.Clients server actors, then
// get them; calls per second over all tasks. (Ray runs 4 such tasks over
// half the machine's CPUs in actors.)
func nToNActorCallsAsync(ctx context.Context, cfg Config) (float64, error) {
	servers, err := newServers(ctx, cfg.Clients, serverActor)
	if err != nil {
		return 0, err
	}
	defer killAll(servers)
	return measure(ctx, cfg, float64(cfg.Clients*callsPerServer), func(ctx context.Context) error {
		refs := make([]ray.ObjectRef[int], cfg.Clients)
		for i := range refs {
			refs[i] = roundRobin.Remote(ctx, servers, callsPerServer)
		}
		return checkCounts(ctx, refs, callsPerServer)
	})
}

// nToNActorCallsWithArgAsync is n_n_actor_calls_with_arg_async:
// cfg.Clients client actors, each with a server actor of its own, make
// 1000 calls per round that each take a small argument; as in Ray, the
// argument is one Put object whose ref every call passes. Calls per
// second over all clients.
func nToNActorCallsWithArgAsync(ctx context.Context, cfg Config) (float64, error) {
	servers, err := newServers(ctx, cfg.Clients, serverActor)
	if err != nil {
		return 0, err
	}
	defer killAll(servers)
	groups := make([][]ray.ActorHandle[server], len(servers))
	for i, s := range servers {
		groups[i] = []ray.ActorHandle[server]{s}
	}
	clients, err := newClients(ctx, groups)
	if err != nil {
		return 0, err
	}
	defer killAll(clients)
	return measure(ctx, cfg, float64(len(clients)*batchSize), func(ctx context.Context) error {
		refs := make([]ray.ObjectRef[int], len(clients))
		for i, c := range clients {
			refs[i] = clientCallBatchArg.Remote(ctx, c, batchSize)
		}
		return checkCounts(ctx, refs, batchSize)
	})
}
