package proc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helper modes of this test binary.
const (
	envMode = "PROC_TEST_MODE"
	// watcher: watch the Lifeline, print "watching", exit 0 when the
	// parent's end closes.
	modeWatcher = "watcher"
	// middle: start a watcher on a Lifeline of its own, print its pid,
	// then wait to be killed.
	modeMiddle = "middle"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envMode) {
	case modeWatcher:
		gone, err := WatchParent()
		if err != nil {
			fmt.Println("watch:", err)
			os.Exit(2)
		}
		if _, ok := os.LookupEnv(EnvLifeline); ok {
			fmt.Println("watch: the variable is still set")
			os.Exit(2)
		}
		fmt.Println("watching")
		<-gone
		os.Exit(0)
	case modeMiddle:
		l, err := NewLifeline()
		if err != nil {
			fmt.Println("lifeline:", err)
			os.Exit(2)
		}
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), envMode+"="+modeWatcher)
		Child(cmd, false) // no Pdeathsig: the pipe alone
		l.Attach(cmd)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			fmt.Println("start:", err)
			os.Exit(2)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		fmt.Printf("%d %s", cmd.Process.Pid, line)
		select {}
	}
	os.Exit(m.Run())
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAlive(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Fatal("this process is not alive")
	}
	for _, pid := range []int{0, -1} {
		if Alive(pid) {
			t.Fatalf("pid %d alive", pid)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Exited but not reaped: a zombie counts as gone where the platform
	// tells zombies apart.
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
		eventually(t, "the exited child to count as gone before it is reaped", func() bool { return !Alive(pid) })
	}
	_ = cmd.Wait()
	if Alive(pid) {
		t.Fatalf("reaped pid %d alive", pid)
	}
	if err := Signal(pid, Kill); err != nil {
		t.Fatalf("signalling a process that is gone: %v", err)
	}
}

func TestSignal(t *testing.T) {
	for _, s := range []Sig{Terminate, Kill} {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Skipf("no sleep command: %v", err)
		}
		if err := Signal(cmd.Process.Pid, s); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Exited() {
			t.Fatalf("%v: %v, want death by signal", s, err)
		}
	}
	if err := Signal(0, Kill); err == nil {
		t.Fatal("Signal(0) accepted")
	}
}

func TestCmdline(t *testing.T) {
	args, err := Cmdline(os.Getpid())
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("Cmdline on %s: %v", runtime.GOOS, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(args, os.Args) {
		t.Fatalf("Cmdline = %q, want %q", args, os.Args)
	}
	if _, err := Cmdline(1 << 30); err == nil {
		t.Fatal("the command line of a pid that cannot exist")
	}
}

func TestParseProcargs2(t *testing.T) {
	build := func(argc int, rest string) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(argc))
		return append(b, rest...)
	}
	for _, c := range []struct {
		in   []byte
		want []string
		bad  bool
	}{
		{in: build(3, "/usr/bin/raygo\x00\x00\x00\x00raygo\x00start\x00--block\x00HOME=/x\x00"), want: []string{"raygo", "start", "--block"}},
		{in: build(1, "/bin/x\x00x\x00"), want: []string{"x"}},
		{in: build(2, "/bin/x\x00x\x00"), want: []string{"x"}}, // truncated: what there is
		{in: build(0, "/bin/x\x00"), want: []string{}},
		{in: []byte{1, 0}, bad: true},
		{in: build(1, "/bin/x"), bad: true},
	} {
		got, err := parseProcargs2(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%q: got %q, want an error", c.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestLifelineClosed: a child watching the Lifeline exits when its
// parent closes it.
func TestLifelineClosed(t *testing.T) {
	if !LifelineSupported() {
		if _, err := NewLifeline(); !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("NewLifeline on %s: %v", runtime.GOOS, err)
		}
		t.Skipf("no Lifeline on %s", runtime.GOOS)
	}
	l, err := NewLifeline()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envMode+"="+modeWatcher)
	Child(cmd, false)
	l.Attach(cmd)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	if line, _ := r.ReadString('\n'); line != "watching\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("watcher said %q", line)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("the watcher exited while its parent lived: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("watcher: %v", err)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the watcher did not exit when the Lifeline closed")
	}
}

// TestLifelineParentKilled: a process killed with SIGKILL takes its
// watching child with it, with no Pdeathsig; so the child does not hold
// the write end itself.
func TestLifelineParentKilled(t *testing.T) {
	if !LifelineSupported() {
		t.Skipf("no Lifeline on %s", runtime.GOOS)
	}
	middle := exec.Command(os.Args[0])
	middle.Env = append(os.Environ(), envMode+"="+modeMiddle)
	out, _ := middle.StdoutPipe()
	if err := middle.Start(); err != nil {
		t.Fatal(err)
	}
	defer middle.Wait()
	line, _ := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if len(f) != 2 || f[1] != "watching" {
		_ = middle.Process.Kill()
		t.Fatalf("middle said %q", line)
	}
	pid, _ := strconv.Atoi(f[0])
	if !Alive(pid) {
		t.Fatalf("watcher pid %d not running", pid)
	}
	if err := Signal(middle.Process.Pid, Kill); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the orphaned watcher to exit", func() bool { return !Alive(pid) })
}

func TestWatchParentWithoutLifeline(t *testing.T) {
	t.Setenv(EnvLifeline, "")
	os.Unsetenv(EnvLifeline)
	if _, err := WatchParent(); !errors.Is(err, ErrNoLifeline) {
		t.Fatalf("WatchParent without a Lifeline: %v", err)
	}
	for _, v := range []string{"x", "1", "999"} {
		t.Setenv(EnvLifeline, v)
		if _, err := WatchParent(); err == nil || errors.Is(err, ErrNoLifeline) {
			t.Fatalf("%s=%s: %v, want an error naming a bad descriptor", EnvLifeline, v, err)
		}
	}
}
