package microbench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Memory figures of the envelope rows, read from Linux's /proc. On other
// systems they are unknown (-1).

// errNoProc is returned where /proc lacks what is asked for.
var errNoProc = errors.New("microbench: /proc does not say")

// pageSize is the unit of the rss field of /proc/<pid>/stat.
var pageSize = int64(os.Getpagesize())

// statusBytes reads one "Name:  N kB" line of a /proc status-like file,
// in bytes.
func statusBytes(data []byte, key string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != key {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("microbench: %s: %w", key, err)
		}
		if len(f) > 1 && f[1] == "kB" {
			n <<= 10
		}
		return n, nil
	}
	return 0, fmt.Errorf("%w: no %s", errNoProc, key)
}

// procStatusBytes reads key from /proc/self/status (VmHWM, VmRSS).
func procStatusBytes(key string) (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	return statusBytes(data, key)
}

// driverPeak is this process's peak resident set (VmHWM), or -1.
func driverPeak() int64 {
	n, err := procStatusBytes("VmHWM")
	if err != nil {
		return -1
	}
	return n
}

// resetDriverPeak makes VmHWM start again from the current resident set
// (Linux: "5" to /proc/self/clear_refs). It reports whether it could.
func resetDriverPeak() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// memAvailable is the memory this machine can give without swapping:
// MemAvailable of /proc/meminfo, less where a cgroup limit of this
// process leaves less.
func memAvailable() (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	avail, err := statusBytes(data, "MemAvailable")
	if err != nil {
		return 0, err
	}
	if left, ok := cgroupLeft(); ok && left < avail {
		avail = left
	}
	return avail, nil
}

// cgroupLeft is what the memory cgroup at the usual mount point (v2, else
// v1) lets this process's group still use, when it sets a limit.
func cgroupLeft() (int64, bool) {
	for _, f := range [][2]string{
		{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
		{"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"},
	} {
		limit, err1 := readInt(f[0])
		used, err2 := readInt(f[1])
		if err1 != nil || err2 != nil || limit >= 1<<60 { // "max", or v1's "no limit"
			continue
		}
		return max(limit-used, 0), true
	}
	return 0, false
}

func readInt(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
}

// parseStat returns the parent pid and resident set (in pages) of a
// /proc/<pid>/stat line. The command name, in parentheses, may itself
// hold spaces and parentheses; the fields start after the last ')'.
func parseStat(line []byte) (ppid int, rssPages int64, err error) {
	i := bytes.LastIndexByte(line, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("microbench: bad stat line %q", line)
	}
	f := strings.Fields(string(line[i+1:]))
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[21] field 24 (rss).
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("microbench: short stat line %q", line)
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return 0, 0, fmt.Errorf("microbench: stat ppid: %w", err)
	}
	if rssPages, err = strconv.ParseInt(f[21], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("microbench: stat rss: %w", err)
	}
	return ppid, rssPages, nil
}

// children returns the resident set in bytes of each child process of
// this one (the embedded node's workers), by pid. Processes that exit
// while it reads are skipped.
func children() (map[int]int64, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	out := map[int]int64{}
	buf := make([]byte, 1024)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		line, err := readSmall("/proc/"+name+"/stat", buf)
		if err != nil {
			continue
		}
		ppid, rss, err := parseStat(line)
		if err != nil || ppid != self {
			continue
		}
		out[pid] = rss * pageSize
	}
	return out, nil
}

// readSmall reads a small file into buf, without the allocations of
// os.ReadFile.
func readSmall(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// openFiles counts this process's open file descriptors, or -1.
func openFiles() int {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return -1
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return -1
	}
	return len(names) - 1 // less the one reading the directory
}

// sampleInterval is how often a memSampler looks at the workers.
const sampleInterval = 100 * time.Millisecond

// memSampler follows the summed resident set of this process's children
// while an envelope row runs, and its peak.
type memSampler struct {
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	peak int64 // -1 until a sample succeeds
}

// startMemSampler takes a sample now and then one every interval until
// Stop.
func startMemSampler(interval time.Duration) *memSampler {
	s := &memSampler{stop: make(chan struct{}), done: make(chan struct{}), peak: -1}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *memSampler) sample() {
	cs, err := children()
	if err != nil {
		return
	}
	var sum int64
	for _, rss := range cs {
		sum += rss
	}
	s.mu.Lock()
	s.peak = max(s.peak, sum)
	s.mu.Unlock()
}

// Stop takes a last sample, ends the sampling and returns the peak sum
// in bytes (-1 if no sample could be read).
func (s *memSampler) Stop() int64 {
	close(s.stop)
	<-s.done
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}
