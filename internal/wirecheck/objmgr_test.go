package wirecheck

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/pb"
)

func TestObjectManagerMessages(t *testing.T) {
	many := make([]string, MaxPullLocations+1)
	for i := range many {
		many[i] = "10.0.0.1:7000"
	}
	cases := []struct {
		name string
		msg  proto.Message
		ok   bool
	}{
		{"pull", &pb.PullObjectRequest{ObjectId: newID(), Size: 10, OwnerId: newID(), OwnerAddress: "a:1", Locations: []string{"b:1"}}, true},
		{"pull without an id", &pb.PullObjectRequest{Size: 10}, false},
		{"pull of negative size", &pb.PullObjectRequest{ObjectId: newID(), Size: -1}, false},
		{"pull with a short owner id", &pb.PullObjectRequest{ObjectId: newID(), OwnerId: []byte{1}}, false},
		{"pull with too many locations", &pb.PullObjectRequest{ObjectId: newID(), Locations: many}, false},
		{"pull with a long location", &pb.PullObjectRequest{ObjectId: newID(), Locations: []string{strings.Repeat("x", MaxAddressBytes+1)}}, false},
		{"locations", &pb.ObjectLocationsRequest{ObjectIds: [][]byte{newID()}}, true},
		{"locations with a bad id", &pb.ObjectLocationsRequest{ObjectIds: [][]byte{{1, 2}}}, false},
		{"update", &pb.UpdateObjectLocationRequest{ObjectId: newID(), Node: "b:1"}, true},
		{"update without an id", &pb.UpdateObjectLocationRequest{Node: "b:1"}, false},
	}
	for _, c := range cases {
		if err := Message(c.msg); (err == nil) != c.ok {
			t.Errorf("%s: Message = %v, want ok %v", c.name, err, c.ok)
		}
	}
}
