package resources

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/memmonitor"
)

// FakeGPUsEnv names the environment variable that, when set to an integer
// N ≥ 0, makes Detect report N fake GPUs named "fake" instead of asking
// nvidia-smi; it lets tests exercise GPU scheduling on machines without GPUs.
// RAYGO_FAKE_GPUS=0 hides real GPUs.
const FakeGPUsEnv = "RAYGO_FAKE_GPUS"

// nvidiaSMITimeout bounds the nvidia-smi call; a wedged driver must not hang
// node startup.
const nvidiaSMITimeout = 5 * time.Second

// GPUDevice is one GPU found on the machine.
type GPUDevice struct {
	Index     int    // CUDA index, as CUDA_VISIBLE_DEVICES counts
	UUID      string // e.g. GPU-5d3f...
	Name      string // e.g. NVIDIA H100 80GB HBM3
	MemoryMiB int64
}

// Detected is what Detect found on the local machine.
type Detected struct {
	CPUs        float64 // may be fractional under a cgroup quota
	MemoryBytes int64   // 0 when unknown
	GPUs        []GPUDevice
	// Warnings lists problems that did not stop detection (nvidia-smi failed,
	// a bad RAYGO_FAKE_GPUS value); the caller should log them.
	Warnings []error
}

// Detect reports the CPUs, memory and GPUs available to this process.
//
//   - CPUs: the cgroup v2 quota in /sys/fs/cgroup/cpu.max when one is set
//     (capped at runtime.NumCPU()), else runtime.NumCPU().
//   - Memory: the node's own memory, memmonitor.NodeLimit: the tightest
//     memory limit of this process's cgroup and its ancestors (v2
//     memory.max, v1 memory.limit_in_bytes and hierarchical_memory_limit)
//     when one is below the machine's memory, else the machine's
//     (MemTotal in /proc/meminfo; sysctl hw.memsize on darwin). Where
//     that cannot be read: the smaller of MemTotal and
//     /sys/fs/cgroup/memory.max, or the OS's figure; 0 where nothing says.
//     Nodes started in cgroups of their own (containers, systemd units
//     with MemoryMax) so each offer their own limit, not the machine's.
//   - GPUs: RAYGO_FAKE_GPUS when set (see FakeGPUsEnv); otherwise
//     nvidia-smi, given 5 seconds, if it is on PATH. No nvidia-smi means no
//     GPUs and no warning.
//
// Detect never fails; problems are returned in Detected.Warnings.
func Detect() Detected {
	return detect(detectEnv{
		fsys:   os.DirFS("/"),
		numCPU: runtime.NumCPU(),
		getenv: os.Getenv,
		runSMI: runNvidiaSMI,
		memory: machineMemory,
		limit:  memmonitor.NodeLimit,
	})
}

// detectEnv holds Detect's inputs so tests can replace the machine.
type detectEnv struct {
	fsys   fs.FS // rooted at "/"
	numCPU int
	getenv func(string) string
	// runSMI returns nvidia-smi's output, or found == false when it is absent.
	runSMI func() (out string, found bool, err error)
	// memory is the machine's memory from the OS when fsys has no
	// proc/meminfo (machine_*.go); nil or 0 means unknown.
	memory func() int64
	// limit is the node's own memory (memmonitor.NodeLimit); nil, an
	// error or 0 bytes fall back to fsys and memory.
	limit func() (memmonitor.Limit, error)
}

func detect(env detectEnv) Detected {
	var d Detected
	d.CPUs = float64(env.numCPU)
	if b, err := fs.ReadFile(env.fsys, "sys/fs/cgroup/cpu.max"); err == nil {
		if q, ok := parseCPUMax(string(b)); ok && q < d.CPUs {
			d.CPUs = q
		}
	}
	if env.limit != nil {
		if l, err := env.limit(); err == nil && l.Bytes > 0 {
			d.MemoryBytes = l.Bytes
		} else if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			d.Warnings = append(d.Warnings, fmt.Errorf("resources: node memory limit: %w", err))
		}
	}
	if d.MemoryBytes == 0 {
		d.MemoryBytes = fallbackMemory(env)
	}

	if v := env.getenv(FakeGPUsEnv); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err == nil && n >= 0 {
			d.GPUs = FakeGPUs(n)
			return d
		}
		d.Warnings = append(d.Warnings, fmt.Errorf("resources: ignoring %s=%q: want an integer ≥ 0", FakeGPUsEnv, v))
	}
	out, found, err := env.runSMI()
	if !found {
		return d
	}
	if err == nil {
		d.GPUs, err = ParseNvidiaSMI(out)
	}
	if err != nil {
		d.Warnings = append(d.Warnings, fmt.Errorf("resources: GPU detection: %w", err))
	}
	return d
}

// fallbackMemory is Detect's memory figure where memmonitor.NodeLimit
// gives none: the smaller of MemTotal and the cgroup v2 limit at the
// mount's root, else the OS's figure.
func fallbackMemory(env detectEnv) int64 {
	var m int64
	if b, err := fs.ReadFile(env.fsys, "proc/meminfo"); err == nil {
		if v, ok := parseMemTotal(string(b)); ok {
			m = v
		}
	}
	if m == 0 && env.memory != nil {
		m = max(env.memory(), 0)
	}
	if b, err := fs.ReadFile(env.fsys, "sys/fs/cgroup/memory.max"); err == nil {
		if v, ok := parseMemoryMax(string(b)); ok && (m == 0 || v < m) {
			m = v
		}
	}
	return m
}

// FakeGPUs returns n GPUs named "fake" with UUIDs fake-GPU-<i>, as Detect
// reports under RAYGO_FAKE_GPUS.
func FakeGPUs(n int) []GPUDevice {
	gpus := make([]GPUDevice, n)
	for i := range gpus {
		gpus[i] = GPUDevice{Index: i, UUID: fmt.Sprintf("fake-GPU-%d", i), Name: "fake"}
	}
	return gpus
}

func runNvidiaSMI() (string, bool, error) {
	path, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return "", false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), nvidiaSMITimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path,
		"--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits").Output()
	if err != nil {
		return "", true, fmt.Errorf("nvidia-smi: %w", err)
	}
	return string(out), true, nil
}

// ParseNvidiaSMI parses the output of
//
//	nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits
//
// one GPU per line, e.g. "0, GPU-5d3f..., NVIDIA H100 80GB HBM3, 81559".
// Blank lines are skipped; a memory of "[N/A]" reads as 0. Errors wrap
// ErrNvidiaSMIOutput and quote the line.
func ParseNvidiaSMI(out string) ([]GPUDevice, error) {
	var gpus []GPUDevice
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 4 {
			return nil, fmt.Errorf("%w: want 4 fields in %q", ErrNvidiaSMIOutput, line)
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		idx, err := strconv.Atoi(f[0])
		if err != nil || idx < 0 {
			return nil, fmt.Errorf("%w: bad index in %q", ErrNvidiaSMIOutput, line)
		}
		var mem int64
		if last := f[len(f)-1]; last != "[N/A]" {
			if mem, err = strconv.ParseInt(last, 10, 64); err != nil || mem < 0 {
				return nil, fmt.Errorf("%w: bad memory.total in %q", ErrNvidiaSMIOutput, line)
			}
		}
		gpus = append(gpus, GPUDevice{
			Index: idx,
			UUID:  f[1],
			// A name with commas in it spans the middle fields.
			Name:      strings.Join(f[2:len(f)-1], ", "),
			MemoryMiB: mem,
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNvidiaSMIOutput, err)
	}
	return gpus, nil
}

// parseCPUMax reads cgroup v2 cpu.max ("$QUOTA $PERIOD" or "max $PERIOD")
// and returns quota/period, or false when there is no limit or it is garbled.
func parseCPUMax(s string) (float64, bool) {
	f := strings.Fields(s)
	if len(f) == 0 || f[0] == "max" {
		return 0, false
	}
	quota, err := strconv.ParseFloat(f[0], 64)
	if err != nil || quota <= 0 {
		return 0, false
	}
	period := 100000.0 // the kernel's default when only a quota is written
	if len(f) > 1 {
		if period, err = strconv.ParseFloat(f[1], 64); err != nil || period <= 0 {
			return 0, false
		}
	}
	return quota / period, true
}

// parseMemTotal returns MemTotal from /proc/meminfo in bytes.
func parseMemTotal(s string) (int64, bool) {
	for line := range strings.Lines(s) {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb <= 0 {
			return 0, false
		}
		if len(f) > 1 && f[1] != "kB" {
			return 0, false
		}
		return kb * 1024, true
	}
	return 0, false
}

// parseMemoryMax reads cgroup v2 memory.max: "max" or a byte count.
func parseMemoryMax(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s == "max" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
