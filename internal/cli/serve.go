package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/serve/controller"
	"github.com/raygo/raygo/serve/config"
)

// newServeCmd is `raygo serve deploy|status|shutdown`: Serve
// applications on the cluster (internal/serve/controller, docs/serve.md).
func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Deploy Serve applications (command deployments behind every node's HTTP proxy)",
	}
	var f apiFlags
	for _, c := range []*cobra.Command{newServeDeployCmd(&f), newServeStatusCmd(&f), newServeShutdownCmd(&f)} {
		f.add(c.Flags())
		cmd.AddCommand(c)
	}
	return cmd
}

func newServeDeployCmd(f *apiFlags) *cobra.Command {
	var (
		noWait  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "deploy CONFIG.yaml",
		Short: "Apply a Serve config: start, update, roll or delete applications to match it",
		Long: `Apply CONFIG.yaml (docs/serve.md) to the cluster: applications and deployments
it adds are started, changed ones updated in place or rolled to new replicas
without dropping a request, and those it no longer has are drained and
stopped. A runtime_env.working_dir that is a local directory (relative to the
config file) is uploaded first. Then it waits until every deployment is
RUNNING, printing replica failures as they happen, and prints the URLs.`,
		Example: `  raygo serve deploy app.yaml
  raygo serve deploy app.yaml --no-wait`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("want one config file: raygo serve deploy CONFIG.yaml")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usageErrorf("%v", err)
			}
			cfg, err := config.Parse(data)
			if err != nil {
				return usageErrorf("%s: %v", args[0], err)
			}
			c, err := f.client(ctx)
			if err != nil {
				return err
			}
			if err := uploadWorkingDirs(ctx, c, cfg, filepath.Dir(args[0]), cmd.ErrOrStderr()); err != nil {
				return err
			}
			body, err := cfg.Marshal()
			if err != nil {
				return err
			}
			resp, err := c.Request(ctx, "PUT", controller.ApplicationsPath, bytes.NewReader(body), "application/yaml")
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if !noWait {
				fmt.Fprintf(cmd.ErrOrStderr(), "Deployed %s; waiting for every deployment to be RUNNING…\n", args[0])
				if err := waitServeRunning(ctx, c, timeout, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			var st controller.StatusResponse
			if err := c.Do(ctx, "GET", controller.ApplicationsPath, nil, &st); err != nil {
				return err
			}
			printServeURLs(cmd.OutOrStdout(), st)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&noWait, "no-wait", false, "return once the config is applied, without waiting for the replicas")
	fl.DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for every deployment to be RUNNING")
	return cmd
}

// uploadWorkingDirs uploads each application's local working_dir
// (relative to base) and rewrites the field to the package's name.
func uploadWorkingDirs(ctx context.Context, c *apiclient.Client, cfg *config.Config, base string, msgs io.Writer) error {
	for i := range cfg.Applications {
		env := &cfg.Applications[i].RuntimeEnv
		if env.WorkingDir == "" || strings.HasPrefix(env.WorkingDir, "sha256:") {
			continue
		}
		dir := env.WorkingDir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(base, dir)
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return usageErrorf("applications[%d].runtime_env.working_dir %q: not a directory (%v)", i, env.WorkingDir, err)
		}
		name, err := uploadDir(ctx, c, dir, nil, msgs)
		if err != nil {
			return err
		}
		env.WorkingDir = name
	}
	return nil
}

// waitServeRunning waits until every application is RUNNING, printing
// replica failures once each.
func waitServeRunning(ctx context.Context, c *apiclient.Client, timeout time.Duration, msgs io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	seen := map[string]bool{}
	for {
		var st controller.StatusResponse
		if err := c.Do(ctx, "GET", controller.ApplicationsPath, nil, &st); err != nil {
			return err
		}
		done, waiting := true, ""
		for _, a := range st.Applications {
			if a.Status != controller.StatusRunning {
				done = false
				waiting = fmt.Sprintf("application %q is %s: %s", a.Name, a.Status, a.Message)
			}
			for _, d := range a.Deployments {
				for _, r := range d.Replicas {
					if r.State == "BACKOFF" && r.Message != "" && !seen[r.ID+r.Message] {
						seen[r.ID+r.Message] = true
						fmt.Fprintf(msgs, "%s/%s replica %s failed (restarting): %s\n", a.Name, d.Name, r.ID, r.Message)
					}
				}
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not every deployment is RUNNING after %v (%s; it keeps trying: raygo serve status shows why): %w", timeout, waiting, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func printServeURLs(out io.Writer, st controller.StatusResponse) {
	if len(st.Applications) == 0 {
		fmt.Fprintln(out, "No Serve applications.")
		return
	}
	for _, a := range st.Applications {
		if len(a.URLs) == 0 {
			fmt.Fprintf(out, "%s: %s on every node's Serve proxy (raygo start --serve-port PORT)\n", a.Name, a.RoutePrefix)
			continue
		}
		for _, u := range a.URLs {
			fmt.Fprintf(out, "%s: %s\n", a.Name, u)
		}
	}
}

func newServeStatusCmd(f *apiFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the Serve applications, their deployments and replicas",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "yaml" && format != "json" {
				return usageErrorf("--format %q: want yaml or json", format)
			}
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			var st controller.StatusResponse
			if err := c.Do(cmd.Context(), "GET", controller.ApplicationsPath, nil, &st); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			enc := yaml.NewEncoder(out)
			enc.SetIndent(2)
			if err := enc.Encode(st); err != nil {
				return err
			}
			return enc.Close()
		},
	}
	cmd.Flags().StringVar(&format, "format", "yaml", "yaml or json")
	return cmd
}

func newServeShutdownCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "shutdown",
		Short: "Drain and stop every Serve application",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), "DELETE", controller.ApplicationsPath, nil, nil); err != nil {
				if apiclient.IsNotFound(err) {
					return errors.New("no Serve applications are deployed")
				}
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Serve applications shut down (their replicas drain and stop).")
			return nil
		},
	}
}
