package memmonitor_test

import (
	"fmt"
	"time"

	"github.com/raygo/raygo/internal/memmonitor"
)

// The node daemon is over its threshold and must kill one worker.
func ExamplePickVictim() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	workers := []memmonitor.Candidate{
		{ID: "train", PID: 101, Retriable: true, Started: now.Add(-time.Hour), Mem: 8 << 30},
		{ID: "actor", PID: 102, IsActor: true, Started: now.Add(-time.Second), Mem: 2 << 30},
		{ID: "map-17", PID: 103, Retriable: true, Started: now.Add(-5 * time.Second), Mem: 1 << 30},
	}
	i := memmonitor.PickVictim(workers)
	fmt.Println("kill", workers[i].ID)

	u := memmonitor.Usage{Used: 31 << 30, Total: 32 << 30, Source: "/proc/meminfo"}
	procs := []memmonitor.ProcMem{
		{PID: 101, Anon: 8 << 30, File: 100 << 20},
		{PID: 102, Anon: 2 << 30},
		{PID: 103, Anon: 1 << 30, Shmem: 4 << 30},
	}
	names := map[int]string{101: "worker train", 102: "worker actor", 103: "worker map-17"}
	fmt.Println(memmonitor.Report(u, 0.95, procs, names))
	// Output:
	// kill map-17
	// node memory used 31.0 GiB of 32.0 GiB (97%, threshold 95%, from /proc/meminfo); top consumers: pid 101 (worker train, 8.1 GiB), pid 102 (worker actor, 2.0 GiB), pid 103 (worker map-17, 1.0 GiB)
}
