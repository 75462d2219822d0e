// Package raymcp is MCP for Go programs on a raygo cluster: host stdio MCP
// servers on the cluster's nodes, and open MCP client sessions with them,
// or with raygo's own MCP server, from a driver, a task or an actor.
//
// Hosting (Host, WaitReady, Servers, Get, Stop) goes through the head's
// API (/api/mcp/servers), as `raygo mcp host|list|stop` does. Sessions
// (Connect, ConnectCluster, Client) are the official MCP Go SDK's client
// over streamable HTTP to the head: /mcp/hosted/NAME, the gateway that
// passes each session's requests to one of the server's replicas, and
// /mcp, raygo's own server (cluster_status, list_jobs, job_logs, …).
// Every call sends this program's cluster token (ray.ClusterAPI): a
// driver's, or the one a worker's node daemon gave it, so the same code
// runs in main and inside an actor. Hosting a server, and using one
// hosted with the default access, need a write-scope token; the cluster
// token is one.
//
// The package needs ray.Init first. The ray package itself does not link
// the MCP SDK; only programs that import raymcp do.
//
// # Example
//
// Host the reference memory server with two replicas and call it from an
// actor:
//
//	type Notes struct{ mcp *raymcp.Client }
//
//	func NewNotes(ctx context.Context) (*Notes, error) {
//		return &Notes{mcp: raymcp.NewClient(nil)}, nil
//	}
//
//	func (n *Notes) Search(ctx context.Context, q string) (string, error) {
//		res, err := n.mcp.CallTool(ctx, "memory", "search_nodes", map[string]any{"query": q})
//		if err != nil {
//			return "", err
//		}
//		return res.Content[0].(*mcp.TextContent).Text, nil
//	}
//
//	var (
//		NotesActor = ray.Actor0(NewNotes)
//		Search     = ray.Method1(NotesActor, (*Notes).Search)
//	)
//
//	func main() {
//		ctx := context.Background()
//		if err := ray.Init(ctx); err != nil {
//			log.Fatal(err)
//		}
//		defer ray.Shutdown()
//		_, err := raymcp.Host(ctx, raymcp.HostOptions{Name: "memory", Replicas: 2,
//			Command: []string{"npx", "-y", "@modelcontextprotocol/server-memory"},
//			Env:     map[string]string{"MEMORY_FILE_PATH": "/shared/memory.jsonl"}})
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer raymcp.Stop(ctx, "memory")
//		if _, err := raymcp.WaitReady(ctx, "memory"); err != nil {
//			log.Fatal(err) // names each replica's state: a missing command, a crash at start, …
//		}
//		found, err := Search.Remote(ctx, NotesActor.Remote(ctx), "raygo").Get(ctx)
//		fmt.Println(found, err)
//	}
//
// # Failures
//
// A gateway session is bound to one replica. When that replica dies
// during a call, the call fails with the JSON-RPC error CodeReplicaGone
// (IsReplicaGone): the call may have run, so repeat it only if that is
// safe; the session itself stays usable and moves to another replica.
// With no replica ready, calls fail with CodeNoReplica (IsNoReplica) and
// did not run. A Client opens a new session when the gateway has
// forgotten its old one (30 minutes unused, a head restart) and repeats
// only calls that cannot have run.
package raymcp
