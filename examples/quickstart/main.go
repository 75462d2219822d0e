// Command quickstart runs the three classic Ray Core examples on an
// embedded local cluster: parallel tasks, a stateful actor, and one large
// shared object read by many tasks.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/raygo/raygo/ray"
)

// process simulates work on one item: it sleeps item/10 seconds.
func process(ctx context.Context, item int) (string, error) {
	select {
	case <-time.After(time.Duration(item) * 100 * time.Millisecond):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return fmt.Sprintf("Processed %d", item), nil
}

// Process is process as a remote function, registered as "main.process".
var Process = ray.Func1(process)

// DataTracker is a stateful actor: a counter.
type DataTracker struct{ count int }

// Increment adds one to the count.
func (d *DataTracker) Increment(ctx context.Context) (int, error) { d.count++; return d.count, nil }

// Count returns the count.
func (d *DataTracker) Count(ctx context.Context) (int, error) { return d.count, nil }

func newDataTracker(ctx context.Context) (*DataTracker, error) { return &DataTracker{}, nil }

// The actor class registers as "main.DataTracker", its methods as
// "Increment" and "Count".
var (
	Tracker   = ray.Actor0(newDataTracker)
	Increment = ray.Method0(Tracker, (*DataTracker).Increment)
	Count     = ray.Method0(Tracker, (*DataTracker).Count)
)

// sumChunk sums data[start:start+100]; data arrives resolved from a ref.
func sumChunk(ctx context.Context, data []int, start int) (int, error) {
	sum := 0
	for _, v := range data[start : start+100] {
		sum += v
	}
	return sum, nil
}

var SumChunk = ray.Func2(sumChunk)

func main() {
	ctx := context.Background()
	if err := ray.Init(ctx); err != nil {
		log.Fatal(err)
	}
	err := run(ctx)
	if serr := ray.Shutdown(); err == nil {
		err = serr
	}
	if err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	// 1. Parallel tasks, results in submission order.
	refs := make([]ray.ObjectRef[string], 5)
	for i := range refs {
		refs[i] = Process.Remote(ctx, i)
	}
	results, err := ray.Get(ctx, refs...)
	if err != nil {
		return err
	}
	fmt.Println("tasks:", results)

	// 2. A stateful actor.
	tracker := Tracker.Remote(ctx)
	if err := tracker.Err(); err != nil {
		return err
	}
	for range 10 {
		Increment.Remote(ctx, tracker)
	}
	n, err := Count.Remote(ctx, tracker).Get(ctx)
	if err != nil {
		return err
	}
	fmt.Println("actor count:", n)

	// 3. One object in the store, read by many tasks.
	data := make([]int, 1000)
	for i := range data {
		data[i] = i
	}
	dataRef, err := ray.Put(ctx, data)
	if err != nil {
		return err
	}
	sums := make([]ray.ObjectRef[int], 10)
	for i := range sums {
		sums[i] = SumChunk.RemoteArgs(ctx, dataRef, ray.Val(i*100))
	}
	parts, err := ray.Get(ctx, sums...)
	if err != nil {
		return err
	}
	total := 0
	for _, p := range parts {
		total += p
	}
	fmt.Println("chunk sum:", total)
	return nil
}
