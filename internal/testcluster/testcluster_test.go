//go:build linux || darwin

package testcluster

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/resources"
)

// The test binary doubles as the program run on hosts: with envHelper
// set it serves or dials instead of running tests.
const (
	envHelper = "RAYGO_TESTCLUSTER_HELPER" // "serve ADDR ABSTRACT" or "dial NETWORK ADDR"
)

func TestMain(m *testing.M) {
	if h := os.Getenv(envHelper); h != "" {
		os.Exit(helper(strings.Fields(h)))
	}
	os.Exit(m.Run())
}

// helper serves: it answers every connection on a TCP address and an
// abstract unix socket with the name of its host; or dials and prints
// what it was answered.
func helper(args []string) int {
	switch args[0] {
	case "serve":
		answer := func(l net.Listener) {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				fmt.Fprint(c, os.Getenv(EnvHost))
				c.Close()
			}
		}
		tl, err := net.Listen("tcp", args[1])
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		ul, err := net.Listen("unix", "@"+args[2])
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		go answer(ul)
		fmt.Println("ready")
		answer(tl)
	case "dial":
		fmt.Println(dial(args[1], args[2]))
	case "hostid":
		fmt.Println(resources.DetectHost().ID)
	}
	return 0
}

// dial reads what the server at addr answers, or "error: …".
func dial(network, addr string) string {
	c, err := net.DialTimeout(network, addr, 700*time.Millisecond)
	if err != nil {
		return "error: " + err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

// serve starts the helper server on h and waits until it listens.
func serve(t *testing.T, h *Host, addr, abstract string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(exe)
	cmd.Env = append(cmd.Env, envHelper+"=serve "+addr+" "+abstract)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("server on %s: %q", h.Name, line)
	}
}

// dialFrom dials from a process on h.
func dialFrom(t *testing.T, h *Host, network, addr string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(exe)
	cmd.Env = append(cmd.Env, envHelper+"=dial "+network+" "+addr)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dial from %s: %v", h.Name, err)
	}
	return strings.TrimSpace(string(out))
}

func addHost(t *testing.T, b *Bed, name string) *Host {
	t.Helper()
	h, err := b.AddHost(name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newBed(t *testing.T, mode Mode) *Bed {
	t.Helper()
	b, err := New(mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("test bed: %s", b.Mode())
	return b
}

// TestNamespaces: hosts reach each other (and the machine reaches them)
// at their addresses, do not share abstract unix sockets, can be cut off
// and restored, and leave nothing behind.
func TestNamespaces(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	b := newBed(t, Namespaces)
	a, c := addHost(t, b, "a"), addHost(t, b, "c")
	if _, err := b.AddHost("a"); err == nil {
		t.Fatal("a second host named a was added")
	}
	if _, err := b.AddHost("no spaces"); err == nil {
		t.Fatal("a host name with a space was taken")
	}
	addr := net.JoinHostPort(a.IP, "7400")
	abstract := "raygo-testcluster-" + strconv.Itoa(os.Getpid())
	serve(t, a, addr, abstract)

	if got := dialFrom(t, c, "tcp", addr); got != "a" {
		t.Fatalf("host c dialing host a: %q", got)
	}
	if got := dial("tcp", addr); got != "a" {
		t.Fatalf("the machine dialing host a: %q", got)
	}
	// Abstract unix sockets belong to a namespace: the same name is not
	// there from another host, or from the machine.
	if got := dialFrom(t, a, "unix", "@"+abstract); got != "a" {
		t.Fatalf("host a dialing its own abstract socket: %q", got)
	}
	if got := dialFrom(t, c, "unix", "@"+abstract); !strings.HasPrefix(got, "error") {
		t.Fatalf("host c reached host a's abstract socket: %q", got)
	}
	if got := dial("unix", "@"+abstract); !strings.HasPrefix(got, "error") {
		t.Fatalf("the machine reached host a's abstract socket: %q", got)
	}

	if err := a.Partition(); err != nil {
		t.Fatal(err)
	}
	if got := dialFrom(t, c, "tcp", addr); !strings.HasPrefix(got, "error") {
		t.Fatalf("host c reached a partitioned host: %q", got)
	}
	if err := a.Heal(); err != nil {
		t.Fatal(err)
	}
	healed := ""
	for range 20 { // the bridge port takes a moment to forward again
		if healed = dialFrom(t, c, "tcp", addr); healed == "a" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if healed != "a" {
		t.Fatalf("host c dialing host a after Heal: %q", healed)
	}

	ns, bridge := a.ns, b.bridge
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if out, _ := output("ip", "netns", "list"); strings.Contains(out, ns) {
		t.Fatalf("namespace %s left after Close:\n%s", ns, out)
	}
	if err := run("ip", "link", "show", bridge); err == nil {
		t.Fatalf("bridge %s left after Close", bridge)
	}
	if _, err := b.AddHost("late"); err == nil {
		t.Fatal("AddHost after Close succeeded")
	}
}

// TestHostIdentity: processes in one namespace are on one host; in two,
// on two (same-machine shortcuts, such as sharing a store, must not span
// namespaces: their abstract sockets do not).
func TestHostIdentity(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	b := newBed(t, Namespaces)
	a, c := addHost(t, b, "a"), addHost(t, b, "c")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	id := func(h *Host) string {
		cmd := h.Command(exe)
		cmd.Env = append(cmd.Env, envHelper+"=hostid")
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	a1, a2, c1 := id(a), id(a), id(c)
	if a1 != a2 || a1 == c1 || a1 == resources.DetectHost().ID {
		t.Fatalf("host ids: a %q and %q, c %q, the machine %q; want a's two equal and the three hosts different", a1, a2, c1, resources.DetectHost().ID)
	}
}

// TestLoopback: without namespaces each host is an address of the
// machine's own; its processes are told they share the machine.
func TestLoopback(t *testing.T) {
	if _, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("127.x addresses other than 127.0.0.1 are not local here: %v", err)
	}
	b := newBed(t, Loopback)
	a, c := addHost(t, b, "a"), addHost(t, b, "c")
	if a.IP == c.IP || !strings.HasPrefix(a.IP, "127.") {
		t.Fatalf("addresses %s and %s", a.IP, c.IP)
	}
	if !strings.Contains(strings.Join(a.Env(), " "), EnvShared+"=1") {
		t.Fatalf("env %v: want %s=1", a.Env(), EnvShared)
	}
	addr := net.JoinHostPort(a.IP, "7401")
	serve(t, a, addr, "raygo-testcluster-lo-"+strconv.Itoa(os.Getpid()))
	if got := dialFrom(t, c, "tcp", addr); got != "a" {
		t.Fatalf("host c dialing host a: %q", got)
	}
	if err := a.Partition(); err == nil {
		t.Fatal("a loopback bed partitioned a host")
	}
}

// TestCleanStale: what a Bed of a dead process left is deleted; a live
// one's is not.
func TestCleanStale(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	tag := namePrefix + strconv.Itoa(dead.Process.Pid)
	ns, bridge := tag+"-77-1", tag+"b77"
	if err := run("ip", "netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	if err := run("ip", "link", "add", bridge, "type", "bridge"); err != nil {
		_ = run("ip", "netns", "del", ns)
		t.Fatal(err)
	}
	live := newBed(t, Namespaces)
	if _, err := live.AddHost("kept"); err != nil {
		t.Fatal(err)
	}
	n, err := CleanStale()
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("CleanStale deleted %d things, want the dead process's namespace and bridge", n)
	}
	if out, _ := output("ip", "netns", "list"); strings.Contains(out, ns) || !strings.Contains(out, live.Hosts()[0].ns) {
		t.Fatalf("namespaces after CleanStale:\n%s", out)
	}
	if run("ip", "link", "show", bridge) == nil || run("ip", "link", "show", live.bridge) != nil {
		t.Fatal("CleanStale kept the dead bridge or deleted the live one")
	}
}

func TestNewRefusesUnknownMode(t *testing.T) {
	if _, err := New("vm"); err == nil {
		t.Fatal(`New("vm") succeeded`)
	}
}
