package resources

// machineMemory: Linux's figure comes from /proc/meminfo (see Detect).
func machineMemory() int64 { return 0 }
