package raylet_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/workerlog"
)

// envRegisterDelay makes a fake worker wait this long (a Go duration)
// before registering with its node daemon, so that a test can act while a
// lease waits for its worker.
const envRegisterDelay = "RAYGO_TEST_REGISTER_DELAY"

// envPrint makes a fake worker announce the name "test.Printer" and print
// the variable's value on stdout and stderr once it registered.
const envPrint = "RAYGO_TEST_PRINT"

// fakeCoreWorker is the worker side a node daemon and the control store
// talk to: it accepts actor creation and exits when told to. It stands in
// for the real core worker (tested in its own package), which is a
// neighbour of the daemon under test.
type fakeCoreWorker struct {
	pb.UnimplementedCoreWorkerServer
}

func (fakeCoreWorker) CreateActor(context.Context, *pb.CreateActorTaskRequest) (*pb.CreateActorTaskReply, error) {
	return &pb.CreateActorTaskReply{}, nil
}

func (fakeCoreWorker) Exit(_ context.Context, req *pb.ExitRequest) (*pb.ExitReply, error) {
	if len(req.GetActorId()) == 0 {
		go func() { time.Sleep(10 * time.Millisecond); os.Exit(0) }()
	}
	return &pb.ExitReply{}, nil
}

// runFakeWorker serves fakeCoreWorker and registers with the node daemon
// named in the environment, as a real worker does; it runs until killed
// (the daemon kills its workers when it stops).
func runFakeWorker() int {
	token := os.Getenv(raylet.EnvToken)
	lis, err := rpc.Listen(net.JoinHostPort(os.Getenv(raylet.EnvNodeIP), "0"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake worker:", err)
		return 3
	}
	srv := rpc.NewServer(token)
	pb.RegisterCoreWorkerServer(srv, fakeCoreWorker{})
	var wg sync.WaitGroup
	lis.Serve(srv, &wg)
	if d, err := time.ParseDuration(os.Getenv(envRegisterDelay)); err == nil {
		time.Sleep(d)
	}
	wid, ok := ids.Parse(os.Getenv(raylet.EnvWorkerID))
	conn, err := rpc.Dial(os.Getenv(raylet.EnvNodeAddress), token)
	if !ok || err != nil {
		fmt.Fprintln(os.Stderr, "fake worker: bad environment:", err)
		return 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = pb.NewNodeDaemonClient(conn).RegisterWorker(ctx, &pb.RegisterWorkerRequest{WorkerId: wid.Bytes(), Address: lis.Addr(), Pid: int32(os.Getpid())})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake worker: register:", err)
		return 3
	}
	if text := os.Getenv(envPrint); text != "" { // logs_test.go
		workerlog.WriteName(os.Stdout, "test.Printer")
		fmt.Println(text)
		fmt.Fprintln(os.Stderr, text+" on stderr")
	}
	select {}
}
