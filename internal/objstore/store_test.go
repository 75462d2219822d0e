package objstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/localsock"
)

const testToken = "test-token"

var socketSeq int

var sink byte // keeps test reads from being optimized away

// newTestStore starts a store serving a fresh socket, and checks after the
// test that nothing leaked: no views, no spill files, no /dev/shm files.
func newTestStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	socketSeq++
	cfg.SocketName = fmt.Sprintf("@raygo-test/%d/%s/%d", os.Getpid(), t.Name(), socketSeq)
	if m, _ := localsock.CurrentMode(); m == localsock.Files {
		cfg.SocketName = filepath.Join(shortTempDir(t), "store")
	}
	if cfg.RegionDir == "" {
		cfg.RegionDir = t.TempDir()
	}
	cfg.Token = testToken
	if cfg.NodeID.IsNil() {
		cfg.NodeID = ids.New()
	}
	shmBefore := shmFiles(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dir := s.SpillPath()
		s.Close()
		if dir != "" {
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("spill directory %s left behind", dir)
			}
		}
		if n := LiveViews(); n != 0 {
			t.Errorf("%d views still mapped after the test", n)
		}
		if after := shmFiles(t); after > shmBefore {
			t.Errorf("/dev/shm has %d files, had %d", after, shmBefore)
		}
		if left, _ := os.ReadDir(cfg.RegionDir); len(left) > 0 {
			t.Errorf("the region left %s in %s", left[0].Name(), cfg.RegionDir)
		}
	})
	return s
}

// shmFiles counts raygo's files in /dev/shm (the store uses a memfd, so
// there must never be any; other programs' files are not counted).
func shmFiles(t *testing.T) int {
	list, err := os.ReadDir("/dev/shm")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range list {
		if strings.Contains(e.Name(), "raygo") {
			n++
		}
	}
	return n
}

func dial(t *testing.T, s *Store) *Client {
	t.Helper()
	c, err := Dial(s.cfg.SocketName, testToken, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func randomBytes(n int, seed uint64) []byte {
	// ChaCha8 fills whole blocks: under -race, a loop storing one byte at
	// a time spent most of this package's test time in the detector.
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func TestPutGetZeroCopy(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 8 << 20})
	c := dial(t, s)
	id := ids.New()
	data := randomBytes(1<<20, 1)
	if err := c.Put(id, [][]byte{data[:10], data[10:]}, Info{Owner: "o", CallSite: "main.f"}); err != nil {
		t.Fatal(err)
	}
	b, err := c.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), data) {
		t.Fatal("bytes differ")
	}
	if !InView(unsafe.Pointer(&b.Bytes()[0])) {
		t.Fatal("Get copied: the buffer is not in the mapped view space")
	}
	want := "memfd:raygo-object-store"
	if s.RegionKind() == "file" {
		want = "/raygo-object-store-" // an unlinked file: "… (deleted)"
	}
	if m := mappingOf(t, unsafe.Pointer(&b.Bytes()[0])); !strings.Contains(m, want) {
		t.Fatalf("the buffer's memory is not a mapping of the store's region: %q", m)
	}
	st := s.Stats(5)
	if st.InUseCount != 1 || st.PrimaryCount != 1 || len(st.Largest) != 1 || st.Largest[0].CallSite != "main.f" {
		t.Fatalf("stats while pinned: %+v", st)
	}
	b.Release()
	b.Release() // twice is fine
	// A second put of the same id is a no-op.
	if err := c.Put(id, [][]byte{[]byte("other")}, Info{}); err != nil {
		t.Fatal(err)
	}
	s.Delete(id)
	waitFor(t, func() bool { return s.Stats(0).Used == 0 })
	if _, err := c.Get(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

// A released Buffer's bytes fault when touched: misuse is loud, never a
// silent read of another object.
func TestReleasedBufferFaults(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 1 << 20})
	c := dial(t, s)
	id := ids.New()
	if err := c.Put(id, [][]byte{randomBytes(200<<10, 2)}, Info{}); err != nil {
		t.Fatal(err)
	}
	b, err := c.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	stale := b.Bytes()
	b.Release()
	s.Delete(id)
	// Reuse the memory for another object.
	if err := c.Put(ids.New(), [][]byte{randomBytes(200<<10, 3)}, Info{}); err != nil {
		t.Fatal(err)
	}
	if !faults(func() { sink = stale[100] }) {
		t.Fatal("reading a released buffer did not fault")
	}
	w, err := c.Create(ids.New(), 8192, Info{})
	if err != nil {
		t.Fatal(err)
	}
	wb := w.Bytes()
	wb[0] = 1
	if err := w.Seal(); err != nil {
		t.Fatal(err)
	}
	if !faults(func() { wb[1] = 2 }) {
		t.Fatal("writing to a sealed object did not fault")
	}
}

func faults(f func()) (faulted bool) {
	done := make(chan bool)
	go func() {
		defer func() { done <- recover() != nil }()
		debug.SetPanicOnFault(true)
		f()
	}()
	return <-done
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// More objects than the store holds spill to disk and come back intact.
func TestSpillAndRestore(t *testing.T) {
	spill := t.TempDir()
	s := newTestStore(t, Config{Capacity: 16 << 20, SpillDir: spill})
	c := dial(t, s)
	const n, size = 12, 3 << 20
	idList := make([]ids.ID, n)
	sums := make([][32]byte, n)
	for i := range idList {
		idList[i] = ids.New()
		data := randomBytes(size, uint64(i+10))
		sums[i] = sha256.Sum256(data)
		if err := c.Put(idList[i], [][]byte{data}, Info{CallSite: "spill"}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	st := s.Stats(0)
	if st.SpillsTotal == 0 || st.SpilledCount == 0 {
		t.Fatalf("nothing spilled: %+v", st)
	}
	for round := 0; round < 2; round++ {
		for i, id := range idList {
			b, err := c.Get(id)
			if err != nil {
				t.Fatalf("get %d: %v", i, err)
			}
			if sha256.Sum256(b.Bytes()) != sums[i] {
				t.Fatalf("object %d came back different", i)
			}
			b.Release()
		}
	}
	if st := s.Stats(0); st.RestoresTotal == 0 {
		t.Fatalf("nothing restored: %+v", st)
	}
	s.Delete(idList...)
	waitFor(t, func() bool { st := s.Stats(0); return st.Objects == 0 && st.Used == 0 })
	files, _ := os.ReadDir(s.SpillPath())
	if len(files) != 0 {
		t.Fatalf("spill files left after delete: %d", len(files))
	}
}

// An object larger than the whole store lives in a file of its own; with
// spilling disabled it fails at once.
func TestObjectLargerThanStore(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 1 << 20, SpillDir: t.TempDir()})
	c := dial(t, s)
	id := ids.New()
	data := randomBytes(5<<20, 4)
	if err := c.Put(id, [][]byte{data}, Info{}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(0); st.FileCount != 1 || st.Used != 0 {
		t.Fatalf("stats: %+v", st)
	}
	b, err := c.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), data) {
		t.Fatal("file-backed object differs")
	}
	b.Release()
	d, release, err := c.Pin(id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d, data) {
		t.Fatal("Pin differs")
	}
	release()
	s.Delete(id)

	s2 := newTestStore(t, Config{Capacity: 1 << 20})
	c2 := dial(t, s2)
	start := time.Now()
	err = c2.Put(ids.New(), [][]byte{data}, Info{})
	var full *errs.ObjectStoreFullError
	if !errors.Is(err, errs.ErrObjectTooLarge) || !errors.As(err, &full) || !strings.Contains(err.Error(), "larger than the object store") {
		t.Fatalf("put of an object larger than the store: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("too-large put took %v; it must fail at once", time.Since(start))
	}
}

// With nothing spillable, a put waits, then fails with a report of what
// holds the memory; space freed during the wait lets it through.
func TestBackPressure(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 8 << 20, PutTimeout: 300 * time.Millisecond})
	c := dial(t, s)
	first := ids.New()
	if err := c.Put(first, [][]byte{make([]byte, 6<<20)}, Info{CallSite: "main.big"}); err != nil {
		t.Fatal(err)
	}
	b, err := c.Get(first)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Put(ids.New(), [][]byte{make([]byte, 6<<20)}, Info{})
	if !errors.Is(err, errs.ErrObjectStoreFull) {
		t.Fatalf("put into a full store: %v", err)
	}
	for _, want := range []string{"8.0 MiB", "mapped by readers", "main.big", "test pid", "spilling is disabled"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("full error %q does not mention %q", err, want)
		}
	}
	b.Release()

	s.cfg.PutTimeout = 10 * time.Second
	done := make(chan error, 1)
	go func() { done <- c.Put(ids.New(), [][]byte{make([]byte, 6<<20)}, Info{}) }()
	time.Sleep(50 * time.Millisecond)
	s.Delete(first)
	if err := <-done; err != nil {
		t.Fatalf("put waiting for space: %v", err)
	}
}

func TestConcurrentReaders(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 8 << 20})
	writer := dial(t, s)
	id := ids.New()
	data := randomBytes(2<<20, 5)
	sum := sha256.Sum256(data)
	if err := writer.Put(id, [][]byte{data}, Info{}); err != nil {
		t.Fatal(err)
	}
	clients := []*Client{writer, dial(t, s), dial(t, s)}
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for g := 0; g < 24; g++ {
		c := clients[g%len(clients)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				b, err := c.Get(id)
				if err != nil {
					errc <- err
					return
				}
				if sha256.Sum256(b.Bytes()) != sum {
					errc <- errors.New("reader saw different bytes")
				}
				b.Release()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Stats(0).InUseCount == 0 })
}

// Deleting an object readers still map keeps it until they release it;
// a client that disconnects releases everything it held.
func TestDeleteWhilePinnedAndDisconnect(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 4 << 20})
	c := dial(t, s)
	id := ids.New()
	data := randomBytes(1<<20, 6)
	if err := c.Put(id, [][]byte{data}, Info{}); err != nil {
		t.Fatal(err)
	}
	b, err := c.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	s.Delete(id)
	if !bytes.Equal(b.Bytes(), data) || s.Stats(0).Used == 0 {
		t.Fatal("a deleted object vanished while mapped")
	}
	b.Release()
	waitFor(t, func() bool { return s.Stats(0).Used == 0 })

	other, err := Dial(s.cfg.SocketName, testToken, "other")
	if err != nil {
		t.Fatal(err)
	}
	id2 := ids.New()
	if err := other.Put(id2, [][]byte{data}, Info{}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Get(id2); err != nil {
		t.Fatal(err)
	}
	w, err := other.Create(ids.New(), 1<<20, Info{})
	if err != nil {
		t.Fatal(err)
	}
	_ = w
	other.Close()
	s.Delete(id2)
	waitFor(t, func() bool { st := s.Stats(0); return st.Used == 0 && st.Objects == 0 })
}

func TestBadToken(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 1 << 20})
	if _, err := Dial(s.cfg.SocketName, "wrong", "x"); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("dial with a bad token: %v", err)
	}
}

// Secondary copies are evicted least recently used first; primaries stay.
func TestEvictSecondaryLRU(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 4 << 20, PutTimeout: 200 * time.Millisecond})
	c := dial(t, s)
	sec := []ids.ID{ids.New(), ids.New(), ids.New()}
	for _, id := range sec {
		if err := c.Put(id, [][]byte{make([]byte, 1<<20)}, Info{Secondary: true}); err != nil {
			t.Fatal(err)
		}
	}
	// Touch the first so the second is the least recently used.
	b, err := c.Get(sec[0])
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	waitFor(t, func() bool { return s.Stats(0).InUseCount == 0 })
	if err := c.Put(ids.New(), [][]byte{make([]byte, 2<<20)}, Info{}); err != nil {
		t.Fatal(err)
	}
	if s.Contains(sec[1]) || !s.Contains(sec[0]) {
		t.Fatalf("eviction order: has[0]=%v has[1]=%v has[2]=%v", s.Contains(sec[0]), s.Contains(sec[1]), s.Contains(sec[2]))
	}
	if st := s.Stats(0); st.EvictionsTotal == 0 {
		t.Fatalf("no evictions counted: %+v", st)
	}
}

// A writer killed in the middle of a create leaves no space behind.
func TestWriterKilledMidCreate(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 8 << 20})
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$")
	cmd.Env = append(os.Environ(), "OBJSTORE_HELPER_SOCKET="+s.cfg.SocketName)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "created") {
		t.Fatalf("helper writer: err=%v output=%s", err, out)
	}
	waitFor(t, func() bool { st := s.Stats(0); return st.Used == 0 && st.CreatingCount == 0 && st.Objects == 0 })
	// The space is usable again.
	c := dial(t, s)
	if err := c.Put(ids.New(), [][]byte{make([]byte, 7<<20)}, Info{}); err != nil {
		t.Fatal(err)
	}
}

// A reader killed while it maps an object releases its pin: the object
// goes once its owner deletes it.
func TestReaderKilledWhileMapping(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 8 << 20})
	c := dial(t, s)
	id := ids.New()
	if err := c.Put(id, [][]byte{make([]byte, 4<<20)}, Info{}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$")
	cmd.Env = append(os.Environ(), "OBJSTORE_HELPER_SOCKET="+s.cfg.SocketName, "OBJSTORE_HELPER_READ="+id.String())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "mapped") {
		t.Fatalf("helper reader: err=%v output=%s", err, out)
	}
	s.Delete(id)
	waitFor(t, func() bool { st := s.Stats(0); return st.Used == 0 && st.Objects == 0 && st.InUseCount == 0 })
}

// TestHelperWriter is the child of TestWriterKilledMidCreate and
// TestReaderKilledWhileMapping: it creates an object and writes half of
// it, or maps one, then kills itself.
func TestHelperWriter(t *testing.T) {
	name := os.Getenv("OBJSTORE_HELPER_SOCKET")
	if name == "" {
		t.Skip("helper process only")
	}
	c, err := Dial(name, testToken, "doomed")
	if err != nil {
		t.Fatal(err)
	}
	if hex := os.Getenv("OBJSTORE_HELPER_READ"); hex != "" {
		id, ok := ids.Parse(hex)
		if !ok {
			t.Fatalf("bad id %q", hex)
		}
		b, err := c.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		sink = b.Bytes()[0]
		fmt.Println("mapped")
	} else {
		w, err := c.Create(ids.New(), 6<<20, Info{})
		if err != nil {
			t.Fatal(err)
		}
		copy(w.Bytes(), make([]byte, 3<<20))
		fmt.Println("created")
	}
	os.Stdout.Sync()
	p, _ := os.FindProcess(os.Getpid())
	p.Kill()
	select {}
}

// A spill that cannot be written fails the put with a clear error after
// a bounded number of tries, never an endless loop.
func TestSpillFailureIsBounded(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 8 << 20, SpillDir: t.TempDir(), PutTimeout: 200 * time.Millisecond})
	c := dial(t, s)
	if err := c.Put(ids.New(), [][]byte{make([]byte, 6<<20)}, Info{}); err != nil {
		t.Fatal(err)
	}
	// Break the spill directory: a file where the directory was.
	dir := s.SpillPath()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	start := time.Now()
	err := c.Put(ids.New(), [][]byte{make([]byte, 6<<20)}, Info{})
	if !errors.Is(err, errs.ErrObjectStoreFull) || !strings.Contains(err.Error(), "spilling failed") || !strings.Contains(err.Error(), "3 times") {
		t.Fatalf("put with a broken spill directory: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("failing put took %v", d)
	}
}

func TestStaleSpillDirsRemoved(t *testing.T) {
	root := t.TempDir()
	dead := filepath.Join(root, "node-dead-999999999")
	if err := os.MkdirAll(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dead, "x.spill"), []byte("x"), 0o600)
	newTestStore(t, Config{Capacity: 1 << 20, SpillDir: root})
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Fatal("a dead daemon's spill directory survived node start")
	}
}

// A get of an object another process is still writing waits for its seal
// (or, if the writer gives up, finds nothing).
func TestGetWaitsForSeal(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 4 << 20})
	writer, reader := dial(t, s), dial(t, s)
	for _, seal := range []bool{true, false} {
		id := ids.New()
		w, err := writer.Create(id, 1<<20, Info{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := writer.Get(id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("writer sees its own unsealed object: %v", err)
		}
		got := make(chan error, 1)
		go func() {
			b, err := reader.Get(id)
			if err == nil {
				if b.Bytes()[0] != 7 {
					err = errors.New("reader saw the object before it was written")
				}
				b.Release()
			}
			got <- err
		}()
		select {
		case err := <-got:
			t.Fatalf("get returned before the seal: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		w.Bytes()[0] = 7
		if seal {
			if err := w.Seal(); err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != nil {
				t.Fatalf("get after seal: %v", err)
			}
			s.Delete(id)
		} else {
			w.Abort()
			if err := <-got; !errors.Is(err, ErrNotFound) {
				t.Fatalf("get after abort: %v", err)
			}
		}
	}
	waitFor(t, func() bool { return s.Stats(0).Used == 0 })
}

// A random workload from several clients at once, on a store too small for
// it: puts of mixed sizes (some larger than the store), gets that check
// every byte, releases, deletes. Nothing is lost or corrupted, and at the
// end everything is freed: no memory, no objects, no spill files.
func TestRandomWorkload(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 24 << 20, SpillDir: t.TempDir(), PutTimeout: 5 * time.Second})
	type obj struct {
		id   ids.ID
		size int
		sum  [32]byte
	}
	var mu sync.Mutex
	var live []obj
	sizes := []int{0, 1, 4096, 100 << 10, 1 << 20, 3<<20 + 17, 9 << 20, 30 << 20}
	const clients, ops = 4, 50
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	for g := 0; g < clients; g++ {
		c := dial(t, s)
		r := rand.New(rand.NewPCG(uint64(g), 99))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < ops; i++ {
				mu.Lock()
				n := len(live)
				mu.Unlock()
				switch op := r.IntN(10); {
				case op < 4 || n == 0: // put
					o := obj{id: ids.New(), size: sizes[r.IntN(len(sizes))]}
					data := randomBytes(o.size, r.Uint64())
					o.sum = sha256.Sum256(data)
					if err := c.Put(o.id, [][]byte{data}, Info{}); err != nil {
						errc <- fmt.Errorf("put %d bytes: %w", o.size, err)
						return
					}
					mu.Lock()
					live = append(live, o)
					mu.Unlock()
				case op < 8: // get and check
					mu.Lock()
					o := live[r.IntN(len(live))]
					mu.Unlock()
					b, err := c.Get(o.id)
					if errors.Is(err, ErrNotFound) {
						continue // deleted meanwhile by another client
					}
					if err != nil {
						errc <- err
						return
					}
					if len(b.Bytes()) != o.size || sha256.Sum256(b.Bytes()) != o.sum {
						errc <- fmt.Errorf("object of %d bytes came back different", o.size)
						return
					}
					b.Release()
				default: // delete
					mu.Lock()
					k := r.IntN(len(live))
					o := live[k]
					live = append(live[:k], live[k+1:]...)
					mu.Unlock()
					s.Delete(o.id)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	st := s.Stats(0)
	t.Logf("spills %d, restores %d, objects in files %d, live objects %d", st.SpillsTotal, st.RestoresTotal, st.FileCount, len(live))
	for _, o := range live {
		s.Delete(o.id)
	}
	waitFor(t, func() bool { st := s.Stats(0); return st.Used == 0 && st.Objects == 0 })
	if files, _ := os.ReadDir(s.SpillPath()); len(files) != 0 {
		t.Fatalf("%d spill files left after every object was deleted", len(files))
	}
	if err := s.checkAllocator(); err != nil {
		t.Fatal(err)
	}
}

// A pre-faulted region has its pages in memory before anything is put.
func TestPrefault(t *testing.T) {
	before := rssShmem(t)
	s := newTestStore(t, Config{Capacity: 64 << 20, Prefault: true})
	<-s.reg.faultDone
	if got := rssShmem(t) - before; got < 60<<20 {
		t.Fatalf("after pre-faulting a 64 MiB region, this process maps %d more bytes of shared memory", got)
	}
}

func rssShmem(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "RssShmem:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	t.Skip("no RssShmem in /proc/self/status")
	return 0
}

func TestDefaultCapacity(t *testing.T) {
	t.Setenv(EnvCapacity, "")
	c, err := DefaultCapacity()
	if err != nil || c < 64<<20 || c%PageSize != 0 {
		t.Fatalf("DefaultCapacity() = %d, %v", c, err)
	}
	t.Setenv(EnvCapacity, "1048577")
	if c, err := DefaultCapacity(); err != nil || c != 1<<20 {
		t.Fatalf("with %s=1048577: %d, %v; want 1 MiB (page-rounded)", EnvCapacity, c, err)
	}
	for _, bad := range []string{"lots", "-5", "100"} {
		t.Setenv(EnvCapacity, bad)
		if _, err := DefaultCapacity(); err == nil || !strings.Contains(err.Error(), EnvCapacity) {
			t.Fatalf("%s=%q: %v, want an error naming the variable", EnvCapacity, bad, err)
		}
	}
	if _, err := New(Config{Capacity: 100}); err == nil || !strings.Contains(err.Error(), "below one page") {
		t.Fatalf("a store of 100 bytes: %v", err)
	}
}

// A client may have at most MaxPendingPerClient creates and gets waiting;
// the rest are refused at once.
func TestPendingLimit(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 1 << 20, PutTimeout: 4 * time.Second})
	c := dial(t, s)
	if err := c.Put(ids.New(), [][]byte{make([]byte, 1<<20)}, Info{}); err != nil { // fills the store
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for range MaxPendingPerClient + 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Put(ids.New(), [][]byte{make([]byte, 8192)}, Info{})
			if err != nil && strings.Contains(err.Error(), "in flight") {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if refused < 10 {
		t.Fatalf("%d creates refused, want at least 10 beyond the limit of %d", refused, MaxPendingPerClient)
	}
}

// mappingOf returns the /proc/self/maps line of the mapping holding p.
func mappingOf(t *testing.T, p unsafe.Pointer) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps")
	}
	a := uint64(uintptr(p))
	for _, line := range strings.Split(string(data), "\n") {
		var lo, hi uint64
		if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil && a >= lo && a < hi {
			return line
		}
	}
	return ""
}
