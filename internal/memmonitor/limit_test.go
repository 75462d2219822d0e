package memmonitor

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestReadLimit reads the node's memory limit from the fake machines in
// testdata/limit: each is a root with the proc/ and sys/fs/cgroup/ files
// of one cgroup layout.
func TestReadLimit(t *testing.T) {
	const machine = 16 * gib
	tests := []struct {
		dir  string
		want Limit
	}{
		{"v2-own", Limit{Bytes: 2 * gib, Machine: machine, Cgroup: true,
			Source: "cgroup v2 /sys/fs/cgroup/system.slice/raygo.service/memory.max"}},
		{"v2-ancestor", Limit{Bytes: 1 * gib, Machine: machine, Cgroup: true,
			Source: "cgroup v2 /sys/fs/cgroup/kubepods.slice/pod7f3e/memory.max"}},
		{"v2-none", Limit{Bytes: machine, Machine: machine, Source: "/proc/meminfo"}},
		{"v2-above-machine", Limit{Bytes: machine, Machine: machine, Source: "/proc/meminfo"}},
		{"v2-no-cgroupns", Limit{Bytes: 4 * gib, Machine: machine, Cgroup: true,
			Source: "cgroup v2 /sys/fs/cgroup/memory.max"}},
		{"v1-own", Limit{Bytes: 512 * mib, Machine: machine, Cgroup: true,
			Source: "cgroup v1 /sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"}},
		{"v1-ancestor", Limit{Bytes: 3 * gib, Machine: machine, Cgroup: true,
			Source: "cgroup v1 /sys/fs/cgroup/memory/batch/job7/memory.stat hierarchical_memory_limit"}},
		{"no-cgroup-file", Limit{Bytes: machine, Machine: machine, Source: "/proc/meminfo"}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			got, err := ReadLimit(filepath.Join("testdata", "limit", tt.dir))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ReadLimit = %+v\nwant         %+v", got, tt.want)
			}
		})
	}
}

func TestReadLimitErrors(t *testing.T) {
	_, err := ReadLimit(filepath.Join("testdata", "limit", "v2-malformed"))
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("garbled memory.max: err = %v, want ErrMalformed", err)
	}
	if _, err := ReadLimit(t.TempDir()); err == nil {
		t.Error("no proc/meminfo: no error")
	}
}
