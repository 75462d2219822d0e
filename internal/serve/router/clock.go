package router

import (
	"math/rand/v2"
	"time"
)

// Clock is the Router's time source: Now stamps and ages queue-length
// reports, and AfterFunc wakes the Router when a report that held a
// replica at its limit goes stale. AfterFunc must call f at most once,
// on its own goroutine, no earlier than d from now; the stop function it
// returns reports whether it prevented the call (as time.Timer.Stop).
// Tests pass a manual clock; the default is the system clock.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// Rand is the Router's source of randomness for the power-of-two-choices
// sample: IntN returns a uniform int in [0, n). *math/rand/v2.Rand
// satisfies it, so tests pass rand.New(rand.NewPCG(1, 2)) for a
// repeatable sequence. The Router calls it with its lock held, so it need
// not be safe for concurrent use. The default is math/rand/v2's global
// generator.
type Rand interface {
	IntN(n int) int
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

type globalRand struct{}

func (globalRand) IntN(n int) int { return rand.IntN(n) }
