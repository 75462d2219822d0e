package ray

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"
)

// EnvWorkerCPUProfile, set to "DIR" or "DIR,DURATION" (default 10s),
// makes every worker process of the job write a CPU profile of its first
// DURATION to DIR/worker-PID.prof (go tool pprof reads it): the worker
// side of a benchmark, which a driver's own profile does not show.
const EnvWorkerCPUProfile = "RAYGO_WORKER_CPUPROFILE"

// profileWorker starts the CPU profile EnvWorkerCPUProfile asks for, if
// any; it stops by itself after its duration.
func profileWorker() {
	v := os.Getenv(EnvWorkerCPUProfile)
	if v == "" {
		return
	}
	dir, dur := v, 10*time.Second
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		d, err := time.ParseDuration(v[i+1:])
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "raygo worker: %s=%q: want DIR or DIR,DURATION\n", EnvWorkerCPUProfile, v)
			return
		}
		dir, dur = v[:i], d
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("worker-%d.prof", os.Getpid())))
	if err != nil {
		fmt.Fprintln(os.Stderr, "raygo worker: CPU profile:", err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "raygo worker: CPU profile:", err)
		f.Close()
		return
	}
	time.AfterFunc(dur, func() { // the process's: it ends with the profile
		pprof.StopCPUProfile()
		f.Close()
	})
}
