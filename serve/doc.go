// Package serve is raygo Serve: Ray Serve for Go. It will hold
// deployments (Go types whose methods serve requests, with raygo actors as
// replicas, and "command" deployments that supervise any program listening
// on a port), the HTTP proxy that runs on every node and routes by route
// prefix, and the controller that keeps each deployment at its configured
// and autoscaled replica count. Those parts are coming; the replica router
// (internal/serve/router), the autoscaling policy (internal/serve/autoscale)
// and the declarative YAML config (serve/config) are being built beside
// this package.
//
// What is here today is request batching, Ray's @serve.batch. Many models
// (and many databases and remote APIs) do far more work per second on a
// batch of inputs than on one input at a time: a GPU evaluates 10 samples
// in about the time it takes to evaluate one. A [Batcher] lets many
// concurrent requests each make an ordinary one-input call while the code
// behind it sees whole batches:
//
//	embed, err := serve.NewBatcher(
//		func(ctx context.Context, texts []string) ([][]float32, error) {
//			return model.EmbedBatch(ctx, texts) // one output per input, in order
//		},
//		serve.BatchOptions{MaxBatchSize: 32, BatchWaitTimeout: 5 * time.Millisecond},
//	)
//	if err != nil { ... }
//	defer embed.Close()
//
//	// In each request handler, concurrently:
//	vec, err := embed.Call(ctx, text)
//
// Calls are gathered until the batch is full (MaxBatchSize) or the oldest
// call in it has waited BatchWaitTimeout, and then the function runs once
// for the whole batch; each caller gets the output at its own position.
// The zero BatchOptions gives Ray's defaults: batches of up to 10, a 10 ms
// wait and one batch running at a time.
//
// How the rest of Serve will use it: a deployment replica owns one Batcher
// per batched method, created when the replica starts and closed when it
// stops. The replica's MaxOngoingRequests (enforced by the router before a
// request reaches the replica) bounds how many calls can wait in a
// Batcher, so it should be at least MaxBatchSize (Ray warns when it is
// not) or batches can never fill. BatchOptions.OnBatch feeds the replica's
// batch-size and batch-duration histograms, and [Batcher.Stats] feeds its
// queue-length gauge.
package serve
