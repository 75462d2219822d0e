package alloc_test

import (
	"fmt"

	"github.com/raygo/raygo/internal/objstore/alloc"
)

func Example() {
	// A 1 MiB region with 64-byte alignment.
	a, err := alloc.New(1<<20, 64)
	if err != nil {
		panic(err)
	}

	x, _ := a.Alloc(1000) // rounded up to 1024
	y, _ := a.Alloc(100)  // rounded up to 128
	size, _ := a.BlockSize(x)
	fmt.Println(x, y, size)

	// The store checks LargestFree before deciding to spill.
	fmt.Println(a.LargestFree() >= 512<<10)

	if err := a.Free(x); err != nil {
		panic(err)
	}
	fmt.Println(a.Free(x)) // a double free is reported, and changes nothing

	// A freed block is reused by the next request it fits best.
	z, _ := a.Alloc(512)
	fmt.Println(z)

	_ = a.Free(y)
	_ = a.Free(z)
	fmt.Printf("%+v\n", a.Stats())
	// Output:
	// 0 1024 1024
	// true
	// alloc: free at offset 0: double free: block [0, 1024) is already free
	// 0
	// {Capacity:1048576 Used:0 Free:1048576 Blocks:0 FreeBlocks:1 LargestFree:1048576}
}
