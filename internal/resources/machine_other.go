//go:build !linux && !darwin

package resources

// machineMemory: unknown here (no node runs on these platforms).
func machineMemory() int64 { return 0 }
