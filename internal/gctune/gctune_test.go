package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, headroom uint64
		base, want     int
	}{
		{live: 16 << 20, headroom: 32 << 20, base: 100, want: 200},
		{live: 4 << 20, headroom: 32 << 20, base: 100, want: maxPercent},
		{live: 32 << 20, headroom: 32 << 20, base: 100, want: 100},
		{live: 1 << 30, headroom: 32 << 20, base: 100, want: 100},
		{live: 1 << 30, headroom: 32 << 20, base: 300, want: 300},
		{live: 1 << 10, headroom: 32 << 20, base: 100, want: maxPercent},
		{live: 0, headroom: 32 << 20, base: 100, want: maxPercent},
	} {
		if got := percentFor(c.live, c.headroom, c.base); got != c.want {
			t.Errorf("percentFor(%d, %d, %d) = %d, want %d", c.live, c.headroom, c.base, got, c.want)
		}
	}
}

// waitPercent runs collections until the tuner has set a GOGC that
// satisfies ok.
func waitPercent(t *testing.T, tu *Tuner, ok func(int) bool) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		p := tu.Percent()
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC stayed %d", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTuner: a small live heap gets a raised GOGC; a live heap larger than
// the headroom brings it back to the base; Stop restores the base.
func TestTuner(t *testing.T) {
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)

	tu := Start(64 << 20)
	defer tu.Stop()
	p := waitPercent(t, tu, func(p int) bool { return p > 100 })
	if cur := debug.SetGCPercent(p); cur != p {
		t.Fatalf("tuner reports %d, runtime has %d", p, cur)
	}

	big := make([][]byte, 96)
	for i := range big {
		big[i] = make([]byte, 1<<20)
		big[i][0] = 1
	}
	waitPercent(t, tu, func(p int) bool { return p == 100 })
	runtime.KeepAlive(big)

	tu.Stop()
	if cur := debug.SetGCPercent(100); cur != 100 {
		t.Fatalf("after Stop GOGC is %d, want the base 100", cur)
	}
	runtime.GC()
	runtime.GC()
	if cur := debug.SetGCPercent(100); cur != 100 {
		t.Fatalf("a stopped tuner changed GOGC to %d", cur)
	}
}

// TestTunerOff: with GOGC off the tuner does nothing.
func TestTunerOff(t *testing.T) {
	base := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(base)
	tu := Start(64 << 20)
	defer tu.Stop()
	runtime.GC()
	if cur := debug.SetGCPercent(-1); cur != -1 {
		t.Fatalf("GOGC %d with the collector off", cur)
	}
}
