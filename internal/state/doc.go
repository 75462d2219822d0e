// Package state serves the state API on the head's HTTP server: what the
// cluster's nodes, jobs, actors, tasks, objects, workers and placement
// groups are doing, in the shapes of Ray's state API
// (python/ray/util/state). docs/state.md has every kind, field and limit.
//
//	GET /api/v0/{nodes,jobs,actors,tasks,objects,workers,placement_groups}?filter=state=ALIVE&limit=100&detail=true
//	GET /api/v0/{kind}/{id}                      one row, every field; id may be abbreviated
//	GET /api/v0/{tasks,actors,objects}/summarize  Ray's summaries
//	GET /api/v0/cluster_status                    what `raygo status` shows (cluster.go)
//	POST /api/v0/actors/{id}/kill                 kill an actor (write scope; audit-logged)
//
// Register is the head's feature (internal/node/api.go). Rows come from
// the control store in the head's process (nodes, jobs, actors, placement
// groups, and tasks from its task-event store) and from every alive node
// daemon over gRPC (workers, objects: NodeDaemon.ListWorkers and
// ListObjects, asked at once, each within Config.NodeTimeout; a node that
// does not answer is named in partial_failure_warning, not an error).
//
// The deciding code is pure and table-tested: ParseQuery and ParseFilter
// read a request; each kind's rows are described by a table of columns
// (rows.go, tasks.go) that filters compile against (unknown keys and
// values of the wrong type are a 400 naming what is valid), that project
// rows with or without detail, and that encode them with append functions
// instead of reflection (encode.go), so that 100,000 task rows stream out
// in a fraction of a second.
package state
