package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/mcphost/hostspec"
	"github.com/raygo/raygo/internal/resources"
)

// addMCPHostCmds adds `raygo mcp host|list|stop|logs` to cmd: MCP servers
// hosted on the cluster (internal/mcphost, docs/mcp-hosting.md).
func addMCPHostCmds(cmd *cobra.Command) {
	var f apiFlags
	for _, c := range []*cobra.Command{newMCPHostCmd(&f), newMCPListCmd(&f), newMCPStopCmd(&f), newMCPLogsCmd(&f)} {
		f.add(c.Flags())
		cmd.AddCommand(c)
	}
}

func newMCPHostCmd(f *apiFlags) *cobra.Command {
	var (
		spec       hostspec.Spec
		cpus, gpus float64
		custom     string
		env        []string
		workingDir string
		excludes   []string
		noWait     bool
		timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "host NAME [flags] -- COMMAND [ARGS...]",
		Short: "Host a stdio MCP server on the cluster as supervised replicas behind an HTTP gateway",
		Long: `Run COMMAND, a stdio MCP server, as --replicas supervised replicas on the
cluster's nodes (spread over them), each health-checked (initialize, then a ping
every 5 s) and replaced when it dies, and serve them through one streamable-HTTP
MCP endpoint on the head, /mcp/hosted/NAME, behind the API's tokens. Sessions
are spread over the replicas and stay on theirs; when a replica dies, the call
under way gets an error saying so and the session moves to another one.

COMMAND is found on each node's PATH. Its stderr goes to the node's log
mcp-NAME-<replica>.log (raygo mcp logs NAME). See docs/mcp-hosting.md.`,
		Example: `  raygo mcp host memory --replicas 2 -- npx -y @modelcontextprotocol/server-memory
  raygo mcp host azure --env AZURE_TENANT_ID=… -- npx -y @azure/mcp server start
  raygo mcp host tools --working-dir ./tools --num-cpus 1 -- python3 server.py`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return usageErrorf("want NAME, then -- and the server's command: raygo mcp host NAME -- COMMAND [ARGS...]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			spec.Name, spec.Command = args[0], args[1:]
			var err error
			if spec.Env, err = parsePairs("env", env); err != nil {
				return err
			}
			if cpus < 0 || gpus < 0 {
				return usageErrorf("--num-cpus and --num-gpus: want 0 or more")
			}
			if custom != "" {
				if spec.Resources, err = resources.ParseJSON(custom); err != nil {
					return usageErrorf("--resources: %v", err)
				}
			}
			if cpus > 0 || gpus > 0 {
				if spec.Resources == nil {
					spec.Resources = map[string]float64{}
				}
				if cpus > 0 {
					spec.Resources[resources.CPU] = cpus
				}
				if gpus > 0 {
					spec.Resources[resources.GPU] = gpus
				}
			}
			if err := spec.Validate(); err != nil { // before any upload
				return usageErrorf("%v", err)
			}
			c, err := f.client(ctx)
			if err != nil {
				return err
			}
			if workingDir != "" {
				if spec.WorkingDir, err = uploadDir(ctx, c, workingDir, excludes, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			if _, err := c.HostMCPServer(ctx, spec); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			gateway := strings.TrimSuffix(c.BaseURL(), "/") + hostspec.GatewayPath(spec.Name)
			if noWait {
				fmt.Fprintln(out, gateway)
				return nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Hosting MCP server %q (%d replicas); waiting for them to be ready…\n", spec.Name, spec.Replicas)
			if err := waitMCPReady(ctx, c, spec.Name, spec.Replicas, timeout, cmd.ErrOrStderr()); err != nil {
				return err
			}
			fmt.Fprintf(out, "Gateway: %s (streamable HTTP; send Authorization: Bearer <token>)\n", gateway)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&spec.Replicas, "replicas", 1, fmt.Sprintf("how many replicas run (1 to %d)", hostspec.MaxReplicas))
	fl.Float64Var(&cpus, "num-cpus", 0, "CPUs each replica holds")
	fl.Float64Var(&gpus, "num-gpus", 0, "GPUs each replica holds")
	fl.StringVar(&custom, "resources", "", `other resources each replica holds, as JSON ('{"memory_server": 1}')`)
	fl.StringArrayVar(&env, "env", nil, "KEY=VALUE for the replicas' environment (repeatable)")
	fl.StringVar(&workingDir, "working-dir", "", "directory to upload; the replicas run in it")
	fl.StringSliceVar(&excludes, "exclude", nil, "path.Match patterns to leave out of --working-dir")
	fl.StringVar(&spec.Access, "access", "write", "the scope a token needs to use the server through the gateway: read or write")
	fl.BoolVar(&noWait, "no-wait", false, "print the gateway's URL and return without waiting for the replicas")
	fl.DurationVar(&timeout, "timeout", 3*time.Minute, "how long to wait for every replica to be ready")
	return cmd
}

// waitMCPReady waits until want replicas of name are ready, printing
// their failures as they happen.
func waitMCPReady(ctx context.Context, c *apiclient.Client, name string, want int, timeout time.Duration, msgs io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	seen := map[string]bool{}
	for {
		st, err := c.MCPServer(ctx, name)
		if err != nil {
			return err
		}
		if st.Ready >= want {
			return nil
		}
		for _, r := range st.ReplicaStates {
			if r.State == hostspec.StateBackoff && r.Message != "" && !seen[r.ID+r.Message] {
				seen[r.ID+r.Message] = true
				fmt.Fprintf(msgs, "replica %d failed (restarting): %s\n", r.Index, r.Message)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d replicas of %q ready after %v (it keeps trying; raygo mcp list shows why): %w", st.Ready, want, name, timeout, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func newMCPListCmd(f *apiFlags) *cobra.Command {
	var detail bool
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the hosted MCP servers and their replicas",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return usageErrorf("--format %q: want table or json", format)
			}
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			list, err := c.MCPServers(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(out, "No hosted MCP servers (raygo mcp host NAME -- COMMAND hosts one).")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tREADY\tACCESS\tGATEWAY\tCOMMAND")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%s\n", s.Name, s.Ready, s.Replicas, s.Access, strings.TrimSuffix(c.BaseURL(), "/")+s.Gateway, shellJoin(s.Command))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if !detail {
				return nil
			}
			for _, s := range list {
				fmt.Fprintf(out, "\n%s:\n", s.Name)
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  REPLICA\tID\tSTATE\tNODE\tPID\tRESTARTS\tSESSIONS\tSINCE\tMESSAGE")
				for _, r := range s.ReplicaStates {
					fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.Index, r.ID, r.State, ids.ShortString(r.NodeID), r.Pid,
						r.Restarts, r.Sessions, time.Since(r.Since).Round(time.Second), r.Message)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&detail, "detail", "d", false, "also list each server's replicas")
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	return cmd
}

func newMCPStopCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stop NAME",
		Short: "Stop a hosted MCP server's replicas and forget it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			if err := c.StopMCPServer(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Stopped hosted MCP server %q.\n", args[0])
			return nil
		},
	}
}

func newMCPLogsCmd(f *apiFlags) *cobra.Command {
	var (
		replica string
		tail    int
		follow  bool
	)
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print the stderr logs of a hosted MCP server's replicas",
		Long: `Print the last --tail lines of the stderr log of each of NAME's current
replicas, or of one (--replica: its index or id), following it with --follow.
The logs of replicas it replaced stay on their nodes: raygo logs 'mcp-NAME-*'
lists them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tail < -1 || tail == 0 {
				return usageErrorf("--tail %d: want a number of lines, or -1 for the whole file", tail)
			}
			if follow && replica == "" {
				return usageErrorf("--follow needs --replica: one log at a time")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c, err := f.client(ctx)
			if err != nil {
				return err
			}
			st, err := c.MCPServer(ctx, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			found := false
			for _, r := range st.ReplicaStates {
				if replica != "" && replica != strconv.Itoa(r.Index) && replica != r.ID {
					continue
				}
				found = true
				if r.LogFile == "" {
					fmt.Fprintf(out, "== replica %d: not started yet (%s)\n", r.Index, r.Message)
					continue
				}
				if replica == "" {
					fmt.Fprintf(out, "== replica %d (%s) on node %s: %s\n", r.Index, r.ID, ids.ShortString(r.NodeID), r.LogFile)
				}
				q := apiclient.LogQuery{NodeID: r.NodeID, Filename: r.LogFile, Lines: int64(max(tail, 0)), Follow: follow}
				if err := printLog(ctx, c, q, out); err != nil {
					return err
				}
			}
			if !found {
				return usageErrorf("%q has no replica %q (its replicas: 0 to %d, or their ids from raygo mcp list --detail)", args[0], replica, len(st.ReplicaStates)-1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&replica, "replica", "", "one replica: its index (0, 1, …) or id")
	cmd.Flags().IntVar(&tail, "tail", defaultTail, "print the last this many lines (-1: the whole file)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what is appended, until interrupted")
	return cmd
}
