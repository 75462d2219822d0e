package memmonitor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// procStatus is a /proc/<pid>/status of a worker (kernel 6.x).
const procStatus = `Name:	raygo-worker
Umask:	0022
State:	S (sleeping)
Tgid:	4242
Ngid:	0
Pid:	4242
PPid:	4200
TracerPid:	0
Uid:	1000	1000	1000	1000
Gid:	1000	1000	1000	1000
FDSize:	64
Groups:	4 24 27 1000
NStgid:	4242
NSpid:	4242
NSpgid:	4200
NSsid:	4200
Kthread:	0
VmPeak:	 2464416 kB
VmSize:	 2398880 kB
VmLck:	       0 kB
VmPin:	       0 kB
VmHWM:	 1153436 kB
VmRSS:	 1124764 kB
RssAnon:	 1048576 kB
RssFile:	   61440 kB
RssShmem:	   14748 kB
VmData:	 1180232 kB
VmStk:	     132 kB
VmExe:	    5140 kB
VmLib:	    1528 kB
VmPTE:	    2380 kB
VmSwap:	       0 kB
HugetlbPages:	       0 kB
CoreDumping:	0
THP_enabled:	1
Threads:	12
SigQ:	0/96364
SigPnd:	0000000000000000
ShdPnd:	0000000000000000
SigBlk:	0000000000000000
SigIgn:	0000000000000000
SigCgt:	fffffffd7fc1feff
CapInh:	0000000000000000
CapPrm:	0000000000000000
CapEff:	0000000000000000
CapBnd:	000001ffffffffff
CapAmb:	0000000000000000
NoNewPrivs:	0
Seccomp:	0
Cpus_allowed:	3
Cpus_allowed_list:	0-1
Mems_allowed_list:	0
voluntary_ctxt_switches:	1532
nonvoluntary_ctxt_switches:	17
`

func TestReadProcFake(t *testing.T) {
	root := fakeRoot(t, map[string]string{"proc/4242/status": procStatus})
	got, err := ReadProc(root, 4242)
	if err != nil {
		t.Fatal(err)
	}
	want := ProcMem{PID: 4242, RSS: 1124764 << 10, Anon: 1048576 << 10, File: 61440 << 10, Shmem: 14748 << 10}
	if got != want {
		t.Errorf("ReadProc = %+v, want %+v", got, want)
	}
	if got.RSS != got.Anon+got.File+got.Shmem {
		t.Errorf("RSS %d != Anon+File+Shmem %d", got.RSS, got.Anon+got.File+got.Shmem)
	}
}

func TestReadProcZombie(t *testing.T) {
	// A zombie's status stops before the Vm lines.
	zombie := procStatus[:strings.Index(procStatus, "VmPeak:")]
	root := fakeRoot(t, map[string]string{"proc/4242/status": zombie})
	got, err := ReadProc(root, 4242)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ProcMem{PID: 4242}); got != want {
		t.Errorf("ReadProc = %+v, want %+v", got, want)
	}
}

func TestReadProcErrors(t *testing.T) {
	root := fakeRoot(t, map[string]string{
		"proc/4242/status": strings.Replace(procStatus, "RssAnon:	 1048576 kB", "RssAnon:	 lots kB", 1),
	})
	_, err := ReadProc(root, 4242)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), filepath.Join(root, "proc/4242/status")) {
		t.Errorf("ReadProc of a garbled file: %v, want ErrMalformed naming the file", err)
	}
	_, err = ReadProc(root, 7)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadProc of no process: %v, want fs.ErrNotExist", err)
	}
}

func TestReadProcSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads Linux's /proc")
	}
	got, err := ReadProc("/", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ReadProc(self) = %+v", got)
	if got.PID != os.Getpid() || got.RSS <= 0 || got.Anon <= 0 || got.RSS < got.Anon+got.File {
		t.Errorf("ReadProc(self) = %+v, want PID %d and 0 < Anon <= Anon+File <= RSS", got, os.Getpid())
	}
}

func FuzzParseKB(f *testing.F) {
	f.Add([]byte(meminfo))
	f.Add([]byte(procStatus))
	f.Add([]byte("MemTotal: 99999999999999999999 kB\n"))
	f.Add([]byte("MemTotal:\nMemAvailable: 1 2 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := parseKB(data, "MemTotal", "MemAvailable", "VmRSS")
		if err != nil {
			return
		}
		for k, v := range vals {
			if v < 0 {
				t.Errorf("%s = %d < 0", k, v)
			}
		}
	})
}
