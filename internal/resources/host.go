package resources

import (
	"io/fs"
	"os"
	"strings"
)

// Host identifies the machine a node runs on, so that several nodes on one
// machine (`raygo start` twice, or test clusters) count its memory once and
// size their defaults from what the others left.
type Host struct {
	// ID is the machine id (/etc/machine-id, else /var/lib/dbus/machine-id),
	// else "host:" and the hostname; never empty. On Linux the process's
	// network namespace follows ("/net:[4026531840]"): processes in two
	// namespaces cannot reach each other's abstract sockets or loopback
	// ports, so they are on different hosts as far as raygo's same-machine
	// shortcuts go (containers, and the namespaces of internal/testcluster).
	ID string
	// MemoryBytes is the machine's physical memory (MemTotal in
	// /proc/meminfo; sysctl hw.memsize on darwin), regardless of cgroup
	// limits; 0 when unknown.
	MemoryBytes int64
}

// DetectHost reports the local machine's Host. It never fails: what it
// cannot read falls back as documented on Host.
func DetectHost() Host {
	h := detectHost(os.DirFS("/"), os.Hostname, netNamespace)
	if h.MemoryBytes == 0 {
		h.MemoryBytes = max(machineMemory(), 0) // no /proc (darwin)
	}
	return h
}

// netNamespace names the process's network namespace ("net:[inode]"),
// or "" where there is none to read.
func netNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return ""
	}
	return ns
}

func detectHost(fsys fs.FS, hostname func() (string, error), netns func() string) Host {
	var h Host
	for _, p := range []string{"etc/machine-id", "var/lib/dbus/machine-id"} {
		if b, err := fs.ReadFile(fsys, p); err == nil {
			if id := strings.TrimSpace(string(b)); id != "" {
				h.ID = id
				break
			}
		}
	}
	if h.ID == "" {
		name, err := hostname()
		if err != nil || name == "" {
			name = "localhost"
		}
		h.ID = "host:" + name
	}
	if ns := netns(); ns != "" {
		h.ID += "/" + ns
	}
	if b, err := fs.ReadFile(fsys, "proc/meminfo"); err == nil {
		if m, ok := parseMemTotal(string(b)); ok {
			h.MemoryBytes = m
		}
	}
	return h
}
