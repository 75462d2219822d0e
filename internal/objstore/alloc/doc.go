// Package alloc places objects inside a node's shared-memory region.
//
// An Allocator manages the offsets of a region [0, size): it never reads or
// writes the memory itself, so the same allocator serves a mapped file, a
// shared-memory segment or a test that has no memory at all. It plays the
// part dlmalloc plays in Ray's plasma store, with the bookkeeping kept in the
// Go heap instead of in headers inside the region.
//
// # Algorithm
//
// The region is always tiled exactly by blocks, each either live (handed out
// by Alloc) or free. Every block is recorded in a map keyed by its start
// offset and linked to its neighbours by address, so Free finds its block in
// O(1) and merges it with free neighbours on both sides at once (immediate
// coalescing): two free blocks are never adjacent. Free blocks are also kept
// in a treap ordered by (size, offset). Alloc rounds the request up to the
// alignment and takes the best fit, the smallest free block that is large
// enough and, among blocks of that size, the one at the lowest offset; it
// splits off the unused tail of that block as a new free block.
//
// # Complexity
//
// For n blocks (live and free), Alloc and Free take O(log n) expected time
// (one or two treap updates plus O(1) map operations), LargestFree takes
// O(log n) expected time, and BlockSize takes O(1). Memory is one small
// record per block.
//
// # Fragmentation
//
// Best fit with immediate coalescing is among the policies with the lowest
// fragmentation in measured workloads (Johnstone and Wilson, "The Memory
// Fragmentation Problem: Solved?", 1998): small requests fill small holes
// instead of carving up large ones, and freed space rejoins its neighbours at
// once. Preferring the lowest offset among equal sizes packs live blocks
// towards the start of the region.
//
// Fragmentation is not zero, and since the allocator never moves live blocks
// it cannot be: blocks freed in random order leave holes between survivors.
// The package's random workload (Pareto sizes with shape 0.5 from 64 B to a
// quarter of the region, blocks freed in random order) is close to the worst
// case. There, around 80% occupancy, the free bytes are spread over hundreds
// of holes and the largest holds only 10-20% of them (1 - LargestFree/Free
// averages 0.82-0.87 and reaches 0.965), yet fewer than 0.5% of allocations
// fail while enough bytes are free in total, and those are all large
// requests (none below about 0.4% of the region). Address-ordered first fit
// does no better on the same workload. Stats reports LargestFree next to
// Free so that callers can see fragmentation; a caller that must place an
// object larger than LargestFree has to free or spill other objects first.
//
// # Concurrency
//
// An Allocator is not safe for concurrent use; the object store calls it
// while holding its own mutex.
package alloc
