package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/raygo/raygo/internal/mcpserver"
)

// newMCPCmd is `raygo mcp`: raygo as a stdio MCP server, and (mcphost.go)
// the subcommands that host MCP servers on the cluster.
func newMCPCmd() *cobra.Command {
	var (
		f      apiFlags
		mutate bool
	)
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve raygo over MCP (stdio); host MCP servers on the cluster",
		Long: `Serve raygo to an AI agent over MCP on stdin and stdout: tools to see the
cluster's nodes, actors, tasks, objects, jobs and placement groups, read job
logs and metrics, and (with --allow-mutations and a write token) submit, stop
and delete jobs and kill actors. Nothing but the protocol is written to
stdout; logs go to stderr. docs/mcp.md has the tools and an agent's config.

The cluster's HTTP API is --address (http://HOST:PORT), else $` + envAPIAddress + `,
else the cluster's (as for ` + "`raygo job`" + `); the token is --token, else $` + envToken + `,
else the local session's. Every tool acts with that token: a read token can
only read, and the head's audit log names it for every change.`,
		Example: `  raygo mcp --address http://127.0.0.1:8265 --token "$(raygo token)"
  raygo mcp --allow-mutations`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := f.client(ctx)
			if err != nil {
				return err
			}
			defer c.CloseIdle()
			srv, err := mcpserver.New(mcpserver.Config{Client: mcpserver.FixedClient(c), AllowMutations: mutate,
				Version: Version, Transport: "stdio"})
			if err != nil {
				return err
			}
			slog.Info("raygo mcp: serving on stdio", "api", c.BaseURL(), "allow_mutations", mutate)
			var t mcp.Transport = &mcp.StdioTransport{}
			if in, out := cmd.InOrStdin(), cmd.OutOrStdout(); in != os.Stdin || out != os.Stdout {
				t = &mcp.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{out}}
			}
			err = srv.Run(ctx, t)
			if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
				return fmt.Errorf("mcp: %w", err)
			}
			return nil
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().BoolVar(&mutate, "allow-mutations", false, "offer the tools that change the cluster (submit_job, stop_job, delete_job, kill_actor); they still need a write token")
	addMCPHostCmds(cmd)
	return cmd
}

// nopWriteCloser is a Writer with a Close that does nothing.
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
