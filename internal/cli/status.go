package cli

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/scheduler"
)

// newStatusCmd builds `raygo status`.
func newStatusCmd() *cobra.Command {
	var addr, token string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's nodes, resource usage and pending demands",
		Long: `Show the cluster's nodes, resource usage and pending demands.

The address comes from --address, else RAYGO_ADDRESS, else the cluster last
started on this machine (session_latest). The token comes from --token, else
RAYGO_TOKEN, else session_latest's token file when its address matches.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := resolveCluster(addr, token)
			if err != nil {
				return err
			}
			nodes, err := getNodes(cmd.Context(), c, true)
			if err != nil {
				return err
			}
			actors, err := listActors(cmd.Context(), c)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "======== Cluster status: %s ========\n", c.address)
			fmt.Fprint(out, formatStatus(nodes, actors))
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "address", "", "cluster address host:port (default $RAYGO_ADDRESS, else the cluster started on this machine)")
	cmd.Flags().StringVar(&token, "token", "", "cluster token (default $RAYGO_TOKEN, else the local session's token file)")
	return cmd
}

const nodeAlive = pb.NodeState_NODE_STATE_ALIVE

// listActors asks the control store at c for its actors.
func listActors(ctx context.Context, c clusterRef) ([]*pb.ActorInfo, error) {
	conn, err := rpc.Dial(c.address, c.token)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c.address, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	reply, err := pb.NewControlStoreClient(conn).ListActors(ctx, &pb.ListActorsRequest{})
	if err != nil {
		return nil, fmt.Errorf("list actors at %s: %w", c.address, err)
	}
	return reply.GetActors(), nil
}

// formatStatus renders nodes like `ray status`: a table of nodes (alive
// ones first) with used/total per resource, the alive nodes' totals (a
// machine's memory counted once however many nodes share it), the
// resource requests waiting for room, and those no node can hold
// (infeasible tasks reported by the nodes, and infeasible actors). It is
// pure, for tests.
func formatStatus(nodes []*pb.NodeInfo, actors []*pb.ActorInfo) string {
	nodes = slices.Clone(nodes)
	slices.SortStableFunc(nodes, func(a, b *pb.NodeInfo) int {
		if aa, ba := a.GetState() == nodeAlive, b.GetState() == nodeAlive; aa != ba {
			if aa {
				return -1
			}
			return 1
		}
		return cmp.Or(
			cmp.Compare(a.GetStartUnixMs(), b.GetStartUnixMs()),
			strings.Compare(a.GetAddress(), b.GetAddress()),
		)
	})

	var b strings.Builder
	alive := 0
	for _, n := range nodes {
		if n.GetState() == nodeAlive {
			alive++
		}
	}
	fmt.Fprintf(&b, "Nodes: %d alive", alive)
	if dead := len(nodes) - alive; dead > 0 {
		fmt.Fprintf(&b, ", %d dead", dead)
	}
	machines := machineGroups(nodes)
	if len(machines) < alive {
		fmt.Fprintf(&b, " (on %s)", plural(int64(len(machines)), "machine"))
	}
	b.WriteString("\n")
	if len(nodes) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, " NODE\tADDRESS\tSTATE\tCPU\tGPU\tMEMORY\tWORKERS\tCUSTOM\tLABELS")
		for _, n := range nodes {
			cpu, gpu, mem, custom := "-", "-", "-", "-"
			if n.GetState() == nodeAlive {
				total, used := nodeUsage(n)
				cpu = usedOfTotal(resources.CPU, used, total)
				gpu = usedOfTotal(resources.GPU, used, total)
				mem = usedOfTotal(resources.Memory, used, total)
				var cs []string
				for _, k := range customNames(total) {
					cs = append(cs, k+" "+usedOfTotal(k, used, total))
				}
				if len(cs) > 0 {
					custom = strings.Join(cs, ", ")
				}
			}
			fmt.Fprintf(tw, " %s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", shortNodeID(n.GetNodeId()), n.GetAddress(),
				nodeStateName(n.GetState()), cpu, gpu, mem, n.GetNumWorkers(), custom, userLabels(n.GetLabels()))
		}
		_ = tw.Flush()
	}

	total, used := resources.Set{}, resources.Set{}
	shared := 0 // machines whose memory several nodes report
	for _, group := range machines {
		var mt, mu float64
		for _, n := range group {
			t, u := nodeUsage(n)
			mt, mu = mt+t[resources.Memory], mu+u[resources.Memory]
			delete(t, resources.Memory)
			delete(u, resources.Memory)
			total.Add(t)
			used.Add(u)
		}
		// Nodes on one machine share its memory: count it once.
		if hm := float64(group[0].GetHostMemory()); len(group) > 1 && hm > 0 && mt > hm {
			mt, mu = hm, min(mu, hm)
			shared++
		}
		if mt > 0 {
			total[resources.Memory] += mt
			used[resources.Memory] += mu
		}
	}
	b.WriteString("\nResources (alive nodes)\n")
	b.WriteString(strings.Repeat("-", 60) + "\n")
	b.WriteString("Usage:\n")
	fmt.Fprintf(&b, " %s %s\n", formatPair(resources.CPU, used[resources.CPU], total[resources.CPU]), resources.CPU)
	if total[resources.GPU] > 0 {
		fmt.Fprintf(&b, " %s %s\n", formatPair(resources.GPU, used[resources.GPU], total[resources.GPU]), resources.GPU)
	}
	if total[resources.Memory] > 0 {
		fmt.Fprintf(&b, " %s %s", formatPair(resources.Memory, used[resources.Memory], total[resources.Memory]), resources.Memory)
		if shared > 0 {
			fmt.Fprintf(&b, " (nodes sharing a machine count its memory once)")
		}
		b.WriteString("\n")
	}
	for _, k := range customNames(total) {
		fmt.Fprintf(&b, " %s %s\n", formatPair(k, used[k], total[k]), k)
	}

	b.WriteString("\nPending demands:\n")
	demands := pendingDemands(nodes, func(n *pb.NodeInfo) []*pb.Resources { return n.GetPendingDemands() }, nil)
	if len(demands) == 0 {
		b.WriteString(" (no pending demands)\n")
	}
	for _, d := range demands {
		fmt.Fprintf(&b, " %s: %d pending\n", d.shape, d.count)
	}
	var infeasibleActors []string
	for _, a := range actors {
		if a.GetInfeasible() != nil && a.GetState() != pb.ActorState_ACTOR_STATE_DEAD {
			infeasibleActors = append(infeasibleActors, a.GetInfeasible().GetRequest())
		}
	}
	if infeasible := pendingDemands(nodes, func(n *pb.NodeInfo) []*pb.Resources { return n.GetInfeasibleDemands() }, infeasibleActors); len(infeasible) > 0 {
		b.WriteString("\nInfeasible demands (no node can hold these; they wait for one that can: add such a node, or lower the request):\n")
		for _, d := range infeasible {
			fmt.Fprintf(&b, " %s: %d waiting\n", d.shape, d.count)
		}
	}
	return b.String()
}

// machineGroups groups the alive nodes by the machine they run on
// (NodeInfo.host_id; a node without one is a machine of its own), in the
// order of nodes.
func machineGroups(nodes []*pb.NodeInfo) [][]*pb.NodeInfo {
	var groups [][]*pb.NodeInfo
	index := map[string]int{}
	for _, n := range nodes {
		if n.GetState() != nodeAlive {
			continue
		}
		id := n.GetHostId()
		if i, ok := index[id]; ok && id != "" {
			groups[i] = append(groups[i], n)
			continue
		}
		index[id] = len(groups)
		groups = append(groups, []*pb.NodeInfo{n})
	}
	return groups
}

// nodeUsage returns a node's totals and how much of each is in use.
func nodeUsage(n *pb.NodeInfo) (total, used resources.Set) {
	total = resources.Set(n.GetTotal().GetAmounts()).Clone()
	avail := resources.Set(n.GetAvailable().GetAmounts())
	used = resources.Set{}
	for k, t := range total {
		u := t - avail[k]
		if n.GetAvailable() == nil {
			u = 0 // no report yet: nothing known to be in use
		}
		used[k] = max(u, 0)
	}
	return total, used
}

// customNames lists the resources in s other than CPU, GPU and memory,
// sorted.
func customNames(s resources.Set) []string {
	var names []string
	for k := range s {
		// A placement group's bundle resources are reservations of the
		// others (shown as used there), not resources of their own.
		if k != resources.CPU && k != resources.GPU && k != resources.Memory && !resources.IsBundleResource(k) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

// usedOfTotal formats one resource of a node for the table: "-" when the
// node has none.
func usedOfTotal(name string, used, total resources.Set) string {
	if total[name] <= 0 && used[name] <= 0 {
		return "-"
	}
	return formatPair(name, used[name], total[name])
}

// formatPair formats "used/total", memory in binary units.
func formatPair(name string, used, total float64) string {
	if name == resources.Memory {
		return humanBytes(used) + "/" + humanBytes(total)
	}
	return formatAmount(used) + "/" + formatAmount(total)
}

// formatAmount prints whole amounts with one decimal, as Ray does ("3.0"),
// and fractional ones with up to four ("0.25").
func formatAmount(v float64) string {
	if r := math.Round(v); math.Abs(v-r) < resources.Epsilon {
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strconv.FormatFloat(math.Round(v*1e4)/1e4, 'f', -1, 64)
}

// humanBytes formats a byte count in binary units: 0B, 512B, 1.5KiB, 15.5GiB.
func humanBytes(v float64) string {
	if v < 1024 {
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64) + "B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}

// shortNodeID returns the short form of a node id, as logs print it.
func shortNodeID(b []byte) string {
	if id, ok := ids.FromBytes(b); ok {
		return id.Short()
	}
	if len(b) == 0 {
		return "?"
	}
	return hex.EncodeToString(b)
}

// demand is one shape of pending resource request and how many wait for it.
type demand struct {
	shape string
	count int
}

// pendingDemands groups the requests that of returns for each alive node,
// plus the shapes in extra, by shape, most frequent first.
func pendingDemands(nodes []*pb.NodeInfo, of func(*pb.NodeInfo) []*pb.Resources, extra []string) []demand {
	counts := map[string]int{}
	for _, n := range nodes {
		if n.GetState() != nodeAlive {
			continue
		}
		for _, r := range of(n) {
			counts[resources.Set(r.GetAmounts()).String()]++
		}
	}
	for _, shape := range extra {
		counts[shape]++
	}
	out := make([]demand, 0, len(counts))
	for s, c := range counts {
		out = append(out, demand{s, c})
	}
	slices.SortFunc(out, func(a, b demand) int {
		return cmp.Or(cmp.Compare(b.count, a.count), strings.Compare(a.shape, b.shape))
	})
	return out
}

// userLabels lists a node's labels as `raygo start --labels` takes them,
// less the ones raygo sets itself (its id is in the NODE column).
func userLabels(labels map[string]string) string {
	var kv []string
	for k, v := range labels {
		if !strings.HasPrefix(k, scheduler.ReservedLabelPrefix) {
			kv = append(kv, k+"="+v)
		}
	}
	if len(kv) == 0 {
		return "-"
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}
