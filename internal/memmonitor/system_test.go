package memmonitor

import (
	"errors"
	"os"
	"runtime"
	"testing"
)

func TestSystem(t *testing.T) {
	u, err := System()
	switch runtime.GOOS {
	case "linux", "darwin":
		if err != nil {
			t.Fatal(err)
		}
		if u.Total <= 0 || u.Used < 0 || u.Used > u.Total || u.Source == "" {
			t.Fatalf("System() = %+v", u)
		}
	default:
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("System() on %s: %v", runtime.GOOS, err)
		}
	}
	pm, err := Process(os.Getpid())
	if runtime.GOOS == "linux" {
		if err != nil || pm.RSS <= 0 {
			t.Fatalf("Process(self) = %+v, %v", pm, err)
		}
	} else if !errors.Is(err, ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Process on %s: %v", runtime.GOOS, err)
	}
}

func TestFromLevel(t *testing.T) {
	u, err := fromLevel(16<<30, 25)
	if err != nil || u.Total != 16<<30 || u.Used != 12<<30 || u.Fraction() != 0.75 {
		t.Fatalf("fromLevel(16 GiB, 25%%) = %+v, %v", u, err)
	}
	for _, c := range []struct {
		total uint64
		level uint32
	}{{0, 50}, {1 << 30, 101}} {
		if _, err := fromLevel(c.total, c.level); !errors.Is(err, ErrMalformed) {
			t.Errorf("fromLevel(%d, %d): %v, want ErrMalformed", c.total, c.level, err)
		}
	}
}
