package scheduler_test

import (
	"fmt"

	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
)

func ExamplePick() {
	nodes := []scheduler.Node{
		{ID: "head", Alive: true, Total: resources.Set{"CPU": 4}, Available: resources.Set{"CPU": 1}},
		{ID: "worker", Alive: true, Total: resources.Set{"CPU": 8, "GPU": 1}, Available: resources.Set{"CPU": 8, "GPU": 1}},
	}
	cfg := scheduler.DefaultConfig()
	for _, req := range []resources.Set{{"CPU": 1}, {"GPU": 1}, {"GPU": 2}} {
		fmt.Println(req, scheduler.Pick(nodes, "head", scheduler.Request{Resources: req}, cfg, 0))
	}
	// The CPU task stays on the GPU-less head, which still has room,
	// rather than taking space on the GPU node.

	// Output:
	// {CPU: 1} {head Place}
	// {GPU: 1} {worker Place}
	// {GPU: 2} { Infeasible}
}
