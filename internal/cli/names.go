package cli

import (
	"strings"

	"github.com/raygo/raygo/internal/pb"
)

// nodeStateName is a node state as `raygo status` prints it: ALIVE, DEAD.
func nodeStateName(s pb.NodeState) string {
	return strings.TrimPrefix(s.String(), "NODE_STATE_")
}

// objectStateName is an object's state in the store as `raygo memory`
// prints it: creating, in_memory, spilled, file; "" when unset.
func objectStateName(s pb.StoreObjectState) string {
	if s == pb.StoreObjectState_STORE_OBJECT_STATE_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "STORE_OBJECT_STATE_"))
}
