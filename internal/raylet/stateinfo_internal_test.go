package raylet

import (
	"testing"

	"github.com/raygo/raygo/internal/pb"
)

func TestObjectState(t *testing.T) {
	for _, tc := range []struct {
		s         pb.StoreObjectState
		secondary bool
		want      string
	}{
		{pb.StoreObjectState_STORE_OBJECT_STATE_IN_MEMORY, false, ObjectInMemory},
		{pb.StoreObjectState_STORE_OBJECT_STATE_IN_MEMORY, true, ObjectSecondary},
		{pb.StoreObjectState_STORE_OBJECT_STATE_SPILLED, false, ObjectSpilled},
		{pb.StoreObjectState_STORE_OBJECT_STATE_FILE, false, ObjectSpilled},
		{pb.StoreObjectState_STORE_OBJECT_STATE_CREATING, false, ObjectCreating},
	} {
		if got := objectState(tc.s, tc.secondary); got != tc.want {
			t.Errorf("objectState(%v, %v) = %s, want %s", tc.s, tc.secondary, got, tc.want)
		}
	}
}

func TestWorkerState(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    *worker
		want string
	}{
		{"not registered", &worker{}, WorkerStarting},
		{"idle", &worker{addr: "a"}, WorkerIdle},
		{"leased", &worker{addr: "a", lease: &lease{}}, WorkerLeased},
		{"dedicated actor", &worker{addr: "a", lease: &lease{actor: true}}, WorkerActor},
		{"shared actors", &worker{addr: "a", hosted: 2}, WorkerActor},
	} {
		if got := workerStateLocked(tc.w); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
