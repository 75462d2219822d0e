// Package mcphost runs MCP servers hosted on the cluster: any stdio MCP
// server (an npm package through npx, a Python or Go program) run as N
// supervised replicas on the cluster's nodes, reached through one
// streamable-HTTP gateway endpoint per server on the head,
// /mcp/hosted/NAME, behind the API's tokens.
//
//   - Manager (manager.go) keeps the hosted servers' specs in the control
//     store's KV and runs each one: its replica slots and its gateway.
//   - The replica slots are internal/replicaset's: a slot places its
//     replica on a node (spread, resources), starts it through the node
//     daemon's RunReplica stream (the stream is the replica's life and
//     carries its stdio), and replaces it when it dies or fails its
//     health check, with backoff when it keeps failing. Its probe
//     (replica.go) initializes it with the SDK's client and pings it
//     every HealthPeriod; decide.go picks a session's replica.
//   - The gateway (gateway.go) is the SDK's server and streamable-HTTP
//     handler, with a middleware that passes each session's requests to
//     the replica it is bound to.
//   - http.go registers the REST API (/api/mcp/servers) and the gateway.
//
// docs/mcp-hosting.md is the user's guide.
package mcphost
