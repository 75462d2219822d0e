package memmonitor

import "testing"

func TestReport(t *testing.T) {
	u := Usage{Used: 24803683123, Total: 24 * gib, Source: "/proc/meminfo"} // 23.1 GiB
	procs := []ProcMem{
		{PID: 1, Anon: 10 * mib, File: 20 * mib, Shmem: 40 * gib},
		{PID: 123, Anon: 10 * gib, File: 215 * mib, Shmem: 1 * gib},
		{PID: 456, Anon: 3 * gib / 2},
		{PID: 789, Anon: 512 * mib},
		{PID: 790, Anon: 2 * gib},
		{PID: 791, Anon: 700},
		{PID: 792, File: 3 * gib},
	}
	names := map[int]string{123: "worker abc", 790: "worker def", 1: "init"}

	got := Report(u, 0.95, procs, names)
	want := "node memory used 23.1 GiB of 24.0 GiB (96%, threshold 95%, from /proc/meminfo); " +
		"top consumers: pid 123 (worker abc, 10.2 GiB), pid 792 (3.0 GiB), pid 790 (worker def, 2.0 GiB), " +
		"pid 456 (1.5 GiB), pid 789 (512.0 MiB)"
	if got != want {
		t.Errorf("Report =\n%s\nwant\n%s", got, want)
	}
	if procs[0].PID != 1 {
		t.Error("Report reordered its argument")
	}

	got = Report(Usage{Used: 900 * mib, Total: gib, Source: "cgroup v2 /sys/fs/cgroup/a/memory.max"}, 0.8,
		[]ProcMem{{PID: 9, Anon: 700}}, nil)
	want = "node memory used 900.0 MiB of 1.0 GiB (88%, threshold 80%, from cgroup v2 /sys/fs/cgroup/a/memory.max); " +
		"top consumers: pid 9 (700 B)"
	if got != want {
		t.Errorf("Report =\n%s\nwant\n%s", got, want)
	}

	got = Report(u, 0.95, nil, nil)
	want = "node memory used 23.1 GiB of 24.0 GiB (96%, threshold 95%, from /proc/meminfo)"
	if got != want {
		t.Errorf("Report without processes =\n%s\nwant\n%s", got, want)
	}
}
