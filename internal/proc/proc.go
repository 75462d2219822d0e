// Package proc is what raygo asks of the operating system about
// processes, with one contract on every platform: whether a process still
// runs (Alive), its command line (Cmdline), stopping it (Signal), starting
// children detached from a terminal (Detach) or tied to their parent
// (Child), and the parent-death pipe (Lifeline, WatchParent) through which
// a child learns that its parent died.
//
// Platform differences live in proc_linux.go, proc_darwin.go and
// proc_other.go (same function names); this file states the contract.
//
// Workers die with their node daemon. On every platform with pipes the
// daemon holds the write end of a Lifeline and each worker watches the
// read end, inherited as an extra descriptor: when the daemon dies,
// however it dies, the kernel closes the write end and the worker reads
// end-of-file. On Linux a worker also gets Pdeathsig (SIGKILL when the
// daemon's thread that started it exits), which the kernel delivers even
// to a worker whose runtime is wedged.
package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
)

// Alive reports whether a process with this pid exists and has not exited
// (a zombie, exited but not yet reaped by its parent, counts as gone).
// A process of another user counts as alive. Linux reads /proc/<pid>/stat,
// darwin asks sysctl kern.proc.pid, elsewhere it asks the OS whether the
// pid exists (without seeing zombies).
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	return alive(pid)
}

// Cmdline returns the arguments process pid was started with (argv,
// program first). Its error wraps ErrUnsupported where the platform does
// not say (anywhere but Linux and darwin), and fs.ErrNotExist or the OS's
// error when the process is gone or not readable.
func Cmdline(pid int) ([]string, error) { return cmdline(pid) }

// ErrUnsupported is wrapped by errors of what a platform cannot do. It
// wraps errors.ErrUnsupported.
var ErrUnsupported = fmt.Errorf("proc: not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// Sig is a way to stop a process.
type Sig int

// Signals.
const (
	// Terminate asks the process to stop (SIGTERM); where there are no
	// signals (windows), it kills it.
	Terminate Sig = iota
	// Kill stops it at once (SIGKILL, TerminateProcess).
	Kill
)

func (s Sig) String() string {
	if s == Kill {
		return "SIGKILL"
	}
	return "SIGTERM"
}

// Signal sends s to process pid. A process that is already gone is not an
// error.
func Signal(pid int, s Sig) error {
	if pid <= 0 {
		return fmt.Errorf("proc: bad pid %d", pid)
	}
	return signal(pid, s)
}

// Detach makes cmd start in a session of its own (unix: setsid; windows:
// a new process group), so it outlives the terminal that started it and
// does not get its signals.
func Detach(cmd *exec.Cmd) { detach(cmd) }

// Child makes cmd a child that dies with this process: in a process group
// of its own (so a terminal's Ctrl-C reaches only the parent, which stops
// its children itself), with Pdeathsig on Linux when deathSignal is set.
// Pair it with a Lifeline for the platforms without Pdeathsig; tests turn
// deathSignal off to check that the Lifeline alone suffices.
func Child(cmd *exec.Cmd, deathSignal bool) { child(cmd, deathSignal) }

// EnvLifeline names the environment variable through which a child learns
// which descriptor is the read end of its parent's Lifeline.
const EnvLifeline = "RAYGO_LIFELINE_FD"

// Lifeline is a parent's side of a parent-death pipe. The parent keeps
// the write end open and never writes to it; children inherit the read
// end (Attach) and watch it (WatchParent). When the parent exits, for any
// reason, the write end closes and every child reads end-of-file. The
// write end is close-on-exec, so no child holds it. Safe for concurrent
// use.
type Lifeline struct {
	r, w *os.File
}

// LifelineSupported reports whether NewLifeline can work here: children
// inherit extra descriptors everywhere but windows.
func LifelineSupported() bool { return hasLifeline }

// NewLifeline makes a parent-death pipe. Its error wraps ErrUnsupported
// where children cannot inherit extra descriptors (windows).
func NewLifeline() (*Lifeline, error) {
	if !hasLifeline {
		return nil, fmt.Errorf("proc: parent-death pipe: %w", ErrUnsupported)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("proc: parent-death pipe: %w", err)
	}
	return &Lifeline{r: r, w: w}, nil
}

// Attach passes the read end to cmd, before cmd.Start, as an extra
// descriptor named in cmd's environment (EnvLifeline). A nil cmd.Env is
// first set to this process's environment, as exec would use.
func (l *Lifeline) Attach(cmd *exec.Cmd) {
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, l.r)
	fd := 2 + len(cmd.ExtraFiles) // ExtraFiles[i] becomes descriptor 3+i
	cmd.Env = append(cmd.Env, EnvLifeline+"="+strconv.Itoa(fd))
}

// Close closes both ends: every child watching the Lifeline sees its
// parent gone. It is safe to call more than once.
func (l *Lifeline) Close() error {
	err := l.w.Close()
	l.r.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// ErrNoLifeline is returned by WatchParent in a process whose parent gave
// it no Lifeline.
var ErrNoLifeline = errors.New("proc: this process was started without a parent-death pipe (" + EnvLifeline + ")")

// WatchParent watches the Lifeline this process inherited (EnvLifeline)
// and returns a channel closed when the parent's end closes: the parent
// died or closed it. It removes EnvLifeline from the environment and
// marks the descriptor close-on-exec, so this process's own children do
// not take it for theirs. The watching goroutine lives until then. Call
// it once per process.
func WatchParent() (<-chan struct{}, error) {
	v, ok := os.LookupEnv(EnvLifeline)
	if !ok {
		return nil, ErrNoLifeline
	}
	os.Unsetenv(EnvLifeline)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("proc: %s=%q is not an inherited descriptor", EnvLifeline, v)
	}
	f, err := watchFile(fd)
	if err != nil {
		return nil, fmt.Errorf("proc: parent-death pipe %d: %w", fd, err)
	}
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		defer f.Close()
		var buf [64]byte
		for {
			if _, err := f.Read(buf[:]); err != nil {
				return // io.EOF: the write end closed
			}
		}
	}()
	return gone, nil
}

// isGone reports whether err from kill(2) means the process is gone.
func isGone(err error) bool {
	return errors.Is(err, syscall.ESRCH) || errors.Is(err, os.ErrProcessDone)
}
