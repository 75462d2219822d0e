// Package serve is raygo Serve: Ray Serve for Go. It puts Go code
// online on a raygo cluster as deployments whose replicas are actors of
// the program's own binary, behind the HTTP proxy every node runs
// (`raygo start --serve-port`, or ray.ServePort for an embedded
// cluster), routed by route prefix, scaled on load, updated without
// dropping requests; and deployments call each other through typed
// handles, without an HTTP hop. Programs in any language are served as
// command deployments (docs/serve.md); this package is the Go side.
//
// # Deployments
//
// A deployment is a type whose values serve requests; register it at
// package initialization, like a ray.Actor0 class:
//
//	type Model struct{ ... }
//
//	var ModelDeployment = serve.NewDeployment("Model", newModel,
//		serve.NumReplicas(2), serve.NumGPUs(1), serve.MaxOngoingRequests(32))
//
//	var Predict = serve.NewMethod1(ModelDeployment, "Predict",
//		func(m *Model, ctx context.Context, in Input) (Output, error) { ... })
//
// When *T is an http.Handler, each replica serves it: the proxy sends it
// the requests under the application's route prefix (with the full path,
// and X-Forwarded-Prefix). A value may also implement Reconfigurable
// (user_config, applied at start and again in place when only it
// changes), HealthChecker (checked every health_check_period_s),
// Shutdowner (called after a replica's requests drained) and
// GRPCService (its gRPC services, reached through the nodes' gRPC
// proxies by the "application" metadata).
//
// An Application groups an ingress deployment and those it calls;
// Run deploys it from a program connected to a cluster (ray.Init), as
// Ray's serve.run, and it keeps running after the program exits:
//
//	app := serve.NewApplication("shop", API, ModelDeployment)
//	err := serve.Run(ctx, app)         // registers the code, deploys, waits for RUNNING
//	st, _ := serve.GetStatus(ctx, "shop")  // st.URLs: where the proxies serve it
//
// A config file (`raygo serve deploy app.yaml`) then manages it like
// any application: import_path names the registered application, and
// the file's deployment options override the code's.
//
// # Handles
//
// GetHandle returns a typed Handle to a deployment; Method0/Method1's
// Call sends a call to one of its ready replicas (power of two choices
// on the calls in flight, max_ongoing_requests per replica, a queue
// beyond) and returns a ray.ObjectRef, which can be passed on to another
// call with CallArg: composition without a trip through the caller.
//
// # Batching
//
// A Batcher is Ray's @serve.batch. Many models
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
// A deployment's value owns one Batcher per batched method, made in its
// constructor and closed in its Shutdown. The deployment's
// MaxOngoingRequests bounds how many calls can wait in a Batcher, so it
// should be at least MaxBatchSize (Ray warns when it is not) or batches
// can never fill. BatchOptions.OnBatch can feed batch-size histograms,
// and [Batcher.Stats] a queue-length gauge. examples/serve is a whole
// application: an HTTP ingress calling a batching model through a
// handle.
package serve
