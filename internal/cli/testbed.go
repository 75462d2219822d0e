//go:build linux || darwin

package cli

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/raygo/raygo/internal/testcluster"
)

// newTestbedCmd builds `raygo testbed`: the simulated hosts multi-host
// tests run on, for trying a cluster across them by hand.
func newTestbedCmd() *cobra.Command {
	var (
		hosts    int
		loopback bool
	)
	cmd := &cobra.Command{
		Use:   "testbed",
		Short: "Simulate separate hosts on this machine (for debugging multi-host clusters)",
		Long: `Make --hosts simulated hosts, print their addresses and how to run a
command on each, and keep them until interrupted; then delete them.

As root on Linux each host is a network namespace behind a bridge, with
its own 127.x address, interfaces and abstract sockets; elsewhere (or with
--loopback) each host is a 127.x address of this machine, and processes
must be told to take no same-machine shortcuts. 'raygo testbed clean'
deletes what an interrupted testbed left. The tests use the same code
(internal/testcluster, docs/testing.md).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if hosts < 1 || hosts > testcluster.MaxHosts {
				return usageErrorf("--hosts %d: want 1 to %d", hosts, testcluster.MaxHosts)
			}
			mode := testcluster.Mode("")
			if loopback {
				mode = testcluster.Loopback
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runTestbed(ctx, mode, hosts, cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVar(&hosts, "hosts", 3, "how many hosts")
	cmd.Flags().BoolVar(&loopback, "loopback", false, "use 127.x addresses of this machine even where namespaces are available")
	cmd.AddCommand(&cobra.Command{
		Use:   "clean",
		Short: "Delete the namespaces and bridges of testbeds whose process died",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := testcluster.CleanStale()
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d\n", n)
			return err
		},
	})
	return cmd
}

// runTestbed makes the hosts, prints them and waits for ctx.
func runTestbed(ctx context.Context, mode testcluster.Mode, n int, out io.Writer) (err error) {
	bed, err := testcluster.New(mode)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := bed.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	for i := range n {
		if _, err := bed.AddHost(fmt.Sprintf("host%d", i+1)); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "testbed: %d hosts (%s); this machine is %s on it\n", n, bed.Mode(), bed.RootIP())
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDRESS\tRUN A COMMAND THERE")
	for _, h := range bed.Hosts() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", h.Name, h.IP, strings.Join(h.Command("COMMAND").Args, " "))
	}
	_ = tw.Flush()
	fmt.Fprintln(out, "Interrupt (Ctrl-C) to delete them.")
	<-ctx.Done()
	return nil
}
