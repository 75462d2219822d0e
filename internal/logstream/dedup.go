package logstream

import (
	"strings"
	"time"
)

// Line is one line of worker output as a driver prints it.
type Line struct {
	Node   string // the node's short id
	Pid    int
	Name   string // the task or actor the worker announced; may be empty
	Stderr bool
	Text   string
	// Repeated, when above 1, says the line stands for that many
	// occurrences from several workers (Dedup).
	Repeated int
}

// dedupKey is a line's text with every word that holds a digit removed
// (Ray's _canonicalise_log_line): such words (pids, ids, counters, hex
// numbers) differ between workers, so they do not tell lines apart.
func dedupKey(text string) string {
	words := strings.Fields(text)
	kept := words[:0]
	for _, w := range words {
		if !strings.ContainsAny(w, "0123456789") {
			kept = append(kept, w)
		}
	}
	return strings.Join(kept, " ")
}

type source struct {
	node string
	pid  int
}

type dedupState struct {
	key     dedupStateKey
	first   time.Time // when the pattern was first seen (or last reported)
	count   int       // occurrences not printed yet
	latest  Line      // the latest occurrence
	sources map[source]struct{}
}

// Dedup deduplicates worker output as Ray's driver does: a line is printed
// at once the first time its pattern (its text less the words holding
// digits) is seen; later lines of the same pattern from other workers
// within Window are held and counted, and once Window has passed since
// the pattern was first seen they are reported as one line, "text
// [repeated Nx across cluster]" (the latest occurrence, with its prefix),
// or as the line itself when only one was held. Lines from the worker
// that first printed a pattern are printed as they come, and lines that
// are empty once digits are masked are never held. Stdout and stderr
// are deduplicated apart.
//
// Dedup is pure: the caller passes the time, which must not go back. It
// is not safe for concurrent use.
type Dedup struct {
	Window time.Duration
	recent map[dedupStateKey]*dedupState
	// order holds the patterns by first, oldest first (from head on):
	// Flush looks at the oldest only.
	order []*dedupState
	head  int
}

// MaxHeldPatterns bounds the patterns a Dedup tracks at once; lines of
// new patterns beyond it are printed without being tracked.
const MaxHeldPatterns = 10000

type dedupStateKey struct {
	stderr bool
	key    string
}

// NewDedup returns a Dedup with the given window.
func NewDedup(window time.Duration) *Dedup {
	return &Dedup{Window: window, recent: map[dedupStateKey]*dedupState{}}
}

// Add takes a line seen at now and returns what to print: before it what
// Flush(now) would return, then the line itself unless it is held.
func (d *Dedup) Add(now time.Time, l Line) []Line {
	out := d.Flush(now)
	key := dedupStateKey{l.Stderr, dedupKey(l.Text)}
	if key.key == "" {
		return append(out, l)
	}
	src := source{l.Node, l.Pid}
	st, ok := d.recent[key]
	if !ok {
		if len(d.recent) >= MaxHeldPatterns {
			return append(out, l) // too many distinct lines at once: print, do not track
		}
		st = &dedupState{key: key, first: now, latest: l, sources: map[source]struct{}{src: {}}}
		d.recent[key] = st
		d.push(st)
		return append(out, l)
	}
	st.sources[src] = struct{}{}
	if len(st.sources) > 1 {
		st.count++
		st.latest = l
		return out
	}
	return append(out, l) // the same worker again: not a repeat across the cluster
}

func (d *Dedup) push(st *dedupState) {
	if d.head > len(d.order)/2 && d.head > 64 { // compact
		d.order = append(d.order[:0], d.order[d.head:]...)
		d.head = 0
	}
	d.order = append(d.order, st)
}

// Flush returns the held lines of patterns whose window has passed at now,
// in the order the patterns were first seen: a pattern that repeated is
// reported and goes on being aggregated, in a new window; one held once
// is printed as it is and forgotten, as is one with nothing held.
func (d *Dedup) Flush(now time.Time) []Line {
	var out []Line
	for d.head < len(d.order) {
		st := d.order[d.head]
		if now.Sub(st.first) < d.Window {
			break
		}
		d.order[d.head] = nil
		d.head++
		switch {
		case st.count > 1:
			l := st.latest
			l.Repeated = st.count
			out = append(out, l)
			st.first, st.count = now, 0
			d.push(st)
		case st.count == 1:
			out = append(out, st.latest)
			delete(d.recent, st.key)
		default:
			delete(d.recent, st.key)
		}
	}
	return out
}

// FlushAll returns every held line and forgets every pattern (at the end
// of the stream).
func (d *Dedup) FlushAll() []Line {
	var out []Line
	for _, st := range d.order[d.head:] {
		if st.count > 0 {
			l := st.latest
			if st.count > 1 {
				l.Repeated = st.count
			}
			out = append(out, l)
		}
	}
	clear(d.recent)
	d.order, d.head = nil, 0
	return out
}

// Held is how many patterns Dedup is aggregating.
func (d *Dedup) Held() int { return len(d.recent) }
