package memmonitor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Fixtures taken from real kernels (6.x, with the numbers changed to make
// the arithmetic readable).

// meminfo is a /proc/meminfo of a 16 GiB machine with 12 GiB available:
// Used = 4 GiB, Fraction 0.25.
const meminfo = `MemTotal:       16777216 kB
MemFree:         9437184 kB
MemAvailable:   12582912 kB
Buffers:          226472 kB
Cached:          3305624 kB
SwapCached:            0 kB
Active:          2983928 kB
Inactive:        2714040 kB
Active(anon):    1985040 kB
Inactive(anon):        0 kB
Active(file):     998888 kB
Inactive(file):  2714040 kB
Unevictable:       10740 kB
Mlocked:            9736 kB
SwapTotal:       2097148 kB
SwapFree:        2097148 kB
Dirty:               156 kB
Writeback:             0 kB
AnonPages:       2165900 kB
Mapped:           510704 kB
Shmem:             18924 kB
KReclaimable:     155708 kB
Slab:             288780 kB
SReclaimable:     155708 kB
SUnreclaim:       133072 kB
KernelStack:       11328 kB
PageTables:        21692 kB
CommitLimit:    10485756 kB
Committed_AS:    6850832 kB
VmallocTotal:   34359738367 kB
VmallocUsed:       44156 kB
VmallocChunk:          0 kB
Percpu:             7840 kB
HardwareCorrupted:     0 kB
AnonHugePages:         0 kB
HugePages_Total:       0
HugePages_Free:        0
HugePages_Rsvd:        0
HugePages_Surp:        0
Hugepagesize:       2048 kB
Hugetlb:               0 kB
DirectMap4k:      358272 kB
DirectMap2M:    10127360 kB
DirectMap1G:     7340032 kB
`

// v2Stat is a cgroup v2 memory.stat with the given inactive_file.
func v2Stat(inactiveFile string) string {
	return `anon 2952790016
file 805306368
kernel 41943040
kernel_stack 1638400
pagetables 8388608
sec_pagetables 0
percpu 720
sock 0
vmalloc 0
shmem 0
zswap 0
zswapped 0
file_mapped 104857600
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon 2952790016
active_anon 0
inactive_file ` + inactiveFile + `
active_file 268435456
unevictable 0
slab_reclaimable 10485760
slab_unreclaimable 4194304
slab 14680064
workingset_refault_anon 0
workingset_refault_file 14
workingset_activate_anon 0
workingset_activate_file 0
workingset_restore_anon 0
workingset_restore_file 0
workingset_nodereclaim 0
pgscan 0
pgsteal 0
pgfault 28170
pgmajfault 1
thp_fault_alloc 0
thp_collapse_alloc 0
`
}

// v1Stat is a cgroup v1 memory.stat whose own inactive_file differs from
// the hierarchical total_inactive_file that Read must use.
func v1Stat(totalInactiveFile string) string {
	return `cache 805306368
rss 2952790016
rss_huge 0
shmem 0
mapped_file 104857600
dirty 24576
writeback 0
swap 0
pgpgin 11430
pgpgout 11010
pgfault 28170
pgmajfault 1
inactive_anon 2952790016
active_anon 12288
inactive_file 16384
active_file 57344
unevictable 0
hierarchical_memory_limit 9223372036854771712
hierarchical_memsw_limit 9223372036854771712
total_cache 805306368
total_rss 2952790016
total_rss_huge 0
total_shmem 0
total_mapped_file 104857600
total_dirty 24576
total_writeback 0
total_swap 0
total_pgpgin 11430
total_pgpgout 11010
total_pgfault 28170
total_pgmajfault 1
total_inactive_anon 2952790016
total_active_anon 12288
total_inactive_file ` + totalInactiveFile + `
total_active_file 57344
total_unevictable 0
`
}

// v1SelfCgroup is a /proc/self/cgroup of a process in Docker container
// abc on a hybrid (v1 + unified) host.
const v1SelfCgroup = `12:hugetlb:/docker/abc
11:pids:/docker/abc
10:perf_event:/docker/abc
9:net_cls,net_prio:/docker/abc
8:freezer:/docker/abc
7:devices:/docker/abc
6:memory:/docker/abc
5:blkio:/docker/abc
4:cpuset:/docker/abc
3:cpu,cpuacct:/docker/abc
2:rdma:/
1:name=systemd:/docker/abc
0::/system.slice/containerd.service
`

const (
	gib = int64(1) << 30
	mib = int64(1) << 20
)

// fakeRoot writes files (relative path -> content) under a new temporary
// directory and returns it.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// with returns a copy of base with the files of extra added or replaced.
func with(base map[string]string, extra map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

var hostOnly = map[string]string{"proc/meminfo": meminfo}

var hostUsage = Usage{Used: 4 * gib, Total: 16 * gib, Source: "/proc/meminfo"}

func TestRead(t *testing.T) {
	const (
		sysd = "sys/fs/cgroup/system.slice/raygo.service/"
		pod  = "sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/pod7f3e/"
		ctr  = pod + "cri-containerd-9a1b.scope/"
		kube = "sys/fs/cgroup/kubepods.slice/"
		v1   = "sys/fs/cgroup/memory/docker/abc/"
	)
	podCgroup := "0::/kubepods.slice/kubepods-burstable.slice/pod7f3e/cri-containerd-9a1b.scope\n"

	tests := []struct {
		name  string
		files map[string]string
		want  Usage
	}{
		{
			name:  "no cgroup file",
			files: hostOnly,
			want:  hostUsage,
		},
		{
			name: "v2 no limit anywhere",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup": "0::/user.slice/user-1000.slice/session-2.scope\n",
				"sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/memory.max":     "max\n",
				"sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/memory.current": "1073741824\n",
				"sys/fs/cgroup/user.slice/user-1000.slice/memory.max":                     "max\n",
				"sys/fs/cgroup/user.slice/memory.max":                                     "max\n",
				// The root cgroup has no memory.max.
				"sys/fs/cgroup/memory.stat": v2Stat("0"),
			}),
			want: hostUsage,
		},
		{
			name: "v2 limited, cgroup wins",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup":                      "0::/system.slice/raygo.service\n",
				sysd + "memory.max":                     "4294967296\n",
				sysd + "memory.current":                 "3758096384\n",
				sysd + "memory.stat":                    v2Stat("268435456"),
				"sys/fs/cgroup/system.slice/memory.max": "max\n",
			}),
			// 3.5 GiB - 256 MiB of 4 GiB: 0.8125 > 0.25.
			want: Usage{Used: 3*gib + 256*mib, Total: 4 * gib,
				Source: "cgroup v2 /sys/fs/cgroup/system.slice/raygo.service/memory.max"},
		},
		{
			name: "v2 limited, host fuller",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup":      "0::/system.slice/raygo.service\n",
				sysd + "memory.max":     "8589934592\n",
				sysd + "memory.current": "1073741824\n",
				sysd + "memory.stat":    v2Stat("536870912"),
			}),
			// 0.5 GiB of 8 GiB: 0.0625 < 0.25.
			want: hostUsage,
		},
		{
			name: "v2 limit above MemTotal is no limit",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup":      "0::/system.slice/raygo.service\n",
				sysd + "memory.max":     "34359738368\n",
				sysd + "memory.current": "16106127360\n",
				sysd + "memory.stat":    v2Stat("0"),
			}),
			want: hostUsage,
		},
		{
			name: "v2 nested, parent has the limit",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup":     podCgroup,
				ctr + "memory.max":     "max\n",
				ctr + "memory.current": "1610612736\n",
				ctr + "memory.stat":    v2Stat("0"),
				pod + "memory.max":     "2147483648\n",
				pod + "memory.current": "1879048192\n",
				pod + "memory.stat":    v2Stat("134217728"),
				"sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/memory.max": "max\n",
				kube + "memory.max":     "15032385536\n",
				kube + "memory.current": "4294967296\n",
				kube + "memory.stat":    v2Stat("0"),
			}),
			// Pod: 1.75 GiB - 128 MiB of 2 GiB = 0.8125; kubepods: 4 of 14 GiB.
			want: Usage{Used: gib + 640*mib, Total: 2 * gib,
				Source: "cgroup v2 /" + pod + "memory.max"},
		},
		{
			name: "v2 nested, ancestor nearer its limit than the child",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup":     podCgroup,
				ctr + "memory.max":     "1073741824\n",
				ctr + "memory.current": "536870912\n",
				ctr + "memory.stat":    v2Stat("0"),
				pod + "memory.max":     "2147483648\n",
				pod + "memory.current": "2040109465\n",
				pod + "memory.stat":    v2Stat("0"),
			}),
			// Child 0.5; pod 0.95: the pod's limit bites first.
			want: Usage{Used: 2040109465, Total: 2 * gib,
				Source: "cgroup v2 /" + pod + "memory.max"},
		},
		{
			name: "v2 container without cgroup namespace uses the mount root",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup":             "0::/docker/abc\n",
				"sys/fs/cgroup/memory.max":     "2147483648\n",
				"sys/fs/cgroup/memory.current": "1073741824\n",
				"sys/fs/cgroup/memory.stat":    v2Stat("0"),
			}),
			want: Usage{Used: gib, Total: 2 * gib,
				Source: "cgroup v2 /sys/fs/cgroup/memory.max"},
		},
		{
			name: "v1 limited",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup":                 v1SelfCgroup,
				v1 + "memory.limit_in_bytes":       "2147483648\n",
				v1 + "memory.usage_in_bytes":       "1879048192\n",
				v1 + "memory.stat":                 v1Stat("268435456"),
				"sys/fs/cgroup/unified/memory.max": "1\n", // hybrid: never read
			}),
			want: Usage{Used: gib + 512*mib, Total: 2 * gib,
				Source: "cgroup v1 /" + v1 + "memory.limit_in_bytes"},
		},
		{
			name: "v1 unlimited",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup":           v1SelfCgroup,
				v1 + "memory.limit_in_bytes": "9223372036854771712\n",
				v1 + "memory.usage_in_bytes": "15032385536\n",
				v1 + "memory.stat":           v1Stat("0"),
			}),
			want: hostUsage,
		},
		{
			name: "v1 limit of 2^64-1",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup":           v1SelfCgroup,
				v1 + "memory.limit_in_bytes": "18446744073709551615\n",
				v1 + "memory.usage_in_bytes": "15032385536\n",
				v1 + "memory.stat":           v1Stat("0"),
			}),
			want: hostUsage,
		},
		{
			name: "v1 container without cgroup namespace uses the mount root",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup":                           v1SelfCgroup,
				"sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824\n",
				"sys/fs/cgroup/memory/memory.usage_in_bytes": "805306368\n",
				"sys/fs/cgroup/memory/memory.stat":           v1Stat("0"),
			}),
			want: Usage{Used: 768 * mib, Total: gib,
				Source: "cgroup v1 /sys/fs/cgroup/memory/memory.limit_in_bytes"},
		},
		{
			name: "v1 memory controller not mounted",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup": v1SelfCgroup,
			}),
			want: hostUsage,
		},
		{
			name: "usage below inactive file pages",
			files: with(hostOnly, map[string]string{
				"proc/self/cgroup":      "0::/system.slice/raygo.service\n",
				sysd + "memory.max":     "4294967296\n",
				sysd + "memory.current": "100\n",
				sysd + "memory.stat":    v2Stat("200"),
			}),
			// Cgroup Used clamps to 0, so the host's 0.25 wins.
			want: hostUsage,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(fakeRoot(t, tt.files))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if got != tt.want {
				t.Errorf("Read = %+v (%.4f), want %+v (%.4f)", got, got.Fraction(), tt.want, tt.want.Fraction())
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	const sysd = "sys/fs/cgroup/system.slice/raygo.service/"
	v2 := with(hostOnly, map[string]string{
		"proc/self/cgroup":      "0::/system.slice/raygo.service\n",
		sysd + "memory.max":     "4294967296\n",
		sysd + "memory.current": "3758096384\n",
		sysd + "memory.stat":    v2Stat("268435456"),
	})
	const v1 = "sys/fs/cgroup/memory/docker/abc/"
	v1files := with(hostOnly, map[string]string{
		"proc/self/cgroup":           v1SelfCgroup,
		v1 + "memory.limit_in_bytes": "2147483648\n",
		v1 + "memory.usage_in_bytes": "1879048192\n",
		v1 + "memory.stat":           v1Stat("268435456"),
	})

	tests := []struct {
		name  string
		files map[string]string
		file  string // the file the error must name
		is    error
	}{
		{"no meminfo", map[string]string{}, "proc/meminfo", fs.ErrNotExist},
		{"meminfo without MemAvailable",
			map[string]string{"proc/meminfo": "MemTotal:       16777216 kB\nMemFree:         9437184 kB\n"},
			"proc/meminfo", ErrMalformed},
		{"meminfo number garbled",
			map[string]string{"proc/meminfo": strings.Replace(meminfo, "16777216 kB", "16777x16 kB", 1)},
			"proc/meminfo", ErrMalformed},
		{"meminfo unit unknown",
			map[string]string{"proc/meminfo": strings.Replace(meminfo, "12582912 kB", "12582912 MB", 1)},
			"proc/meminfo", ErrMalformed},
		{"self cgroup line garbled",
			with(hostOnly, map[string]string{"proc/self/cgroup": "memory\n"}),
			"proc/self/cgroup", ErrMalformed},
		{"v2 memory.max garbled",
			with(v2, map[string]string{sysd + "memory.max": "4G\n"}),
			sysd + "memory.max", ErrMalformed},
		{"v2 memory.current empty",
			with(v2, map[string]string{sysd + "memory.current": ""}),
			sysd + "memory.current", ErrMalformed},
		{"v2 memory.stat without inactive_file",
			with(v2, map[string]string{sysd + "memory.stat": "anon 2952790016\nfile 805306368\n"}),
			sysd + "memory.stat", ErrMalformed},
		{"v1 usage garbled",
			with(v1files, map[string]string{v1 + "memory.usage_in_bytes": "-1\n"}),
			v1 + "memory.usage_in_bytes", ErrMalformed},
		{"v1 stat has only the non-hierarchical count",
			with(v1files, map[string]string{v1 + "memory.stat": "cache 805306368\ninactive_file 16384\n"}),
			v1 + "memory.stat", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeRoot(t, tt.files)
			_, err := Read(root)
			if !errors.Is(err, tt.is) {
				t.Fatalf("Read error = %v, want one wrapping %v", err, tt.is)
			}
			if want := filepath.Join(root, filepath.FromSlash(tt.file)); !strings.Contains(err.Error(), want) {
				t.Errorf("Read error = %q, does not name %s", err, want)
			}
		})
	}

	t.Run("v2 memory.stat missing", func(t *testing.T) {
		files := with(v2, nil)
		delete(files, sysd+"memory.stat")
		root := fakeRoot(t, files)
		_, err := Read(root)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(root, sysd, "memory.stat")) {
			t.Errorf("Read error = %v, want a missing memory.stat", err)
		}
	})
}

func TestReadThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads Linux's /proc")
	}
	u, err := Read("/")
	if err != nil {
		t.Fatalf("Read(/): %v", err)
	}
	t.Logf("Read(/) = %+v (%.1f%%)", u, 100*u.Fraction())
	if !(0 < u.Used && u.Used < u.Total) {
		t.Errorf("Read(/) = %+v, want 0 < Used < Total", u)
	}
	if f := u.Fraction(); !(0 < f && f < 1) {
		t.Errorf("Fraction = %v, want in (0, 1)", f)
	}
	if u.Source == "" {
		t.Error("Read(/) has no Source")
	}
}

func TestFraction(t *testing.T) {
	for _, tt := range []struct {
		u    Usage
		want float64
	}{
		{Usage{Used: 95, Total: 100}, 0.95},
		{Usage{Used: 0, Total: 100}, 0},
		{Usage{Used: 10, Total: 0}, 0},
		{Usage{Used: 10, Total: -1}, 0},
	} {
		if got := tt.u.Fraction(); got != tt.want {
			t.Errorf("%+v.Fraction() = %v, want %v", tt.u, got, tt.want)
		}
	}
}
