package resources_test

import (
	"fmt"

	"github.com/raygo/raygo/internal/resources"
)

func ExampleNodeResources() {
	n := resources.NewNodeResources(resources.Set{resources.CPU: 8, resources.GPU: 2, resources.Memory: 16 << 30}, nil)
	a, _ := n.Allocate(resources.Set{resources.CPU: 1, resources.GPU: 0.5})
	b, _ := n.Allocate(resources.Set{resources.GPU: 0.5})
	c, _ := n.Allocate(resources.Set{resources.GPU: 1})
	fmt.Println(a.GPUIDs, b.GPUIDs, c.GPUIDs)
	fmt.Println(n.Available())
	_ = n.Release(a)
	fmt.Println(n.Release(a))
	// Output:
	// [0] [0] [1]
	// {CPU: 7, GPU: 0, memory: 16.0GiB}
	// resources: allocation not held
}
