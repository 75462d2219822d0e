package memmonitor

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/raygo/raygo/internal/units"
)

// reportTop is how many processes Report lists.
const reportTop = 5

// Report words the out-of-memory message for a task or actor the node
// daemon killed, for example:
//
//	node memory used 23.1 GiB of 24.0 GiB (96%, threshold 95%, from /proc/meminfo); top consumers: pid 123 (worker abc, 10.2 GiB), pid 456 (1.5 GiB)
//
// u is the reading that went over threshold (a fraction, as in
// Config.Threshold). procs are the processes to rank: Report lists the
// top 5 by Anon+File, leaving out shared memory, which killing a process
// does not give back. names labels processes by pid ("worker abc"); it
// may be nil or lack some. Report does not change procs.
func Report(u Usage, threshold float64, procs []ProcMem, names map[int]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node memory used %s of %s (%s, threshold %s, from %s)",
		units.Bytes(u.Used), units.Bytes(u.Total),
		formatPercent(u.Fraction()), formatPercent(threshold), u.Source)
	if len(procs) == 0 {
		return b.String()
	}
	top := slices.Clone(procs)
	slices.SortStableFunc(top, func(x, y ProcMem) int {
		return cmp.Compare(y.Anon+y.File, x.Anon+x.File)
	})
	b.WriteString("; top consumers: ")
	for i, p := range top[:min(len(top), reportTop)] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "pid %d (", p.PID)
		if name := names[p.PID]; name != "" {
			fmt.Fprintf(&b, "%s, ", name)
		}
		fmt.Fprintf(&b, "%s)", units.Bytes(p.Anon+p.File))
	}
	return b.String()
}

// formatPercent writes a fraction as a whole percentage: 0.955 -> "96%".
func formatPercent(f float64) string {
	return fmt.Sprintf("%.0f%%", f*100)
}
