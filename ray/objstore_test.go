//go:build !windows

package ray_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/raygo/raygo/internal/memmonitor"
	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/session"
	"github.com/raygo/raygo/ray"
)

var (
	// MakeBytes returns n deterministic pseudo-random bytes.
	MakeBytes = ray.Func2(func(ctx context.Context, n int, seed uint64) ([]byte, error) {
		return seeded(n, seed), nil
	}, ray.RegisterName("test.MakeBytes"))
	// Checksum hashes a []byte argument (read from the store by a worker).
	Checksum = ray.Func1(func(ctx context.Context, b []byte) ([32]byte, error) {
		return sha256.Sum256(b), nil
	}, ray.RegisterName("test.Checksum"))
	// Hog maps and touches memory 64 MiB at a time until it holds max
	// bytes, then sleeps: the memory monitor is meant to kill it first.
	Hog = ray.Func1(func(ctx context.Context, max int) (int, error) {
		const chunk = 64 << 20
		var held [][]byte
		for len(held)*chunk < max {
			m, err := syscall.Mmap(-1, 0, chunk, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
			if err != nil {
				return 0, err
			}
			for i := 0; i < chunk; i += 4096 {
				m[i] = 1
			}
			held = append(held, m)
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(30 * time.Second)
		return len(held), nil
	}, ray.RegisterName("test.Hog"))
)

// seeded is n bytes from seed. ChaCha8 fills whole blocks: under -race,
// a loop storing one byte at a time costs a detector call per byte.
func seeded(n int, seed uint64) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// Objects above the inline threshold live in the node's shared memory:
// GetBuffer aliases it (no copy), Get copies, workers read arguments from it.
func TestZeroCopyBuffers(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2), ray.ObjectStoreMemory(64<<20))
	data := seeded(1<<20, 1)
	ref, err := ray.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := ray.GetBuffer(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf.Bytes()) != string(data) {
		t.Fatal("GetBuffer bytes differ from what was put")
	}
	if !objstore.InView(unsafe.Pointer(&buf.Bytes()[0])) {
		t.Fatal("GetBuffer copied: its bytes are not in the store's mapping")
	}
	buf.Release()
	copied, err := ref.Get(ctx)
	if err != nil || string(copied) != string(data) {
		t.Fatalf("Get: %v", err)
	}
	if objstore.InView(unsafe.Pointer(&copied[0])) {
		t.Fatal("Get returned shared memory; it must return a copy")
	}

	// A task's large result: written by the worker, read zero-copy here.
	out := MakeBytes.Remote(ctx, 3<<20, 9)
	buf, err = ray.GetBuffer(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if !objstore.InView(unsafe.Pointer(&buf.Bytes()[0])) || sha256.Sum256(buf.Bytes()) != sha256.Sum256(seeded(3<<20, 9)) {
		t.Fatal("task result buffer: not zero-copy or different bytes")
	}
	buf.Release()

	// Written in place by the driver, read by a worker.
	ref2, err := ray.PutBuffer(ctx, 2<<20, func(b []byte) error {
		copy(b, seeded(2<<20, 3))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Checksum.RemoteArgs(ctx, ref2).Get(ctx)
	if err != nil || sum != sha256.Sum256(seeded(2<<20, 3)) {
		t.Fatalf("worker checksum of a PutBuffer object: %v", err)
	}
	if st := ray.StoreStatsForTest(); st == nil || !strings.Contains(largestCallSites(st.GetLargest()), "TestZeroCopyBuffers") {
		t.Fatalf("store does not name the creating function: %v", st)
	}
	runtime.KeepAlive(ref2)

	// Small objects stay inline: GetBuffer gives plain memory.
	small, _ := ray.Put(ctx, []byte("tiny"))
	sb, err := ray.GetBuffer(ctx, small)
	if err != nil || string(sb.Bytes()) != "tiny" {
		t.Fatalf("GetBuffer of an inline object: %v", err)
	}
	sb.Release()

	// GetBuffer refuses values that are not raw bytes.
	if _, err := ray.GetBuffer(ctx, ray.ObjectRef[string]{}); err == nil {
		t.Fatal("GetBuffer of a zero ref succeeded")
	}

	eventually(t, 30*time.Second, "the store to empty once refs are gone", func() bool { return ray.StoreObjectsForTest() == 0 })
}

func largestCallSites(list []*pb.StoreObjectInfo) string {
	var s []string
	for _, o := range list {
		s = append(s, o.GetCallSite())
	}
	return strings.Join(s, "; ")
}

// More data than the store holds spills to disk and comes back intact, in
// the driver and in workers; freed objects take their spill files along.
func TestSpillEndToEnd(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2), ray.ObjectStoreMemory(32<<20))
	const n, size = 12, 8 << 20
	refs := make([]ray.ObjectRef[[]byte], n)
	sums := make([][32]byte, n)
	for i := range refs {
		data := seeded(size, uint64(100+i))
		sums[i] = sha256.Sum256(data)
		var err error
		if refs[i], err = ray.Put(ctx, data); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	st := ray.StoreStatsForTest()
	if st.GetSpillsTotal() == 0 {
		t.Fatalf("96 MiB in a 32 MiB store spilled nothing: %v", st)
	}
	for i, r := range refs {
		got, err := Checksum.RemoteArgs(ctx, r).Get(ctx)
		if err != nil || got != sums[i] {
			t.Fatalf("object %d read by a worker: %v (checksum match %v)", i, err, got == sums[i])
		}
		b, err := ray.GetBuffer(ctx, r)
		if err != nil || sha256.Sum256(b.Bytes()) != sums[i] {
			t.Fatalf("object %d read by the driver: %v", i, err)
		}
		b.Release()
	}
	if st := ray.StoreStatsForTest(); st.GetRestoresTotal() == 0 {
		t.Fatalf("nothing was restored: %v", st)
	}
	spillDir := st.GetSpillDir()
	if !strings.HasPrefix(spillDir, ray.SessionDirForTest()) {
		t.Fatalf("spill directory %s is not under the session %s", spillDir, ray.SessionDirForTest())
	}
	eventually(t, 30*time.Second, "spill files to go with their objects", func() bool {
		files, _ := os.ReadDir(spillDir)
		return len(files) == 0 && ray.StoreObjectsForTest() == 0
	})
}

// An object larger than the whole store lives on disk, and reads back.
func TestObjectLargerThanStore(t *testing.T) {
	spill := t.TempDir()
	ctx := initCluster(t, ray.NumCPUs(1), ray.ObjectStoreMemory(8<<20), ray.SpillDir(spill))
	const size = 40 << 20
	ref, err := ray.PutBuffer(ctx, size, func(b []byte) error {
		copy(b, seeded(size, 5))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(seeded(size, 5))
	got, err := Checksum.RemoteArgs(ctx, ref).Get(ctx)
	if err != nil || got != want {
		t.Fatalf("worker read of a file-backed object: %v", err)
	}
	if st := ray.StoreStatsForTest(); st.GetFileCount() != 1 || !strings.HasPrefix(st.GetSpillDir(), spill) {
		t.Fatalf("store stats: %v", st)
	}
	if matches, _ := filepath.Glob(filepath.Join(spill, "*", "*")); len(matches) != 1 {
		t.Fatalf("files in the spill directory: %v", matches)
	}
	runtime.KeepAlive(ref) // from here on the object may go
	eventually(t, 30*time.Second, "the file to go with its object", func() bool {
		matches, _ := filepath.Glob(filepath.Join(spill, "*", "*"))
		return len(matches) == 0
	})
}

// The memory monitor kills a worker when the node passes its threshold;
// the task is retried on its own counter, then fails with an
// out-of-memory error naming the node's memory use.
func TestMemoryMonitorKillsTask(t *testing.T) {
	u, err := memmonitor.Read("/")
	if err != nil {
		t.Skipf("cannot read memory use: %v", err)
	}
	// A threshold a little above today's use: the task below passes it.
	threshold := float64(u.Used+256<<20) / float64(u.Total)
	head := startHead(t, 2, "tok", func(c *raylet.Config) {
		c.MemoryUsageThreshold = threshold
		c.MemoryMonitorInterval = 50 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token("tok")); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	_, err = Hog.Options(ray.MaxRetries(0), ray.OOMRetries(1)).Remote(ctx, 8<<30).Get(ctx)
	var oom *ray.OutOfMemoryError
	if !errors.Is(err, ray.ErrOutOfMemory) || !errors.As(err, &oom) {
		t.Fatalf("Hog: err = %v, want an out-of-memory error", err)
	}
	if oom.Attempts != 2 || !strings.Contains(oom.Message, "node memory used") || !strings.Contains(oom.Message, "top consumers") {
		t.Fatalf("out-of-memory error: attempts %d, message %q", oom.Attempts, oom.Message)
	}
	if oom.Function != "test.Hog" {
		t.Fatalf("error names function %q", oom.Function)
	}
}

// An object made on one node and needed on another is fetched in chunks
// into the second node's store, as an evictable secondary copy, and read
// there zero-copy.
func TestObjectsAcrossNodes(t *testing.T) {
	head := startHead(t, 1, "tok", func(c *raylet.Config) {
		c.Resources["a"] = 1
		c.ObjectStoreBytes = 64 << 20
	})
	sess, err := session.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Remove() })
	rc := raylet.DefaultConfig()
	rc.Resources, rc.SessionDir = resources.Set{resources.CPU: 1, "b": 1}, string(sess)
	rc.GCSAddress, rc.Token, rc.ObjectStoreBytes = head.GCSAddress(), "tok", 64<<20
	second, err := raylet.Start(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.Stop)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token("tok")); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	eventually(t, 30*time.Second, "both nodes to be seen", func() bool {
		res, err := ray.ClusterResources(ctx)
		return err == nil && res["a"] == 1 && res["b"] == 1
	})
	const size = 9<<20 + 123 // more than two fetch chunks
	made := MakeBytes.Options(ray.Resources(map[string]float64{"b": 1})).Remote(ctx, size, 42)
	want := sha256.Sum256(seeded(size, 42))
	got, err := Checksum.Options(ray.Resources(map[string]float64{"a": 1})).RemoteArgs(ctx, made).Get(ctx)
	if err != nil || got != want {
		t.Fatalf("checksum on the other node: %v (match %v)", err, got == want)
	}
	headStats := head.Raylet().Store().Stats(0)
	secondStats := second.Store().Stats(0)
	if headStats.GetSecondaryCount() != 1 || secondStats.GetPrimaryCount() != 1 {
		t.Fatalf("copies: head %v; second node %v", headStats, secondStats)
	}
	buf, err := ray.GetBuffer(ctx, made)
	if err != nil || sha256.Sum256(buf.Bytes()) != want || !objstore.InView(unsafe.Pointer(&buf.Bytes()[0])) {
		t.Fatalf("driver GetBuffer: %v", err)
	}
	buf.Release()
	runtime.KeepAlive(made)
}

// The slice PutBuffer hands to fill is the object's memory only until fill
// returns: writing it afterwards faults instead of changing a sealed object.
func TestPutBufferSliceFaultsAfterSeal(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(1), ray.ObjectStoreMemory(16<<20))
	var kept []byte
	ref, err := ray.PutBuffer(ctx, 1<<20, func(b []byte) error {
		b[0] = 7
		kept = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	faulted := make(chan bool)
	go func() {
		defer func() { faulted <- recover() != nil }()
		debug.SetPanicOnFault(true)
		kept[0] = 8
	}()
	if !<-faulted {
		t.Fatal("writing PutBuffer's slice after the object was sealed did not fault")
	}
	if got, err := ref.Get(ctx); err != nil || got[0] != 7 {
		t.Fatalf("sealed object changed or unreadable: %v", err)
	}
}
