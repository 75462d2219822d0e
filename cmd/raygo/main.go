// Command raygo starts, inspects and stops raygo clusters.
//
// See internal/cli for the subcommands, or run `raygo --help`.
package main

import (
	"os"

	"github.com/raygo/raygo/internal/cli"
)

func main() { os.Exit(cli.Execute()) }
