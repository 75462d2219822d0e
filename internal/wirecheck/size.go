package wirecheck

import (
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/raygo/raygo/internal/pb"
)

// Size limits per message type: what a receiver reads at most for one
// message of that type before it refuses it. Each is what the type needs
// with room to spare; the transport's own limit (rpc.MaxMessageBytes,
// framed.MaxFrame: 512 MiB) is the largest of them.
const (
	// BigMessageBytes: a task batch (up to 1,024 tasks with arguments of
	// up to the inline threshold each), an object put through a node
	// daemon by a process without a local store.
	BigMessageBytes = 512 << 20
	// KVMessageBytes: a KV entry (the control store keeps values of up to
	// 64 MiB).
	KVMessageBytes = 80 << 20
	// SpecMessageBytes: an actor's creation (one task spec with its
	// inline arguments).
	SpecMessageBytes = 128 << 20
	// ListMessageBytes: lists of object ids (frees, borrows, store
	// requests), batches of placement-group ops: 64 MiB is over three
	// million ids.
	ListMessageBytes = 64 << 20
	// NodeMessageBytes: a node's registration or heartbeat, with its
	// pending demands.
	NodeMessageBytes = 16 << 20
	// BinaryChunkBytes: one piece of an uploaded job binary (1 MiB of
	// data, uploaders send).
	BinaryChunkBytes = 4 << 20
	// SmallMessageBytes: everything else (ids, names, flags).
	SmallMessageBytes = 1 << 20
	// HelloBytes: a framed socket's hello, the only message read from a
	// peer before it is known.
	HelloBytes = 4 << 10
)

// MaxBytes is the most bytes a receiver accepts for one message of m's
// type (see the limits above).
func MaxBytes(m proto.Message) int {
	switch m.(type) {
	case *pb.TaskBatch, *pb.ReplyBatch, *pb.PutObjectRequest, *pb.WatchObjectsReply:
		return BigMessageBytes
	case *pb.KVPutRequest:
		return KVMessageBytes
	case *pb.CreateActorRequest, *pb.CreateActorTaskRequest:
		return SpecMessageBytes
	case *pb.FreeObjectsRequest, *pb.BorrowRequest, *pb.StoreRequest, *pb.FreeOwnedRequest, *pb.WatchObjectsRequest, *pb.GroupOpsRequest:
		return ListMessageBytes
	case *pb.RegisterNodeRequest, *pb.NodeHeartbeatRequest:
		return NodeMessageBytes
	case *pb.BinaryChunk:
		return BinaryChunkBytes
	case *pb.FramedHello:
		return HelloBytes
	}
	return SmallMessageBytes
}

// MaxProtoDepth bounds the nesting of messages in encoded bytes (errors'
// chains of causes are the only recursive type). Package proto stops at
// 10,000 levels; vtprotobuf's generated decoders, which the framed
// sockets use, do not stop at all, so framed checks Depth first.
const MaxProtoDepth = 100

// Depth reports whether b, an encoding of a message of type md, nests
// message fields deeper than MaxProtoDepth. It descends only into fields
// whose type can nest without bound, so on messages without a recursive
// part it only walks the top level's tags. Malformed bytes are left to
// the decoder to report.
func Depth(b []byte, md protoreflect.MessageDescriptor) error {
	if !recursive(md) || !couldExceed(b, 1) {
		return nil
	}
	return depth(b, md, 1)
}

// couldExceed reports whether a message at level, of len(b) bytes, could
// hold enough levels to pass MaxProtoDepth: each level takes at least two
// bytes (a tag and a length). Most messages are too short to, and are not
// walked at all.
func couldExceed(b []byte, level int) bool { return level+len(b)/2 > MaxProtoDepth }

func depth(b []byte, md protoreflect.MessageDescriptor, level int) error {
	if level > MaxProtoDepth {
		return bad("message nests deeper than %d levels", MaxProtoDepth)
	}
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if !couldExceed(v, level+1) {
			continue
		}
		if fd := fields.ByNumber(num); fd != nil && fd.Message() != nil && recursive(fd.Message()) {
			if err := depth(v, fd.Message(), level+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// recursive reports whether a message of type md can contain messages
// nested without bound (it reaches a cycle of message types).
func recursive(md protoreflect.MessageDescriptor) bool {
	if v, ok := recursiveCache.Load(md.FullName()); ok {
		return v.(bool)
	}
	r := reachesCycle(md, map[protoreflect.FullName]bool{})
	recursiveCache.Store(md.FullName(), r)
	return r
}

var recursiveCache sync.Map // protoreflect.FullName -> bool

// reachesCycle walks md's message fields depth-first; onPath holds the
// types on the current path.
func reachesCycle(md protoreflect.MessageDescriptor, onPath map[protoreflect.FullName]bool) bool {
	if onPath[md.FullName()] {
		return true
	}
	onPath[md.FullName()] = true
	defer delete(onPath, md.FullName())
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		if sub := fields.Get(i).Message(); sub != nil && reachesCycle(sub, onPath) {
			return true
		}
	}
	return false
}

// CheckSize refuses a message of n bytes that exceeds m's limit.
func CheckSize(m proto.Message, n int) error {
	if limit := MaxBytes(m); n > limit {
		return bad("%s of %d bytes exceeds its %d-byte limit", m.ProtoReflect().Descriptor().Name(), n, limit)
	}
	return nil
}
