package resources

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestSetArithmetic(t *testing.T) {
	s := Set{CPU: 2, "x": 1}
	c := s.Clone()
	c.Add(Set{CPU: 1, GPU: 0.5})
	c.Sub(Set{"x": 1})
	if want := (Set{CPU: 3, GPU: 0.5, "x": 0}); !reflect.DeepEqual(c, want) {
		t.Errorf("Add/Sub = %v, want %v", c, want)
	}
	if want := (Set{CPU: 2, "x": 1}); !reflect.DeepEqual(s, want) {
		t.Errorf("Clone shares storage: original became %v", s)
	}
	if Set(nil).Clone() == nil {
		t.Error("Clone of nil is nil")
	}
}

func TestFits(t *testing.T) {
	tests := []struct {
		name       string
		req, avail Set
		want       bool
	}{
		{"empty", nil, nil, true},
		{"zero request, name missing", Set{GPU: 0}, Set{CPU: 1}, true},
		{"exact", Set{CPU: 1}, Set{CPU: 1}, true},
		{"within epsilon", Set{GPU: 1}, Set{GPU: 1 - 1e-12}, true},
		{"ten tenths", Set{GPU: 0.1}, Set{GPU: 1 - 0.9}, true},
		{"too much", Set{CPU: 2}, Set{CPU: 1.5}, false},
		{"missing name", Set{"TPU": 1}, Set{CPU: 8}, false},
		{"one of several short", Set{CPU: 1, GPU: 1}, Set{CPU: 4}, false},
	}
	for _, tt := range tests {
		if got := tt.req.Fits(tt.avail); got != tt.want {
			t.Errorf("%s: %v.Fits(%v) = %v, want %v", tt.name, tt.req, tt.avail, got, tt.want)
		}
	}
}

func TestIsZero(t *testing.T) {
	for _, tt := range []struct {
		s    Set
		want bool
	}{
		{nil, true}, {Set{}, true}, {Set{CPU: 0, GPU: 1e-12}, true}, {Set{CPU: 0.5}, false}, {Set{CPU: -1}, false},
	} {
		if got := tt.s.IsZero(); got != tt.want {
			t.Errorf("%v.IsZero() = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		s    Set
		want string
	}{
		{nil, "{}"},
		{Set{Memory: 1 << 30, GPU: 0.5, CPU: 1}, "{CPU: 1, GPU: 0.5, memory: 1.0GiB}"},
		{Set{Memory: 512}, "{memory: 512B}"},
		{Set{Memory: 1536}, "{memory: 1.5KiB}"},
		{Set{Memory: 3 << 40, "b": 2, "a": 1e6}, "{a: 1e+06, b: 2, memory: 3.0TiB}"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		req     Set
		wantErr string // substring; "" means valid
	}{
		{"empty", nil, ""},
		{"typical", Set{CPU: 0.5, GPU: 2, Memory: 1 << 34, "accelerator_type:A100": 0.001, "node/x-1.y": 1}, ""},
		{"fractional GPU", Set{GPU: 0.25}, ""},
		{"GPU exactly one", Set{GPU: 1}, ""},
		{"zero", Set{CPU: 0}, ""},
		{"negative", Set{CPU: -1}, "CPU = -1 is negative"},
		{"NaN", Set{"TPU": math.NaN()}, "TPU = NaN is not finite"},
		{"Inf", Set{Memory: math.Inf(1)}, "memory = +Inf is not finite"},
		{"absurd CPU", Set{CPU: 2e6}, "CPU = 2e+06 is absurd"},
		{"absurd memory", Set{Memory: 2e15}, "memory = 2e+15 is absurd"},
		{"big memory ok", Set{Memory: 1e15}, ""},
		{"GPU 1.5", Set{GPU: 1.5}, "GPU = 1.5: amounts above 1 must be whole numbers"},
		{"CPU 1.5", Set{CPU: 1.5}, "CPU = 1.5: amounts above 1 must be whole numbers"},
		{"custom 2.25", Set{"TPU": 2.25}, "TPU = 2.25: amounts above 1 must be whole numbers"},
		{"CPU 2", Set{CPU: 2}, ""},
		{"CPU 0.0001", Set{CPU: 0.0001}, ""},
		{"CPU 0.33333 rounds", Set{CPU: 0.33333}, ""},
		{"CPU 0.00004", Set{CPU: 0.00004}, "CPU = 4e-05 is below the smallest amount, 1/10000"},
		{"half a byte", Set{Memory: 0.5}, "memory = 0.5: memory is a whole number of bytes"},
		{"empty name", Set{"": 1}, `bad resource name ""`},
		{"digit first", Set{"1x": 1}, `bad resource name "1x"`},
		{"space", Set{"a b": 1}, `bad resource name "a b"`},
		{"too long", Set{"a" + strings.Repeat("b", 64): 1}, "bad resource name"},
		{"max length", Set{"a" + strings.Repeat("b", 63): 1}, ""},
	}
	for _, tt := range tests {
		err := Validate(tt.req)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: Validate(%v) = %v, want nil", tt.name, tt.req, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Validate(%v) = %v, want ErrInvalidRequest containing %q", tt.name, tt.req, err, tt.wantErr)
		}
	}
}

func TestParseJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    Set
		wantErr string
	}{
		{"", Set{}, ""},
		{"  ", Set{}, ""},
		{"{}", Set{}, ""},
		{"null", Set{}, ""},
		{`{"TPU": 4, "special_disk": 0.5}`, Set{"TPU": 4, "special_disk": 0.5}, ""},
		{`{"CPU": 4}`, nil, `"CPU" cannot be set in --resources`},
		{`{"gpu": 1}`, nil, `"gpu" cannot be set in --resources; use its own flag for GPU`},
		{`{"memory": 1}`, nil, `"memory" cannot be set`},
		{`{"TPU": -1}`, nil, "TPU = -1 is negative"},
		{`{"TPU": "4"}`, nil, "JSON object of name to number"},
		{`[1]`, nil, "JSON object"},
		{`{"TPU": 1e400}`, nil, "JSON object"},
		{`{"TPU": 1} {}`, nil, "trailing data"},
		{`{"bad name": 1}`, nil, "bad resource name"},
	}
	for _, tt := range tests {
		got, err := ParseJSON(tt.in)
		if tt.wantErr == "" {
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseJSON(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseJSON(%q) error = %v, want ErrInvalidRequest containing %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestValidateTotal(t *testing.T) {
	for _, tt := range []struct {
		total   Set
		wantErr string
	}{
		{Set{CPU: 2.5, GPU: 1, Memory: 1 << 30}, ""},
		{Set{"TPU": 1.5}, ""},
		{Set{CPU: -1}, "CPU = -1 is negative"},
		{Set{"bad name": 1}, "bad resource name"},
	} {
		err := ValidateTotal(tt.total)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateTotal(%v) = %v", tt.total, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ValidateTotal(%v) = %v, want ErrInvalidRequest containing %q", tt.total, err, tt.wantErr)
		}
	}
}

func TestUnits(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    float64
		want Units
	}{
		{CPU, 1, UnitsPerWhole},
		{CPU, 0.1, 1000},
		{GPU, 0.33333, 3333},
		{GPU, 0.00005, 1}, // half a unit rounds away from zero
		{"TPU", 1e6, 1e10},
		{Memory, 1 << 40, 1 << 40}, // bytes, not 1/10,000ths: 1e15 bytes must not overflow
		{Memory, MaxMemory, MaxMemory},
		{CPU, math.NaN(), 0},
	} {
		u := ToUnits(tt.name, tt.v)
		if u != tt.want {
			t.Errorf("ToUnits(%s, %v) = %d, want %d", tt.name, tt.v, u, tt.want)
		}
		if back := ToUnits(tt.name, FromUnits(tt.name, u)); back != u {
			t.Errorf("ToUnits(FromUnits(%d)) = %d", u, back)
		}
	}
	s := Set{CPU: 0.1}
	s.Add(Set{CPU: 0.2})
	if s[CPU] != 0.3 {
		t.Errorf("0.1 + 0.2 = %v, want exactly 0.3", s[CPU])
	}
}
