package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/ids"
)

// defaultTail is how many lines `raygo logs` prints of a log by default
// (Ray's `ray logs --tail`).
const defaultTail = 1000

// newLogsCmd builds `raygo logs`: list the cluster's log files, or print
// (and follow) one: a file, an actor's, a task's, a worker's, a job's.
func newLogsCmd() *cobra.Command {
	var (
		f                                               apiFlags
		nodeID, actorID, taskID, workerID, submissionID string
		pid, tail                                       int
		follow, stderr                                  bool
	)
	cmd := &cobra.Command{
		Use:   "logs [GLOB]",
		Short: "List the cluster's log files, or print one (an actor's, a task's, a worker's, a job's)",
		Long: `Without a target, list the log files of every alive node (or of --node-id)
whose names match GLOB (path.Match; default all), by category; when exactly
one file matches, print it instead.

With a target, print that log: --actor-id, --task-id, --worker-id (a worker's
stdout, or with --err its stderr), --pid with --node-id, or --submission-id
(a job's entrypoint output). Ids may be abbreviated to at least 6 of their
first or last hex digits, as raygo prints them (a worker's to its last ones).
The last --tail lines are printed (default 1000; -1 for the whole file), and
with --follow what is appended after them, until interrupted.

Logs are read on their nodes through the head's HTTP API (GET /api/v0/logs,
/api/v0/logs/file). See docs/logs.md.`,
		Example: `  raygo logs
  raygo logs 'worker-*.err' --node-id 1a2b3c
  raygo logs --actor-id 9f8e7d6c5b4a --follow
  raygo logs --task-id 3c2b1a --err --tail 50
  raygo logs --submission-id raysubmit_XYZ --follow`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("%s takes at most one GLOB, got %s", cmd.CommandPath(), strings.Join(args, " "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			glob := ""
			if len(args) == 1 {
				glob = args[0]
			}
			var given []string
			for _, t := range []struct {
				flag string
				set  bool
			}{{"--actor-id", actorID != ""}, {"--task-id", taskID != ""}, {"--worker-id", workerID != ""}, {"--pid", pid != 0}, {"--submission-id", submissionID != ""}} {
				if t.set {
					given = append(given, t.flag)
				}
			}
			switch {
			case len(given) > 1:
				return usageErrorf("give only one of --actor-id, --task-id, --worker-id, --pid and --submission-id (got %s)", strings.Join(given, " and "))
			case len(given) == 1 && glob != "":
				return usageErrorf("GLOB lists files; it does not go with %s", given[0])
			case pid < 0:
				return usageErrorf("--pid %d: want a process id", pid)
			case pid > 0 && nodeID == "":
				return usageErrorf("--pid needs --node-id: process ids are per node")
			case tail < -1 || tail == 0:
				return usageErrorf("--tail %d: want a number of lines, or -1 for the whole file", tail)
			case stderr && (submissionID != "" || len(given) == 0):
				return usageErrorf("--err selects a worker's stderr: use it with --actor-id, --task-id, --worker-id or --pid")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c, err := f.client(ctx)
			if err != nil {
				return err
			}
			q := apiclient.LogQuery{NodeID: nodeID, ActorID: actorID, TaskID: taskID, WorkerID: workerID, Pid: pid,
				SubmissionID: submissionID, Err: stderr, Lines: int64(max(tail, 0)), Follow: follow}
			out := cmd.OutOrStdout()
			if len(given) == 0 {
				list, err := c.ListLogs(ctx, nodeID, glob)
				if err != nil {
					return err
				}
				if node, file, ok := onlyFile(list); ok && glob != "" {
					q.NodeID, q.Filename = node, file
					return printLog(ctx, c, q, out)
				}
				if follow {
					return usageErrorf("--follow needs one log: a target, or a GLOB that matches one file (%d match)", countFiles(list))
				}
				printLogList(out, list, glob)
				if list.PartialFailureWarning != "" {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", list.PartialFailureWarning)
				}
				return nil
			}
			return printLog(ctx, c, q, out)
		},
	}
	f.add(cmd.Flags())
	fl := cmd.Flags()
	fl.StringVar(&nodeID, "node-id", "", "the node (its id, or at least 6 of its first or last hex digits)")
	fl.StringVar(&actorID, "actor-id", "", "print the log of this actor's worker")
	fl.StringVar(&taskID, "task-id", "", "print the log of the worker that ran this task (its latest attempt)")
	fl.StringVar(&workerID, "worker-id", "", "print this worker's log")
	fl.IntVar(&pid, "pid", 0, "print the log of the worker with this process id on --node-id")
	fl.StringVar(&submissionID, "submission-id", "", "print this job submission's entrypoint output")
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing what is appended, until interrupted")
	fl.IntVar(&tail, "tail", defaultTail, "print the last this many lines (-1: the whole file)")
	fl.BoolVar(&stderr, "err", false, "a worker's stderr instead of its stdout")
	return cmd
}

// printLog copies the log q names to out, until its end (or, following,
// until ctx ends).
func printLog(ctx context.Context, c *apiclient.Client, q apiclient.LogQuery, out io.Writer) error {
	l, err := c.GetLog(ctx, q)
	if err != nil {
		return err
	}
	defer l.Body.Close()
	_, err = io.Copy(out, l.Body)
	if err != nil && ctx.Err() != nil {
		return nil // interrupted while following
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading %s on node %s: %w", l.File, ids.ShortString(l.NodeID), err)
	}
	return nil
}

// onlyFile is the single file of a listing, if it has exactly one.
func onlyFile(list *apiclient.LogList) (node, file string, ok bool) {
	if countFiles(list) != 1 {
		return "", "", false
	}
	for n, files := range list.Files {
		if len(files) == 1 {
			return n, files[0].Name, true
		}
	}
	return "", "", false
}

func countFiles(list *apiclient.LogList) int {
	n := 0
	for _, files := range list.Files {
		n += len(files)
	}
	return n
}

// printLogList prints a listing per node, by category, as `ray logs`
// does.
func printLogList(out io.Writer, list *apiclient.LogList, glob string) {
	nodes := make([]string, 0, len(list.Result))
	for n := range list.Result {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	if len(nodes) == 0 {
		fmt.Fprintln(out, "no alive nodes answered")
		return
	}
	for i, n := range nodes {
		if i > 0 {
			fmt.Fprintln(out)
		}
		fmt.Fprintf(out, "Node %s (%s):\n", ids.ShortString(n), n)
		cats := list.Result[n]
		if len(cats) == 0 {
			if glob != "" {
				fmt.Fprintf(out, "  no log files match %q\n", glob)
			} else {
				fmt.Fprintln(out, "  no log files")
			}
			continue
		}
		names := make([]string, 0, len(cats))
		for c := range cats {
			names = append(names, c)
		}
		sort.SliceStable(names, func(i, j int) bool {
			ri, rj := categoryRank(names[i]), categoryRank(names[j])
			return ri < rj || ri == rj && names[i] < names[j]
		})
		for _, c := range names {
			fmt.Fprintf(out, "  %s:\n", c)
			files := slices.Clone(cats[c])
			sort.Strings(files)
			for _, name := range files {
				fmt.Fprintf(out, "    %s\n", name)
			}
		}
	}
}

// categoryRank orders categories as Ray lists them: job drivers and
// workers first.
func categoryRank(c string) int {
	switch c {
	case "job_driver":
		return 0
	case "worker_out":
		return 1
	case "worker_err":
		return 2
	}
	return 3
}
