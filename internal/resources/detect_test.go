package resources

import (
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/raygo/raygo/internal/memmonitor"
)

func TestParseNvidiaSMI(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    []GPUDevice
		wantErr bool
	}{
		{name: "none", out: ""},
		{
			name: "two H100s",
			out: "0, GPU-5d3f2a7e-1111-2222-3333-444455556666, NVIDIA H100 80GB HBM3, 81559\n" +
				"1, GPU-aaaaaaaa-1111-2222-3333-444455556666, NVIDIA H100 80GB HBM3, 81559\n\n",
			want: []GPUDevice{
				{0, "GPU-5d3f2a7e-1111-2222-3333-444455556666", "NVIDIA H100 80GB HBM3", 81559},
				{1, "GPU-aaaaaaaa-1111-2222-3333-444455556666", "NVIDIA H100 80GB HBM3", 81559},
			},
		},
		{
			name: "CRLF, N/A memory, comma in name",
			out:  "3, GPU-x, Tesla T4, rev, b, [N/A]\r\n",
			want: []GPUDevice{{3, "GPU-x", "Tesla T4, rev, b", 0}},
		},
		{name: "too few fields", out: "0, GPU-x, 1024\n", wantErr: true},
		{name: "bad index", out: "zero, GPU-x, T4, 1024\n", wantErr: true},
		{name: "bad memory", out: "0, GPU-x, T4, lots\n", wantErr: true},
		{name: "error text", out: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseNvidiaSMI(tt.out)
		if tt.wantErr {
			if !errors.Is(err, ErrNvidiaSMIOutput) {
				t.Errorf("%s: err = %v, want ErrNvidiaSMIOutput", tt.name, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestParseCgroupFiles(t *testing.T) {
	for _, tt := range []struct {
		in     string
		want   float64
		wantOK bool
	}{
		{"max 100000\n", 0, false},
		{"200000 100000\n", 2, true},
		{"50000 100000", 0.5, true},
		{"150000", 1.5, true},
		{"", 0, false},
		{"junk 100000", 0, false},
		{"100000 0", 0, false},
	} {
		got, ok := parseCPUMax(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseCPUMax(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
	for _, tt := range []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"max\n", 0, false},
		{"4294967296\n", 4 << 30, true},
		{"", 0, false},
		{"-1", 0, false},
	} {
		got, ok := parseMemoryMax(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseMemoryMax(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
	for _, tt := range []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"MemTotal:       16318540 kB\nMemFree: 1 kB\n", 16318540 * 1024, true},
		{"MemFree: 1 kB\nMemTotal: 2 kB", 2048, true},
		{"MemFree: 1 kB\n", 0, false},
		{"MemTotal: x kB\n", 0, false},
	} {
		got, ok := parseMemTotal(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseMemTotal(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestDetect(t *testing.T) {
	const meminfo = "MemTotal: 8388608 kB\n" // 8 GiB
	noSMI := func() (string, bool, error) { return "", false, nil }
	tests := []struct {
		name      string
		files     fstest.MapFS
		numCPU    int
		env       map[string]string
		smi       func() (string, bool, error)
		memory    func() int64 // the OS's figure where there is no /proc
		limit     func() (memmonitor.Limit, error)
		want      Detected
		wantWarns []string
	}{
		{
			name:   "bare machine",
			files:  fstest.MapFS{"proc/meminfo": {Data: []byte(meminfo)}},
			numCPU: 16, smi: noSMI,
			want: Detected{CPUs: 16, MemoryBytes: 8 << 30},
		},
		{
			name: "cgroup limits",
			files: fstest.MapFS{
				"proc/meminfo":             {Data: []byte(meminfo)},
				"sys/fs/cgroup/cpu.max":    {Data: []byte("250000 100000\n")},
				"sys/fs/cgroup/memory.max": {Data: []byte("2147483648\n")},
			},
			numCPU: 16, smi: noSMI,
			want: Detected{CPUs: 2.5, MemoryBytes: 2 << 30},
		},
		{
			name: "cgroup without limits",
			files: fstest.MapFS{
				"proc/meminfo":             {Data: []byte(meminfo)},
				"sys/fs/cgroup/cpu.max":    {Data: []byte("max 100000\n")},
				"sys/fs/cgroup/memory.max": {Data: []byte("max\n")},
			},
			numCPU: 4, smi: noSMI,
			want: Detected{CPUs: 4, MemoryBytes: 8 << 30},
		},
		{
			name: "quota above cores, limit above RAM",
			files: fstest.MapFS{
				"proc/meminfo":             {Data: []byte(meminfo)},
				"sys/fs/cgroup/cpu.max":    {Data: []byte("3200000 100000\n")},
				"sys/fs/cgroup/memory.max": {Data: []byte("99999999999999\n")},
			},
			numCPU: 4, smi: noSMI,
			want: Detected{CPUs: 4, MemoryBytes: 8 << 30},
		},
		{
			name: "the node's cgroup limit wins over the machine and the mount's root",
			files: fstest.MapFS{
				"proc/meminfo":             {Data: []byte(meminfo)},
				"sys/fs/cgroup/memory.max": {Data: []byte("max\n")},
			},
			numCPU: 4, smi: noSMI,
			limit: func() (memmonitor.Limit, error) {
				return memmonitor.Limit{Bytes: 3 << 30, Machine: 8 << 30, Cgroup: true}, nil
			},
			want: Detected{CPUs: 4, MemoryBytes: 3 << 30},
		},
		{
			name:   "no limit: the machine's memory",
			files:  fstest.MapFS{},
			numCPU: 4, smi: noSMI,
			limit: func() (memmonitor.Limit, error) { return memmonitor.Limit{Bytes: 8 << 30, Machine: 8 << 30}, nil },
			want:  Detected{CPUs: 4, MemoryBytes: 8 << 30},
		},
		{
			name:   "limit unreadable: warned, then the files",
			files:  fstest.MapFS{"proc/meminfo": {Data: []byte(meminfo)}},
			numCPU: 4, smi: noSMI,
			limit:     func() (memmonitor.Limit, error) { return memmonitor.Limit{}, errors.New("bad memory.max") },
			want:      Detected{CPUs: 4, MemoryBytes: 8 << 30},
			wantWarns: []string{"bad memory.max"},
		},
		{
			name:   "limit unsupported: silently the OS's figure",
			files:  fstest.MapFS{},
			numCPU: 4, smi: noSMI,
			memory: func() int64 { return 16 << 30 },
			limit:  func() (memmonitor.Limit, error) { return memmonitor.Limit{}, memmonitor.ErrUnsupported },
			want:   Detected{CPUs: 4, MemoryBytes: 16 << 30},
		},
		{
			name:   "no /proc: the OS's figure (darwin)",
			files:  fstest.MapFS{},
			numCPU: 8, smi: noSMI,
			memory: func() int64 { return 16 << 30 },
			want:   Detected{CPUs: 8, MemoryBytes: 16 << 30},
		},
		{
			name:   "/proc wins over the OS's figure",
			files:  fstest.MapFS{"proc/meminfo": {Data: []byte(meminfo)}},
			numCPU: 8, smi: noSMI,
			memory: func() int64 { t.Error("asked the OS despite /proc/meminfo"); return 1 },
			want:   Detected{CPUs: 8, MemoryBytes: 8 << 30},
		},
		{
			name:   "nvidia-smi",
			files:  fstest.MapFS{},
			numCPU: 1,
			smi:    func() (string, bool, error) { return "0, GPU-a, NVIDIA H100 80GB HBM3, 81559\n", true, nil },
			want:   Detected{CPUs: 1, GPUs: []GPUDevice{{0, "GPU-a", "NVIDIA H100 80GB HBM3", 81559}}},
		},
		{
			name:      "nvidia-smi fails",
			files:     fstest.MapFS{},
			numCPU:    1,
			smi:       func() (string, bool, error) { return "", true, errors.New("exit status 9") },
			want:      Detected{CPUs: 1},
			wantWarns: []string{"exit status 9"},
		},
		{
			name:   "fake GPUs win",
			files:  fstest.MapFS{},
			numCPU: 1,
			env:    map[string]string{FakeGPUsEnv: "2"},
			smi:    func() (string, bool, error) { t.Error("nvidia-smi ran despite fake GPUs"); return "", false, nil },
			want:   Detected{CPUs: 1, GPUs: []GPUDevice{{0, "fake-GPU-0", "fake", 0}, {1, "fake-GPU-1", "fake", 0}}},
		},
		{
			name:      "bad fake GPUs",
			files:     fstest.MapFS{},
			numCPU:    1,
			env:       map[string]string{FakeGPUsEnv: "lots"},
			smi:       noSMI,
			want:      Detected{CPUs: 1},
			wantWarns: []string{`ignoring RAYGO_FAKE_GPUS="lots"`},
		},
	}
	for _, tt := range tests {
		got := detect(detectEnv{
			fsys:   tt.files,
			numCPU: tt.numCPU,
			getenv: func(k string) string { return tt.env[k] },
			runSMI: tt.smi,
			memory: tt.memory,
			limit:  tt.limit,
		})
		warns := got.Warnings
		got.Warnings = nil
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: detect = %+v, want %+v", tt.name, got, tt.want)
		}
		if len(warns) != len(tt.wantWarns) {
			t.Errorf("%s: warnings %v, want %v", tt.name, warns, tt.wantWarns)
			continue
		}
		for i, w := range warns {
			if !strings.Contains(w.Error(), tt.wantWarns[i]) {
				t.Errorf("%s: warning %q, want it to contain %q", tt.name, w, tt.wantWarns[i])
			}
		}
	}
}

// TestDetectHost only checks that detection on the real machine is sane.
func TestDetectHost(t *testing.T) {
	t.Setenv(FakeGPUsEnv, "3")
	d := Detect()
	if d.CPUs <= 0 || len(d.GPUs) != 3 || ((runtime.GOOS == "linux" || runtime.GOOS == "darwin") && d.MemoryBytes <= 0) {
		t.Errorf("Detect() = %+v", d)
	}
	t.Logf("Detect() = %+v", d)
}

func TestDetectHostMachine(t *testing.T) {
	named := func() (string, error) { return "box", nil }
	for _, tt := range []struct {
		name  string
		files fstest.MapFS
		want  Host
	}{
		{"machine id", fstest.MapFS{"etc/machine-id": {Data: []byte("abc123\n")}, "proc/meminfo": {Data: []byte("MemTotal: 1024 kB\n")}},
			Host{ID: "abc123", MemoryBytes: 1 << 20}},
		{"dbus id", fstest.MapFS{"etc/machine-id": {Data: []byte("\n")}, "var/lib/dbus/machine-id": {Data: []byte("d")}}, Host{ID: "d"}},
		{"hostname", fstest.MapFS{}, Host{ID: "host:box"}},
	} {
		if got := detectHost(tt.files, named, func() string { return "" }); got != tt.want {
			t.Errorf("%s: detectHost = %+v, want %+v", tt.name, got, tt.want)
		}
	}
	// A network namespace is part of the host's identity.
	ns := func() string { return "net:[4026532001]" }
	if got := detectHost(fstest.MapFS{"etc/machine-id": {Data: []byte("abc")}}, named, ns); got.ID != "abc/net:[4026532001]" {
		t.Errorf("in a network namespace: id %q", got.ID)
	}
	if h := DetectHost(); h.ID == "" {
		t.Errorf("DetectHost() = %+v: empty id", h)
	}
}
