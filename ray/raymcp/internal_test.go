package raymcp

import (
	"fmt"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/raygo/raygo/internal/mcphost"
)

func TestGatewayCodes(t *testing.T) {
	if CodeReplicaGone != mcphost.CodeReplicaGone || CodeNoReplica != mcphost.CodeNoReplica {
		t.Fatalf("codes differ from mcphost's: %d/%d vs %d/%d", CodeReplicaGone, CodeNoReplica, mcphost.CodeReplicaGone, mcphost.CodeNoReplica)
	}
	gone := fmt.Errorf("calling %q: %w", "tools/call", &jsonrpc.Error{Code: CodeReplicaGone, Message: "replica gone"})
	none := &jsonrpc.Error{Code: CodeNoReplica}
	for _, tc := range []struct {
		err        error
		gone, none bool
	}{
		{gone, true, false},
		{none, false, true},
		{&jsonrpc.Error{Code: jsonrpc.CodeInternalError}, false, false},
		{fmt.Errorf("plain"), false, false},
		{nil, false, false},
	} {
		if IsReplicaGone(tc.err) != tc.gone || IsNoReplica(tc.err) != tc.none {
			t.Errorf("%v: IsReplicaGone %t IsNoReplica %t, want %t %t", tc.err, IsReplicaGone(tc.err), IsNoReplica(tc.err), tc.gone, tc.none)
		}
	}
}

func TestAllReadyAndDescribe(t *testing.T) {
	ready := ReplicaState{State: StateReady}
	for _, tc := range []struct {
		name  string
		s     Server
		ready bool
		desc  string
	}{
		{"all ready", Server{Replicas: 2, Ready: 2, ReplicaStates: []ReplicaState{ready, {Index: 1, State: StateReady}}}, true,
			"2 of 2 replicas ready: replica 0 READY; replica 1 READY"},
		{"one in backoff", Server{Replicas: 2, Ready: 1, ReplicaStates: []ReplicaState{ready, {Index: 1, State: StateBackoff, Message: "exit status 1"}}}, false,
			"1 of 2 replicas ready: replica 0 READY; replica 1 BACKOFF (exit status 1)"},
		{"count says ready, state does not", Server{Replicas: 1, Ready: 1, ReplicaStates: []ReplicaState{{State: StateStarting}}}, false,
			"1 of 1 replicas ready: replica 0 STARTING"},
		{"no states yet", Server{Replicas: 1}, false, "0 of 1 replicas ready: "},
	} {
		if got := allReady(tc.s); got != tc.ready {
			t.Errorf("%s: allReady %t", tc.name, got)
		}
		if got := describe(tc.s); got != tc.desc {
			t.Errorf("%s: describe %q, want %q", tc.name, got, tc.desc)
		}
	}
}
