package memmonitor

import "time"

// Candidate is a worker the node daemon could kill.
type Candidate struct {
	// ID is the worker's id; PickVictim does not look at it.
	ID string
	// PID is the worker's process id; PickVictim does not look at it.
	PID int
	// Retriable says the work it runs would be retried by its owner (a
	// task with retries left, an actor with restarts left).
	Retriable bool
	// IsActor says it hosts an actor. It is for the daemon's messages;
	// PickVictim orders actors and tasks alike, by Retriable and Started.
	IsActor bool
	// Started is when its current lease or task began.
	Started time.Time
	// Mem is its anonymous resident memory (ProcMem.Anon), filled by the
	// daemon; it breaks ties.
	Mem int64
}

// PickVictim returns the index in c of the worker to kill, or -1 when c
// is empty. It prefers, in order:
//
//  1. a retriable worker over a non-retriable one;
//  2. the most recently started;
//  3. the one using more memory;
//  4. the earlier in c.
//
// This is Ray's policy: killing the newest retriable work loses the least
// progress and costs only a retry, while long-running work survives. It
// is a pure function: it neither reads nor changes anything else.
func PickVictim(c []Candidate) int {
	best := -1
	for i := range c {
		if best < 0 || killFirst(c[i], c[best]) {
			best = i
		}
	}
	return best
}

// killFirst reports whether a should be killed before b.
func killFirst(a, b Candidate) bool {
	if a.Retriable != b.Retriable {
		return a.Retriable
	}
	if !a.Started.Equal(b.Started) {
		return a.Started.After(b.Started)
	}
	return a.Mem > b.Mem
}
