package raylet

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    cpuTimes
		wantErr string
	}{
		{"kernel 5", "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\nintr 1\n", cpuTimes{busy: 160, total: 980}, ""},
		{"old kernel, 4 fields", "cpu 10 0 10 80\n", cpuTimes{busy: 20, total: 100}, ""},
		{"guest not double counted", "cpu 100 0 0 100 0 0 0 0 40 10\n", cpuTimes{busy: 100, total: 200}, ""},
		{"no cpu line", "intr 1\n", cpuTimes{}, "no cpu line"},
		{"short", "cpu 1 2\n", cpuTimes{}, "short cpu line"},
		{"garbage", "cpu 1 x 3 4\n", cpuTimes{}, `field 2 of the cpu line is "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseProcStat = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestCPUUtilization(t *testing.T) {
	tests := []struct {
		name      string
		prev, cur cpuTimes
		want      float64
		fresh     bool
	}{
		{"half busy", cpuTimes{100, 1000}, cpuTimes{150, 1100}, 50, true},
		{"idle", cpuTimes{100, 1000}, cpuTimes{100, 1100}, 0, true},
		{"all busy", cpuTimes{100, 1000}, cpuTimes{200, 1100}, 100, true},
		{"no time passed", cpuTimes{100, 1000}, cpuTimes{100, 1000}, 0, false},
		{"counters went back (a new boot)", cpuTimes{100, 1000}, cpuTimes{10, 50}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fresh := cpuUtilization(tt.prev, tt.cur)
			if got != tt.want || fresh != tt.fresh {
				t.Fatalf("cpuUtilization = %v, %v; want %v, %v", got, fresh, tt.want, tt.fresh)
			}
		})
	}
}

func TestCPUMeterMeasures(t *testing.T) {
	if _, err := readCPUTimes(); err != nil && !errors.Is(err, errLoadAverage) {
		t.Skipf("no CPU times on this platform: %v", err)
	}
	var m cpuMeter
	m.prime()
	// Burn CPU until the counters move (a tick is 10 ms), for at most 5 s.
	deadline := time.Now().Add(5 * time.Second)
	for sum := 0; ; sum++ {
		if sum%1_000_000 == 0 {
			if u, ok := m.utilization(); ok {
				if u < 0 || u > 100 {
					t.Fatalf("utilization = %v, want a percentage", u)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("no utilization after 5 s of work")
			}
		}
	}
}

func TestParseGPUReadings(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []GPUReading
		wantErr string
	}{
		{"two GPUs", "0, NVIDIA H100 80GB HBM3, 37, 1024, 81559\n1, NVIDIA H100 80GB HBM3, 0, 4, 81559\n",
			[]GPUReading{{0, "NVIDIA H100 80GB HBM3", 37, 1024, 81559}, {1, "NVIDIA H100 80GB HBM3", 0, 4, 81559}}, ""},
		{"name with commas", "2, Tesla, Rev B, 5, 10, 100\n", []GPUReading{{2, "Tesla, Rev B", 5, 10, 100}}, ""},
		{"not supported fields", "0, GeForce, [Not Supported], [N/A], 8192\n", []GPUReading{{0, "GeForce", 0, 0, 8192}}, ""},
		{"blank lines", "\n\n", nil, ""},
		{"too few fields", "0, x, 1, 2\n", nil, "want 5 fields"},
		{"bad index", "a, x, 1, 2, 3\n", nil, "bad index"},
		{"bad number", "0, x, 1, two, 3\n", nil, `bad number "two"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGPUReadings(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("ParseGPUReadings = %+v, %v; want %+v", got, err, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("reading %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestSelectGPUs(t *testing.T) {
	all := []GPUReading{{Index: 0}, {Index: 1}, {Index: 2}}
	tests := []struct {
		ids  []string
		want []int
	}{
		{[]string{"1"}, []int{1}},
		{[]string{"0", "2"}, []int{0, 2}},
		{[]string{"GPU-5d3f"}, []int{0, 1, 2}}, // UUIDs: keep all
		{[]string{"7"}, nil},
	}
	for _, tt := range tests {
		got := selectGPUs(all, tt.ids)
		var idx []int
		for _, g := range got {
			idx = append(idx, g.Index)
		}
		if !slices.Equal(idx, tt.want) {
			t.Fatalf("selectGPUs(%v) = %v, want %v", tt.ids, idx, tt.want)
		}
	}
}

// TestGPUMeterWithNvidiaSMI reads the machine's GPUs through nvidia-smi
// (skipped without it): GPU 0 has a name and a memory size.
func TestGPUMeterWithNvidiaSMI(t *testing.T) {
	if _, err := exec.LookPath("nvidia-smi"); err != nil {
		t.Skip("no nvidia-smi on PATH: no GPU to read")
	}
	var g gpuMeter
	got := g.read([]string{"0"})
	if len(got) != 1 || got[0].Index != 0 || got[0].Name == "" || got[0].MemoryTotalMiB <= 0 ||
		got[0].Utilization < 0 || got[0].Utilization > 100 {
		t.Fatalf("readings of GPU 0 = %+v", got)
	}
}
