// Command raygo starts, inspects and stops raygo clusters, and runs the
// microbenchmarks.
//
// See internal/cli for the subcommands, or run `raygo --help`.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/raygo/raygo/internal/cli"
	"github.com/raygo/raygo/ray"
)

func main() {
	// raygo is also the worker binary of the jobs it drives (`raygo
	// microbenchmark`): a node daemon starts it with RAYGO_WORKER=1, and
	// then Init serves tasks and never returns.
	if ray.IsWorker() {
		err := ray.Init(context.Background())
		fmt.Fprintln(os.Stderr, "raygo worker:", err)
		os.Exit(1)
	}
	os.Exit(cli.Execute())
}
