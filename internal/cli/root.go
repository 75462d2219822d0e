// Package cli implements the raygo command line, one file per subcommand:
//
//	raygo start --head [--port 6380] [--num-cpus 8] [--resources '{"TPU": 4}']
//	raygo start --address HOST:PORT [--num-gpus 2]
//	raygo status [--address HOST:PORT] [--token T]
//	raygo stop [--force]
//	raygo microbenchmark [--filter REGEX] [--duration 2s] [--json FILE] [--address A] [--clients N]
//	raygo version
//
// `raygo start` runs a node in a detached background process (or in the
// foreground with --block) and records it in the session directory (see
// internal/session): the cluster address, the cluster token (mode 0600), and
// the pids that `raygo stop` signals. Drivers and the CLI on the same machine
// find the address and token through the session_latest link.
//
// Errors are printed as "raygo: <message>" on stderr; Execute returns 1 for
// them and 2 for usage errors (unknown commands or flags, bad flag values).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Version is raygo's version string, set at link time:
//
//	go build -ldflags "-X github.com/raygo/raygo/internal/cli.Version=v0.1.0" ./cmd/raygo
var Version = "dev"

// Environment variables read by the CLI. They match the ones ray.Init reads.
const (
	envAddress = "RAYGO_ADDRESS"
	envToken   = "RAYGO_TOKEN"
)

// Execute runs the raygo command line on os.Args and returns the process's
// exit code: 0 on success, 1 on failure, 2 on a usage error.
func Execute() int {
	return run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
}

// run executes one command line with the given output streams and returns
// the exit code, printing any error to stderr as "raygo: <message>".
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "raygo: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return 2
	}
	return 1
}

// newRootCmd builds the command tree.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "raygo",
		Short: "Start, inspect and stop raygo clusters",
		Long: `raygo runs Go functions and actors across a cluster of machines.

Start a head node with 'raygo start --head', add nodes with
'raygo start --address HOST:PORT', and point programs at the cluster with
RAYGO_ADDRESS=HOST:PORT.`,
		Version:       Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Args and RunE are set so that an unknown subcommand reaches RunE
		// and becomes a usage error instead of printing help and exiting 0.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
			}
			return usageErrorf("%s", msg)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{err}
	})
	root.SuggestionsMinimumDistance = 2
	root.CompletionOptions.HiddenDefaultCmd = true
	root.AddCommand(newStartCmd(), newStopCmd(), newStatusCmd(), newMemoryCmd(), newMicrobenchmarkCmd(), newTestbedCmd(), newVersionCmd(), newTokenCmd(), newTimelineCmd(), newListCmd(), newGetCmd(), newSummaryCmd(), newJobCmd(), newLogsCmd(), newMCPCmd(), newServeCmd())
	return root
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %s", cmd.CommandPath(), strings.Join(args, " "))
	}
	return nil
}

// exactArgs wants n positional arguments, named what for the error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s, got %d argument(s)", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

// changed reports whether the flag name was given on the command line.
func changed(fs *pflag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	return f != nil && f.Changed
}
