package memmonitor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// ProcMem is one process's resident memory, in bytes, from the VmRSS,
// RssAnon, RssFile and RssShmem lines of /proc/<pid>/status.
type ProcMem struct {
	PID int
	// RSS is the whole resident set: Anon + File + Shmem.
	RSS int64
	// Anon is private memory (heap, stacks): what killing the process gives
	// back for sure.
	Anon int64
	// File is resident file-backed pages (binaries, mapped files).
	File int64
	// Shmem is resident shared memory (tmpfs, shared mappings, the object
	// store's arena), which outlives the process.
	Shmem int64
}

// ReadProc reads the memory of process pid under root ("/" in
// production; "" means "/"). Fields whose line is missing are zero: a
// zombie has none of them, and kernels before 4.5 lack the Rss* lines.
// The error wraps fs.ErrNotExist when there is no such process, and
// ErrMalformed, naming the file, when a line does not parse.
func ReadProc(root string, pid int) (ProcMem, error) {
	if root == "" {
		root = "/"
	}
	p := filepath.Join(root, "proc", strconv.Itoa(pid), "status")
	data, err := os.ReadFile(p)
	if err != nil {
		return ProcMem{}, fmt.Errorf("memmonitor: %w", err)
	}
	vals, err := parseKB(data, "VmRSS", "RssAnon", "RssFile", "RssShmem")
	if err != nil {
		return ProcMem{}, malformed(p, "%v", err)
	}
	return ProcMem{
		PID:   pid,
		RSS:   vals["VmRSS"],
		Anon:  vals["RssAnon"],
		File:  vals["RssFile"],
		Shmem: vals["RssShmem"],
	}, nil
}
