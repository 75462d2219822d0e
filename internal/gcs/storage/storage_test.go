package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/gcs/storage/storagetest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// backends opens each backend for a test; reopen opens the same storage
// again (as a restarted head would).
type backend struct {
	name   string
	open   func(t *testing.T) Store
	reopen func(t *testing.T) Store // nil: nothing survives
}

func backends(t *testing.T) []backend {
	dir := t.TempDir()
	path := filepath.Join(dir, "gcs.db")
	var url string
	redisOpen := func(t *testing.T) Store {
		if url == "" {
			url = storagetest.StartRedis(t)
		}
		s, err := OpenRedis(ctx(t), url, "test")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	fileOpen := func(t *testing.T) Store {
		s, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return []backend{
		{name: "memory", open: func(*testing.T) Store { return NewMemory() }},
		{name: "file", open: fileOpen, reopen: fileOpen},
		{name: "redis", open: redisOpen, reopen: redisOpen},
	}
}

func scanAll(t *testing.T, s Store, table string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := s.Scan(ctx(t), table, func(k string, v []byte) error {
		if _, dup := out[k]; dup {
			return fmt.Errorf("key %s scanned twice", k)
		}
		out[k] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStores: every backend stores, reads, scans and deletes records per
// table, refuses bad names and sizes, and (but Memory) keeps them across
// a reopen.
func TestStores(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			c := ctx(t)
			if err := s.Put(c, "jobs", KV{"a", []byte("1")}, KV{"b", []byte("2")}); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(c, "actors", KV{"a", []byte("actor a")}); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(c, "jobs", KV{"a", []byte("1 again")}); err != nil {
				t.Fatal(err)
			}
			if v, ok, err := s.Get(c, "jobs", "a"); err != nil || !ok || string(v) != "1 again" {
				t.Fatalf("Get(jobs, a) = %q, %v, %v", v, ok, err)
			}
			if _, ok, err := s.Get(c, "jobs", "zz"); err != nil || ok {
				t.Fatalf("Get of an absent key: %v, %v", ok, err)
			}
			if _, ok, err := s.Get(c, "nosuchtable", "a"); err != nil || ok {
				t.Fatalf("Get in an absent table: %v, %v", ok, err)
			}
			big := bytes.Repeat([]byte{7}, 1<<20)
			keys := map[string]string{"a": "1 again", "b": "2"}
			var many []KV
			for i := range 1500 { // more than one HSCAN batch
				k := "k" + strconv.Itoa(i)
				many = append(many, KV{k, []byte(k)})
				keys[k] = k
			}
			if err := s.Put(c, "jobs", many...); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(c, "kv", KV{"big", big}); err != nil {
				t.Fatal(err)
			}
			if got := scanAll(t, s, "jobs"); !maps.Equal(got, keys) {
				t.Fatalf("scan of jobs: %d records, want %d", len(got), len(keys))
			}
			if err := s.Delete(c, "jobs", "b", "never"); err != nil {
				t.Fatal(err)
			}
			delete(keys, "b")
			if err := s.Delete(c, "nosuchtable", "x"); err != nil {
				t.Fatalf("Delete in an absent table: %v", err)
			}
			stop := errors.New("stop")
			if err := s.Scan(c, "jobs", func(string, []byte) error { return stop }); !errors.Is(err, stop) {
				t.Fatalf("Scan did not return fn's error: %v", err)
			}
			for _, bad := range []func() error{
				func() error { return s.Put(c, "", KV{"a", nil}) },
				func() error { return s.Put(c, "a:b", KV{"a", nil}) },
				func() error { return s.Put(c, "jobs", KV{"", nil}) },
				func() error { return s.Put(c, "jobs", KV{string(make([]byte, MaxKeyBytes+1)), nil}) },
				func() error { return s.Delete(c, "jobs", "") },
			} {
				if err := bad(); !errors.Is(err, ErrInvalid) {
					t.Errorf("bad input: %v, want ErrInvalid", err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if b.reopen == nil {
				if s.Persistent() {
					t.Fatal("memory says it is persistent")
				}
				return
			}
			if !s.Persistent() {
				t.Fatal("a persistent backend says it is not")
			}
			s = b.reopen(t)
			defer s.Close()
			if got := scanAll(t, s, "jobs"); !maps.Equal(got, keys) {
				t.Fatalf("after a reopen: %d records in jobs, want %d", len(got), len(keys))
			}
			if v, ok, err := s.Get(c, "kv", "big"); err != nil || !ok || !bytes.Equal(v, big) {
				t.Fatalf("after a reopen, the 1 MiB value: %d bytes, %v, %v", len(v), ok, err)
			}
		})
	}
}

// TestFileIsLocked: a second control store cannot open a file in use; it
// is told which file.
func TestFileIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gcs.db")
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	if _, err := OpenFile(path); err == nil || !bytes.Contains([]byte(err.Error()), []byte(path)) {
		t.Fatalf("a second open of a file in use: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the second open waited %s", d)
	}
}

// TestOpen picks the backend by spec, and a Redis that does not answer
// fails with a message naming its address.
func TestOpen(t *testing.T) {
	if s, err := Open(ctx(t), "", "n"); err != nil || s.Persistent() {
		t.Fatalf(`Open("") = %T, %v`, s, err)
	}
	path := filepath.Join(t.TempDir(), "x.db")
	s, err := Open(ctx(t), path, "n")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*File); !ok {
		t.Fatalf("Open(path) = %T", s)
	}
	s.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	if _, err := Open(ctx(t), "redis://"+addr, "n"); err == nil || !bytes.Contains([]byte(err.Error()), []byte(addr)) {
		t.Fatalf("a Redis that does not answer: %v", err)
	}
	if _, err := Open(ctx(t), "redis://host:notaport", "n"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a bad Redis URL: %v", err)
	}
}

// TestRedisNamespaces: two clusters on one Redis do not see each other's
// records.
func TestRedisNamespaces(t *testing.T) {
	url := storagetest.StartRedis(t)
	a, err := OpenRedis(ctx(t), url, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenRedis(ctx(t), url, "b")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Put(ctx(t), "jobs", KV{"j", []byte("a's")}); err != nil {
		t.Fatal(err)
	}
	if got := scanAll(t, b, "jobs"); len(got) != 0 {
		t.Fatalf("namespace b sees %v", got)
	}
}
