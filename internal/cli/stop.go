package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/session"
)

// stopGrace is how long `raygo stop` lets nodes shut down cleanly after
// SIGTERM before it sends SIGKILL.
const stopGrace = 10 * time.Second

// killWait bounds the wait for processes to vanish after SIGKILL.
const killWait = 5 * time.Second

// newStopCmd builds `raygo stop`.
func newStopCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the raygo cluster started on this machine",
		Long: `Stop the node processes of the latest raygo session on this machine (see
session_latest) and remove the session directory.

Each process gets SIGTERM, stops its node and kills its workers; whatever
still runs after 10 seconds gets SIGKILL. --force sends SIGKILL at once.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStop(cmd.Context(), force, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "send SIGKILL instead of SIGTERM")
	return cmd
}

// runStop implements `raygo stop`.
func runStop(ctx context.Context, force bool, out io.Writer) error {
	d, err := session.Latest()
	if err != nil {
		// session_latest is gone, but a cluster may still run in another
		// session (see repointLatest).
		others := liveSessions()
		if len(others) == 0 {
			fmt.Fprintln(out, "no running raygo cluster")
			return nil
		}
		d = others[len(others)-1]
	}
	live := liveNodes(d)
	if len(live) == 0 {
		// A head that crashed leaves its session behind; tidy it up.
		if err := d.Remove(); err != nil {
			return fmt.Errorf("remove stale session %s: %w", d, err)
		}
		fmt.Fprintf(out, "no running raygo cluster (removed stale session %s)\n", d)
		repointLatest(out)
		return nil
	}

	sig := proc.Terminate
	if force {
		sig = proc.Kill
	}
	if err := signalAll(live, sig); err != nil {
		return err
	}
	left := waitGone(ctx, live, stopGrace)
	if len(left) > 0 && sig != proc.Kill {
		fmt.Fprintf(out, "pids %s did not stop within %s; sending SIGKILL\n", joinPIDs(left), stopGrace)
		if err := signalAll(left, proc.Kill); err != nil {
			return err
		}
		left = waitGone(ctx, left, killWait)
	}
	if len(left) > 0 {
		return fmt.Errorf("pids %s are still running; session %s kept", joinPIDs(left), d)
	}
	if err := d.Remove(); err != nil {
		return fmt.Errorf("remove session %s: %w", d, err)
	}
	noun := "process"
	if len(live) > 1 {
		noun = "processes"
	}
	fmt.Fprintf(out, "Stopped %d raygo node %s (pid %s) with %s.\n", len(live), noun, joinPIDs(live), sig)
	fmt.Fprintf(out, "Removed session %s.\n", d)
	repointLatest(out)
	return nil
}

// repointLatest points session_latest at the newest session that still
// runs a node, if any: two heads were started on this machine, and the
// next `raygo status` or `raygo stop` should find the remaining one.
func repointLatest(out io.Writer) {
	others := liveSessions()
	if len(others) == 0 {
		return
	}
	d := others[len(others)-1]
	if err := d.MarkLatest(); err != nil {
		return
	}
	addr, _ := d.ReadFile(addressFile)
	fmt.Fprintf(out, "Another raygo cluster still runs on this machine (%s, session %s); `raygo stop` again stops it.\n", addr, d)
}

// signalAll sends sig to every pid; a process that is already gone is
// not an error.
func signalAll(pids []int, sig proc.Sig) error {
	var errs []error
	for _, p := range pids {
		if err := proc.Signal(p, sig); err != nil {
			errs = append(errs, fmt.Errorf("signal pid %d: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// waitGone polls until every pid has exited or d passes (or ctx ends),
// and returns those still running.
func waitGone(ctx context.Context, pids []int, d time.Duration) []int {
	left := slices.Clone(pids)
	deadline := time.Now().Add(d)
	for {
		left = slices.DeleteFunc(left, func(p int) bool { return !processAlive(p) })
		if len(left) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func joinPIDs(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}
