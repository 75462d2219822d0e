//go:build !windows

package endtoend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/session"
	"github.com/raygo/raygo/ray"
)

// TestHostileSessionRootRefused: a world-writable session root owned by
// another user, holding the session of a head that user runs, is refused
// by RAYGO_ADDRESS=auto with ErrNotPrivate: the driver neither joins that
// cluster nor sends it anything.
func TestHostileSessionRootRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	root := privateRoot(t)
	const theirToken = "their-token"
	head := startHead(t, theirToken) // "their" head: its session is in root
	sess, err := firstSession(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WriteFile("address", head.GCSAddress()); err != nil {
		t.Fatal(err)
	}
	if err := sess.WriteFile("token", theirToken); err != nil {
		t.Fatal(err)
	}
	if err := sess.MarkLatest(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{root, string(sess)} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(ray.EnvToken, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = ray.Init(ctx, ray.Address("auto"))
	if err == nil {
		ray.Shutdown()
		t.Fatal("ray.Init joined the cluster of a session root another user owns")
	}
	if !errors.Is(err, session.ErrNotPrivate) {
		t.Fatalf("ray.Init = %v, want ErrNotPrivate", err)
	}
	t.Logf("refused: %v", err)
	conn, err := rpc.Dial(head.GCSAddress(), theirToken)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	jobs, err := pb.NewControlStoreClient(conn).ListJobs(ctx, &pb.ListJobsRequest{})
	if err != nil || len(jobs.GetJobs()) != 0 {
		t.Fatalf("the hostile head saw jobs %v (%v)", jobs.GetJobs(), err)
	}
}

func firstSession(root string) (session.Dir, error) {
	m, err := filepath.Glob(filepath.Join(root, "session_*"))
	if err != nil || len(m) == 0 {
		return "", errors.New("no session")
	}
	return session.Dir(m[0]), nil
}
