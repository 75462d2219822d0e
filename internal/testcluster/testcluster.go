//go:build linux || darwin

// Package testcluster simulates separate hosts on one machine, for tests
// of multi-host clusters and for `raygo` debugging.
//
// A Bed holds hosts. Where it can (Linux, as root, with the ip command),
// each host is a network namespace with its own address, joined to the
// others by a bridge in the root namespace: processes started on a host
// see only that host's interfaces, abstract unix sockets and ports, so no
// same-machine shortcut works between hosts by accident, and a host's
// link can be cut (Partition) and restored (Heal). Elsewhere the Bed
// falls back to one 127.x address per host in the root namespace; Mode
// says which ran, and the caller turns local shortcuts off there (Env).
// Either way a host can have a memory cgroup of its own (LimitMemory), as
// a smaller machine or a container would.
//
// Every address is in 127.0.0.0/8 (route_localnet lets such addresses
// cross the bridge), so nothing a test starts is reachable from outside
// the machine. Close deletes what the Bed made; CleanStale deletes what a
// killed test left.
package testcluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Mode is how a Bed separates its hosts.
type Mode string

const (
	// Namespaces: each host is a network namespace behind a bridge.
	Namespaces Mode = "netns"
	// Loopback: hosts share the root namespace, one 127.x address each.
	Loopback Mode = "loopback"
)

// MaxHosts is the most hosts a Bed holds (the host part of its /16
// addresses, less the bridge's).
const MaxHosts = 250

// namePrefix starts the names of every namespace and link a Bed makes;
// the creating process's pid follows, for CleanStale.
const namePrefix = "rgtc"

// Bed is a set of simulated hosts. Its methods are safe for concurrent
// use.
type Bed struct {
	mode   Mode
	net    int    // the second octet of the Bed's 127.net.0.0/16
	tag    string // namePrefix + pid, in every name the Bed makes
	bridge string // the bridge's name (namespaces only)

	mu     sync.Mutex
	hosts  []*Host // guarded by mu
	closed bool    // guarded by mu
}

// Host is one simulated host.
type Host struct {
	bed  *Bed
	Name string // as given to AddHost
	// IP is the host's address: processes on it serve there.
	IP string
	ns string // its network namespace ("" in loopback mode)
	// link is the root namespace's end of its veth pair (namespaces only).
	link string
	// cgroup is the host's memory cgroup (LimitMemory), "" when it has
	// none; guarded by bed.mu.
	cgroup string
}

// Available reports whether network namespaces can be made here, and if
// not, why.
func Available() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("testcluster: network namespaces need linux, not %s", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return errors.New("testcluster: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("testcluster: network namespaces need the ip command (iproute2)")
	}
	return nil
}

// New makes an empty Bed: with network namespaces when Available, unless
// want is Loopback; with want Namespaces where they are not available it
// fails.
func New(want Mode) (*Bed, error) {
	mode := want
	if mode == "" {
		mode = Namespaces
		if Available() != nil {
			mode = Loopback
		}
	}
	switch mode {
	case Namespaces:
		if err := Available(); err != nil {
			return nil, err
		}
	case Loopback:
	default:
		return nil, fmt.Errorf("testcluster: unknown mode %q (want %q or %q)", mode, Namespaces, Loopback)
	}
	b := &Bed{mode: mode, tag: namePrefix + strconv.Itoa(os.Getpid())}
	unlock, err := lockSetup()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if b.net, err = freeNet(b.tag); err != nil {
		return nil, err
	}
	if mode == Namespaces {
		// Bridges of one process are told apart by their network.
		b.bridge = b.tag + "b" + strconv.Itoa(b.net)
		if err := b.makeBridge(); err != nil {
			_ = releaseNet(b.net)
			return nil, err
		}
	}
	return b, nil
}

// Mode says how the Bed separates its hosts.
func (b *Bed) Mode() Mode { return b.mode }

// Hosts returns the hosts added so far, in order.
func (b *Bed) Hosts() []*Host {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*Host(nil), b.hosts...)
}

// RootIP is the address of the machine's own side of the Bed (the
// bridge's, or in loopback mode one no host has): a test process outside
// every host reaches the hosts from it.
func (b *Bed) RootIP() string { return fmt.Sprintf("127.%d.0.1", b.net) }

// AddHost adds a host named name (letters, digits and dashes).
func (b *Bed) AddHost(name string) (*Host, error) {
	if name == "" || strings.IndexFunc(name, func(r rune) bool {
		return !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) >= 0 {
		return nil, fmt.Errorf("testcluster: host name %q: want letters, digits and dashes", name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("testcluster: AddHost after Close")
	}
	for _, h := range b.hosts {
		if h.Name == name {
			return nil, fmt.Errorf("testcluster: host %q exists", name)
		}
	}
	n := len(b.hosts) + 1
	if n > MaxHosts {
		return nil, fmt.Errorf("testcluster: more than %d hosts", MaxHosts)
	}
	h := &Host{bed: b, Name: name, IP: fmt.Sprintf("127.%d.0.%d", b.net, n+1)}
	if b.mode == Namespaces {
		h.ns = fmt.Sprintf("%s-%d-%d", b.tag, b.net, n)
		h.link = fmt.Sprintf("%sh%d", b.tag, n)
		if len(h.link) > 15 { // IFNAMSIZ-1
			h.link = fmt.Sprintf("rgtc%dh%d", b.net, n)
		}
		if err := b.makeHost(h); err != nil {
			b.deleteHost(h)
			return nil, err
		}
	}
	b.hosts = append(b.hosts, h)
	return h, nil
}

// Command prepares name with args to run on the host: inside its
// namespace, or with Env added in loopback mode.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	h.bed.mu.Lock()
	cg := h.cgroup
	h.bed.mu.Unlock()
	if cg != "" {
		return h.cgroupCommand(cg, name, args...)
	}
	if h.ns == "" {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), h.Env()...)
		return cmd
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
	cmd.Env = append(os.Environ(), h.Env()...)
	return cmd
}

// EnvHost names, in a process started by Command, the host it runs on.
const EnvHost = "RAYGO_TESTCLUSTER_HOST"

// EnvShared is set to "1" in processes of a loopback Bed: hosts share the
// machine's abstract sockets and shared memory there, so what runs on
// them must not take same-machine shortcuts.
const EnvShared = "RAYGO_TESTCLUSTER_SHARED"

// Env is what Command adds to a process's environment.
func (h *Host) Env() []string {
	env := []string{EnvHost + "=" + h.Name}
	if h.ns == "" {
		env = append(env, EnvShared+"=1")
	}
	return env
}

// Partition cuts the host off the others (and the machine's side): its
// processes run on, and connections to them hang until Heal. Loopback
// Beds cannot partition.
func (h *Host) Partition() error { return h.setLink("down") }

// Heal restores a partitioned host's link.
func (h *Host) Heal() error { return h.setLink("up") }

func (h *Host) setLink(state string) error {
	if h.ns == "" {
		return errors.New("testcluster: a loopback bed cannot partition a host")
	}
	return run("ip", "link", "set", h.link, state)
}

// Close deletes every host, with its memory cgroup (killing nothing:
// stop what runs on them first), and the bridge. It returns the errors
// joined.
func (b *Bed) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	hosts := b.hosts
	b.hosts = nil
	b.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		errs = append(errs, h.removeCgroup(), b.deleteHost(h))
	}
	if b.mode == Namespaces {
		errs = append(errs, run("ip", "link", "del", b.bridge))
	}
	errs = append(errs, releaseNet(b.net))
	return errors.Join(errs...)
}

// makeBridge makes the Bed's bridge with the machine's address on it.
func (b *Bed) makeBridge() error {
	steps := [][]string{
		{"ip", "link", "add", b.bridge, "type", "bridge"},
		{"ip", "addr", "add", fmt.Sprintf("127.%d.0.1/16", b.net), "dev", b.bridge},
		{"ip", "link", "set", b.bridge, "up"},
		{"sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"},
		{"sysctl", "-qw", "net.ipv4.conf." + b.bridge + ".route_localnet=1"},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			_ = run("ip", "link", "del", b.bridge)
			return err
		}
	}
	return nil
}

// makeHost makes h's namespace and its veth pair on the bridge.
func (b *Bed) makeHost(h *Host) error {
	peer := h.link + "p"
	if len(peer) > 15 {
		peer = h.link[:14] + "p"
	}
	in := func(args ...string) []string { return append([]string{"ip", "-n", h.ns}, args...) }
	exe := func(args ...string) []string { return append([]string{"ip", "netns", "exec", h.ns}, args...) }
	steps := [][]string{
		{"ip", "netns", "add", h.ns},
		{"ip", "link", "add", h.link, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", h.link, "master", b.bridge},
		{"sysctl", "-qw", "net.ipv4.conf." + h.link + ".route_localnet=1"},
		{"ip", "link", "set", h.link, "up"},
		{"ip", "link", "set", peer, "netns", h.ns},
		in("link", "set", peer, "name", "eth0"),
		in("addr", "add", h.IP+"/16", "dev", "eth0"),
		in("link", "set", "lo", "up"),
		in("link", "set", "eth0", "up"),
		exe("sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"),
		exe("sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"),
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// deleteHost removes h's link and namespace (what exists of them).
func (b *Bed) deleteHost(h *Host) error {
	if h.ns == "" {
		return nil
	}
	_ = run("ip", "link", "del", h.link) // takes its peer with it
	return run("ip", "netns", "del", h.ns)
}

// CleanStale deletes the namespaces and bridges of Beds whose process has
// died without closing them, and returns how many it deleted.
func CleanStale() (int, error) {
	if Available() != nil {
		return 0, nil
	}
	n, err := cleanStaleCgroups()
	errs := []error{err}
	out, err := output("ip", "netns", "list")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		ns, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if pid, ok := ownerPid(ns); ok && !alive(pid) {
			errs = append(errs, run("ip", "netns", "del", ns))
			n++
		}
	}
	out, err = output("ip", "-o", "link", "show", "type", "bridge")
	if err != nil {
		return n, err
	}
	for _, line := range strings.Split(out, "\n") {
		// "12: rgtc123b77: <...>"
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":")
		if i := strings.LastIndexByte(name, 'b'); i > len(namePrefix) {
			if pid, ok := ownerPid(name[:i]); ok && !alive(pid) {
				errs = append(errs, run("ip", "link", "del", name))
				n++
			}
		}
	}
	return n, errors.Join(errs...)
}

// ownerPid reads the pid in a name a Bed made ("rgtc<pid>…").
func ownerPid(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return 0, false
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	pid, err := strconv.Atoi(rest[:end])
	return pid, err == nil && pid > 0
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// The /16 networks in use are recorded as files in netDir (the Beds of
// concurrent test processes must not share one): a network is free when
// no file names it or the process that made it is gone, and no interface
// of the machine has an address in it.
var netDir = filepath.Join(os.TempDir(), "raygo-testcluster")

// lockSetup serializes choosing networks across processes.
func lockSetup() (func(), error) {
	if err := os.MkdirAll(netDir, 0o700); err != nil {
		return nil, fmt.Errorf("testcluster: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(netDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("testcluster: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("testcluster: lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// freeNet picks a /16 (its second octet, 64–249) that no live Bed holds
// and no interface uses, and records it for tag.
func freeNet(tag string) (int, error) {
	used := map[int]bool{}
	if out, err := output("ip", "-o", "-4", "addr", "show"); err == nil {
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			for _, f := range strings.Fields(sc.Text()) {
				if rest, ok := strings.CutPrefix(f, "127."); ok {
					if oct, _, ok := strings.Cut(rest, "."); ok {
						if v, err := strconv.Atoi(oct); err == nil {
							used[v] = true
						}
					}
				}
			}
		}
	}
	start := 64 + os.Getpid()%186
	for i := range 186 {
		n := 64 + (start-64+i)%186
		if used[n] {
			continue
		}
		owner, err := os.ReadFile(netFile(n))
		if err == nil {
			if pid, ok := ownerPid(strings.TrimSpace(string(owner))); ok && alive(pid) {
				continue
			}
		}
		if err := claimNet(n, tag); err != nil {
			return 0, err
		}
		return n, nil
	}
	return 0, errors.New("testcluster: no free 127.x.0.0/16 network (64 to 249 all in use)")
}

func netFile(n int) string { return filepath.Join(netDir, "net-"+strconv.Itoa(n)) }

func claimNet(n int, tag string) error {
	if err := os.WriteFile(netFile(n), []byte(tag+"\n"), 0o600); err != nil {
		return fmt.Errorf("testcluster: %w", err)
	}
	return nil
}

func releaseNet(n int) error {
	if err := os.Remove(netFile(n)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("testcluster: %w", err)
	}
	return nil
}

// run runs a setup command; its error carries the command's output.
func run(name string, args ...string) error {
	_, err := output(name, args...)
	return err
}

func output(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("testcluster: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
