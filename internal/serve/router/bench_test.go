package router

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

func benchRouter(b *testing.B) *Router {
	rt := mustNew(b, Options{})
	var reps []Replica
	for i := range 8 {
		reps = append(reps, Replica{ID: fmt.Sprintf("r%d", i), MaxOngoingRequests: 1000})
	}
	mustSet(b, rt, reps...)
	return rt
}

// BenchmarkAcquireRelease is one request's routing cost when replicas have
// room: Acquire then Release, on one goroutine.
func BenchmarkAcquireRelease(b *testing.B) {
	rt := benchRouter(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l, err := rt.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		l.Release()
	}
}

// BenchmarkAcquireRelease8 is the same with 8 goroutines sharing the
// Router; the figure is per request.
func BenchmarkAcquireRelease8(b *testing.B) {
	rt := benchRouter(b)
	ctx := context.Background()
	b.ReportAllocs()
	const g = 8
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range g {
		n := b.N / g
		if w < b.N%g {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				l, err := rt.Acquire(ctx)
				if err != nil {
					panic(err)
				}
				l.Release()
			}
		}()
	}
	wg.Wait()
}
