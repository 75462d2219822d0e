//go:build !windows

package ray_test

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

// envSoak runs TestObjectStoreSoak for that many seconds (it is skipped
// otherwise): RAYGO_SOAK=60 go test -run Soak -v ./ray/
const envSoak = "RAYGO_SOAK"

var (
	// SoakMake makes n bytes from seed; pid reports the worker.
	SoakMake = ray.Func2(func(ctx context.Context, n int, seed uint64) ([]byte, error) {
		return pattern(n, seed), nil
	}, ray.RegisterName("soak.Make"))
	// SoakCheck hashes its argument after a pause, so workers are killed
	// while they map objects.
	SoakCheck = ray.Func2(func(ctx context.Context, b []byte, ms int) ([32]byte, error) {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return sha256.Sum256(b), nil
	}, ray.RegisterName("soak.Check"))
	SoakPid = ray.Func0(func(ctx context.Context) (int, error) { return os.Getpid(), nil }, ray.RegisterName("soak.Pid"))
)

// TestObjectStoreSoak: for RAYGO_SOAK seconds, tasks make objects of mixed
// sizes (some larger than the 64 MiB store), other tasks check them, the
// driver reads some zero-copy, and every second a random worker is killed
// (while it writes or maps objects). Every object that comes back must be
// intact; tasks whose worker died are retried. At the end, with all refs
// gone, the store and its spill directory must be empty.
func TestObjectStoreSoak(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv(envSoak))
	if secs <= 0 {
		t.Skip("set " + envSoak + "=<seconds> to run")
	}
	initCluster(t, ray.NumCPUs(2), ray.ObjectStoreMemory(64<<20))
	ctx := context.Background() // initCluster's context ends after a minute
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []int{200 << 10, 1 << 20, 7 << 20, 20 << 20, 90 << 20}
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	lastKill := time.Now()
	rounds, kills, checked := 0, 0, 0
	for time.Now().Before(deadline) {
		n := 6
		made := make([]ray.ObjectRef[[]byte], n)
		want := make([][32]byte, n)
		for i := range made {
			size, seed := sizes[r.IntN(len(sizes))], r.Uint64()
			made[i] = SoakMake.Options(ray.MaxRetries(-1)).Remote(ctx, size, seed)
			want[i] = sha256.Sum256(pattern(size, seed))
		}
		sums := make([]ray.ObjectRef[[32]byte], n)
		for i := range made {
			sums[i] = SoakCheck.Options(ray.MaxRetries(-1)).RemoteArgs(ctx, made[i], ray.Val(r.IntN(50)))
		}
		if time.Since(lastKill) > time.Second {
			if pid, err := SoakPid.Remote(ctx).Get(ctx); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				kills++
			}
			lastKill = time.Now()
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		got, err := ray.Get(rctx, sums...)
		cancel()
		if err != nil {
			t.Fatalf("round %d: %v", rounds, err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("round %d: object %d came back different", rounds, i)
			}
		}
		k := r.IntN(n)
		if buf, err := ray.GetBuffer(ctx, made[k]); err != nil {
			t.Fatalf("round %d: GetBuffer: %v", rounds, err)
		} else {
			if sha256.Sum256(buf.Bytes()) != want[k] {
				t.Fatalf("round %d: driver read of object %d differs", rounds, k)
			}
			buf.Release()
		}
		checked += n
		rounds++
	}
	st := ray.StoreStatsForTest()
	t.Logf("%d rounds, %d objects checked, %d workers killed; store: %d spills, %d restores, %d evictions",
		rounds, checked, kills, st.GetSpillsTotal(), st.GetRestoresTotal(), st.GetEvictionsTotal())
	spillDir := st.GetSpillDir()
	eventually(t, 60*time.Second, "the store and spill directory to empty", func() bool {
		files, _ := os.ReadDir(spillDir)
		st := ray.StoreStatsForTest()
		return len(files) == 0 && st.GetObjects() == 0 && st.GetUsed() == 0
	})
}

// pattern is n bytes from seed, fast to make (8 bytes per step).
func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := seed | 1
	for i := 0; i+8 <= n; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i], b[i+1], b[i+2], b[i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56)
	}
	return b
}
