package router

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestStressNoSlotLeak runs thousands of goroutines that acquire, release
// (some twice), give up on deadlines and cancellations, while another
// goroutine keeps changing the replica set and reporting queue lengths.
// Invariants are checked throughout; once everyone is done every count
// must be back to zero.
func TestStressNoSlotLeak(t *testing.T) {
	rt := mustNew(t, Options{MaxQueuedRequests: 1000, LocalNode: "n0", QueueLenTTL: time.Millisecond})
	ids := []string{"r0", "r1", "r2", "r3", "r4", "r5"}
	desc := func(i int, st ReplicaState) Replica {
		return Replica{ID: ids[i], NodeID: fmt.Sprintf("n%d", i%3), MaxOngoingRequests: 1 + i%3, State: st}
	}
	all := make([]Replica, len(ids))
	for i := range ids {
		all[i] = desc(i, Running)
	}
	mustSet(t, rt, all...)

	// perReplica counts live leases by replica ID, checked against the
	// limit when no churn can have re-created the replica.
	var (
		served, refused, gaveUp atomic.Int64
		wg                      sync.WaitGroup
		stop                    = make(chan struct{})
		churnDone               = make(chan struct{})
		invErr                  atomic.Value
	)
	go func() {
		defer close(churnDone)
		rnd := rand.New(rand.NewPCG(5, 6))
		for {
			select {
			case <-stop:
				return
			default:
			}
			switch rnd.IntN(6) {
			case 0:
				var set []Replica
				for i := range ids {
					if rnd.IntN(3) > 0 {
						set = append(set, desc(i, ReplicaState(max(0, rnd.IntN(5)-2))))
					}
				}
				if err := rt.Set(set); err != nil {
					invErr.Store(err)
				}
			case 1:
				_ = rt.Update(desc(rnd.IntN(len(ids)), Running))
			case 2:
				_ = rt.ReportQueueLen(ids[rnd.IntN(len(ids))], rnd.IntN(3), time.Now())
			case 3:
				rt.Remove(ids[rnd.IntN(len(ids))])
			default:
				_ = rt.Update(desc(rnd.IntN(len(ids)), Running))
			}
			if err := checkInvariants(rt); err != nil {
				invErr.Store(err)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()

	const workers, rounds = 2000, 5
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 99))
			for range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rnd.IntN(100000))*time.Microsecond)
				if rnd.IntN(4) == 0 {
					go cancel() // cancelled while queued, racing the grant
				}
				l, err := rt.Acquire(ctx)
				switch {
				case err == nil:
					served.Add(1)
					if rnd.IntN(2) == 0 {
						time.Sleep(time.Duration(rnd.IntN(200)) * time.Microsecond)
					}
					l.Release()
					if rnd.IntN(3) == 0 {
						l.Release()
					}
				case errIsBackPressure(err):
					refused.Add(1)
				default:
					gaveUp.Add(1)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-churnDone
	if err, _ := invErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	mustSet(t, rt, all...)
	if err := checkInvariants(rt); err != nil {
		t.Fatal(err)
	}
	s := rt.Stats()
	if s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("after all requests ended: %+v", s)
	}
	for _, rs := range s.Replicas {
		if rs.InFlight != 0 {
			t.Fatalf("replica %s still has %d in flight", rs.ID, rs.InFlight)
		}
	}
	t.Logf("served %d, refused %d, gave up %d", served.Load(), refused.Load(), gaveUp.Load())
	if served.Load() == 0 {
		t.Fatal("nothing was served")
	}
}

// TestStressLimitHeld checks, without churn, that concurrent requests
// never exceed a replica's MaxOngoingRequests and all get served.
func TestStressLimitHeld(t *testing.T) {
	rt := mustNew(t, Options{})
	limits := map[string]int64{"a": 1, "b": 2, "c": 3}
	mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 1}, Replica{ID: "b", MaxOngoingRequests: 2}, Replica{ID: "c", MaxOngoingRequests: 3})
	live := map[string]*atomic.Int64{"a": {}, "b": {}, "c": {}}
	var over atomic.Value
	var wg sync.WaitGroup
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				l, err := rt.Acquire(context.Background())
				if err != nil {
					over.Store(err)
					return
				}
				id := l.Replica()
				if n := live[id].Add(1); n > limits[id] {
					over.Store(fmt.Errorf("replica %s had %d requests at once, limit %d", id, n, limits[id]))
				}
				live[id].Add(-1)
				l.Release()
			}
		}()
	}
	wg.Wait()
	if err, _ := over.Load().(error); err != nil {
		t.Fatal(err)
	}
	if s := rt.Stats(); s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func errIsBackPressure(err error) bool {
	_, ok := err.(*BackPressureError)
	return ok
}

// TestProperty drives the Router through random sequences of requests,
// cancellations, releases, replica-set changes, reports and clock steps,
// checking the invariants after every step and that everything drains to
// zero at the end.
func TestProperty(t *testing.T) {
	rapid.Check(t, func(rt_ *rapid.T) {
		clk := newManualClock()
		rt, err := New(Options{
			MaxQueuedRequests: rapid.SampledFrom([]int{Unbounded, 1, 3}).Draw(rt_, "maxQueued"),
			LocalNode:         "n0",
			QueueLenTTL:       time.Second,
			Clock:             clk,
			Rand:              rand.New(rand.NewPCG(rapid.Uint64().Draw(rt_, "seed"), 1)),
		})
		if err != nil {
			rt_.Fatal(err)
		}
		defer rt.Close()
		ids := []string{"a", "b", "c", "d"}
		desc := func(i int, st ReplicaState) Replica {
			return Replica{ID: ids[i], NodeID: fmt.Sprintf("n%d", i%2), MaxOngoingRequests: 1 + i%2, State: st}
		}
		type pending struct {
			cancel context.CancelFunc
			ch     chan result
		}
		var (
			waiting []pending
			leases  []*Lease
		)
		collect := func() {
			kept := waiting[:0]
			for _, p := range waiting {
				select {
				case r := <-p.ch:
					p.cancel()
					if r.err == nil {
						leases = append(leases, r.lease)
					}
				default:
					kept = append(kept, p)
				}
			}
			waiting = kept
		}
		check := func() {
			if err := checkInvariants(rt); err != nil {
				rt_.Fatal(err)
			}
		}
		steps := rapid.IntRange(1, 60).Draw(rt_, "steps")
		for range steps {
			switch rapid.IntRange(0, 6).Draw(rt_, "op") {
			case 0, 1: // a request arrives
				ctx, cancel := context.WithCancel(context.Background())
				p := pending{cancel, make(chan result, 1)}
				before := rt.Stats().Queued
				go func() {
					l, err := rt.Acquire(ctx)
					p.ch <- result{l, err}
				}()
				// Wait until it is served, refused or queued.
				for {
					select {
					case r := <-p.ch:
						p.ch <- r
					default:
						if rt.Stats().Queued == before {
							time.Sleep(200 * time.Microsecond)
							continue
						}
					}
					break
				}
				waiting = append(waiting, p)
			case 2: // a waiting request gives up
				if len(waiting) > 0 {
					p := waiting[rapid.IntRange(0, len(waiting)-1).Draw(rt_, "cancel")]
					p.cancel()
					// Wait for it to leave the queue, so that the queue
					// changes only at the steps that change it.
					r := <-p.ch
					p.ch <- r
				}
			case 3: // a request ends
				collect()
				if len(leases) > 0 {
					i := rapid.IntRange(0, len(leases)-1).Draw(rt_, "release")
					leases[i].Release()
					if rapid.Bool().Draw(rt_, "twice") {
						leases[i].Release()
					}
					leases = append(leases[:i], leases[i+1:]...)
				}
			case 4: // the controller changes the replica set
				var set []Replica
				for i := range ids {
					if rapid.Bool().Draw(rt_, "present") {
						set = append(set, desc(i, ReplicaState(rapid.IntRange(0, 2).Draw(rt_, "state"))))
					}
				}
				if err := rt.Set(set); err != nil {
					rt_.Fatal(err)
				}
			case 5: // a replica reports its queue length
				_ = rt.ReportQueueLen(ids[rapid.IntRange(0, 3).Draw(rt_, "report")], rapid.IntRange(0, 3).Draw(rt_, "len"), clk.Now())
			case 6:
				clk.Advance(time.Duration(rapid.IntRange(0, 1500).Draw(rt_, "ms")) * time.Millisecond)
			}
			check()
		}
		// Drain: everyone gives up or finishes, every lease is released.
		for _, p := range waiting {
			p.cancel()
			if r := <-p.ch; r.err == nil {
				leases = append(leases, r.lease)
			}
		}
		for _, l := range leases {
			l.Release()
		}
		check()
		s := rt.Stats()
		if s.InFlight != 0 || s.Queued != 0 {
			rt_.Fatalf("after draining: %+v", s)
		}
		for _, r := range s.Replicas {
			if r.InFlight != 0 {
				rt_.Fatalf("replica %s: %d in flight", r.ID, r.InFlight)
			}
		}
	})
}
