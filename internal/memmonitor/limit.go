package memmonitor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Limit is how much memory a node may use: what its node daemon, and the
// workers it starts (they inherit its cgroup), can hold before the kernel
// reclaims or kills.
type Limit struct {
	// Bytes is the memory the node may use: the tightest memory limit of
	// the node daemon's cgroup and its ancestors when one is below
	// Machine, else Machine.
	Bytes int64
	// Machine is the machine's memory (MemTotal; sysctl hw.memsize on
	// darwin), whatever the cgroup says.
	Machine int64
	// Cgroup is true when Bytes is a cgroup's limit.
	Cgroup bool
	// Source names where Bytes comes from, for messages: "/proc/meminfo",
	// "sysctl hw.memsize", "cgroup v2 /sys/fs/cgroup/a/b/memory.max",
	// "cgroup v1 /sys/fs/cgroup/memory/a/memory.limit_in_bytes" or, for a
	// v1 limit set on an ancestor, "cgroup v1 …/memory.stat
	// hierarchical_memory_limit".
	Source string
}

// ReadLimit reads this process's Limit under root, laid out as Read's
// (root "/" in production, "" meaning "/"; tests pass a directory with
// fake proc/ and sys/fs/cgroup/ files). It finds the process's memory
// cgroup in proc/self/cgroup as Read does and takes the smallest limit of:
//
//   - cgroup v2: memory.max of the process's cgroup and of every ancestor
//     up to the mount (a parent's limit binds its children);
//   - cgroup v1: the cgroup's memory.limit_in_bytes and memory.stat's
//     hierarchical_memory_limit (its ancestors' limits, when the hierarchy
//     is on).
//
// Limits at or above MemTotal are no limit ("max", and v1's number near
// 2^63). A cgroup path that does not exist under the mount (a container
// without its own cgroup namespace) reads the mount's root, as Read does;
// a missing proc/self/cgroup means no cgroup. The error names the file
// that could not be read or parsed (wrapping ErrMalformed); a machine
// without proc/meminfo is an error.
func ReadLimit(root string) (Limit, error) {
	if root == "" {
		root = "/"
	}
	host, err := readMeminfo(root)
	if err != nil {
		return Limit{}, err
	}
	l := Limit{Bytes: host.Total, Machine: host.Total, Source: host.Source}
	h, cgPath, ok, err := selfCgroup(root)
	if err != nil || !ok {
		return l, err
	}
	for _, d := range cgroupDirs(root, h, cgPath) {
		limit, src, ok, err := readLimitFile(root, d, h, host.Total)
		if err != nil {
			return Limit{}, err
		}
		if ok && limit < l.Bytes {
			l.Bytes, l.Cgroup, l.Source = limit, true, src
		}
		if h.version != 1 {
			continue
		}
		limit, src, ok, err = readHierarchicalLimit(root, d, host.Total)
		if err != nil {
			return Limit{}, err
		}
		if ok && limit < l.Bytes {
			l.Bytes, l.Cgroup, l.Source = limit, true, src
		}
	}
	return l, nil
}

// NodeLimit reads this process's Limit the platform's way: ReadLimit("/")
// on Linux; on darwin the machine's memory (sysctl hw.memsize; there are
// no cgroups); elsewhere an error wrapping ErrUnsupported. Defined in
// system_linux.go, system_darwin.go and system_other.go.
func NodeLimit() (Limit, error) { return nodeLimit() }

// cgroupDirs lists the cgroup directories (relative to root) whose limits
// bind a process in cgPath of hierarchy h: the cgroup and, on v2, its
// ancestors up to the mount; the mount alone when cgPath is not visible
// there.
func cgroupDirs(root string, h hierarchy, cgPath string) []string {
	leaf := path.Join(h.mount, cgPath)
	if fi, err := os.Stat(filepath.Join(root, leaf)); err != nil || !fi.IsDir() {
		// Not visible here: we are in a container that sees its own
		// cgroup at the mount's root.
		return []string{h.mount}
	}
	var dirs []string
	for d := leaf; ; d = path.Dir(d) {
		dirs = append(dirs, d)
		if d == h.mount || h.version == 1 {
			// v1 ancestors' limits are in the cgroup's own memory.stat
			// (hierarchical_memory_limit).
			return dirs
		}
	}
}

// readLimitFile reads the memory limit of the cgroup at dir (relative to
// root) and its source. ok is false when it has none below memTotal.
func readLimitFile(root, dir string, h hierarchy, memTotal int64) (limit int64, src string, ok bool, err error) {
	limitRel := path.Join(dir, h.limitFile)
	limitPath := filepath.Join(root, limitRel)
	data, err := os.ReadFile(limitPath)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("memmonitor: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if h.noLimit != "" && s == h.noLimit {
		return 0, "", false, nil
	}
	limit, err = parseCount(s)
	if err != nil {
		return 0, "", false, malformed(limitPath, "%v", err)
	}
	if limit <= 0 || limit >= memTotal {
		// A limit the machine cannot reach is no limit (v1 writes "none"
		// as a number near 2^63).
		return 0, "", false, nil
	}
	return limit, fmt.Sprintf("cgroup v%d /%s", h.version, limitRel), true, nil
}

// readHierarchicalLimit reads hierarchical_memory_limit from the v1
// cgroup's memory.stat: the smallest limit of the cgroup and its
// ancestors. ok is false when the file or the key is absent, or the limit
// is not below memTotal.
func readHierarchicalLimit(root, dir string, memTotal int64) (limit int64, src string, ok bool, err error) {
	statRel := path.Join(dir, "memory.stat")
	statPath := filepath.Join(root, statRel)
	data, err := os.ReadFile(statPath)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("memmonitor: %w", err)
	}
	limit, ok, err = parseStat(data, "hierarchical_memory_limit")
	if err != nil {
		return 0, "", false, malformed(statPath, "%v", err)
	}
	if !ok || limit <= 0 || limit >= memTotal {
		return 0, "", false, nil
	}
	return limit, fmt.Sprintf("cgroup v1 /%s hierarchical_memory_limit", statRel), true, nil
}
