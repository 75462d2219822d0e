package coreworker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/rpc"
)

func TestSessionDown(t *testing.T) {
	t0 := time.Unix(1000, 0)
	refused := errs.Systemf("unavailable: connection refused")
	notRunning := rpc.ToStatus(errs.NotFoundf("gcs: job 1f is not running"))
	for _, c := range []struct {
		name       string
		persistent bool
		err        error
		unknownJob bool
		down       time.Duration
		lost       string // what the reason says; "" when not lost
	}{
		{name: "broke just now", err: refused},
		{name: "down short of the timeout", err: refused, down: 5*time.Second - time.Millisecond},
		{name: "down for the timeout", err: refused, down: 5 * time.Second, lost: "no answer for 5s"},
		{name: "the job finished", err: notRunning, down: time.Minute},
		{name: "silent for the timeout: a stalled head", err: context.DeadlineExceeded, down: 5 * time.Second},
		{name: "silent for a minute", err: context.DeadlineExceeded, down: time.Minute, lost: "no answer for 1m0s"},
		{name: "a control store that does not know the job", err: notRunning, unknownJob: true, lost: "does not know this job"},
		{name: "persistent, down past the head timeout (restarting)", persistent: true, err: refused, down: 30 * time.Second},
		{name: "persistent, down for the reconnect timeout", persistent: true, err: refused, down: time.Minute, lost: "did not come back within 1m0s"},
		{name: "persistent, job unknown", persistent: true, err: notRunning, unknownJob: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := sessionDown(c.persistent, c.err, func() bool { return c.unknownJob }, t0, t0.Add(c.down), 5*time.Second, "10.0.0.1:6379")
			if c.lost == "" {
				if got != nil {
					t.Fatalf("lost: %v", got)
				}
				return
			}
			if got == nil || !errors.Is(got, errs.ErrHeadLost) || got.Head != "10.0.0.1:6379" || !strings.Contains(got.Error(), c.lost) {
				t.Fatalf("got %v, want a HeadLostError saying %q", got, c.lost)
			}
		})
	}
}
