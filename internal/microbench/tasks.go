package microbench

import (
	"context"
	"fmt"

	"github.com/raygo/raygo/ray"
)

// batchSize is the number of calls in one async batch, as in ray_perf.py.
const batchSize = 1000

// submitAndGet submits n trivial tasks, then gets them all.
func submitAndGet(ctx context.Context, n int) error {
	refs := make([]ray.ObjectRef[[]byte], n)
	for i := range refs {
		refs[i] = smallValue.Remote(ctx)
	}
	_, err := ray.Get(ctx, refs...)
	return err
}

// tasksSync is single_client_tasks_sync: one task, then its Get.
func tasksSync(ctx context.Context, cfg Config) (float64, error) {
	return measure(ctx, cfg, 1, func(ctx context.Context) error {
		_, err := smallValue.Remote(ctx).Get(ctx)
		return err
	})
}

// tasksAsync is single_client_tasks_async: batches of 1000 tasks, each
// batch submitted and then got; tasks per second.
func tasksAsync(ctx context.Context, cfg Config) (float64, error) {
	return measure(ctx, cfg, batchSize, func(ctx context.Context) error { return submitAndGet(ctx, batchSize) })
}

// tasksAndGetBatch is single_client_tasks_and_get_batch: the same batches
// as tasksAsync, counted as batches per second.
func tasksAndGetBatch(ctx context.Context, cfg Config) (float64, error) {
	return measure(ctx, cfg, 1, func(ctx context.Context) error { return submitAndGet(ctx, batchSize) })
}

// clientTaskBatch is how many tasks each client actor of
// multi_client_tasks_async submits per round, as in ray_perf.py.
const clientTaskBatch = 10000

// multiClientTasksAsync is multi_client_tasks_async: cfg.Clients actors
// each submit a batch of trivial tasks from inside the actor and get them;
// tasks per second over all clients.
func multiClientTasksAsync(ctx context.Context, cfg Config) (float64, error) {
	servers, err := newServers(ctx, cfg.Clients, serverActor)
	if err != nil {
		return 0, err
	}
	defer killAll(servers)
	return measure(ctx, cfg, float64(cfg.Clients*clientTaskBatch), func(ctx context.Context) error {
		refs := make([]ray.ObjectRef[int], len(servers))
		for i, s := range servers {
			refs[i] = serverTaskBatch.Remote(ctx, s, clientTaskBatch)
		}
		return checkCounts(ctx, refs, clientTaskBatch)
	})
}

// checkCounts gets refs to batch results and checks each reports want
// units done, so a batch that silently did less cannot inflate a figure.
func checkCounts(ctx context.Context, refs []ray.ObjectRef[int], want int) error {
	got, err := ray.Get(ctx, refs...)
	if err != nil {
		return err
	}
	for _, n := range got {
		if n != want {
			return fmt.Errorf("microbench: a batch did %d units, want %d", n, want)
		}
	}
	return nil
}
