package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// newTokenCmd builds `raygo token`: print the cluster token; list, create,
// rotate and revoke named API tokens.
func newTokenCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print the cluster token; manage API tokens",
		Long: `With no subcommand, print the cluster token of the local cluster (or of
--address): it may do anything, on every endpoint.

For people and programs that should not, make named API tokens for the HTTP
API, the dashboard, metrics and MCP: scope read (look) or write (also submit
and stop jobs, kill actors). Their secrets are shown once, kept hashed by the
head (in its storage, when it has one), and may be rotated (a new secret; the
old one stops working at once, and so do dashboard sessions made with it) or
revoked. Managing tokens needs the cluster token. Every change is in the
audit log (<session>/logs/audit.log on the head).`,
		Example: `  raygo token
  raygo token create ci --scope write
  raygo token create grafana --scope read
  raygo token rotate ci
  raygo token revoke ci`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := resolveCluster(addressOnly(f.address), f.token)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.token)
			return nil
		},
	}
	f.add(cmd.PersistentFlags())
	list := &cobra.Command{
		Use:   "list",
		Short: "List the named API tokens",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			toks, err := c.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSCOPE\tCREATED")
			for _, t := range toks {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, t.Scope, t.Created.Format("2006-01-02 15:04:05Z"))
			}
			return tw.Flush()
		},
	}
	var scope string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Make a named API token and print its secret (shown once)",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), args[0], scope)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&scope, "scope", "read", "read (look only) or write (also submit and stop jobs, kill actors)")
	rotate := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Give a named token a new secret and print it; the old one stops working",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			t, err := c.RotateToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.Secret)
			return nil
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Delete a named token",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			return c.RevokeToken(cmd.Context(), args[0])
		},
	}
	cmd.AddCommand(list, create, rotate, revoke)
	return cmd
}

// addressOnly drops an http:// API address, which names no control store.
func addressOnly(a string) string {
	if isAPIURL(a) {
		return ""
	}
	return a
}
