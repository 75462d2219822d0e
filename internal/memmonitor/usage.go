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

// Usage is the node's memory use as the monitor sees it.
type Usage struct {
	// Used is the memory in use, in bytes. It leaves out page cache the
	// kernel can reclaim: MemAvailable for the host, inactive file pages
	// for a cgroup.
	Used int64
	// Total is the memory there is to use, in bytes: MemTotal, or the
	// cgroup's limit.
	Total int64
	// Source says where the figures come from, for messages: "/proc/meminfo",
	// "cgroup v2 /sys/fs/cgroup/a/b/memory.max" or
	// "cgroup v1 /sys/fs/cgroup/memory/a/b/memory.limit_in_bytes". Paths are
	// as the node sees them, without Read's root.
	Source string
}

// Fraction is Used/Total, or 0 when Total is not positive.
func (u Usage) Fraction() float64 {
	if u.Total <= 0 {
		return 0
	}
	return float64(u.Used) / float64(u.Total)
}

// meminfoPath is the host's memory summary, relative to Read's root.
const meminfoPath = "proc/meminfo"

// Read reads the node's memory use under root: "/" in production (""
// means "/"); tests pass a directory laid out like / with the proc/ and
// sys/fs/cgroup/ files Read looks at.
//
// It always reads proc/meminfo, where Used is MemTotal - MemAvailable. When
// proc/self/cgroup places this process in a cgroup with a memory limit
// below MemTotal, it also reads that cgroup:
//
//   - cgroup v1 (a line whose controllers include "memory"): the files
//     memory.limit_in_bytes, memory.usage_in_bytes and memory.stat's
//     total_inactive_file of sys/fs/cgroup/memory/<path>.
//   - cgroup v2 (the "0::<path>" line, when there is no v1 memory line):
//     every cgroup from sys/fs/cgroup/<path> up to sys/fs/cgroup whose
//     memory.max is not "max", with memory.current and memory.stat's
//     inactive_file. Of several limited cgroups it takes the one nearest
//     its limit (highest Fraction): that is the one whose limit the kernel
//     enforces first.
//
// A cgroup's Used is its usage less its inactive file pages. When
// <path> does not exist under the mount, as in a container without its own
// cgroup namespace, Read uses the mount's root, which is then the
// container's cgroup. Cgroup files that do not exist mean "no limit here".
//
// Read returns the reading with the higher Fraction (the cgroup's on a
// tie), so a container's limit is honoured. Its error names the file that
// could not be read (wrapping the fs error) or that did not parse
// (wrapping ErrMalformed). Read is safe to call concurrently.
func Read(root string) (Usage, error) {
	if root == "" {
		root = "/"
	}
	host, err := readMeminfo(root)
	if err != nil {
		return Usage{}, err
	}
	cg, ok, err := readCgroup(root, host.Total)
	if err != nil {
		return Usage{}, err
	}
	if ok && cg.Fraction() >= host.Fraction() {
		return cg, nil
	}
	return host, nil
}

// readMeminfo reads the host's use from proc/meminfo.
func readMeminfo(root string) (Usage, error) {
	p := filepath.Join(root, meminfoPath)
	data, err := os.ReadFile(p)
	if err != nil {
		return Usage{}, fmt.Errorf("memmonitor: %w", err)
	}
	vals, err := parseKB(data, "MemTotal", "MemAvailable")
	if err != nil {
		return Usage{}, malformed(p, "%v", err)
	}
	total, ok := vals["MemTotal"]
	if !ok || total <= 0 {
		return Usage{}, malformed(p, "no positive MemTotal")
	}
	avail, ok := vals["MemAvailable"]
	if !ok {
		// Linux has had MemAvailable since 3.14 (2014).
		return Usage{}, malformed(p, "no MemAvailable")
	}
	return Usage{Used: max(total-avail, 0), Total: total, Source: "/" + meminfoPath}, nil
}

// hierarchy describes where a cgroup version keeps its memory files.
type hierarchy struct {
	version     int
	mount       string // relative to root
	limitFile   string
	usageFile   string
	inactiveKey string // memory.stat's count of inactive file pages
	// noLimit is the content of limitFile that means "no limit", if any.
	noLimit string
}

var (
	cgroupV1 = hierarchy{
		version:     1,
		mount:       "sys/fs/cgroup/memory",
		limitFile:   "memory.limit_in_bytes",
		usageFile:   "memory.usage_in_bytes",
		inactiveKey: "total_inactive_file",
	}
	cgroupV2 = hierarchy{
		version:     2,
		mount:       "sys/fs/cgroup",
		limitFile:   "memory.max",
		usageFile:   "memory.current",
		inactiveKey: "inactive_file",
		noLimit:     "max",
	}
)

// selfCgroupPath is this process's cgroup membership, relative to root.
const selfCgroupPath = "proc/self/cgroup"

// selfCgroup finds this process's memory cgroup in proc/self/cgroup: the
// hierarchy and the cgroup's path in it ("/" or "/a/b"). ok is false when
// the file is missing or names no memory cgroup.
func selfCgroup(root string) (h hierarchy, cgPath string, ok bool, err error) {
	p := filepath.Join(root, selfCgroupPath)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return hierarchy{}, "", false, nil
	}
	if err != nil {
		return hierarchy{}, "", false, fmt.Errorf("memmonitor: %w", err)
	}
	var v2Path string
	haveV2 := false
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\n")
		if line == "" {
			continue
		}
		// hierarchy-ID:controller-list:cgroup-path; the path may hold colons.
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			return hierarchy{}, "", false, malformed(p, "line %q is not ID:controllers:path", line)
		}
		id, controllers, cp := f[0], f[1], f[2]
		// Clean under "/" so that ".." (seen for cgroups outside our
		// namespace) cannot climb out of the mount.
		cp = path.Clean("/" + cp)
		if id == "0" && controllers == "" {
			v2Path, haveV2 = cp, true
			continue
		}
		for c := range strings.SplitSeq(controllers, ",") {
			if c == "memory" {
				// The memory controller is on a v1 hierarchy, so the
				// unified one (of a hybrid layout) cannot have it.
				return cgroupV1, cp, true, nil
			}
		}
	}
	if haveV2 {
		return cgroupV2, v2Path, true, nil
	}
	return hierarchy{}, "", false, nil
}

// readCgroup reads the use of this process's memory-limited cgroup. ok is
// false when it is in none, or in none whose limit is below memTotal.
func readCgroup(root string, memTotal int64) (Usage, bool, error) {
	h, cgPath, ok, err := selfCgroup(root)
	if err != nil || !ok {
		return Usage{}, false, err
	}
	dirs := cgroupDirs(root, h, cgPath) // relative to root, the process's cgroup first
	var best Usage
	found := false
	for _, d := range dirs {
		u, ok, err := readCgroupDir(root, d, h, memTotal)
		if err != nil {
			return Usage{}, false, err
		}
		if ok && (!found || u.Fraction() > best.Fraction()) {
			best, found = u, true
		}
	}
	return best, found, nil
}

// readCgroupDir reads the cgroup at dir (relative to root). ok is false
// when it has no memory limit below memTotal.
func readCgroupDir(root, dir string, h hierarchy, memTotal int64) (Usage, bool, error) {
	limit, src, ok, err := readLimitFile(root, dir, h, memTotal)
	if err != nil || !ok {
		return Usage{}, false, err
	}

	usagePath := filepath.Join(root, dir, h.usageFile)
	data, err := os.ReadFile(usagePath)
	if err != nil {
		return Usage{}, false, fmt.Errorf("memmonitor: %w", err)
	}
	usage, err := parseCount(string(data))
	if err != nil {
		return Usage{}, false, malformed(usagePath, "%v", err)
	}

	statPath := filepath.Join(root, dir, "memory.stat")
	data, err = os.ReadFile(statPath)
	if err != nil {
		return Usage{}, false, fmt.Errorf("memmonitor: %w", err)
	}
	inactive, ok, err := parseStat(data, h.inactiveKey)
	if err != nil {
		return Usage{}, false, malformed(statPath, "%v", err)
	}
	if !ok {
		return Usage{}, false, malformed(statPath, "no %s", h.inactiveKey)
	}
	return Usage{
		Used:   max(usage-inactive, 0),
		Total:  limit,
		Source: src,
	}, true, nil
}
