package microbench

import (
	"fmt"
	"time"
)

// Limits on Config values.
const (
	// MaxDuration bounds Config.Duration, so that no mistake in a flag
	// ties a machine up for hours.
	MaxDuration = 10 * time.Minute
	// MaxClients bounds Config.Clients.
	MaxClients = 256
	// maxWarmup bounds the warm-up before each measurement.
	maxWarmup = time.Second
)

// Config says how long each benchmark runs and how many clients the
// multi-client ones use. The zero value is not valid; start from
// NewConfig.
type Config struct {
	// Duration is how long each benchmark is measured, after a warm-up of
	// a fifth of it (at most a second).
	Duration time.Duration
	// Clients is the number of client actors (or tasks) of the multi_ and
	// n_n_ benchmarks, and the number of server actors of 1_n_ and n_n_.
	// Ray uses half the machine's CPUs for the latter; 2 suits the 2-core
	// machines raygo's targets are set for.
	Clients int
}

// NewConfig returns the defaults: 2 s per benchmark, 2 clients.
func NewConfig() Config {
	return Config{Duration: 2 * time.Second, Clients: 2}
}

// Validate reports a value out of range, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	if c.Duration <= 0 || c.Duration > MaxDuration {
		return fmt.Errorf("%w: duration %s: want more than 0 and at most %s", ErrInvalidConfig, c.Duration, MaxDuration)
	}
	if c.Clients < 1 || c.Clients > MaxClients {
		return fmt.Errorf("%w: clients %d: want 1 to %d", ErrInvalidConfig, c.Clients, MaxClients)
	}
	return nil
}

// warmup is how long a benchmark runs before it is measured.
func (c Config) warmup() time.Duration { return min(c.Duration/5, maxWarmup) }

// timeout bounds one benchmark, setup and teardown included, so that a
// wedged cluster fails the benchmark instead of hanging the run.
func (c Config) timeout() time.Duration { return 3*c.Duration + time.Minute }
