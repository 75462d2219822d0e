// Package jobs is the head's job manager and Ray's job REST API
// (docs/jobs.md).
//
// A submission (POST /api/jobs/) names an entrypoint, a shell command,
// usually a program that calls ray.Init, and the resources it holds
// while it runs, in a runtime environment (internal/runtimeenv) whose
// working dir was uploaded first (PUT /api/packages/sha256:…). The
// Manager keeps submissions in the control store's KV (Namespace), so a
// head restarted with --storage still knows them, and moves each through
// PENDING → RUNNING → SUCCEEDED, FAILED or STOPPED:
//
//   - pending, it is placed (the scheduler's Default policy) on an alive
//     node whose available resources hold the entrypoint's, which runs it
//     (NodeDaemon.StartEntrypoint); while none has them free it stays
//     pending, its message saying so, and is tried again every
//     DefaultRetryPeriod; when no node's total ever could, it FAILS;
//   - running, it ends when its node reports the shell's exit
//     (ControlStore.EntrypointExited → Manager.EntrypointExited), or when
//     its node dies (FAILED);
//   - Stop sends SIGTERM to the entrypoint's process group, SIGKILL after
//     the node's grace; the driver's exit ends its job in the control
//     store, which stops the job's workers and non-detached actors.
//
// The deciding parts (placement, exits, pruning) are pure functions in
// decide.go. Register adds the REST routes to the head's HTTP server; every
// submit, stop, delete and upload is audit-logged with the caller's token
// name.
//
//	c, _ := apiclient.New("http://127.0.0.1:8265", token)
//	id, _ := c.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: "./train", EntrypointNumCPUs: 1})
//	_ = c.TailJobLogs(ctx, id, os.Stdout)
//
// Limits: DefaultMaxTerminal ended submissions are kept (the oldest go
// first), MaxActive pending or running at once, entrypoints of
// MaxEntrypointBytes, MaxMetadata metadata entries of MaxMetadataBytes,
// logs answered whole up to MaxLogBytes (their tail beyond), packages of
// runtimeenv.DefaultMaxPackageBytes.
package jobs
