package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newVersionCmd builds `raygo version`, which prints Version.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print raygo's version",
		Args:  noArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), Version)
		},
	}
}
