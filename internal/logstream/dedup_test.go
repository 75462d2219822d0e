package logstream

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// step is one event of a dedup scenario: at second `at`, a line from pid
// (stderr when err), or with text "" a Flush; want is what comes out, as
// "pid:text" or "pid:text xN".
type step struct {
	at   float64
	pid  int
	err  bool
	text string
	want []string
}

func show(lines []Line) []string {
	var out []string
	for _, l := range lines {
		s := fmt.Sprintf("%d:%s", l.Pid, l.Text)
		if l.Repeated > 1 {
			s += fmt.Sprintf(" x%d", l.Repeated)
		}
		out = append(out, s)
	}
	return out
}

func TestDedup(t *testing.T) {
	for _, tc := range []struct {
		name     string
		steps    []step
		flushAll []string
	}{
		{"one worker repeating is printed as it comes", []step{
			{0, 1, false, "hello", []string{"1:hello"}},
			{1, 1, false, "hello", []string{"1:hello"}},
			{2, 1, false, "hello", []string{"1:hello"}},
		}, nil},
		{"a second worker's line is held, then printed as it is", []step{
			{0, 1, false, "hello", []string{"1:hello"}},
			{1, 2, false, "hello", nil},
			{4.9, 0, false, "", nil},
			{5, 0, false, "", []string{"2:hello"}},
			// Forgotten: the next one prints at once.
			{6, 3, false, "hello", []string{"3:hello"}},
		}, nil},
		{"repeats across workers are counted", []step{
			{0, 1, false, "loading model", []string{"1:loading model"}},
			{0.1, 2, false, "loading model", nil},
			{0.2, 3, false, "loading model", nil},
			{0.3, 4, false, "loading model", nil},
			{5, 0, false, "", []string{"4:loading model x3"}},
			// Still aggregated in a new window.
			{6, 5, false, "loading model", nil},
			{7, 6, false, "loading model", nil},
			{10, 0, false, "", []string{"6:loading model x2"}},
			// An empty window forgets the pattern.
			{15, 0, false, "", nil},
			{16, 7, false, "loading model", []string{"7:loading model"}},
		}, nil},
		{"words with digits are masked", []step{
			{0, 1, false, "step 1 took 12ms on 0xdead", []string{"1:step 1 took 12ms on 0xdead"}},
			{1, 2, false, "step 2 took 15ms on 0xbeef", nil},
			{2, 3, false, "step 3 took 9ms on 0x1", nil},
			{5, 0, false, "", []string{"3:step 3 took 9ms on 0x1 x2"}},
		}, nil},
		{"lines that are only numbers are never held", []step{
			{0, 1, false, "42", []string{"1:42"}},
			{1, 2, false, "42", []string{"2:42"}},
			{2, 3, false, "  ", []string{"3:  "}},
			{3, 4, false, "  ", []string{"4:  "}},
		}, nil},
		{"stdout and stderr apart", []step{
			{0, 1, false, "warn", []string{"1:warn"}},
			{0, 2, true, "warn", []string{"2:warn"}},
			{1, 3, true, "warn", nil},
		}, []string{"3:warn"}},
		{"flush at the end reports what is held", []step{
			{0, 1, false, "a", []string{"1:a"}},
			{0, 2, false, "a", nil},
			{0, 3, false, "a", nil},
			{0, 4, false, "b", []string{"4:b"}},
			{0, 5, false, "b", nil},
		}, []string{"3:a x2", "5:b"}},
		{"a line added after the window flushes first", []step{
			{0, 1, false, "x", []string{"1:x"}},
			{1, 2, false, "x", nil},
			{1, 3, false, "x", nil},
			{6, 4, false, "y", []string{"3:x x2", "4:y"}},
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDedup(5 * time.Second)
			t0 := time.Unix(1000, 0)
			for i, s := range tc.steps {
				now := t0.Add(time.Duration(s.at * float64(time.Second)))
				var got []Line
				if s.text == "" && s.pid == 0 {
					got = d.Flush(now)
				} else {
					got = d.Add(now, Line{Node: "n", Pid: s.pid, Stderr: s.err, Text: s.text})
				}
				if g := show(got); !slices.Equal(g, s.want) {
					t.Fatalf("step %d (%+v): got %q, want %q", i, s, g, s.want)
				}
			}
			if g := show(d.FlushAll()); !slices.Equal(g, tc.flushAll) {
				t.Fatalf("FlushAll: got %q, want %q", g, tc.flushAll)
			}
			if d.Held() != 0 {
				t.Fatalf("%d patterns held after FlushAll", d.Held())
			}
		})
	}
}

func TestDedupKey(t *testing.T) {
	for in, want := range map[string]string{
		"hello world":             "hello world",
		"pid=123 started":         "started",
		"  spaced   out  ":        "spaced out",
		"ratio 0.5 at 0x1f ok":    "ratio at ok",
		"ID abc123def":            "ID",
		"no digits here at all !": "no digits here at all !",
	} {
		if got := dedupKey(in); got != want {
			t.Errorf("dedupKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDedupBoundsPatterns(t *testing.T) {
	d := NewDedup(5 * time.Second)
	now := time.Unix(1000, 0)
	for i := range MaxHeldPatterns + 10 {
		d.Add(now, Line{Pid: 1, Text: "line " + strings.Repeat("x", i%50) + strings.Repeat("y", i/50)})
	}
	if d.Held() > MaxHeldPatterns {
		t.Fatalf("%d patterns held, at most %d", d.Held(), MaxHeldPatterns)
	}
}
