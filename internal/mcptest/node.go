package mcptest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Limits on a node process that a helper starts.
const (
	// DefaultTimeout bounds a node process when the caller's context has
	// no deadline.
	DefaultTimeout = 2 * time.Minute
	// MaxStdout is the most stdout kept from one node process; more fails
	// the helper (a plan's document or the Inspector's output is far
	// smaller).
	MaxStdout = 64 << 20
	// StderrTail is how much of the end of node's stderr is kept for error
	// messages and test logs.
	StderrTail = 64 << 10
	// pipeDrain is how long, after node exits, its pipes may stay open
	// (held by a process it started) before they are closed under the
	// readers.
	pipeDrain = 5 * time.Second
)

// errTooMuchOutput is returned when a node process writes more than MaxStdout.
var errTooMuchOutput = fmt.Errorf("mcptest: node wrote more than %d bytes to stdout", MaxStdout)

// nodeRun is what one node process left: its stdout, the end of its
// stderr, and how it ended.
type nodeRun struct {
	stdout []byte
	stderr string
	// exitCode is the process's exit status; -1 when it was killed or did
	// not start.
	exitCode int
	// err is nil for exit status 0; otherwise why it failed (a context
	// error when the context ended first).
	err error
}

// runNode runs node with args, env added to this process's environment and
// stdin (when not nil), in its own process group, bounded by ctx (or by
// DefaultTimeout). It returns once node has exited, what it started has
// been killed, and its pipes are drained.
func runNode(ctx context.Context, env []string, stdin []byte, args ...string) nodeRun {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	setProcessGroup(cmd)
	// Pipes of our own, not exec's: exec's Wait would wait for every
	// process holding them (an MCP server node started shares its stderr),
	// while ours are drained after the group has been killed.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nodeRun{exitCode: -1, err: fmt.Errorf("mcptest: pipe for node: %w", err)}
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nodeRun{exitCode: -1, err: fmt.Errorf("mcptest: pipe for node: %w", err)}
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	startErr := cmd.Start()
	outW.Close()
	errW.Close()
	if startErr != nil {
		outR.Close()
		errR.Close()
		return nodeRun{exitCode: -1, err: fmt.Errorf("mcptest: starting node: %w", startErr)}
	}

	var stdout limitedBuffer
	stderr := tailBuffer{max: StderrTail}
	outDone := make(chan struct{})
	errDone := make(chan struct{})
	go func() { io.Copy(&stdout, outR); close(outDone) }()
	go func() { io.Copy(&stderr, errR); close(errDone) }()

	waitErr := cmd.Wait()
	killGroup(cmd)
	drain := time.NewTimer(pipeDrain)
	defer drain.Stop()
	for outPending, errPending := true, true; outPending || errPending; {
		select {
		case <-outDone:
			outPending = false
		case <-errDone:
			errPending = false
		case <-drain.C:
			// Something node started outlived the group kill (no process
			// groups here) and holds a pipe: stop reading.
			outR.Close()
			errR.Close()
		}
	}
	outR.Close()
	errR.Close()

	r := nodeRun{stdout: stdout.Bytes(), stderr: stderr.String(), exitCode: cmd.ProcessState.ExitCode()}
	switch {
	case ctx.Err() != nil:
		r.err = fmt.Errorf("mcptest: node %s: %w", strings.Join(args, " "), ctx.Err())
	case waitErr != nil:
		r.err = fmt.Errorf("mcptest: node %s: %w", strings.Join(args, " "), waitErr)
	case stdout.over:
		r.err = errTooMuchOutput
	}
	return r
}

// limitedBuffer is a bytes.Buffer that stops growing at MaxStdout; what
// comes after is read and dropped (so that node is not blocked on a full
// pipe), and over records that it happened.
type limitedBuffer struct {
	bytes.Buffer
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.over || b.Len()+len(p) > MaxStdout {
		b.over = true
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
	cut bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.cut = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	if b.cut {
		return "…" + string(b.buf)
	}
	return string(b.buf)
}
