package runtimeenv

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var tree = map[string]string{
	"main.txt":        "hello\n",
	"b/data.csv":      strings.Repeat("1,2,3\n", 1000),
	"a/nested/x.json": `{"x": 1}`,
	"skip.log":        "noise",
	"cache/big.bin":   "cached",
}

func TestPackageIsDeterministic(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	writeTree(t, d1, tree)
	writeTree(t, d2, tree)
	if err := os.Chmod(filepath.Join(d1, "main.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(d2, "main.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Other times must not change the bytes.
	old := time.Now().Add(-72 * time.Hour)
	if err := os.Chtimes(filepath.Join(d2, "b", "data.csv"), old, old); err != nil {
		t.Fatal(err)
	}
	p1, err := Package(d1, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Package(d2, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Package(d1, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p1.Name != p2.Name || p1.Name != again.Name || !bytes.Equal(p1.Data, p2.Data) {
		t.Fatalf("same tree, different packages: %s %s %s", p1.Name, p2.Name, again.Name)
	}
	sum := sha256.Sum256(p1.Data)
	if p1.Name != "sha256:"+hex.EncodeToString(sum[:]) || p1.Files != 5 {
		t.Fatalf("name %s files %d", p1.Name, p1.Files)
	}
	writeTree(t, d2, map[string]string{"main.txt": "changed\n"})
	p3, _ := Package(d2, PackOptions{})
	if p3.Name == p1.Name {
		t.Fatal("changed content, same name")
	}
	// Entries are sorted; modes kept.
	zr, _ := zip.NewReader(bytes.NewReader(p1.Data), int64(len(p1.Data)))
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Name == "main.txt" && f.Mode().Perm() != 0o755 {
			t.Errorf("main.txt mode %v, want 0755", f.Mode())
		}
	}
	want := "a/ a/nested/ a/nested/x.json b/ b/data.csv cache/ cache/big.bin main.txt skip.log"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("entries %q, want %q", got, want)
	}
}

func TestPackageExcludes(t *testing.T) {
	d := t.TempDir()
	writeTree(t, d, tree)
	p, err := Package(d, PackOptions{Excludes: []string{"*.log", "cache/", "a/nested/x.json"}})
	if err != nil {
		t.Fatal(err)
	}
	zr, _ := zip.NewReader(bytes.NewReader(p.Data), int64(len(p.Data)))
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	if got, want := strings.Join(names, " "), "a/ a/nested/ b/ b/data.csv main.txt"; got != want {
		t.Fatalf("entries %q, want %q", got, want)
	}
	if _, err := Package(d, PackOptions{Excludes: []string{"[x"}}); err == nil || !strings.Contains(err.Error(), `"[x"`) {
		t.Fatalf("bad pattern: %v", err)
	}
}

func TestPackageLimit(t *testing.T) {
	d := t.TempDir()
	data := make([]byte, 300<<10)
	_, _ = rand.Read(data)
	if err := os.WriteFile(filepath.Join(d, "random.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Package(d, PackOptions{MaxBytes: 100 << 10})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	for _, want := range []string{d, "300.0 KiB", "100.0 KiB limit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if _, err := Package(d, PackOptions{MaxBytes: 1 << 20}); err != nil {
		t.Fatalf("under the limit: %v", err)
	}
}

func TestPackageLinks(t *testing.T) {
	d := t.TempDir()
	writeTree(t, d, map[string]string{"real.txt": "content", "sub/f": "x"})
	if err := os.Symlink("real.txt", filepath.Join(d, "link.txt")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	p, err := Package(d, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	zr, _ := zip.NewReader(bytes.NewReader(p.Data), int64(len(p.Data)))
	for _, f := range zr.File {
		if f.Name == "link.txt" {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) != "content" || !f.Mode().IsRegular() {
				t.Fatalf("link.txt packed as %v %q, want the file's content", f.Mode(), b)
			}
		}
	}
	if err := os.Symlink("sub", filepath.Join(d, "dirlink")); err != nil {
		t.Fatal(err)
	}
	if _, err := Package(d, PackOptions{}); err == nil || !strings.Contains(err.Error(), "dirlink") {
		t.Fatalf("link to a directory: %v", err)
	}
	if _, err := Package(d, PackOptions{Excludes: []string{"dirlink"}}); err != nil {
		t.Fatalf("excluded link: %v", err)
	}
}

func fetchBytes(b []byte) Fetch {
	return func(_ context.Context, w io.Writer) error { _, err := w.Write(b); return err }
}

func TestUnpackRoundTrip(t *testing.T) {
	d := t.TempDir()
	writeTree(t, d, tree)
	_ = os.Chmod(filepath.Join(d, "main.txt"), 0o750)
	p, err := Package(d, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewCache(filepath.Join(t.TempDir(), "cache"))
	dir, err := c.Unpack(context.Background(), p.Name, fetchBytes(p.Data))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != p.Hex {
		t.Fatalf("unpacked into %s", dir)
	}
	for name, content := range tree {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || string(b) != content {
			t.Fatalf("%s: %q %v", name, b, err)
		}
	}
	st, _ := os.Stat(filepath.Join(dir, "main.txt"))
	if st.Mode().Perm() != 0o750 {
		t.Fatalf("mode %v, want 0750", st.Mode())
	}
	// Wrong bytes for the name are refused.
	c2 := NewCache(filepath.Join(t.TempDir(), "cache"))
	if _, err := c2.Unpack(context.Background(), p.Name, fetchBytes(append([]byte{}, p.Data[:len(p.Data)-1]...))); err == nil ||
		!strings.Contains(err.Error(), "arrived with content hash") {
		t.Fatalf("truncated package: %v", err)
	}
	if _, err := c2.Unpack(context.Background(), "./local/dir", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
}

func TestUnpackRefusesZipSlip(t *testing.T) {
	for _, name := range []string{"../evil", "a/../../evil", "/abs/evil", "a\\..\\..\\evil"} {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("ok.txt")
		_, _ = w.Write([]byte("ok"))
		w, _ = zw.CreateHeader(&zip.FileHeader{Name: name})
		_, _ = w.Write([]byte("evil"))
		_ = zw.Close()
		sum := sha256.Sum256(buf.Bytes())
		root := t.TempDir()
		c := NewCache(filepath.Join(root, "cache"))
		_, err := c.Unpack(context.Background(), NameOf(hex.EncodeToString(sum[:])), fetchBytes(buf.Bytes()))
		if !errors.Is(err, ErrUnsafeEntry) {
			t.Errorf("%q: got %v, want ErrUnsafeEntry", name, err)
		}
		if _, err := os.Stat(filepath.Join(root, "evil")); err == nil {
			t.Errorf("%q: the entry was written outside", name)
		}
		left, _ := os.ReadDir(c.Dir())
		if len(left) != 0 {
			t.Errorf("%q: left %d files in the cache", name, len(left))
		}
	}
}

func TestUnpackConcurrentCallersUnpackOnce(t *testing.T) {
	d := t.TempDir()
	writeTree(t, d, tree)
	p, err := Package(d, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewCache(filepath.Join(t.TempDir(), "cache"))
	var fetches atomic.Int32
	release := make(chan struct{})
	fetch := func(_ context.Context, w io.Writer) error {
		fetches.Add(1)
		<-release // every caller is waiting by now, or soon
		_, err := w.Write(p.Data)
		return err
	}
	const n = 16
	var wg sync.WaitGroup
	dirs := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = c.Unpack(context.Background(), p.Name, fetch)
		}()
	}
	// Wait until the first fetch started, then let it go.
	for fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("caller %d: %s %v", i, dirs[i], errs[i])
		}
	}
	if got := fetches.Load(); got != 1 {
		t.Fatalf("%d fetches, want 1", got)
	}
	// Later callers find it unpacked without fetching.
	if _, err := c.Unpack(context.Background(), p.Name, fetch); err != nil || fetches.Load() != 1 {
		t.Fatalf("cached: %v, %d fetches", err, fetches.Load())
	}
}

func TestEnv(t *testing.T) {
	good := Env{EnvVars: map[string]string{"A": "1"}, WorkingDir: NameOf(strings.Repeat("a", 64))}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	back, err := ParseJSON(good.JSON())
	if err != nil || back.WorkingDir != good.WorkingDir || back.EnvVars["A"] != "1" {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	for _, tc := range []struct {
		env  Env
		want string
	}{
		{Env{EnvVars: map[string]string{"": "x"}}, `name ""`},
		{Env{EnvVars: map[string]string{"A=B": "x"}}, `name "A=B"`},
		{Env{EnvVars: map[string]string{"A": "x\x00"}}, "NUL"},
		{Env{WorkingDir: "/home/me/app"}, "uploaded package"},
		{Env{WorkingDir: "sha256:ABC"}, "64 lowercase hex"},
	} {
		if err := tc.env.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want one naming %q", tc.env, err, tc.want)
		}
	}
	if _, err := ParseJSON(`{"pip": ["x"]}`); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown field: %v", err)
	}
	m := Merge(Env{EnvVars: map[string]string{"A": "job", "B": "job"}, WorkingDir: "w1"}, Env{EnvVars: map[string]string{"B": "task"}})
	if m.WorkingDir != "w1" || m.EnvVars["A"] != "job" || m.EnvVars["B"] != "task" {
		t.Errorf("merge: %+v", m)
	}
	if Key(nil) != "" || Key(good.Proto()) == "" || Key(good.Proto()) != Key(FromProto(good.Proto()).Proto()) {
		t.Error("keys")
	}
	other := Env{EnvVars: map[string]string{"A": "2"}}
	if Key(other.Proto()) == Key(good.Proto()) {
		t.Error("different envs, same key")
	}
}
