package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/runtimeenv"
)

// newJobCmd builds `raygo job`: Ray's job CLI (submit, status, logs,
// stop, list, delete) over the head's HTTP API (docs/jobs.md).
func newJobCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Submit, follow and stop jobs",
		Long: `Jobs run an entrypoint (a shell command, usually a program that calls
ray.Init) on a node of the cluster that has the entrypoint's resources, in
a runtime environment: environment variables and a working directory
uploaded from here. Their output goes to a log on that node, kept after
they end.`,
		Example: `  raygo job submit --working-dir ./app --env MODE=prod -- ./app/train --epochs 3
  raygo job submit --no-wait -- python3 -c 'print(1)'
  raygo job list
  raygo job status raysubmit_Xy12…
  raygo job logs raysubmit_Xy12… --follow
  raygo job stop raysubmit_Xy12…
  raygo job delete raysubmit_Xy12…`,
		Args: noArgs,
	}
	f.add(cmd.PersistentFlags())
	cmd.AddCommand(newJobSubmitCmd(&f), newJobStatusCmd(&f), newJobLogsCmd(&f), newJobStopCmd(&f), newJobListCmd(&f), newJobDeleteCmd(&f))
	return cmd
}

// submitFlags are `raygo job submit`'s flags.
type submitFlags struct {
	workingDir string
	excludes   []string
	env        []string
	id         string
	metadata   []string
	cpus, gpus float64
	resources  string
	noWait     bool
}

func newJobSubmitCmd(f *apiFlags) *cobra.Command {
	var s submitFlags
	cmd := &cobra.Command{
		Use:   "submit [flags] -- ENTRYPOINT [ARGS…]",
		Short: "Submit a job and follow its logs until it ends",
		Long: `Submit a job: its entrypoint (the words after --, run by /bin/sh -c on a
node) in a runtime environment. --working-dir is packed into a zip (at most
100 MiB; --exclude leaves paths out) and uploaded unless the head has it; the
entrypoint and the job's workers start in it. Without --no-wait, follow the
job's log until it ends and exit non-zero unless it SUCCEEDED.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runJobSubmit(cmd, f, s, args)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&s.workingDir, "working-dir", "", "directory to upload; the entrypoint and the job's workers run in it")
	fs.StringSliceVar(&s.excludes, "exclude", nil, "path.Match patterns to leave out of --working-dir (relative paths or base names; \"dir/\" for directories)")
	fs.StringArrayVar(&s.env, "env", nil, "environment variable KEY=VALUE for the entrypoint and the job's workers (repeatable)")
	fs.StringVar(&s.id, "submission-id", "", "the submission's id (default: raysubmit_ and random letters)")
	fs.StringArrayVar(&s.metadata, "metadata", nil, "metadata KEY=VALUE kept with the job (repeatable)")
	fs.Float64Var(&s.cpus, "entrypoint-num-cpus", 0, "CPUs the entrypoint holds while it runs")
	fs.Float64Var(&s.gpus, "entrypoint-num-gpus", 0, "GPUs the entrypoint holds while it runs")
	fs.StringVar(&s.resources, "entrypoint-resources", "", `custom resources the entrypoint holds, as JSON ({"accel": 1})`)
	fs.BoolVar(&s.noWait, "no-wait", false, "print the submission id and return without following the job")
	return cmd
}

// parsePairs reads KEY=VALUE flags.
func parsePairs(flag string, list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--%s %q: want KEY=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

func runJobSubmit(cmd *cobra.Command, f *apiFlags, s submitFlags, args []string) error {
	ctx := cmd.Context()
	env, err := parsePairs("env", s.env)
	if err != nil {
		return err
	}
	meta, err := parsePairs("metadata", s.metadata)
	if err != nil {
		return err
	}
	var custom map[string]float64
	if s.resources != "" {
		set, err := resources.ParseJSON(s.resources)
		if err != nil {
			return usageErrorf("--entrypoint-resources: %v", err)
		}
		custom = set
	}
	if s.cpus < 0 || s.gpus < 0 {
		return usageErrorf("--entrypoint-num-cpus and --entrypoint-num-gpus: want 0 or more")
	}
	c, err := f.client(ctx)
	if err != nil {
		return err
	}
	req := apiclient.JobSubmitRequest{Entrypoint: shellJoin(args), SubmissionID: s.id, Metadata: meta,
		EntrypointNumCPUs: s.cpus, EntrypointNumGPUs: s.gpus, EntrypointResources: custom}
	if s.workingDir != "" || len(env) > 0 {
		req.RuntimeEnv = &apiclient.JobRuntimeEnv{EnvVars: env}
	}
	if s.workingDir != "" {
		name, err := uploadDir(ctx, c, s.workingDir, s.excludes, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		req.RuntimeEnv.WorkingDir = name
	}
	id, err := c.SubmitJob(ctx, req)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if s.noWait {
		fmt.Fprintln(out, id)
		return nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Job '%s' submitted; following its logs (Ctrl-C stops following, not the job):\n", id)
	return followJob(ctx, c, id, out)
}

// uploadDir packs dir and uploads it unless the head has it; it returns
// the package's name.
func uploadDir(ctx context.Context, c *apiclient.Client, dir string, excludes []string, msgs io.Writer) (string, error) {
	pkg, err := runtimeenv.Package(dir, runtimeenv.PackOptions{Excludes: excludes})
	if err != nil {
		return "", err
	}
	has, err := c.HasPackage(ctx, pkg.Name)
	if err != nil {
		return "", err
	}
	if has {
		return pkg.Name, nil
	}
	bar := runtimeenv.NewProgress(int64(len(pkg.Data)), "upload "+dir)
	err = c.UploadPackage(ctx, pkg.Name, pkg.Data, bar.Reader)
	bar.Done()
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", dir, err)
	}
	return pkg.Name, nil
}

// followJob copies the job's log until it ends and returns an error
// unless it SUCCEEDED.
func followJob(ctx context.Context, c *apiclient.Client, id string, out io.Writer) error {
	if err := c.TailJobLogs(ctx, id, out); err != nil {
		return err
	}
	// The tail ends when the job does; its state may lag the end of the
	// log by a moment.
	for {
		d, err := c.GetJob(ctx, id)
		if err != nil {
			return err
		}
		if d.Terminal() {
			if d.Status != "SUCCEEDED" {
				return fmt.Errorf("job '%s' %s: %s", id, d.Status, d.Message)
			}
			fmt.Fprintf(os.Stderr, "Job '%s' succeeded.\n", id)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// shellJoin quotes args for /bin/sh -c, leaving plain words as they are.
func shellJoin(args []string) string {
	if len(args) == 1 {
		return args[0] // one word: a command line as the user wrote it ("python a.py | tee x")
	}
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

func newJobStatusCmd(f *apiFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status SUBMISSION_ID",
		Short: "Show a job's status",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			d, err := c.GetJob(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(d)
			}
			fmt.Fprintf(out, "Status for job '%s': %s\nStatus message: %s\n", d.SubmissionID, d.Status, d.Message)
			if d.DriverExitCode != nil {
				fmt.Fprintf(out, "Exit code: %d\n", *d.DriverExitCode)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the job's details as JSON")
	return cmd
}

func newJobLogsCmd(f *apiFlags) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs SUBMISSION_ID",
		Short: "Print a job's log",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			if follow {
				return c.TailJobLogs(cmd.Context(), args[0], cmd.OutOrStdout())
			}
			logs, err := c.JobLogs(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), logs)
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the job ends")
	return cmd
}

func newJobStopCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stop SUBMISSION_ID",
		Short: "Stop a job (SIGTERM to its entrypoint, SIGKILL 3 s later)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			stopped, err := c.StopJob(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if stopped {
				fmt.Fprintf(cmd.OutOrStdout(), "Job '%s' is being stopped.\n", args[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Job '%s' had ended already.\n", args[0])
			}
			return nil
		},
	}
}

func newJobDeleteCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete SUBMISSION_ID",
		Short: "Delete an ended job's record",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			if err := c.DeleteJob(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Job '%s' deleted.\n", args[0])
			return nil
		},
	}
}

func newJobListCmd(f *apiFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the jobs, newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			list, err := c.ListJobs(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SUBMISSION_ID\tSTATUS\tSTART\tEXIT\tENTRYPOINT")
			for _, d := range list {
				exit := "-"
				if d.DriverExitCode != nil {
					exit = strconv.Itoa(int(*d.DriverExitCode))
				}
				ep := d.Entrypoint
				if len(ep) > 60 {
					ep = ep[:57] + "..."
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.SubmissionID, d.Status, time.UnixMilli(d.StartTime).Format("2006-01-02 15:04:05"), exit, ep)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the jobs as JSON")
	return cmd
}
