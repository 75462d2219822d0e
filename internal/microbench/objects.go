package microbench

import (
	"context"
	"fmt"
	"time"

	"github.com/raygo/raygo/ray"
)

// getCalls is single_client_get_calls: Get of one small Put object.
func getCalls(ctx context.Context, cfg Config) (float64, error) {
	ref, err := ray.Put(ctx, 0)
	if err != nil {
		return 0, err
	}
	return measure(ctx, cfg, 1, func(ctx context.Context) error {
		_, err := ref.Get(ctx)
		return err
	})
}

// putCalls is single_client_put_calls: Put of a small value.
func putCalls(ctx context.Context, cfg Config) (float64, error) {
	return measure(ctx, cfg, 1, func(ctx context.Context) error {
		_, err := ray.Put(ctx, 0)
		return err
	})
}

// multiClientPutCalls is multi_client_put_calls: cfg.Clients actors each
// put 1000 small values per round; puts per second over all of them. (Ray
// runs ten tasks of 100 puts per round.)
func multiClientPutCalls(ctx context.Context, cfg Config) (float64, error) {
	servers, err := newServers(ctx, cfg.Clients, serverActor)
	if err != nil {
		return 0, err
	}
	defer killAll(servers)
	return measure(ctx, cfg, float64(len(servers)*batchSize), func(ctx context.Context) error {
		refs := make([]ray.ObjectRef[int], len(servers))
		for i, s := range servers {
			refs[i] = serverPutBatch.Remote(ctx, s, batchSize)
		}
		return checkCounts(ctx, refs, batchSize)
	})
}

// largeBytes is the size of single_client_put_gigabytes' values: 100 MiB
// fits the default 2 GiB object store many times over. (Ray puts 800 MB
// NumPy arrays into a store sized to the machine.)
const largeBytes = 100 << 20

// gigabytes converts a byte count to GB (10⁹ bytes), the unit of UnitGBps.
func gigabytes(n int) float64 { return float64(n) / 1e9 }

// largeValue returns a value of largeBytes with its pages touched, so
// that page faults of its first use stay out of the measurement.
func largeValue() []byte {
	b := make([]byte, largeBytes)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// putGigabytes is single_client_put_gigabytes: Put of 100 MiB []byte
// values, each freed at once (Ray drops the ref, which frees it); GB/s.
func putGigabytes(ctx context.Context, cfg Config) (float64, error) {
	v := largeValue()
	return measure(ctx, cfg, gigabytes(len(v)), func(ctx context.Context) error {
		ref, err := ray.Put(ctx, v)
		if err != nil {
			return err
		}
		return ray.Free(ref)
	})
}

// memcpyGigabytes is the baseline of putGigabytes: copy of a value of the
// same size into a buffer allocated (and touched) beforehand; GB/s.
func memcpyGigabytes(ctx context.Context, cfg Config) (float64, error) {
	src, dst := largeValue(), largeValue()
	return measure(ctx, cfg, gigabytes(len(src)), func(context.Context) error {
		if copy(dst, src) != len(src) {
			return fmt.Errorf("microbench: short copy")
		}
		return nil
	})
}

// containedRefs is the number of refs in the object that
// single_client_get_object_containing_10k_refs gets.
const containedRefs = 10000

// getObjectContaining10kRefs is
// single_client_get_object_containing_10k_refs: as in Ray, a task puts
// 10,000 small values and returns their refs; the driver then gets that
// object (and so borrows every ref in it) again and again.
func getObjectContaining10kRefs(ctx context.Context, cfg Config) (float64, error) {
	outer := refsObject.Remote(ctx, containedRefs)
	return measure(ctx, cfg, 1, func(ctx context.Context) error {
		refs, err := outer.Get(ctx)
		if err != nil {
			return err
		}
		if len(refs) != containedRefs {
			return fmt.Errorf("microbench: got an object with %d refs, want %d", len(refs), containedRefs)
		}
		return nil
	})
}

// waitRefs is the number of tasks single_client_wait_1k_refs waits for.
const waitRefs = 1000

// wait1kRefs is single_client_wait_1k_refs: as in Ray, submit 1000 tasks,
// then call Wait for one ready ref at a time on those not yet returned
// until none is left (1000 Waits); rounds per second.
func wait1kRefs(ctx context.Context, cfg Config) (float64, error) {
	return measure(ctx, cfg, 1, func(ctx context.Context) error {
		notReady := make([]ray.ObjectRef[[]byte], waitRefs)
		for i := range notReady {
			notReady[i] = smallValue.Remote(ctx)
		}
		for waits := 0; len(notReady) > 0; waits++ {
			if waits == waitRefs {
				return fmt.Errorf("microbench: %d refs still not ready after %d Waits for one", len(notReady), waits)
			}
			var err error
			if _, notReady, err = ray.Wait(ctx, notReady, 1, time.Duration(-1)); err != nil {
				return err
			}
		}
		return nil
	})
}

// multiClientPutGigabytes is multi_client_put_gigabytes: cfg.Clients
// actors each put a 100 MiB []byte (made once per actor) and free it, in
// parallel; GB/s over all of them.
func multiClientPutGigabytes(ctx context.Context, cfg Config) (float64, error) {
	servers, err := newServers(ctx, cfg.Clients, serverActor)
	if err != nil {
		return 0, err
	}
	defer killAll(servers)
	return measure(ctx, cfg, gigabytes(len(servers)*largeBytes), func(ctx context.Context) error {
		refs := make([]ray.ObjectRef[int], len(servers))
		for i, s := range servers {
			refs[i] = serverPutLarge.Remote(ctx, s, 1)
		}
		return checkCounts(ctx, refs, 1)
	})
}

// storeBytes is the size of the store-backed put and get rows: just over
// the default inline threshold (100 KiB), so each object lives in the
// node's shared memory.
const storeBytes = 128 << 10

// putCallsStore is single_client_put_calls_store: Put of a 128 KiB []byte
// (into the shared-memory store: create, copy, seal) and its Free.
func putCallsStore(ctx context.Context, cfg Config) (float64, error) {
	v := make([]byte, storeBytes)
	return measure(ctx, cfg, 1, func(ctx context.Context) error {
		ref, err := ray.Put(ctx, v)
		if err != nil {
			return err
		}
		return ray.Free(ref)
	})
}

// getCallsStore is single_client_get_calls_store: zero-copy GetBuffer (pin
// and map) and Release of a 128 KiB object in the store.
func getCallsStore(ctx context.Context, cfg Config) (float64, error) {
	return getBufferCalls(ctx, cfg, storeBytes)
}

// getBuffer1MiB and getBuffer1GiB are get_buffer_1mib / get_buffer_1gib:
// zero-copy GetBuffer and Release of a 1 MiB and a 1 GiB object. A
// zero-copy read costs the same whatever the size.
func getBuffer1MiB(ctx context.Context, cfg Config) (float64, error) {
	return getBufferCalls(ctx, cfg, 1<<20)
}

func getBuffer1GiB(ctx context.Context, cfg Config) (float64, error) {
	return getBufferCalls(ctx, cfg, 1<<30)
}

func getBufferCalls(ctx context.Context, cfg Config, size int) (float64, error) {
	ref, err := ray.PutBuffer(ctx, size, func(b []byte) error {
		fill(b)
		return nil
	})
	if err != nil {
		return 0, err
	}
	defer func() { _ = ray.Free(ref) }()
	return measure(ctx, cfg, 1, func(ctx context.Context) error {
		b, err := ray.GetBuffer(ctx, ref)
		if err != nil {
			return err
		}
		if b.Len() != size {
			return fmt.Errorf("microbench: GetBuffer gave %d bytes, want %d", b.Len(), size)
		}
		b.Release()
		return nil
	})
}
