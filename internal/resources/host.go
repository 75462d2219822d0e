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
	// else "host:" and the hostname; never empty.
	ID string
	// MemoryBytes is the machine's physical memory (MemTotal in
	// /proc/meminfo; sysctl hw.memsize on darwin), regardless of cgroup
	// limits; 0 when unknown.
	MemoryBytes int64
}

// DetectHost reports the local machine's Host. It never fails: what it
// cannot read falls back as documented on Host.
func DetectHost() Host {
	h := detectHost(os.DirFS("/"), os.Hostname)
	if h.MemoryBytes == 0 {
		h.MemoryBytes = max(machineMemory(), 0) // no /proc (darwin)
	}
	return h
}

func detectHost(fsys fs.FS, hostname func() (string, error)) Host {
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
	if b, err := fs.ReadFile(fsys, "proc/meminfo"); err == nil {
		if m, ok := parseMemTotal(string(b)); ok {
			h.MemoryBytes = m
		}
	}
	return h
}
