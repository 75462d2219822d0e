package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/raygo/raygo/internal/timeline"
)

// newTimelineCmd builds `raygo timeline`: the cluster's task timeline as
// a Chrome trace file (GET /api/v0/timeline).
func newTimelineCmd() *cobra.Command {
	var (
		f     apiFlags
		job   string
		out   string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "timeline",
		Short: "Write the cluster's task timeline as a Chrome trace (Perfetto, chrome://tracing)",
		Long: `Write the task timeline the head keeps (docs/taskevents.md) as Chrome Trace
Event JSON, as Ray's "ray timeline" does: one process row per node, one thread
row per worker, one span per task attempt from RUNNING to its end. Open the
file in https://ui.perfetto.dev or chrome://tracing.

The head keeps the events of its newest attempts (raygo start --head
--task-events-max, default 100,000); the timeline has the newest --limit of
those that ran.`,
		Example: `  raygo timeline
  raygo timeline --job 5f0c0a0e3b2d4c6e0000000000000000 -o job.json
  raygo timeline -o - | jq length`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > timeline.MaxSpans {
				return usageErrorf("--limit must be between 1 and %d, got %d", timeline.MaxSpans, limit)
			}
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			if out == "-" {
				_, err := c.Timeline(cmd.Context(), job, limit, cmd.OutOrStdout())
				return err
			}
			if out == "" {
				out = filepath.Join(os.TempDir(), "raygo-timeline-"+time.Now().Format("2006-01-02_15-04-05")+".json")
			}
			// Written beside the target and renamed, so a failed download
			// leaves no truncated trace behind.
			tmp, err := os.CreateTemp(filepath.Dir(out), ".raygo-timeline-*")
			if err != nil {
				return err
			}
			n, err := c.Timeline(cmd.Context(), job, limit, tmp)
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(tmp.Name(), out)
			}
			if err != nil {
				os.Remove(tmp.Name())
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Trace file written to %s (%d bytes); open it in https://ui.perfetto.dev or chrome://tracing\n", out, n)
			return nil
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().StringVar(&job, "job", "", "only this job's tasks (its `ID`, hex)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "`FILE` to write (default: raygo-timeline-<time>.json in the temporary directory; - for stdout)")
	cmd.Flags().IntVar(&limit, "limit", timeline.DefaultSpans, "at most this many task attempts, the newest")
	return cmd
}
