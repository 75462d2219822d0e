package stopper

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGoAndStop(t *testing.T) {
	s := New()
	started := make(chan struct{}, 2)
	for range 2 {
		if err := s.Go("loop", func(ctx context.Context) {
			started <- struct{}{}
			<-ctx.Done()
		}); err != nil {
			t.Fatal(err)
		}
	}
	<-started
	<-started
	if got := s.Running(); !slices.Equal(got, []string{"loop", "loop"}) {
		t.Fatalf("Running = %v", got)
	}
	s.Stop()
	if got := s.Running(); len(got) != 0 {
		t.Fatalf("Running after Stop = %v", got)
	}
	if !s.Stopping() {
		t.Fatal("Stopping = false after Stop")
	}
	if err := s.Go("late", func(context.Context) { t.Error("ran after Stop") }); !errors.Is(err, ErrStopped) {
		t.Fatalf("Go after Stop = %v, want ErrStopped", err)
	}
	s.Stop() // again: no panic, no wait
}

func TestAfterFunc(t *testing.T) {
	s := New()
	defer s.Stop()
	ran := make(chan struct{})
	if _, err := s.AfterFunc("tick", time.Millisecond, func() { close(ran) }); err != nil {
		t.Fatal(err)
	}
	<-ran

	var count atomic.Int32
	cancel, err := s.AfterFunc("never", time.Hour, func() { count.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	if !cancel() {
		t.Fatal("cancel of a pending func = false")
	}
	if cancel() {
		t.Fatal("second cancel = true")
	}
	if count.Load() != 0 {
		t.Fatal("cancelled func ran")
	}
}

func TestStopCancelsPendingAfterFunc(t *testing.T) {
	s := New()
	var ran atomic.Bool
	cancel, err := s.AfterFunc("later", time.Hour, func() { ran.Store(true) })
	if err != nil {
		t.Fatal(err)
	}
	s.Stop() // must not wait an hour
	if cancel() {
		t.Fatal("cancel after Stop = true")
	}
	if ran.Load() {
		t.Fatal("func ran")
	}
	if _, err := s.AfterFunc("late", 0, func() {}); !errors.Is(err, ErrStopped) {
		t.Fatalf("AfterFunc after Stop = %v", err)
	}
}

func TestStopWaitsForRunningAfterFunc(t *testing.T) {
	s := New()
	in := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	if _, err := s.AfterFunc("slow", 0, func() {
		close(in)
		<-release
		finished.Store(true)
	}); err != nil {
		t.Fatal(err)
	}
	<-in
	done := make(chan struct{})
	go func() { s.Stop(); close(done) }()
	select {
	case <-done:
		t.Fatal("Stop returned while an AfterFunc ran")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-done
	if !finished.Load() {
		t.Fatal("Stop returned before the func finished")
	}
}

func TestStopWithin(t *testing.T) {
	s := New()
	release := make(chan struct{})
	if err := s.Go("stubborn", func(context.Context) { <-release }); err != nil {
		t.Fatal(err)
	}
	if err := s.Go("polite", func(ctx context.Context) { <-ctx.Done() }); err != nil {
		t.Fatal(err)
	}
	if got := s.StopWithin(10 * time.Millisecond); !slices.Equal(got, []string{"stubborn"}) {
		t.Fatalf("StopWithin = %v, want [stubborn]", got)
	}
	close(release)
	s.Stop()
	if got := s.StopWithin(time.Millisecond); got != nil {
		t.Fatalf("StopWithin after all returned = %v", got)
	}
}
