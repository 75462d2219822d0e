package microbench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/raygo/raygo/internal/memmonitor"
	"github.com/raygo/raygo/ray"
)

// The rows of the envelope. Each does its setup (puts, a probe actor)
// outside its measured time, and checks what it gets back.

// envelopeSum is the task of task_10k_args: it sums its arguments.
var envelopeSum = ray.FuncV("microbench.EnvelopeSum", func(_ context.Context, xs ...int) (int, error) {
	sum := 0
	for _, x := range xs {
		sum += x
	}
	return sum, nil
})

// envelopeReturns is the task of task_3k_returns: n returns, 0 to n-1.
var envelopeReturns = ray.Func1xN("microbench.EnvelopeReturns", func(_ context.Context, n int) ([]int, error) {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out, nil
})

// getSlice is how many results of tasks_1m_queued one Get takes: the
// driver gets them a slice at a time and drops each slice's refs at once,
// so that a million results never sit in memory together.
const getSlice = 10_000

// tasksQueued is tasks_1m_queued: submit n trivial tasks, all of them
// before any Get, then get them all; the time from the first submission
// to the last result. (Ray blocks its CPUs with a task until all are
// submitted, so that every task is queued; here the first tasks may run
// while the last are submitted.)
func tasksQueued(ctx context.Context, n int) (Outcome, error) {
	refs := make([]ray.ObjectRef[[]byte], n)
	start := time.Now()
	for i := range refs {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return Outcome{}, fmt.Errorf("after %d submissions: %w", i, err)
			}
		}
		refs[i] = smallValue.Remote(ctx)
		if err := refs[i].Err(); err != nil {
			return Outcome{}, fmt.Errorf("submission %d: %w", i, err)
		}
	}
	submitted := time.Since(start)
	for lo := 0; lo < n; lo += getSlice {
		hi := min(lo+getSlice, n)
		vals, err := ray.Get(ctx, refs[lo:hi]...)
		if err != nil {
			return Outcome{}, fmt.Errorf("get of results %d to %d: %w", lo, hi-1, err)
		}
		for i, v := range vals {
			if !bytes.Equal(v, okValue) {
				return Outcome{}, fmt.Errorf("task %d returned %q, want %q", lo+i, v, okValue)
			}
		}
		clear(refs[lo:hi])
	}
	took := time.Since(start)
	return Outcome{Units: n, Time: took, Notes: []string{
		fmt.Sprintf("all submitted after %s (%s tasks/s), all results after %s (%s tasks/s overall)",
			FormatDuration(submitted), FormatValue(float64(n)/submitted.Seconds()), FormatDuration(took), FormatValue(float64(n)/took.Seconds())),
	}}, nil
}

// Sizing of actors_10k to the machine. raygo runs each actor in a process
// of its own, so a node holds as many actors as it has memory for
// processes; the row creates fewer than asked rather than swap.
const (
	// actorMemShare is the share of the memory available at the start that
	// the actors may fill.
	actorMemShare = 0.5
	// actorMemGuard is the share of that memory below which the row stops
	// at once: estimates can be wrong, a machine brought to swapping is
	// worse than a failed row.
	actorMemGuard = 0.2
	// actorRSSMargin multiplies the first actor's resident set, for growth
	// and the kernel's own memory per process.
	actorRSSMargin = 1.25
	// actorFileShare is the share of the free file descriptors the actors
	// may take.
	actorFileShare = 0.8
	// minActorBytes is the least memory an actor is assumed to cost.
	minActorBytes = 32 << 10
)

// actorsCreated is actors_10k: create n actors and call each once; the
// time from the first creation to the last reply. A probe actor and a
// calibration batch, created and called outside the measured time, size
// the row: n is capped so that the actors fit in half the available memory
// and in the file descriptors left. The actors are killed at the end and the
// row waits for their processes to exit.
func actorsCreated(ctx context.Context, n int) (out Outcome, err error) {
	before, err := children()
	if err != nil {
		return Outcome{}, fmt.Errorf("need /proc to size the row: %w", err)
	}
	avail, err := memAvailable()
	if err != nil {
		return Outcome{}, fmt.Errorf("need /proc/meminfo to size the row: %w", err)
	}
	filesBefore := openFiles()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopGuard := guardMemory(ctx, cancel, int64(float64(avail)*actorMemGuard), avail)
	defer stopGuard()

	var hs []ray.ActorHandle[server]
	defer func() {
		if kerr := killAndWait(hs, before); kerr != nil && err == nil {
			err = kerr
		}
	}()
	probe, err := serverActor.Remote(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("probe actor: %w", withCause(ctx, err))
	}
	hs = append(hs, probe)
	if _, err := serverSmallValue.Remote(ctx, probe).Get(ctx); err != nil {
		return Outcome{}, fmt.Errorf("probe actor's call: %w", withCause(ctx, err))
	}

	// Size the row: actors that ask for no CPU share worker processes (up
	// to 1,000 each), so the cost of one is the growth of the workers'
	// memory over a calibration batch, not a process.
	sum := func(m map[int]int64) (t int64) {
		for _, v := range m {
			t += v
		}
		return t
	}
	base, err := children()
	if err != nil {
		return Outcome{}, err
	}
	const calibration = 50
	for range calibration {
		h, err := serverActor.Remote(ctx)
		if err != nil {
			return Outcome{}, fmt.Errorf("calibration actor: %w", withCause(ctx, err))
		}
		hs = append(hs, h)
		if _, err := serverSmallValue.Remote(ctx, h).Get(ctx); err != nil {
			return Outcome{}, fmt.Errorf("calibration actor's call: %w", withCause(ctx, err))
		}
	}
	after, err := children()
	if err != nil {
		return Outcome{}, err
	}
	perActor := max((sum(after)-sum(base))/calibration, minActorBytes)
	perActor = int64(float64(perActor) * actorRSSMargin)
	var notes []string
	want := n
	byMem := int(float64(avail) * actorMemShare / float64(perActor))
	if byMem < n {
		n = byMem
		out.Capped = "memory"
	}
	notes = append(notes, fmt.Sprintf("sized from %d calibration actors: %s per actor (workers' memory growth × %v, at least %s); %d worker processes",
		calibration, FormatBytes(perActor), actorRSSMargin, FormatBytes(minActorBytes), len(after)))
	if filesAfter := openFiles(); filesBefore >= 0 && filesAfter >= 0 {
		if limit, ok := openFileLimit(); ok {
			// Per actor, with the same margin as memory (a socket to its
			// process, about one; rounding it up to whole files halved the
			// actors the envelope would try).
			per := max(float64(filesAfter-filesBefore)/calibration*actorRSSMargin, 0.1)
			if byFiles := int(float64(limit-filesAfter) * actorFileShare / per); byFiles < n {
				n = byFiles
				out.Capped = fmt.Sprintf("open files: %d allowed, %.2g per actor", limit, per)
			}
		}
	}
	if n < 1 {
		return Outcome{}, fmt.Errorf("no room for actors beyond the probe (%s per actor, %s available)", FormatBytes(perActor), FormatBytes(avail))
	}

	// The measured part: n creations, n calls, the replies.
	start := time.Now()
	for range n {
		h, err := serverActor.Remote(ctx)
		if err != nil {
			return Outcome{}, fmt.Errorf("creation %d: %w", len(hs), withCause(ctx, err))
		}
		hs = append(hs, h)
	}
	created := time.Since(start)
	refs := make([]ray.ObjectRef[[]byte], n)
	for i, h := range hs[len(hs)-n:] {
		refs[i] = serverSmallValue.Remote(ctx, h)
	}
	vals, err := ray.Get(ctx, refs...)
	if err != nil {
		return Outcome{}, fmt.Errorf("calls: %w", withCause(ctx, err))
	}
	took := time.Since(start)
	for i, v := range vals {
		if !bytes.Equal(v, okValue) {
			return Outcome{}, fmt.Errorf("actor %d returned %q, want %q", i, v, okValue)
		}
	}
	notes = append(notes, fmt.Sprintf("creations submitted after %s; %s actors/s", FormatDuration(created), FormatValue(float64(n)/took.Seconds())))
	if n < want {
		notes = append(notes, fmt.Sprintf("%s actors at that rate would take %s",
			thousands(int64(want)), FormatDuration(time.Duration(float64(took)*float64(want)/float64(n)))))
	}
	out.Units, out.Time, out.Notes = n, took, notes
	return out, nil
}

// withCause prefers the cause of ctx's end (the memory guard's) to err.
func withCause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && c != ctx.Err() {
		return c
	}
	return err
}

// guardMemory cancels ctx, with an error saying why, when the memory
// available falls below floor, checking every sampleInterval until the
// returned stop is called.
func guardMemory(ctx context.Context, cancel context.CancelCauseFunc, floor, start int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(sampleInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if a, err := memAvailable(); err == nil && a < floor {
					cancel(fmt.Errorf("stopped by the memory guard: %s available, down from %s at the start", FormatBytes(a), FormatBytes(start)))
					return
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// killTimeoutPerActor is added to killTimeout per actor killed.
const killTimeoutPerActor = 10 * time.Millisecond

// killAndWait kills actors and waits until every child process of this
// one that is not in before has exited: the actors' processes.
func killAndWait(hs []ray.ActorHandle[server], before map[int]int64) error {
	if len(hs) == 0 {
		return nil
	}
	limit := killTimeout + time.Duration(len(hs))*killTimeoutPerActor
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for _, h := range hs {
		_ = ray.Kill(ctx, h) // errors show as processes left below
	}
	for {
		cs, err := children()
		if err != nil {
			return nil // nothing to wait on
		}
		left := 0
		for pid := range cs {
			if _, old := before[pid]; !old {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d actor processes still running %s after their actors were killed", left, limit)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// taskManyArgs is task_10k_args: put n small ints, then time one task
// called with the n refs as its arguments, and the Get of its result.
func taskManyArgs(ctx context.Context, n int) (Outcome, error) {
	args := make([]any, n)
	for i := range args {
		r, err := ray.Put(ctx, 1)
		if err != nil {
			return Outcome{}, fmt.Errorf("put %d: %w", i, err)
		}
		args[i] = r
	}
	start := time.Now()
	sum, err := envelopeSum.RemoteArgs(ctx, args...).Get(ctx)
	took := time.Since(start)
	if err != nil {
		return Outcome{}, err
	}
	if sum != n {
		return Outcome{}, fmt.Errorf("the task summed its %d args to %d, want %d", n, sum, n)
	}
	return Outcome{Units: n, Time: took}, nil
}

// taskManyReturns is task_3k_returns: one task with n returns, and the
// Get of all of them. (Ray's returns are lists of 10,000 ints; these are
// ints.)
func taskManyReturns(ctx context.Context, n int) (Outcome, error) {
	start := time.Now()
	refs := envelopeReturns.Remote(ctx, n, n)
	vals, err := ray.Get(ctx, refs...)
	took := time.Since(start)
	if err != nil {
		return Outcome{}, err
	}
	for i, v := range vals {
		if v != i {
			return Outcome{}, fmt.Errorf("return %d is %d", i, v)
		}
	}
	return Outcome{Units: n, Time: took}, nil
}

// getManyRefs is get_10k_refs: put n small ints, then time one Get of all
// of them. (Ray's objects are lists of 10,000 ints; these are ints, which
// stay inline in the driver.)
func getManyRefs(ctx context.Context, n int) (Outcome, error) {
	refs := make([]ray.ObjectRef[int], n)
	for i := range refs {
		var err error
		if refs[i], err = ray.Put(ctx, i); err != nil {
			return Outcome{}, fmt.Errorf("put %d: %w", i, err)
		}
	}
	start := time.Now()
	vals, err := ray.Get(ctx, refs...)
	took := time.Since(start)
	if err != nil {
		return Outcome{}, err
	}
	for i, v := range vals {
		if v != i {
			return Outcome{}, fmt.Errorf("object %d is %d", i, v)
		}
	}
	return Outcome{Units: n, Time: took}, nil
}

// largestObjectBytes is the size of largest_object: 4 GiB, twice the
// envelope's 2 GiB object store, so the object lives on disk (in the
// spill directory) and memory stays bounded.
const largestObjectBytes = 4 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// largestObject is largest_object: create an n-byte []byte object in
// place (PutBuffer, no copy in the driver's heap), read it back zero-copy
// (GetBuffer) and check its checksum; the time of both. The notes give
// the driver's anonymous memory and the node's memory use (page cache
// excluded), which stay far below n.
func largestObject(ctx context.Context, n int) (Outcome, error) {
	const chunk = 64 << 20
	var sum uint32
	start := time.Now()
	ref, err := ray.PutBuffer(ctx, n, func(b []byte) error {
		for off := 0; off < len(b); off += chunk {
			part := b[off:min(off+chunk, len(b))]
			fill(part)
			sum = crc32.Update(sum, castagnoli, part)
		}
		return nil
	})
	put := time.Since(start)
	if err != nil {
		return Outcome{}, fmt.Errorf("put: %w", err)
	}
	defer func() { _ = ray.Free(ref) }()
	anonAfterPut := procAnon()
	start = time.Now()
	buf, err := ray.GetBuffer(ctx, ref)
	if err != nil {
		return Outcome{}, fmt.Errorf("get: %w", err)
	}
	got := uint32(0)
	for off := 0; off < buf.Len(); off += chunk {
		got = crc32.Update(got, castagnoli, buf.Bytes()[off:min(off+chunk, buf.Len())])
	}
	size := buf.Len()
	buf.Release()
	get := time.Since(start)
	if size != n || got != sum {
		return Outcome{}, fmt.Errorf("got back %d bytes that differ from the %d put", size, n)
	}
	node := "unknown"
	if u, err := memmonitor.System(); err == nil {
		node = FormatBytes(u.Used) + " of " + FormatBytes(u.Total)
	}
	return Outcome{Units: n, Time: put + get, Notes: []string{
		fmt.Sprintf("written in place %s, read back zero-copy and checked (CRC-32C) %s; larger than the 2 GiB store, so it lives in a file in the spill directory. Driver anonymous memory after the put: %s; node memory in use after the read (page cache excluded): %s. Ray's largest is 100 GiB+; raygo's is bounded by the spill directory's free disk",
			FormatDuration(put), FormatDuration(get), FormatBytes(anonAfterPut), node),
	}}, nil
}

// procAnon is this process's anonymous resident memory (RssAnon), or -1.
func procAnon() int64 {
	n, err := procStatusBytes("RssAnon")
	if err != nil {
		return -1
	}
	return n
}

// fill writes a pattern that differs in every 8-byte word (splitmix64).
func fill(b []byte) {
	x := uint64(0x9e3779b97f4a7c15)
	var w [8]byte
	for len(b) > 0 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		if len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, z)
			b = b[8:]
			continue
		}
		binary.LittleEndian.PutUint64(w[:], z)
		b = b[copy(b, w[:]):]
	}
}
