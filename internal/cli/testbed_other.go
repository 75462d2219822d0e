//go:build !(linux || darwin)

package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// newTestbedCmd on platforms without the simulated hosts says so.
func newTestbedCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "testbed",
		Short: "Simulate separate hosts on this machine (linux and darwin only)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("testbed: simulated hosts need linux or darwin")
		},
	}
}
