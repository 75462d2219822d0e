//go:build !windows

package endtoend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/framed"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/ray"
)

// Echo takes anything; the bombs below are sent as its argument.
var Echo = ray.Func1(func(_ context.Context, v any) (int, error) { return 1, nil }, ray.RegisterName("e2e.Echo"))

// leaseWorker registers a job whose binary is this test binary and leases
// one of its workers straight from the node daemon, as an owner would.
func leaseWorker(t *testing.T, gcsAddr, nodeAddr, token string) *pb.LeaseReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := rpc.Dial(gcsAddr, token)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	gcs := pb.NewControlStoreClient(conn)
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	hash := hex.EncodeToString(sum[:])
	up, err := gcs.PutBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(bin); off += 1 << 20 {
		end := min(off+1<<20, len(bin))
		if err := up.Send(&pb.BinaryChunk{Hash: hash, Offset: int64(off), Data: bin[off:end], Total: int64(len(bin))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := up.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	job := ids.New()
	if _, err := gcs.RegisterJob(ctx, &pb.RegisterJobRequest{Job: &pb.JobInfo{JobId: job.Bytes(), BinaryHash: hash}}); err != nil {
		t.Fatal(err)
	}
	nconn, err := rpc.Dial(nodeAddr, token)
	if err != nil {
		t.Fatal(err)
	}
	defer nconn.Close()
	lease, err := pb.NewNodeDaemonClient(nconn).RequestLease(ctx, &pb.LeaseRequest{JobId: job.Bytes(), SchedulingKey: "bombs",
		Resources: &pb.Resources{Amounts: map[string]float64{"CPU": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	return lease
}

// push opens a push stream to the worker, sends batch, and returns the
// first reply batch (or the error that ended the stream).
func push(t *testing.T, workerAddr, token string, batch *pb.TaskBatch) (*pb.ReplyBatch, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := framed.Dial(ctx, "@raygo/"+workerAddr+"/tasks", token, "push-tasks", "bomber")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Write(batch); err != nil {
		return nil, err
	}
	var reply pb.ReplyBatch
	if err := c.Read(&reply); err != nil {
		return nil, err
	}
	return &reply, nil
}

// TestDecodingBombsDoNotKillWorkers: a token holder pushes a leased worker
// a task with num_returns 2^31-1, and tasks whose argument is a msgpack
// array claiming 2^32-1 elements, two million nested arrays, or a 14-byte
// ref extension claiming 4 GiB. Each is refused with an error; the worker
// lives on, its memory flat, and still runs a good task.
func TestDecodingBombsDoNotKillWorkers(t *testing.T) {
	privateRoot(t)
	const token = "bomb-token"
	head := startHead(t, token)
	lease := leaseWorker(t, head.GCSAddress(), head.Raylet().Address(), token)
	worker, pid := lease.GetWorkerAddress(), int(lease.GetWorkerPid())
	alive := func() bool { return syscall.Kill(pid, 0) == nil }
	rss := rssBytes(t, pid)
	common := &pb.TaskSpec{JobId: ids.New().Bytes(), OwnerAddress: "127.0.0.1:1", OwnerId: ids.New().Bytes()}
	task := func(args ...[]byte) *pb.TaskSpec {
		s := &pb.TaskSpec{TaskId: ids.New().Bytes(), Function: "e2e.Echo", NumReturns: 1}
		for _, a := range args {
			s.Args = append(s.Args, &pb.Arg{Kind: &pb.Arg_Value{Value: &pb.Value{Data: a}}})
		}
		return s
	}

	huge := task([]byte{0, 0x91}) // a fine argument, but 2^31-1 returns
	huge.NumReturns = math.MaxInt32
	if reply, err := push(t, worker, token, &pb.TaskBatch{Tasks: []*pb.TaskSpec{huge}, Common: common}); err == nil {
		t.Fatalf("a batch with num_returns 2^31-1 was answered: %v", reply)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("stream ended: %v", err)
	}

	nested := make([]byte, 1+2_000_000)
	for i := 1; i < len(nested); i++ {
		nested[i] = 0x91
	}
	bombs := map[string][]byte{
		"an array claiming 2^32-1 elements": {0, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0},
		"two million nested arrays":         nested,
		"a ref extension claiming 4 GiB":    {0, 0xc9, 0xff, 0xff, 0xff, 0xf0, 17, 16, 1, 2, 3, 4, 5, 6, 7},
	}
	for name, arg := range bombs {
		reply, err := push(t, worker, token, &pb.TaskBatch{Tasks: []*pb.TaskSpec{task(arg)}, Common: common})
		if err != nil {
			t.Fatalf("%s: the stream broke: %v (worker alive: %v)", name, err, alive())
		}
		if len(reply.GetReplies()) != 1 || reply.GetReplies()[0].GetError() == nil {
			t.Fatalf("%s: reply %v, want an error", name, reply)
		}
		t.Logf("%s: %v", name, errs.FromInfo(reply.GetReplies()[0].GetError()))
	}
	if !alive() {
		t.Fatal("the worker died")
	}
	reply, err := push(t, worker, token, &pb.TaskBatch{Tasks: []*pb.TaskSpec{task([]byte{0, 0x91, 1})}, Common: common})
	if err != nil || len(reply.GetReplies()) != 1 || reply.GetReplies()[0].GetError() != nil {
		t.Fatalf("a good task after the bombs: %v, %v", reply, err)
	}
	if got := rssBytes(t, pid); got > rss+256<<20 {
		t.Fatalf("worker RSS grew from %d to %d MiB", rss>>20, got>>20)
	}
}
