// Package faults holds raygo's named fault points, after etcd's gofail:
// places in the code where a test, or someone chasing a bug, makes raygo
// fail on purpose — drop an RPC's request or its reply, wait before or
// after a write, end the process. Every point is off unless enabled, by
// Enable in a test's own process or by RAYGO_FAULTS in a process's
// environment (read when the package loads: workers and node daemons
// started with it inherit it); a point that is off costs one atomic load.
//
//	RAYGO_FAULTS='rpc/raygo.ControlStore/NodeHeartbeat/request=drop;raylet/grant=delay(200ms)@3;coreworker/reply=exit(7)'
//
// A spec is point=action, specs separated by ';'. Actions:
//
//	drop        the point fails: Eval returns an error wrapping ErrInjected
//	delay(D)    the point waits D (a Go duration), then goes on
//	exit(CODE)  the process exits at once with CODE (no cleanup: a crash)
//
// A suffix limits when the action applies: "@N" only at the Nth time the
// point is reached (from 1), "*N" at the first N times, "%P" each time
// with probability P (0 to 1). Points are named by where they are
// (docs/faults.md lists them): rpc/<full method>/request and
// rpc/<full method>/reply for every gRPC method a raygo process serves,
// and the named points of the code (Eval's callers).
package faults

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EnvFaults is the environment variable that enables points at start.
const EnvFaults = "RAYGO_FAULTS"

// ErrInjected is what a dropping point fails with.
var ErrInjected = errors.New("faults: injected failure")

// Limits.
const (
	// MaxPoints bounds the points enabled at once.
	MaxPoints = 256
	// MaxDelay bounds a delay action.
	MaxDelay = 10 * time.Minute
)

type kind int

const (
	drop kind = iota
	delay
	exit
)

// action is one enabled point's behaviour.
type action struct {
	kind  kind
	delay time.Duration
	code  int
	at    int64   // >0: only the at-th time
	first int64   // >0: the first `first` times
	prob  float64 // >0: with this probability
	hits  atomic.Int64
}

var (
	enabled atomic.Bool // any point enabled: the fast path's only load
	mu      sync.Mutex
	points  = map[string]*action{}
	// exitFn ends the process (tests replace it).
	exitFn = os.Exit
)

func init() {
	if spec := os.Getenv(EnvFaults); spec != "" {
		if err := Enable(spec); err != nil {
			fmt.Fprintf(os.Stderr, "raygo: %s: %v\n", EnvFaults, err)
			os.Exit(2)
		}
	}
}

// Enable parses specs ("point=action;…", see the package comment) and
// enables those points, replacing their earlier actions. Nothing is
// enabled if any spec is malformed.
func Enable(specs string) error {
	parsed := map[string]*action{}
	for _, spec := range strings.Split(specs, ";") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		name, act, ok := strings.Cut(spec, "=")
		if !ok || name == "" {
			return fmt.Errorf("faults: %q: want point=action", spec)
		}
		a, err := parseAction(act)
		if err != nil {
			return fmt.Errorf("faults: %s: %w", name, err)
		}
		parsed[name] = a
	}
	mu.Lock()
	defer mu.Unlock()
	if len(points)+len(parsed) > MaxPoints {
		return fmt.Errorf("faults: more than %d points enabled", MaxPoints)
	}
	for name, a := range parsed {
		points[name] = a
	}
	enabled.Store(len(points) > 0)
	return nil
}

// Disable turns points off; with no names, all of them.
func Disable(names ...string) {
	mu.Lock()
	defer mu.Unlock()
	if len(names) == 0 {
		clear(points)
	}
	for _, n := range names {
		delete(points, n)
	}
	enabled.Store(len(points) > 0)
}

// Hits reports how many times point name was reached while enabled.
func Hits(name string) int64 {
	mu.Lock()
	a := points[name]
	mu.Unlock()
	if a == nil {
		return 0
	}
	return a.hits.Load()
}

// Eval runs point name: nil when it is off or its action does not apply
// this time; after a delay, nil; for a drop, an error wrapping
// ErrInjected; an exit does not return.
func Eval(name string) error {
	if !enabled.Load() {
		return nil
	}
	mu.Lock()
	a := points[name]
	mu.Unlock()
	if a == nil {
		return nil
	}
	n := a.hits.Add(1)
	switch {
	case a.at > 0 && n != a.at:
		return nil
	case a.first > 0 && n > a.first:
		return nil
	case a.prob > 0 && rand.Float64() >= a.prob:
		return nil
	}
	switch a.kind {
	case delay:
		time.Sleep(a.delay)
		return nil
	case exit:
		fmt.Fprintf(os.Stderr, "raygo: fault point %s: exiting with code %d\n", name, a.code)
		exitFn(a.code)
		return nil
	}
	return fmt.Errorf("%w at %s", ErrInjected, name)
}

func parseAction(s string) (*action, error) {
	a := &action{}
	if i := strings.IndexAny(s, "@*%"); i >= 0 {
		mod, arg := s[i], s[i+1:]
		s = s[:i]
		switch mod {
		case '@', '*':
			n, err := strconv.ParseInt(arg, 10, 64)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%c%s: want a count of 1 or more", mod, arg)
			}
			if mod == '@' {
				a.at = n
			} else {
				a.first = n
			}
		case '%':
			p, err := strconv.ParseFloat(arg, 64)
			if err != nil || p <= 0 || p > 1 {
				return nil, fmt.Errorf("%%%s: want a probability in (0, 1]", arg)
			}
			a.prob = p
		}
	}
	switch {
	case s == "drop":
		a.kind = drop
	case strings.HasPrefix(s, "delay(") && strings.HasSuffix(s, ")"):
		d, err := time.ParseDuration(s[len("delay(") : len(s)-1])
		if err != nil || d < 0 || d > MaxDelay {
			return nil, fmt.Errorf("%s: want a duration from 0 to %s", s, MaxDelay)
		}
		a.kind, a.delay = delay, d
	case strings.HasPrefix(s, "exit(") && strings.HasSuffix(s, ")"):
		c, err := strconv.Atoi(s[len("exit(") : len(s)-1])
		if err != nil || c < 0 || c > 255 {
			return nil, fmt.Errorf("%s: want an exit code from 0 to 255", s)
		}
		a.kind, a.code = exit, c
	default:
		return nil, fmt.Errorf("%q: want drop, delay(D) or exit(CODE)", s)
	}
	return a, nil
}
