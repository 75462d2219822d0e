package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
)

const token = "tok"

func headConfig(t *testing.T) node.HeadConfig {
	t.Helper()
	t.Setenv("RAYGO_TMPDIR", t.TempDir()) // local sockets go under the session root
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{"CPU": 2, "GPU": 1}
	rc.GPUIDs = []string{"0"}
	rc.SessionDir = t.TempDir()
	return node.HeadConfig{Raylet: rc, Token: token}
}

func TestStartHeadRegistersItsNode(t *testing.T) {
	before := goleak.IgnoreCurrent()
	h, err := node.StartHead(headConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if !rpc.IsLoopback(h.GCSAddress()) || h.Raylet().Address() == h.GCSAddress() {
		t.Fatalf("addresses: control store %s, node daemon %s", h.GCSAddress(), h.Raylet().Address())
	}

	conn, err := rpc.Dial(h.GCSAddress(), token)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nodes, err := pb.NewControlStoreClient(conn).GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.GetNodes()) != 1 || nodes.GetNodes()[0].GetAddress() != h.Raylet().Address() {
		t.Fatalf("control store lists %v, want the head's node daemon", nodes.GetNodes())
	}
	if a := nodes.GetNodes()[0].GetTotal().GetAmounts(); a["CPU"] != 2 || a["GPU"] != 1 {
		t.Fatalf("node totals = %v", a)
	}
	conn.Close()

	h.Stop()
	h.Stop() // idempotent
	goleak.VerifyNone(t, before)
}

func TestStartHeadFailsCleanly(t *testing.T) {
	before := goleak.IgnoreCurrent()
	cfg := headConfig(t)
	cfg.Raylet.GPUIDs = []string{"0", "1"} // two ids for one GPU
	h, err := node.StartHead(cfg)
	if err == nil {
		h.Stop()
		t.Fatal("StartHead accepted 2 GPU ids for 1 GPU")
	}
	if !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("err = %v, want ErrInvalidRequest", err)
	}
	goleak.VerifyNone(t, before)
}

func TestStartHeadRejectsBadListenAddress(t *testing.T) {
	cfg := headConfig(t)
	cfg.GCSAddress = "127.0.0.1:notaport"
	if h, err := node.StartHead(cfg); err == nil {
		h.Stop()
		t.Fatal("StartHead listened on a bad address")
	}
}
