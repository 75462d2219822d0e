// Package memmonitor watches a node's memory and chooses which worker to
// kill when it runs short: raygo's counterpart of Ray's memory monitor
// (memory_monitor.cc) and its worker-killing policy.
//
// The package does no killing itself. Its parts are:
//
//   - [Read] measures the node's memory use from /proc/meminfo and, when the
//     process runs in a memory-limited cgroup (v1 or v2), from that cgroup,
//     and reports whichever is closer to its limit.
//   - [ReadLimit] and [NodeLimit] say how much memory the node may use:
//     its cgroup's limit when it runs in one (v1 or v2, ancestors
//     included), else the machine's memory. resources.Detect offers it as
//     the node's memory resource.
//   - [ReadProc] measures one process from /proc/<pid>/status.
//   - [System] and [Process] measure the machine and one process the
//     platform's way: Read and ReadProc on Linux; on darwin, System asks
//     sysctl (hw.memsize and kern.memorystatus_level, the share of memory
//     the kernel counts as available) and Process is not available, so
//     victims are picked by policy alone; elsewhere neither is.
//   - [PickVictim] is the pure policy: given the workers that could be
//     killed, it names the one to kill.
//   - [Monitor] polls [Read] on its own goroutine and calls back when use
//     reaches a threshold, at most once per cooldown, so that the node
//     daemon kills one worker at a time and lets memory come back.
//   - [Report] words the out-of-memory message given to the killed task's
//     owner.
//
// A node daemon wires them together like this:
//
//	m, err := memmonitor.New(memmonitor.Config{Threshold: 0.95}, func(u memmonitor.Usage) {
//		cands := d.killableWorkers() // fills Candidate.Mem with ReadProc(...).Anon
//		i := memmonitor.PickVictim(cands)
//		if i < 0 {
//			return
//		}
//		msg := memmonitor.Report(u, 0.95, d.workerMems(), d.workerNames())
//		d.kill(cands[i], msg)
//	})
//	if err != nil {
//		return err
//	}
//	m.Start()
//	defer m.Stop()
package memmonitor
