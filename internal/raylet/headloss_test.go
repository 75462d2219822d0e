package raylet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
)

func TestHeadLost(t *testing.T) {
	t0 := time.Unix(1000, 0)
	down := fmt.Errorf("%w: connection refused", errs.ErrUnavailable)
	for _, c := range []struct {
		name       string
		persistent bool
		err        error
		unknown    bool
		silent     time.Duration // since the last answer
		missed     int           // heartbeats in a row without an answer (default 2)
		lost       string        // what the reason says; "" when not lost
	}{
		{name: "silent long, but only one heartbeat missed (this node was stalled)", err: down, silent: time.Minute, missed: 1},
		{name: "answering", silent: 0},
		{name: "one missed heartbeat", err: down, silent: time.Second},
		{name: "silent just short of the timeout", err: down, silent: 5*time.Second - time.Millisecond},
		{name: "unreachable for the timeout", err: down, silent: 5 * time.Second, lost: "could not be reached for 5s"},
		{name: "silent (calls time out) for the timeout: a stalled head", err: context.DeadlineExceeded, silent: 5 * time.Second},
		{name: "silent for a minute", err: context.DeadlineExceeded, silent: time.Minute, lost: "no answer for 1m0s"},
		{name: "an error answer is an answer", err: errs.Invalidf("bad heartbeat"), silent: time.Hour},
		{name: "a stranger answers", unknown: true, lost: "does not know this node"},
		{name: "persistent, unreachable past the head timeout (restarting)", persistent: true, err: down, silent: 30 * time.Second},
		{name: "persistent, unreachable for the reconnect timeout", persistent: true, err: down, silent: HeadReconnectTimeout,
			lost: "did not come back within 1m0s"},
		{name: "persistent, silent for the reconnect timeout", persistent: true, err: context.DeadlineExceeded, silent: time.Hour,
			lost: "did not come back"},
		{name: "persistent, a stranger answers", persistent: true, unknown: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			missed := c.missed
			if missed == 0 && c.err != nil {
				missed = minMissed
			}
			err := headLost(c.persistent, c.err, c.unknown, missed, t0, t0.Add(c.silent), 5*time.Second, "127.0.0.1:6379")
			if c.lost == "" {
				if err != nil {
					t.Fatalf("lost: %v", err)
				}
				return
			}
			var hl *errs.HeadLostError
			if !errors.As(err, &hl) || !errors.Is(err, errs.ErrHeadLost) || hl.Head != "127.0.0.1:6379" || !strings.Contains(err.Error(), c.lost) {
				t.Fatalf("got %v, want a HeadLostError saying %q", err, c.lost)
			}
		})
	}
}
