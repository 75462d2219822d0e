package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// child is a second process serving one peer: this binary re-executed with
// a serve-* subcommand. It prints "ADDR host:port" when it listens and
// exits when its stdin closes.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	done  chan error
}

// startChild starts "peers <mode>" and waits (at most 15s) for its
// address.
func startChild(ctx context.Context, mode string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, mode)
	cmd.Stderr = os.Stderr
	setParentDeathSignal(cmd) // the child dies with us, however we end
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", mode, err)
	}
	c := &child{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				select {
				case lines <- a:
				default:
				}
			}
		}
		c.done <- cmd.Wait()
	}()
	select {
	case c.addr = <-lines:
		return c, nil
	case err := <-c.done:
		c.done <- err
		c.stop()
		return nil, fmt.Errorf("%s exited before listening: %v", mode, err)
	case <-time.After(15 * time.Second):
		c.stop()
		return nil, fmt.Errorf("%s did not listen within 15s", mode)
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

// stop closes the child's stdin, waits up to 3s for it to exit, then
// kills it by pid.
func (c *child) stop() {
	c.stdin.Close()
	select {
	case <-c.done:
		return
	case <-time.After(3 * time.Second):
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// serveUntilStdinCloses announces addr and blocks until stdin is closed
// (the parent stopping us, or dying).
func serveUntilStdinCloses(addr string) {
	fmt.Printf("ADDR %s\n", addr)
	_, _ = io.Copy(io.Discard, os.Stdin)
}
