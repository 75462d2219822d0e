package framed

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime/metrics"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/wirecheck"
)

func allocated(f func()) uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	f()
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

// TestUnauthenticatedPeerReadsLittle: a peer that skips the token
// exchange and claims a 512 MiB frame is refused after the listener has
// read the exchange's first bytes, with nothing allocated for the frame.
func TestUnauthenticatedPeerReadsLittle(t *testing.T) {
	l, name := listen(t)
	var n uint64
	got := serveOne(l, func(c *Conn, _ Peer, err error) error { return err })
	nc, err := net.Dial("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	frame := binary.LittleEndian.AppendUint32(nil, MaxFrame)
	frame = append(frame, bytes.Repeat([]byte{1}, 1<<20)...)
	go func() { _, _ = nc.Write(frame) }()
	n = allocated(func() {
		if err := <-got; !errors.Is(err, errs.ErrUnauthenticated) {
			t.Errorf("hello: %v, want ErrUnauthenticated", err)
		}
	})
	if n > 1<<20 {
		t.Fatalf("the listener allocated %d bytes for an unauthenticated peer", n)
	}
}

// TestHelloIsSmall: after the exchange, a hello larger than
// wirecheck.HelloBytes is refused unread.
func TestHelloIsSmall(t *testing.T) {
	l, name := listen(t)
	got := serveOne(l, func(c *Conn, _ Peer, err error) error { return err })
	_, err := DialHello(context.Background(), name, "secret", &pb.FramedHello{Purpose: "x", Name: string(make([]byte, wirecheck.HelloBytes))})
	if err == nil {
		t.Fatal("a hello over the limit was accepted")
	}
	if err := <-got; err == nil {
		t.Fatal("the listener accepted a hello over the limit")
	}
}

// TestHelloCarriesOwner: the store's clients say their job and worker id.
func TestHelloCarriesOwner(t *testing.T) {
	l, name := listen(t)
	job, worker := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
	got := make(chan Peer, 1)
	done := serveOne(l, func(c *Conn, p Peer, err error) error { got <- p; return err })
	c, err := DialHello(context.Background(), name, "secret", &pb.FramedHello{Purpose: "x", JobId: job, WorkerId: worker})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p := <-got
	if !bytes.Equal(p.JobID[:], job) || !bytes.Equal(p.WorkerID[:], worker) {
		t.Fatalf("peer = %+v", p)
	}
}

// TestClaimedFrameAllocatesAsBytesArrive: an authenticated peer that
// claims a frame near the limit and sends a little of it costs the reader
// about what was sent, not what was claimed.
func TestClaimedFrameAllocatesAsBytesArrive(t *testing.T) {
	l, name := listen(t)
	got := make(chan uint64, 1)
	done := serveOne(l, func(c *Conn, _ Peer, err error) error {
		if err != nil {
			return err
		}
		var rerr error
		got <- allocated(func() { rerr = c.Read(&pb.StoreObjectIDs{}) })
		return rerr
	})
	msg := make([]byte, 4+3<<20) // 3 MiB of a claimed 512, made before the reader starts counting
	binary.LittleEndian.PutUint32(msg, MaxFrame-1)
	c, err := Dial(context.Background(), name, "secret", "x", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.nc.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read: %v, want ErrUnexpectedEOF", err)
	}
	if n := <-got; n > 4*3<<20+growStep { // doubling as bytes arrive: at most 4x what came

		t.Fatalf("reading 3 MiB of a claimed 512 MiB frame allocated %d bytes", n)
	}
}

// TestDeepMessageRefused: a reply batch whose error nests past
// wirecheck.MaxProtoDepth is refused before vtprotobuf's decoder (which
// has no recursion limit) sees it.
func TestDeepMessageRefused(t *testing.T) {
	var e []byte
	for range 1000 {
		e = protowire.AppendBytes(protowire.AppendTag(nil, 11, protowire.BytesType), e)
	}
	reply := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), e)
	batch := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), reply)
	in := binary.LittleEndian.AppendUint32(nil, uint32(len(batch)))
	c := &Conn{maxFrame: MaxFrame}
	err := c.readFrom(bytes.NewReader(append(in, batch...)), &pb.ReplyBatch{}, MaxFrame)
	if !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("read: %v, want a refusal", err)
	}
}

// FuzzReadFrame feeds arbitrary bytes to the frame reader as each message
// type framed sockets carry. It must never panic, and may allocate at
// most allocFactor times its input (plus a constant).
func FuzzReadFrame(f *testing.F) {
	kinds := []func() proto.Message{
		func() proto.Message { return &pb.FramedHello{} },
		func() proto.Message { return &pb.FramedHelloReply{} },
		func() proto.Message { return &pb.StoreRequest{} },
		func() proto.Message { return &pb.StoreReply{} },
		func() proto.Message { return &pb.TaskBatch{} },
		func() proto.Message { return &pb.ReplyBatch{} },
	}
	for i, m := range []proto.Message{
		&pb.FramedHello{Purpose: "objstore", Name: "w"},
		&pb.FramedHelloReply{Error: &pb.ErrorInfo{Message: "no"}},
		&pb.StoreRequest{Seq: 3, Op: &pb.StoreRequest_Get{Get: &pb.StoreObjectIDs{ObjectIds: [][]byte{make([]byte, 16)}}}},
		&pb.StoreReply{Seq: 3, Locations: []*pb.StoreLocation{{Found: true, Size: 5}}},
		&pb.TaskBatch{Tasks: []*pb.TaskSpec{{TaskId: make([]byte, 16), NumReturns: 1}}},
		&pb.ReplyBatch{Replies: []*pb.TaskReply{{TaskId: make([]byte, 16), Error: &pb.ErrorInfo{Cause: &pb.ErrorInfo{}}}}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(byte(i), append(binary.LittleEndian.AppendUint32(nil, uint32(len(b))), b...))
	}
	f.Add(byte(4), []byte{0xff, 0xff, 0xff, 0x1f, 0x0a})
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		mk := kinds[int(kind)%len(kinds)]
		limit := uint64(allocFactor*len(data) + allocSlack)
		read := func() {
			c := &Conn{maxFrame: MaxFrame}
			r := bytes.NewReader(data)
			for range 4 { // a few frames in a row, as a connection reads them
				if c.readFrom(r, mk(), MaxFrame) != nil {
					break
				}
			}
		}
		// The counter is the process's: measure again when over, and keep
		// the least (another goroutine may have allocated meanwhile).
		n := allocated(read)
		for i := 0; i < 2 && n > limit; i++ {
			n = min(n, allocated(read))
		}
		if n > limit {
			t.Fatalf("reading %d bytes allocated %d, over %d", len(data), n, limit)
		}
	})
}

const (
	allocFactor = 512
	allocSlack  = 4 << 20 // the first growStep of a claimed large frame, and slack
)
