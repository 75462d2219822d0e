// Package replicaset supervises replica slots: the replicas of one
// hosted MCP server (internal/mcphost) or of one Serve command
// deployment (docs/serve.md), each a process started on a cluster node
// through a Launcher (the node daemons' RunReplica stream: the stream is
// the replica's life).
//
// A Set is a resizable list of Slots. Each slot, on its own goroutine
// owned by the set:
//
//   - places its replica (decide.go: on alive nodes with the resources
//     free, fewest replicas of the set first, then most free CPUs); a
//     slot marks its node before the next slot decides, so replicas
//     started together spread;
//   - starts it (Launcher.Start) and waits for its Probe's Ready, within
//     StartTimeout;
//   - announces it (OnReady, Slot.Current) and checks it (Conn.Check)
//     every HealthPeriod;
//   - replaces it when it dies, its Conn is lost, or a check fails: at
//     once the first time, then after BaseBackoff doubling up to
//     MaxBackoff while it keeps failing (reset after StableAfter ready),
//     announcing its end (OnGone) first;
//   - on Drain (or Resize down), starts nothing more, withdraws its
//     replica (OnGone) and stops it.
//
// States are PENDING, STARTING, READY, BACKOFF and DRAINING.
//
// The probe decides what "ready" means. mcphost's initializes an MCP
// client session over the replica's stdio and pings it; its Conn carries
// the session, which the gateway gets from OnReady. HTTPProbe, for
// Serve's command replicas, GETs a health path (or opens a TCP
// connection) on the replica's host:port, which a Serve controller reads
// from Slot.Status().HostPort in OnReady to add the replica to its
// routing table, and removes in OnGone:
//
//	set, err := replicaset.New(replicaset.Config{
//		Name: "api", Kind: replicaset.KindServe,
//		Start:    &pb.ReplicaStart{Argv: argv, PortEnv: "PORT", StopGraceMs: 20000},
//		Launcher: replicaset.NodeLauncher{GCS: g, Pool: pool},
//		Probe:    replicaset.HTTPProbe{Path: "/healthz"},
//		OnReady:  func(s *replicaset.Slot, _ replicaset.Conn) { routes.Add(s.Index(), s.Status().HostPort) },
//		OnGone:   func(s *replicaset.Slot) { routes.Remove(s.Index()) },
//	}, 2)
//	...
//	err = set.Resize(ctx, 4) // the autoscaler's decision
//	...
//	set.Close()
package replicaset
