package raymcp

import (
	"errors"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// ErrNotFound is returned (wrapped) when the cluster hosts no MCP server
// of the name given.
var ErrNotFound = errors.New("raymcp: no such hosted MCP server")

// ErrClientClosed is returned by a Client's methods after Close.
var ErrClientClosed = errors.New("raymcp: client closed")

// JSON-RPC error codes a hosted server's gateway answers with itself (the
// same as internal/mcphost's).
const (
	// CodeReplicaGone: the replica serving the call went away during it.
	// The call may or may not have run; the session stays usable and its
	// next call goes to another ready replica.
	CodeReplicaGone = -32010
	// CodeNoReplica: no replica of the server is ready now; the call did
	// not run.
	CodeNoReplica = -32011
)

// IsReplicaGone reports whether err is the gateway's CodeReplicaGone: the
// replica died during the call. Repeat the call on the same session only
// if running it twice is safe (a read, or an idempotent write).
func IsReplicaGone(err error) bool { return hasCode(err, CodeReplicaGone) }

// IsNoReplica reports whether err is the gateway's CodeNoReplica: no
// replica was ready, so the call did not run and may be repeated later.
func IsNoReplica(err error) bool { return hasCode(err, CodeNoReplica) }

func hasCode(err error, code int64) bool {
	var e *jsonrpc.Error
	return errors.As(err, &e) && e.Code == code
}
