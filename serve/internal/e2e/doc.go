// Package e2e holds the end-to-end tests of Go deployments (package
// serve): a test binary that is both the driver and, re-executed by the
// node daemon, the workers whose actors are the replicas.
package e2e
