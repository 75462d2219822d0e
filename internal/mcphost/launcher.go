package mcphost

import "github.com/raygo/raygo/internal/replicaset"

// Replicas are started through internal/replicaset's launchers.
type (
	// Process is a started replica process (replicaset.Process).
	Process = replicaset.Process
	// Launcher starts replica processes on nodes (replicaset.Launcher).
	Launcher = replicaset.Launcher
	// NodeLauncher starts replicas through the node daemons' RunReplica
	// stream (replicaset.NodeLauncher).
	NodeLauncher = replicaset.NodeLauncher
)
