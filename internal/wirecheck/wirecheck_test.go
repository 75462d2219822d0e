package wirecheck

import (
	"errors"
	"math"
	"runtime/metrics"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

func newID() []byte { return ids.New().Bytes() }

func spec() *pb.TaskSpec {
	return &pb.TaskSpec{TaskId: newID(), Function: "f", NumReturns: 1,
		Args: []*pb.Arg{{Kind: &pb.Arg_Value{Value: &pb.Value{Data: []byte{1}}}}}}
}

func TestTaskBatch(t *testing.T) {
	ok := &pb.TaskBatch{Tasks: []*pb.TaskSpec{spec(), spec()}, Common: &pb.TaskSpec{JobId: newID(), OwnerId: newID(), OwnerAddress: "127.0.0.1:1"}}
	if err := TaskBatch(ok); err != nil {
		t.Fatalf("a valid batch: %v", err)
	}
	manyReturns := func(n int32) *pb.TaskBatch {
		s := spec()
		s.NumReturns = n
		return &pb.TaskBatch{Tasks: []*pb.TaskSpec{s}}
	}
	tooMany := &pb.TaskBatch{}
	for range MaxBatchReturns/MaxReturns + 1 {
		s := spec()
		s.NumReturns = MaxReturns
		tooMany.Tasks = append(tooMany.Tasks, s)
	}
	cases := map[string]*pb.TaskBatch{
		"num_returns 2^31-1":           manyReturns(math.MaxInt32),
		"num_returns 65536":            manyReturns(MaxReturns + 1),
		"negative num_returns":         manyReturns(-1),
		"returns over the batch limit": tooMany,
		"short task id":                {Tasks: []*pb.TaskSpec{{TaskId: []byte{1}}}},
		"bad common owner":             {Tasks: []*pb.TaskSpec{spec()}, Common: &pb.TaskSpec{OwnerId: []byte{1, 2}}},
		"return ids mismatch":          {Tasks: []*pb.TaskSpec{{TaskId: newID(), NumReturns: 2, ReturnIds: [][]byte{newID()}}}},
		"NaN resources":                {Tasks: []*pb.TaskSpec{{TaskId: newID(), Resources: &pb.Resources{Amounts: map[string]float64{"CPU": math.NaN()}}}}},
		"ref argument with a short id": {Tasks: []*pb.TaskSpec{{TaskId: newID(), Args: []*pb.Arg{{Kind: &pb.Arg_Ref{Ref: &pb.ObjectRef{Id: []byte{1}}}}}}}},
	}
	for name, b := range cases {
		err := TaskBatch(b)
		if !errors.Is(err, errs.ErrInvalidRequest) {
			t.Errorf("%s: %v, want an invalid-request error", name, err)
		}
		var st *errs.Status
		if !errors.As(err, &st) || st.Kind != errs.KindInvalid {
			t.Errorf("%s: %T is not a typed invalid request", name, err)
		}
	}
}

func TestNodeResourcesFromTheWire(t *testing.T) {
	node := func(total, avail map[string]float64) *pb.RegisterNodeRequest {
		return &pb.RegisterNodeRequest{Node: &pb.NodeInfo{NodeId: newID(), Address: "127.0.0.1:1",
			Total: &pb.Resources{Amounts: total}, Available: &pb.Resources{Amounts: avail}}}
	}
	if err := Message(node(map[string]float64{"CPU": 4, "GPU": 2, "memory": 1 << 34}, map[string]float64{"CPU": -0.5, "GPU": 1.5})); err != nil {
		t.Fatalf("a valid node (oversubscribed CPU, half a GPU taken): %v", err)
	}
	for name, m := range map[string]proto.Message{
		"NaN total":          node(map[string]float64{"CPU": math.NaN()}, nil),
		"infinite total":     node(map[string]float64{"CPU": math.Inf(1)}, nil),
		"negative total":     node(map[string]float64{"CPU": -1}, nil),
		"NaN available":      node(map[string]float64{"CPU": 1}, map[string]float64{"CPU": math.NaN()}),
		"bad resource name":  node(map[string]float64{"CPU 1": 1}, nil),
		"NaN heartbeat":      &pb.NodeHeartbeatRequest{NodeId: newID(), Available: &pb.Resources{Amounts: map[string]float64{"CPU": math.NaN()}}},
		"-Inf heartbeat":     &pb.NodeHeartbeatRequest{NodeId: newID(), Available: &pb.Resources{Amounts: map[string]float64{"GPU": math.Inf(-1)}}},
		"NaN pending demand": &pb.NodeHeartbeatRequest{NodeId: newID(), PendingDemands: []*pb.Resources{{Amounts: map[string]float64{"CPU": math.NaN()}}}},
		"NaN lease":          &pb.LeaseRequest{Resources: &pb.Resources{Amounts: map[string]float64{"CPU": math.NaN()}}},
	} {
		if err := Message(m); !errors.Is(err, errs.ErrInvalidRequest) {
			t.Errorf("%s: %v, want an invalid-request error", name, err)
		}
	}
}

// deepError encodes an ErrorInfo whose causes nest n deep.
func deepError(n int) []byte {
	var b []byte
	for range n - 1 {
		b = protowire.AppendBytes(protowire.AppendTag(nil, 11, protowire.BytesType), b)
	}
	return b
}

func TestDepth(t *testing.T) {
	md := (&pb.ErrorInfo{}).ProtoReflect().Descriptor()
	if err := Depth(deepError(MaxProtoDepth-1), md); err != nil {
		t.Fatalf("%d levels: %v", MaxProtoDepth-1, err)
	}
	if err := Depth(deepError(MaxProtoDepth+1), md); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("%d levels: %v, want refused", MaxProtoDepth+1, err)
	}
	// A reply batch reaches ErrorInfo; a store request does not and is not walked.
	if !recursive((&pb.ReplyBatch{}).ProtoReflect().Descriptor()) || recursive((&pb.StoreRequest{}).ProtoReflect().Descriptor()) {
		t.Fatal("recursive() is wrong")
	}
}

func allocated(f func()) uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	f()
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

// allMessages lists every message type of the wire schema, sorted by name.
func allMessages() []protoreflect.MessageType {
	var out []protoreflect.MessageType
	fd, err := protoregistry.GlobalFiles.FindFileByPath("raygo.proto")
	if err != nil {
		panic(err)
	}
	msgs := fd.Messages()
	for i := 0; i < msgs.Len(); i++ {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(msgs.Get(i).FullName())
		if err != nil {
			panic(err)
		}
		out = append(out, mt)
	}
	return out
}

type vtUnmarshaler interface{ UnmarshalVT([]byte) error }

// Decoding allocates at most allocFactor times its input plus allocSlack.
const (
	allocFactor = 512
	allocSlack  = 256 << 10
)

// FuzzMessages decodes the input as every message type of the schema
// (its first byte picks the type), with package proto and with the
// vtprotobuf decoder the framed sockets use (after Depth, as framed
// does), then checks it with Message. Nothing may panic, and decoding may
// allocate at most allocFactor times the input.
func FuzzMessages(f *testing.F) {
	types := allMessages()
	seeds := []proto.Message{
		&pb.TaskBatch{Tasks: []*pb.TaskSpec{spec()}, Common: &pb.TaskSpec{JobId: newID()}},
		&pb.RegisterNodeRequest{Node: &pb.NodeInfo{NodeId: newID(), Total: &pb.Resources{Amounts: map[string]float64{"CPU": 2}}}},
		&pb.StoreRequest{Seq: 1, Op: &pb.StoreRequest_Create{Create: &pb.StoreCreate{ObjectId: newID(), Size: 10}}},
		&pb.ReplyBatch{Replies: []*pb.TaskReply{{TaskId: newID(), Error: &pb.ErrorInfo{Cause: &pb.ErrorInfo{}}}}},
	}
	for _, m := range seeds {
		b, _ := proto.Marshal(m)
		for i, mt := range types {
			if mt.Descriptor().FullName() == m.ProtoReflect().Descriptor().FullName() {
				f.Add(append([]byte{byte(i)}, b...))
			}
		}
	}
	f.Add(append([]byte{0}, deepError(1000)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mt := types[int(data[0])%len(types)]
		in := data[1:]
		decode := func() {
			m := mt.New().Interface()
			if proto.Unmarshal(in, m) == nil {
				_ = Message(m)
			}
			m = mt.New().Interface()
			if vt, ok := m.(vtUnmarshaler); ok && Depth(in, mt.Descriptor()) == nil {
				if vt.UnmarshalVT(in) == nil {
					_ = Message(m)
				}
			}
		}
		// The counter is the process's: measure again when over, and keep
		// the least (another goroutine may have allocated meanwhile).
		limit := uint64(2*allocFactor*len(in) + allocSlack)
		n := allocated(decode)
		for i := 0; i < 2 && n > limit; i++ {
			n = min(n, allocated(decode))
		}
		if n > limit {
			t.Fatalf("%s: decoding %d bytes twice allocated %d bytes, over %d", mt.Descriptor().Name(), len(in), n, limit)
		}
	})
}
