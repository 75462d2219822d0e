package cli

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

const (
	// nodeStatsTimeout bounds the wait for one node daemon's NodeStats.
	nodeStatsTimeout = 5 * time.Second
	// defaultMemoryTop and maxMemoryTop bound --top.
	defaultMemoryTop = 10
	maxMemoryTop     = 1000
)

// memoryOptions are the flags of `raygo memory`.
type memoryOptions struct {
	addr, token string
	top         int
	statsOnly   bool
	json        bool
}

// newMemoryCmd builds `raygo memory`.
func newMemoryCmd() *cobra.Command {
	var o memoryOptions
	cmd := &cobra.Command{
		Use:   "memory",
		Short: "Show each node's memory, object store use and largest objects",
		Long: `Show each node's memory, object store use and largest objects.

Every alive node's daemon reports its memory use as its memory monitor sees
it (with the monitor's threshold and how many workers it killed), its object
store's use broken down into primary copies (pinned: spilled, never evicted),
secondary copies of remote objects (evictable), objects mapped by readers,
objects being created, spilled objects and objects larger than the store kept
in files, the spills, restores and evictions since it started, and its --top
largest objects with their state, owner and the call that created them. A
node that does not answer within 5s is listed with its error; the command
fails only when no node answers.

--stats-only leaves out the objects; --json prints one JSON array with an
object of raw numbers per node instead of text.

The address comes from --address, else RAYGO_ADDRESS, else the cluster last
started on this machine (session_latest). The token comes from --token, else
RAYGO_TOKEN, else session_latest's token file when its address matches.`,
		Example: `  raygo memory
  raygo memory --top 50
  raygo memory --stats-only --address 10.0.0.1:6380
  raygo memory --json > memory.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runMemory(cmd.Context(), cmd.OutOrStdout(), o) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.addr, "address", "", "cluster address host:port (default $RAYGO_ADDRESS, else the cluster started on this machine)")
	fs.StringVar(&o.token, "token", "", "cluster token (default $RAYGO_TOKEN, else the local session's token file)")
	fs.IntVar(&o.top, "top", defaultMemoryTop, fmt.Sprintf("list this many of each node's largest objects (1..%d)", maxMemoryTop))
	fs.BoolVar(&o.statsOnly, "stats-only", false, "print only the memory and store figures, not the largest objects")
	fs.BoolVar(&o.json, "json", false, "print one JSON array with an object per node instead of text")
	return cmd
}

// runMemory resolves the cluster, asks its alive nodes for their stats and
// prints them to out.
func runMemory(ctx context.Context, out io.Writer, o memoryOptions) error {
	if o.top < 1 || o.top > maxMemoryTop {
		return usageErrorf("--top must be in 1..%d, got %d (use --stats-only to leave out the objects)", maxMemoryTop, o.top)
	}
	c, err := resolveCluster(o.addr, o.token)
	if err != nil {
		return err
	}
	all, err := getNodes(ctx, c, false)
	if err != nil {
		return err
	}
	var nodes []*pb.NodeInfo
	for _, n := range all {
		if n.GetState() == nodeAlive {
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 0 {
		return fmt.Errorf("the cluster at %s has no alive nodes", c.address)
	}
	slices.SortStableFunc(nodes, func(a, b *pb.NodeInfo) int {
		return cmp.Or(
			cmp.Compare(a.GetStartUnixMs(), b.GetStartUnixMs()),
			strings.Compare(a.GetAddress(), b.GetAddress()),
		)
	})
	largest := int32(o.top)
	if o.statsOnly {
		largest = 0
	}
	stats := collectNodeStats(ctx, c.token, nodes, largest, nodeStatsTimeout)

	if o.json {
		b, err := memoryJSON(stats, o.statsOnly)
		if err != nil {
			return err
		}
		if _, err := out.Write(append(b, '\n')); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "======== Object store memory: %s ========\n", c.address)
		fmt.Fprint(out, formatMemory(stats, o.statsOnly))
	}
	for _, s := range stats {
		if s.err == nil {
			return nil
		}
	}
	return fmt.Errorf("none of the %d alive nodes answered; first error: %w", len(stats), stats[0].err)
}

// nodeMemory is one node as the control store lists it, with its daemon's
// NodeStats reply or the error that came instead.
type nodeMemory struct {
	node  *pb.NodeInfo
	reply *pb.NodeStatsReply
	err   error
}

// collectNodeStats asks every node's daemon for NodeStats (largest objects
// included), all at once, each bounded by timeout. The result is in the
// order of nodes; a node that failed has err set.
func collectNodeStats(ctx context.Context, token string, nodes []*pb.NodeInfo, largest int32, timeout time.Duration) []nodeMemory {
	out := make([]nodeMemory, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		out[i].node = n
		wg.Go(func() { out[i].reply, out[i].err = nodeStats(ctx, token, n.GetAddress(), largest, timeout) })
	}
	wg.Wait()
	return out
}

// nodeStats asks the node daemon at addr for its stats.
func nodeStats(ctx context.Context, token, addr string, largest int32, timeout time.Duration) (*pb.NodeStatsReply, error) {
	conn, err := rpc.Dial(addr, token)
	if err != nil {
		return nil, fmt.Errorf("connect to the node daemon at %s: %w", addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reply, err := pb.NewNodeDaemonClient(conn).NodeStats(ctx, &pb.NodeStatsRequest{Largest: largest})
	switch {
	case err == nil:
		return reply, nil
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("no answer from the node daemon at %s within %s: %w", addr, timeout, err)
	case errors.Is(err, errs.ErrUnauthenticated):
		return nil, fmt.Errorf("the node daemon at %s rejected the token: %w", addr, err)
	case rpc.IsUnavailable(err):
		return nil, fmt.Errorf("cannot reach the node daemon at %s: %w", addr, err)
	default:
		return nil, fmt.Errorf("node stats from %s: %w", addr, err)
	}
}

// formatMemory renders the nodes' stats, in the order given, and a
// cluster-wide summary; statsOnly leaves out the largest objects. It is
// pure, for tests.
func formatMemory(nodes []nodeMemory, statsOnly bool) string {
	var b strings.Builder
	var sum pb.StoreStats
	answered := 0
	for i, n := range nodes {
		if i > 0 {
			b.WriteString("\n")
		}
		info := n.node
		if info == nil {
			info = n.reply.GetNode()
		}
		host := info.GetHostname()
		if host == "" {
			host = n.reply.GetNode().GetHostname()
		}
		fmt.Fprintf(&b, "Node %s  %s", shortNodeID(info.GetNodeId()), info.GetAddress())
		if host != "" {
			fmt.Fprintf(&b, "  (%s)", host)
		}
		b.WriteString("\n")
		if n.err != nil || n.reply == nil {
			err := n.err
			if err == nil {
				err = errors.New("no reply")
			}
			fmt.Fprintf(&b, " Error: %v\n", err)
			continue
		}
		answered++
		st := n.reply.GetStore()
		sum.Capacity += st.GetCapacity()
		sum.Used += st.GetUsed()
		sum.Objects += st.GetObjects()
		sum.SpilledBytes += st.GetSpilledBytes()
		sum.SpilledCount += st.GetSpilledCount()

		b.WriteString(" Memory: " + formatMemoryUsage(n.reply.GetMemory()) + "\n")
		if st == nil {
			b.WriteString(" Object store: unknown\n")
			continue
		}
		fmt.Fprintf(&b, " Object store: %s / %s used (%s), %s\n", humanBytes(float64(st.GetUsed())),
			humanBytes(float64(st.GetCapacity())), percent(st.GetUsed(), st.GetCapacity()), plural(st.GetObjects(), "object"))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, row := range []struct {
			label        string
			bytes, count int64
		}{
			{"primary (pinned)", st.GetPrimaryBytes(), st.GetPrimaryCount()},
			{"secondary (evictable)", st.GetSecondaryBytes(), st.GetSecondaryCount()},
			{"in use by readers", st.GetInUseBytes(), st.GetInUseCount()},
			{"being created", st.GetCreatingBytes(), st.GetCreatingCount()},
			{"spilled", st.GetSpilledBytes(), st.GetSpilledCount()},
			{"in files (larger than the store)", st.GetFileBytes(), st.GetFileCount()},
		} {
			fmt.Fprintf(tw, "   %s:\t%s\t%s\n", row.label, humanBytes(float64(row.bytes)), plural(row.count, "object"))
		}
		_ = tw.Flush()
		fmt.Fprintf(&b, "   since start: %s, %s, %s\n", plural(st.GetSpillsTotal(), "spill"),
			plural(st.GetRestoresTotal(), "restore"), plural(st.GetEvictionsTotal(), "eviction"))
		spillDir := st.GetSpillDir()
		if spillDir == "" {
			spillDir = "(none)"
		}
		fmt.Fprintf(&b, "   spill directory: %s\n", spillDir)
		if statsOnly {
			continue
		}
		objs := st.GetLargest()
		if len(objs) == 0 {
			b.WriteString(" Largest objects: (none)\n")
			continue
		}
		fmt.Fprintf(&b, " Largest objects (%d):\n", len(objs))
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "   OBJECT\tSIZE\tSTATE\tREADERS\tSECONDARY\tOWNER\tCALL SITE")
		for _, o := range objs {
			fmt.Fprintf(tw, "   %s\t%s\t%s\t%d\t%s\t%s\t%s\n", shortNodeID(o.GetObjectId()), humanBytes(float64(o.GetSize())),
				orDash(objectStateName(o.GetState())), o.GetReaders(), yesNo(o.GetSecondary()), orDash(o.GetOwnerAddress()), orDash(o.GetCallSite()))
		}
		_ = tw.Flush()
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "Cluster: %d of %d nodes answered; object store %s / %s used (%s), %s, %s spilled (%s)\n",
		answered, len(nodes), humanBytes(float64(sum.Used)), humanBytes(float64(sum.Capacity)),
		percent(sum.Used, sum.Capacity), plural(sum.Objects, "object"),
		humanBytes(float64(sum.SpilledBytes)), plural(sum.SpilledCount, "object"))
	return b.String()
}

// formatMemoryUsage formats a node's memory line: use, the monitor's
// threshold, where the figures come from and the monitor's kills.
func formatMemoryUsage(m *pb.MemoryUsage) string {
	if m == nil {
		return "unknown (the node could not read it)"
	}
	s := "unknown"
	if m.GetTotal() > 0 {
		s = fmt.Sprintf("%s / %s (%s)", humanBytes(float64(m.GetUsed())), humanBytes(float64(m.GetTotal())), percent(m.GetUsed(), m.GetTotal()))
	}
	if m.GetThreshold() < 0 {
		s += ", monitor disabled"
	} else {
		s += ", monitor threshold " + strconv.FormatFloat(m.GetThreshold()*100, 'f', 1, 64) + "%"
	}
	if m.GetSource() != "" {
		s += ", source " + m.GetSource()
	}
	return s + fmt.Sprintf(", OOM kills %d", m.GetOomKills())
}

// percent formats part/whole as "12.5%", or "-" when whole is not positive.
func percent(part, whole int64) string {
	if whole <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(part)*100/float64(whole), 'f', 1, 64) + "%"
}

// plural formats "1 object", "3 objects".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatInt(n, 10) + " " + noun + "s"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// memoryNodeJSON is one node in `raygo memory --json`.
type memoryNodeJSON struct {
	NodeID   string           `json:"node_id"`
	Address  string           `json:"address"`
	Hostname string           `json:"hostname"`
	Error    string           `json:"error,omitempty"`
	Memory   *memoryUsageJSON `json:"memory,omitempty"`
	Store    *storeStatsJSON  `json:"store,omitempty"`
}

type memoryUsageJSON struct {
	Used      int64   `json:"used_bytes"`
	Total     int64   `json:"total_bytes"`
	Source    string  `json:"source"`
	Threshold float64 `json:"threshold"` // a fraction; negative: monitor disabled
	OOMKills  int64   `json:"oom_kills"`
}

type storeStatsJSON struct {
	Capacity       int64             `json:"capacity_bytes"`
	Used           int64             `json:"used_bytes"`
	Objects        int64             `json:"objects"`
	PrimaryBytes   int64             `json:"primary_bytes"`
	PrimaryCount   int64             `json:"primary_count"`
	SecondaryBytes int64             `json:"secondary_bytes"`
	SecondaryCount int64             `json:"secondary_count"`
	InUseBytes     int64             `json:"in_use_bytes"`
	InUseCount     int64             `json:"in_use_count"`
	CreatingBytes  int64             `json:"creating_bytes"`
	CreatingCount  int64             `json:"creating_count"`
	SpilledBytes   int64             `json:"spilled_bytes"`
	SpilledCount   int64             `json:"spilled_count"`
	FileBytes      int64             `json:"file_bytes"`
	FileCount      int64             `json:"file_count"`
	SpillsTotal    int64             `json:"spills_total"`
	RestoresTotal  int64             `json:"restores_total"`
	EvictionsTotal int64             `json:"evictions_total"`
	SpillDir       string            `json:"spill_dir"`
	Largest        []storeObjectJSON `json:"largest,omitzero"` // nil with --stats-only
}

type storeObjectJSON struct {
	ObjectID     string `json:"object_id"`
	Size         int64  `json:"size_bytes"`
	State        string `json:"state"`
	Readers      int32  `json:"readers"`
	Secondary    bool   `json:"secondary"`
	OwnerAddress string `json:"owner_address"`
	CallSite     string `json:"call_site"`
}

// memoryJSON renders the nodes' stats as one indented JSON array, raw
// numbers in bytes and full hex ids. It is pure, for tests.
func memoryJSON(nodes []nodeMemory, statsOnly bool) ([]byte, error) {
	out := make([]memoryNodeJSON, 0, len(nodes))
	for _, n := range nodes {
		info := n.node
		if info == nil {
			info = n.reply.GetNode()
		}
		j := memoryNodeJSON{NodeID: hex.EncodeToString(info.GetNodeId()), Address: info.GetAddress(), Hostname: info.GetHostname()}
		if j.Hostname == "" {
			j.Hostname = n.reply.GetNode().GetHostname()
		}
		if n.err != nil || n.reply == nil {
			j.Error = "no reply"
			if n.err != nil {
				j.Error = n.err.Error()
			}
			out = append(out, j)
			continue
		}
		if m := n.reply.GetMemory(); m != nil {
			j.Memory = &memoryUsageJSON{Used: m.GetUsed(), Total: m.GetTotal(), Source: m.GetSource(), Threshold: m.GetThreshold(), OOMKills: m.GetOomKills()}
		}
		if st := n.reply.GetStore(); st != nil {
			j.Store = &storeStatsJSON{
				Capacity: st.GetCapacity(), Used: st.GetUsed(), Objects: st.GetObjects(),
				PrimaryBytes: st.GetPrimaryBytes(), PrimaryCount: st.GetPrimaryCount(),
				SecondaryBytes: st.GetSecondaryBytes(), SecondaryCount: st.GetSecondaryCount(),
				InUseBytes: st.GetInUseBytes(), InUseCount: st.GetInUseCount(),
				CreatingBytes: st.GetCreatingBytes(), CreatingCount: st.GetCreatingCount(),
				SpilledBytes: st.GetSpilledBytes(), SpilledCount: st.GetSpilledCount(),
				FileBytes: st.GetFileBytes(), FileCount: st.GetFileCount(),
				SpillsTotal: st.GetSpillsTotal(), RestoresTotal: st.GetRestoresTotal(), EvictionsTotal: st.GetEvictionsTotal(),
				SpillDir: st.GetSpillDir(),
			}
			if !statsOnly {
				j.Store.Largest = []storeObjectJSON{}
				for _, o := range st.GetLargest() {
					j.Store.Largest = append(j.Store.Largest, storeObjectJSON{
						ObjectID: hex.EncodeToString(o.GetObjectId()), Size: o.GetSize(), State: objectStateName(o.GetState()),
						Readers: o.GetReaders(), Secondary: o.GetSecondary(),
						OwnerAddress: o.GetOwnerAddress(), CallSite: o.GetCallSite(),
					})
				}
			}
		}
		out = append(out, j)
	}
	return json.MarshalIndent(out, "", "  ")
}
