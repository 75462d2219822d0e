package resources

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Well-known resource names.
const (
	CPU    = "CPU"
	GPU    = "GPU"
	Memory = "memory" // bytes
)

// Epsilon is the slack allowed when comparing quantities derived from
// amounts in floating point, such as utilizations. Amounts themselves are
// compared exactly, in fixed point (see Units).
const Epsilon = 1e-9

// Set maps a resource name to an amount. A missing name means zero.
// A Set is a plain map: it is not safe for concurrent mutation.
type Set map[string]float64

// Clone returns a copy of s; it is never nil.
func (s Set) Clone() Set {
	c := make(Set, len(s))
	for k, v := range s {
		c[k] = v
	}
	return c
}

// Add adds every amount of o to s in place, in fixed point: the results are
// on the 1/10,000 grid (whole bytes for memory), so 0.1 + 0.2 is 0.3. s must
// be non-nil unless o is empty.
func (s Set) Add(o Set) {
	for k, v := range o {
		s[k] = FromUnits(k, ToUnits(k, s[k])+ToUnits(k, v))
	}
}

// Sub subtracts every amount of o from s in place, in fixed point as Add;
// results may go negative. s must be non-nil unless o is empty.
func (s Set) Sub(o Set) {
	for k, v := range o {
		s[k] = FromUnits(k, ToUnits(k, s[k])-ToUnits(k, v))
	}
}

// Fits reports whether every amount requested by s is at most the amount in
// avail, compared exactly in fixed point (Units). A zero (or negative)
// amount always fits, even when avail lacks the name.
func (s Set) Fits(avail Set) bool {
	for k, v := range s {
		if u := ToUnits(k, v); u > 0 && u > ToUnits(k, avail[k]) {
			return false
		}
	}
	return true
}

// IsZero reports whether every amount in s rounds to zero units; an empty
// or nil Set is zero.
func (s Set) IsZero() bool {
	for k, v := range s {
		if ToUnits(k, v) != 0 {
			return false
		}
	}
	return true
}

// String formats s with names sorted, memory in binary units:
// {CPU: 1, GPU: 0.5, memory: 1.0GiB}.
func (s Set) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range s.names() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteString(": ")
		if IsMemory(k) {
			b.WriteString(humanBytes(s[k]))
		} else {
			b.WriteString(strconv.FormatFloat(s[k], 'g', -1, 64))
		}
	}
	b.WriteByte('}')
	return b.String()
}

func (s Set) names() []string {
	names := make([]string, 0, len(s))
	for k := range s {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func humanBytes(v float64) string {
	if math.Abs(v) < 1024 || math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64) + "B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}
