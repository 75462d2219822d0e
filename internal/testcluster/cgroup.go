//go:build linux || darwin

package testcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Where LimitMemory makes its cgroups: cgroup v2's unified hierarchy
// when the memory controller is on it, else v1's memory hierarchy.
const (
	cgroupV2Root = "/sys/fs/cgroup"
	cgroupV1Root = "/sys/fs/cgroup/memory"
)

// memoryCgroupRoot returns the hierarchy LimitMemory uses and the name of
// its limit file, or why there is none.
func memoryCgroupRoot() (root, limitFile string, err error) {
	if b, err := os.ReadFile(filepath.Join(cgroupV2Root, "cgroup.subtree_control")); err == nil &&
		strings.Contains(" "+strings.TrimSpace(string(b))+" ", " memory ") {
		return cgroupV2Root, "memory.max", nil
	}
	if _, err := os.Stat(filepath.Join(cgroupV1Root, "memory.limit_in_bytes")); err == nil {
		return cgroupV1Root, "memory.limit_in_bytes", nil
	}
	return "", "", errors.New("testcluster: no writable memory cgroup hierarchy (cgroup v2 with the memory controller enabled at " +
		cgroupV2Root + ", or v1 at " + cgroupV1Root + ")")
}

// MemoryLimitAvailable reports whether LimitMemory can work here, and if
// not, why: it needs root, a memory cgroup hierarchy, and nsenter for
// hosts that are namespaces.
func MemoryLimitAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("testcluster: memory cgroups need root")
	}
	if _, _, err := memoryCgroupRoot(); err != nil {
		return err
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		return errors.New("testcluster: a memory-limited host needs nsenter (util-linux)")
	}
	return nil
}

// LimitMemory gives the host a memory cgroup of its own limited to bytes,
// as a machine with that much memory, or a container limited to it,
// would have: every process Command starts from now on runs in it (it
// writes its pid to the cgroup before it execs the program), and so do
// their children. Close removes the cgroup, once the host's processes
// have exited. MemoryLimitAvailable says whether it can work here.
//
// On a namespace host such processes enter the host's network namespace
// with nsenter instead of `ip netns exec`, which would mount a sysfs of
// the namespace's own over /sys and hide /sys/fs/cgroup: they see the
// machine's /sys, and so their own cgroup, as a container does.
func (h *Host) LimitMemory(bytes int64) error {
	if err := MemoryLimitAvailable(); err != nil {
		return err
	}
	if bytes <= 0 {
		return fmt.Errorf("testcluster: memory limit %d: want a positive number of bytes", bytes)
	}
	root, limitFile, _ := memoryCgroupRoot()
	h.bed.mu.Lock()
	defer h.bed.mu.Unlock()
	if h.cgroup != "" {
		return fmt.Errorf("testcluster: host %s already has a memory limit", h.Name)
	}
	dir := filepath.Join(root, h.bed.tag+"n"+strconv.Itoa(h.bed.net)+"-"+h.Name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("testcluster: make memory cgroup: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.FormatInt(bytes, 10)), 0o644); err != nil {
		_ = os.Remove(dir)
		return fmt.Errorf("testcluster: limit memory of host %s: %w", h.Name, err)
	}
	h.cgroup = dir
	return nil
}

// cgroupCommand prepares name with args to run in the host's cgroup (and
// its network namespace, if it has one).
func (h *Host) cgroupCommand(cg, name string, args ...string) *exec.Cmd {
	argv := []string{"-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, cg}
	if h.ns != "" {
		argv = append(argv, "nsenter", "--net=/run/netns/"+h.ns, "--")
	}
	argv = append(argv, name)
	cmd := exec.Command("sh", append(argv, args...)...)
	cmd.Env = append(os.Environ(), h.Env()...)
	return cmd
}

// removeCgroup removes the host's cgroup, if it has one.
func (h *Host) removeCgroup() error {
	h.bed.mu.Lock()
	cg := h.cgroup
	h.cgroup = ""
	h.bed.mu.Unlock()
	if cg == "" {
		return nil
	}
	if err := syscall.Rmdir(cg); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("testcluster: remove memory cgroup %s (are the host's processes stopped?): %w", cg, err)
	}
	return nil
}

// cleanStaleCgroups removes the memory cgroups of Beds whose process has
// died, and returns how many it removed.
func cleanStaleCgroups() (int, error) {
	root, _, err := memoryCgroupRoot()
	if err != nil {
		return 0, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range entries {
		if pid, ok := ownerPid(e.Name()); e.IsDir() && ok && !alive(pid) {
			if err := syscall.Rmdir(filepath.Join(root, e.Name())); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}
