//go:build !windows

package endtoend

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/session"
	"github.com/raygo/raygo/ray"
)

// envTargets lists what roleAttack attacks, comma-separated:
// grpc:<host:port> (over TCP), unix:<host:port> (the endpoint's local
// socket twin) and framed:<socket name>.
const envTargets = "RAYGO_E2E_TARGETS"

// attackBytes is the size of each oversized message: the 256 MiB.
const attackBytes = 256 << 20

// runAttack is roleAttack: without a token, send four 256 MiB gRPC
// messages to each gRPC target and a 512 MiB frame to each framed one,
// and print one line per target with what happened.
func runAttack() int {
	payload := &pb.KVPutRequest{Key: "k", Value: make([]byte, attackBytes)}
	for _, target := range strings.Split(os.Getenv(envTargets), ",") {
		kind, addr, _ := strings.Cut(target, ":")
		switch kind {
		case "grpc", "unix":
			opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(1 << 30))}
			if kind == "unix" {
				opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "unix", "@raygo/"+a)
				}))
			}
			conn, err := grpc.NewClient(addr, opts...)
			if err != nil {
				fmt.Println(target, "dial:", err)
				continue
			}
			var codes []string
			for range 4 {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := conn.Invoke(ctx, "/raygo.v1.ControlStore/KVPut", payload, &pb.KVPutReply{})
				cancel()
				codes = append(codes, status.Code(err).String())
			}
			conn.Close()
			fmt.Println(target, strings.Join(codes, " "))
		case "framed":
			c, err := net.Dial("unix", addr)
			if err != nil {
				fmt.Println(target, "dial:", err)
				continue
			}
			hdr := binary.LittleEndian.AppendUint32(nil, 512<<20-1)
			n, err := c.Write(append(hdr, make([]byte, 1<<20)...))
			chunk := make([]byte, 1<<20)
			for err == nil && n < 512<<20 {
				var k int
				k, err = c.Write(chunk)
				n += k
			}
			c.Close()
			fmt.Println(target, "wrote", n, "bytes:", err)
		}
	}
	fmt.Println("done")
	return 0
}

// rssBytes reads a process's resident memory.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestOtherUserCannotSpendMemory: a process of another user (uid 65534,
// through setpriv), without the token, sends four 256 MiB gRPC messages to
// a driver's port, to the head's control store and node daemon (over TCP
// and over their local sockets), and a 512 MiB frame to the node's store
// socket. Each is refused before it is read, and neither the head's nor
// the driver's resident memory grows.
func TestOtherUserCannotSpendMemory(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv")
	}
	privateRoot(t)
	token := session.NewToken()
	headCmd, words := child(t, envRole+"="+roleHead, ray.EnvToken+"="+token)
	if len(words) != 3 || words[0] != "head" {
		t.Fatalf("head said %q", words)
	}
	gcsAddr, nodeAddr := words[1], words[2]
	driverCmd, words := child(t, envRole+"="+roleDriver, ray.EnvAddress+"="+gcsAddr, ray.EnvToken+"="+token, envPuts+"=0")
	if len(words) < 1 || words[0] != "ready" {
		t.Fatalf("driver said %q", words)
	}
	driverAddr := driverAddress(t, gcsAddr, token)

	// The test binary, where uid 65534 can run it.
	dir, err := os.MkdirTemp("", "raygo-e2e-attacker-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "attacker")
	copyFile(t, os.Args[0], bin)

	storeSocket, err := objstore.SocketName(nodeAddr)
	if err != nil {
		t.Fatal(err)
	}
	headRSS, driverRSS := rssBytes(t, headCmd.Process.Pid), rssBytes(t, driverCmd.Process.Pid)
	targets := []string{"grpc:" + driverAddr, "unix:" + driverAddr, "grpc:" + gcsAddr, "unix:" + gcsAddr,
		"grpc:" + nodeAddr, "framed:" + storeSocket}
	attack := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "-test.run=^$")
	attack.Env = []string{envRole + "=" + roleAttack, envTargets + "=" + strings.Join(targets, ","), "HOME=/"}
	out, err := attack.CombinedOutput()
	t.Logf("attacker (uid 65534):\n%s", out)
	if err != nil || !strings.Contains(string(out), "done") {
		t.Fatalf("attacker: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, " OK") {
			t.Fatalf("an unauthenticated call succeeded: %s", line)
		}
	}
	const slack = 64 << 20
	if got := rssBytes(t, headCmd.Process.Pid); got > headRSS+slack {
		t.Fatalf("head RSS grew from %d to %d MiB under the attack", headRSS>>20, got>>20)
	}
	if got := rssBytes(t, driverCmd.Process.Pid); got > driverRSS+slack {
		t.Fatalf("driver RSS grew from %d to %d MiB under the attack", driverRSS>>20, got>>20)
	}
	t.Logf("RSS: head %d → %d MiB, driver %d → %d MiB", headRSS>>20, rssBytes(t, headCmd.Process.Pid)>>20,
		driverRSS>>20, rssBytes(t, driverCmd.Process.Pid)>>20)
}

// driverAddress asks the control store for its one job's driver address.
func driverAddress(t *testing.T, gcsAddr, token string) string {
	t.Helper()
	conn, err := rpc.Dial(gcsAddr, token)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs, err := pb.NewControlStoreClient(conn).ListJobs(ctx, &pb.ListJobsRequest{})
	if err != nil || len(jobs.GetJobs()) != 1 {
		t.Fatalf("ListJobs = %v, %v", jobs, err)
	}
	return jobs.GetJobs()[0].GetDriverAddress()
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
