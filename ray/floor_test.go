//go:build !windows

package ray_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

// envEcho makes the test binary an echo server for BenchmarkGRPCFloor.
const envEcho = "RAYGO_TEST_ECHO"

// echoServer answers every task batch with empty replies and every Exit
// call at once: the transport alone, for a floor under task round trips.
type echoServer struct {
	pb.UnimplementedCoreWorkerServer
}

func (echoServer) PushTasks(s pb.CoreWorker_PushTasksServer) error {
	for {
		b, err := s.Recv()
		if err != nil {
			return nil
		}
		r := &pb.ReplyBatch{Replies: make([]*pb.TaskReply, len(b.GetTasks()))}
		for i, t := range b.GetTasks() {
			r.Replies[i] = &pb.TaskReply{TaskId: t.GetTaskId()}
		}
		if err := s.Send(r); err != nil {
			return err
		}
	}
}

func (echoServer) Exit(context.Context, *pb.ExitRequest) (*pb.ExitReply, error) {
	return &pb.ExitReply{}, nil
}

// runEchoServer serves echoServer with raygo's gRPC settings and prints
// its address.
func runEchoServer() int {
	srv := rpc.NewServer("floor")
	pb.RegisterCoreWorkerServer(srv, echoServer{})
	lis, err := rpc.Listen("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println(lis.Addr())
	var wg sync.WaitGroup
	lis.Serve(srv, &wg)
	wg.Wait()
	return 0
}

// BenchmarkGRPCFloor measures a gRPC round trip to another process over
// loopback with raygo's settings: one task-sized message on a stream (the
// path a task takes) and a unary call. A task round trip cannot be
// faster than the stream figure.
func BenchmarkGRPCFloor(b *testing.B) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envEcho+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	addr, _ := bufio.NewReader(out).ReadString('\n')
	conn, err := rpc.Dial(strings.TrimSpace(addr), "floor")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewCoreWorkerClient(conn)
	ctx := context.Background()
	b.Run("stream", func(b *testing.B) {
		st, err := c.PushTasks(ctx)
		if err != nil {
			b.Fatal(err)
		}
		spec := &pb.TaskSpec{TaskId: []byte("0123456789abcdef"), Function: "bench.Noop"}
		for range b.N {
			if err := st.Send(&pb.TaskBatch{Tasks: []*pb.TaskSpec{spec}}); err != nil {
				b.Fatal(err)
			}
			if _, err := st.Recv(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
	})
	b.Run("unary", func(b *testing.B) {
		for range b.N {
			if _, err := c.Exit(ctx, &pb.ExitRequest{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
}
