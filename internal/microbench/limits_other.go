//go:build !unix

package microbench

// openFileLimit: no per-process limit on open files that raygo reads here.
func openFileLimit() (int, bool) { return 0, false }
