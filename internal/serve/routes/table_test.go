package routes_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/router"
	"github.com/raygo/raygo/internal/serve/routes"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func table(prefix string, urls ...string) []proxy.Route {
	rt := proxy.Route{Prefix: prefix, App: "app", Deployment: "dep", MaxQueuedRequests: -1}
	for i, u := range urls {
		rt.Replicas = append(rt.Replicas, proxy.Replica{ID: "r" + string(rune('0'+i)), Node: "n1", URL: u})
	}
	return []proxy.Route{rt}
}

func TestTableGetBeforeFirstSetWaitsAndTimesOut(t *testing.T) {
	tb := routes.NewTable()
	if v, rs := tb.Current(); v != 0 || rs != nil {
		t.Fatalf("Current of a new table = %d %v, want 0 nil", v, rs)
	}
	for _, since := range []uint64{0, 7} {
		start := time.Now()
		v, rs, err := tb.Get(context.Background(), since, 50*time.Millisecond)
		if err != nil || v != since || rs != nil {
			t.Fatalf("Get(since=%d) on an unset table = %d %v %v, want %d nil nil", since, v, rs, err, since)
		}
		if took := time.Since(start); took < 50*time.Millisecond {
			t.Fatalf("Get(since=%d) returned after %s, before its wait", since, took)
		}
	}
}

func TestTableGetImmediateWhenVersionDiffers(t *testing.T) {
	tb := routes.NewTable()
	v1, err := tb.Set(table("/a", "http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	if v1 == 0 || v1 > 1<<32 {
		t.Fatalf("first version %d, want in [1, 2^32]", v1)
	}
	// Older, newer (a restarted head) and none: all answered at once.
	for _, since := range []uint64{0, v1 - 1, v1 + 1000} {
		start := time.Now()
		v, rs, err := tb.Get(context.Background(), since, time.Minute)
		if err != nil || v != v1 || len(rs) != 1 || rs[0].Prefix != "/a" {
			t.Fatalf("Get(since=%d) = %d %v %v, want %d and the table", since, v, rs, err, v1)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("Get(since=%d) took %s, want at once", since, took)
		}
	}
	// Current: no wait either.
	v, _, err := tb.Get(context.Background(), v1, 0)
	if err != nil || v != v1 {
		t.Fatalf("Get(current, wait 0) = %d %v, want %d nil", v, err, v1)
	}
}

func TestTableGetWakesOnSet(t *testing.T) {
	tb := routes.NewTable()
	v1, _ := tb.Set(table("/a", "http://127.0.0.1:1"))
	type result struct {
		v   uint64
		rs  []proxy.Route
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		v, rs, err := tb.Get(context.Background(), v1, 30*time.Second)
		done <- result{v, rs, err, time.Now()}
	}()
	time.Sleep(50 * time.Millisecond) // let it wait; the result does not depend on it
	setAt := time.Now()
	v2, err := tb.Set(table("/b", "http://127.0.0.1:2"))
	if err != nil {
		t.Fatal(err)
	}
	if v2 != v1+1 {
		t.Fatalf("second version %d, want %d", v2, v1+1)
	}
	r := <-done
	if r.err != nil || r.v != v2 || r.rs[0].Prefix != "/b" {
		t.Fatalf("waiting Get = %d %v %v, want %d /b", r.v, r.rs, r.err, v2)
	}
	if lag := r.at.Sub(setAt); lag > time.Second {
		t.Fatalf("waiting Get woke %s after Set", lag)
	}
}

func TestTableManyWaiters(t *testing.T) {
	tb := routes.NewTable()
	v1, _ := tb.Set(table("/a", "http://127.0.0.1:1"))
	const n = 200
	var wg sync.WaitGroup
	got := make(chan uint64, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, err := tb.Get(context.Background(), v1, 30*time.Second)
			if err != nil {
				t.Error(err)
			}
			got <- v
		}()
	}
	time.Sleep(50 * time.Millisecond)
	v2, _ := tb.Set(table("/b", "http://127.0.0.1:2"))
	wg.Wait()
	close(got)
	count := 0
	for v := range got {
		if v != v2 {
			t.Fatalf("a waiter got version %d, want %d", v, v2)
		}
		count++
	}
	if count != n {
		t.Fatalf("%d waiters answered, want %d", count, n)
	}
}

func TestTableGetContextAndClose(t *testing.T) {
	tb := routes.NewTable()
	v1, _ := tb.Set(table("/a", "http://127.0.0.1:1"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, _, err := tb.Get(ctx, v1, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get past ctx's deadline: %v, want DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := tb.Get(context.Background(), v1, time.Minute); done <- err }()
	time.Sleep(20 * time.Millisecond)
	tb.Close()
	tb.Close() // idempotent
	if err := <-done; !errors.Is(err, routes.ErrClosed) {
		t.Fatalf("waiting Get at Close: %v, want ErrClosed", err)
	}
	if _, _, err := tb.Get(context.Background(), 0, 0); !errors.Is(err, routes.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	if _, err := tb.Set(nil); !errors.Is(err, routes.ErrClosed) {
		t.Fatalf("Set after Close: %v, want ErrClosed", err)
	}
}

func TestTableSet(t *testing.T) {
	tb := routes.NewTable()
	in := table("/a", "http://127.0.0.1:1")
	v1, err := tb.Set(in)
	if err != nil {
		t.Fatal(err)
	}
	// Set copies: changing the caller's slices changes nothing.
	in[0].Replicas[0].URL = "http://127.0.0.1:9"
	in[0].Prefix = "/z"
	if _, rs := tb.Current(); rs[0].Prefix != "/a" || rs[0].Replicas[0].URL != "http://127.0.0.1:1" {
		t.Fatalf("the table changed with the caller's slice: %+v", rs)
	}
	// An equal table keeps the version.
	if v, err := tb.Set(table("/a", "http://127.0.0.1:1")); err != nil || v != v1 {
		t.Fatalf("Set of an equal table = %d %v, want %d", v, err, v1)
	}
	// A replica's state is a change.
	changed := table("/a", "http://127.0.0.1:1")
	changed[0].Replicas[0].State = router.Draining
	if v, err := tb.Set(changed); err != nil || v != v1+1 {
		t.Fatalf("Set with a draining replica = %d %v, want %d", v, err, v1+1)
	}
	// Empty is a table too.
	if v, err := tb.Set(nil); err != nil || v != v1+2 {
		t.Fatalf("Set(nil) = %d %v, want %d", v, err, v1+2)
	}
}

func TestTableSetRefusesInvalid(t *testing.T) {
	cases := []struct {
		name string
		rs   []proxy.Route
		want string
	}{
		{"prefix without slash", []proxy.Route{{Prefix: "shop", App: "a", Deployment: "d"}}, `does not start with "/"`},
		{"duplicate prefix", []proxy.Route{{Prefix: "/a", App: "a", Deployment: "d"}, {Prefix: "/a", App: "a", Deployment: "e"}}, "also routes[0]"},
		{"replica without scheme", []proxy.Route{{Prefix: "/a", App: "a", Deployment: "d", Replicas: []proxy.Replica{{ID: "r", URL: "ftp://127.0.0.1:1"}}}}, "scheme must be http"},
		{"no app", []proxy.Route{{Prefix: "/a", Deployment: "d"}}, "App is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := routes.NewTable()
			_, err := tb.Set(c.rs)
			if !errors.Is(err, routes.ErrInvalid) || !errors.Is(err, proxy.ErrInvalid) {
				t.Fatalf("Set = %v, want ErrInvalid and proxy.ErrInvalid", err)
			}
			if !contains(err.Error(), c.want) {
				t.Fatalf("Set = %q, want it to say %q", err, c.want)
			}
			if v, _ := tb.Current(); v != 0 {
				t.Fatalf("a refused table set version %d", v)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
