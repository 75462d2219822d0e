package faults

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnableRejectsBadSpecs(t *testing.T) {
	t.Cleanup(func() { Disable() })
	for _, bad := range []string{
		"noequals", "=drop", "p=", "p=explode", "p=delay(soon)", "p=delay(-1s)", "p=delay(11m)",
		"p=exit(300)", "p=exit(x)", "p=drop@0", "p=drop*x", "p=drop%0", "p=drop%1.5",
		"ok=drop;p=nonsense",
	} {
		if err := Enable(bad); err == nil {
			t.Errorf("Enable(%q) accepted", bad)
		}
	}
	if Eval("ok") != nil {
		t.Error("a point of a rejected spec list was enabled")
	}
}

func TestActions(t *testing.T) {
	t.Cleanup(func() { Disable() })
	if err := Eval("p"); err != nil {
		t.Fatalf("a point nothing enabled: %v", err)
	}
	if err := Enable("p=drop; q=delay(30ms) ;r=drop@2;s=drop*2"); err != nil {
		t.Fatal(err)
	}
	if err := Eval("p"); !errors.Is(err, ErrInjected) || !strings.Contains(err.Error(), "at p") {
		t.Fatalf("drop: %v", err)
	}
	start := time.Now()
	if err := Eval("q"); err != nil || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("delay: %v after %s", err, time.Since(start))
	}
	var r, s []bool
	for range 4 {
		r = append(r, Eval("r") != nil)
		s = append(s, Eval("s") != nil)
	}
	if want := []bool{false, true, false, false}; !slices.Equal(r, want) {
		t.Errorf("@2 failed at %v, want %v", r, want)
	}
	if want := []bool{true, true, false, false}; !slices.Equal(s, want) {
		t.Errorf("*2 failed at %v, want %v", s, want)
	}
	if Hits("r") != 4 || Hits("nope") != 0 {
		t.Errorf("hits: r %d, nope %d", Hits("r"), Hits("nope"))
	}
	Disable("p")
	if Eval("p") != nil || Eval("s") != nil || Eval("r") != nil {
		t.Error("a disabled point, or one past its count, still fails")
	}
	Disable()
	if enabled.Load() {
		t.Error("enabled with no points")
	}
}

func TestProbability(t *testing.T) {
	t.Cleanup(func() { Disable() })
	if err := Enable("p=drop%0.5"); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for range 2000 {
		if Eval("p") != nil {
			failed++
		}
	}
	if failed < 800 || failed > 1200 {
		t.Fatalf("%d of 2000 failed at probability 0.5", failed)
	}
}

func TestExit(t *testing.T) {
	t.Cleanup(func() { Disable() })
	saved := exitFn
	t.Cleanup(func() { exitFn = saved })
	code := -1
	exitFn = func(c int) { code = c }
	if err := Enable("p=exit(7)@2"); err != nil {
		t.Fatal(err)
	}
	_ = Eval("p")
	if code != -1 {
		t.Fatal("exited at the first time, want the second")
	}
	_ = Eval("p")
	if code != 7 {
		t.Fatalf("exit code %d, want 7", code)
	}
}
