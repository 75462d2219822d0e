package resources

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
)

// Upper bounds beyond which an amount is taken for a mistake.
const (
	MaxMemory = 1e15 // bytes, about 888 TiB
	MaxAmount = 1e6  // any other resource
)

// validName reports whether name matches ^[A-Za-z][A-Za-z0-9_.:/-]{0,63}$
// (by hand: Validate runs on every task submission).
func validName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '/' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Validate checks a resource request (a task's, an actor's, a lease's)
// before it enters the system; node daemons and the control store call it
// on what arrives over the wire, so every entry point applies the same
// rules. Names match ^[A-Za-z][A-Za-z0-9_.:/-]{0,63}$; amounts are finite,
// at least 0, at most MaxMemory for memory and MaxAmount for anything else;
// and, as in Ray:
//
//   - an amount above 1 is a whole number (a fraction shares one unit:
//     NumCPUs(0.5) is fine, NumCPUs(1.5) is not);
//   - a non-zero amount is at least 1/10,000 (the fixed-point unit, see
//     Units); finer amounts are rounded to the nearest 1/10,000;
//   - memory is a whole number of bytes.
//
// The error names the first offending resource (in sorted order) and wraps
// ErrInvalidRequest.
func Validate(req Set) error {
	for _, k := range req.names() {
		if err := checkAmount(k, req[k]); err != nil {
			return err
		}
		v := req[k]
		switch {
		case v > 1 && v != math.Trunc(v):
			return fmt.Errorf("%w: %s = %v: amounts above 1 must be whole numbers (a fraction shares one unit: 0.5 is fine, 1.5 is not)", ErrInvalidRequest, k, v)
		case v > 0 && ToUnits(k, v) == 0:
			return fmt.Errorf("%w: %s = %v is below the smallest amount, 1/%d", ErrInvalidRequest, k, v, UnitsPerWhole)
		case IsMemory(k) && v != math.Trunc(v):
			return fmt.Errorf("%w: %s = %v: memory is a whole number of bytes", ErrInvalidRequest, k, v)
		}
	}
	return nil
}

// ValidateTotal checks what a node offers: names and amounts as Validate,
// except that totals may be fractional above 1 (a cgroup quota of 2.5
// CPUs). Amounts are rounded to the fixed-point grid (see Units) when the
// node's ledger is made. Errors wrap ErrInvalidRequest.
func ValidateTotal(total Set) error {
	for _, k := range total.names() {
		if err := checkAmount(k, total[k]); err != nil {
			return err
		}
	}
	return nil
}

// checkAmount applies the rules Validate and ValidateTotal share.
func checkAmount(k string, v float64) error {
	limit := float64(MaxAmount)
	if IsMemory(k) {
		limit = MaxMemory
	}
	switch {
	case !validName(k):
		return fmt.Errorf("%w: bad resource name %q (want a letter, then up to 63 of letters, digits, _ . : / -)", ErrInvalidRequest, k)
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("%w: %s = %v is not finite", ErrInvalidRequest, k, v)
	case v < 0:
		return fmt.Errorf("%w: %s = %v is negative", ErrInvalidRequest, k, v)
	case v > limit:
		return fmt.Errorf("%w: %s = %v is absurd (limit %g)", ErrInvalidRequest, k, v, limit)
	}
	return nil
}

// ParseJSON parses the CLI's --resources value, a JSON object such as
// {"TPU": 4, "special_disk": 1}, and validates it as node totals
// (ValidateTotal). An empty string, null or {} give an empty Set. CPU, GPU and memory (matched without regard to case)
// are refused: they have flags of their own. Errors wrap ErrInvalidRequest.
func ParseJSON(s string) (Set, error) {
	set := Set{}
	if strings.TrimSpace(s) == "" {
		return set, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&set); err != nil {
		return nil, fmt.Errorf("%w: --resources must be a JSON object of name to number: %v", ErrInvalidRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: --resources has trailing data after the JSON object", ErrInvalidRequest)
	}
	if set == nil { // the literal null
		set = Set{}
	}
	for _, k := range set.names() {
		for _, own := range []string{CPU, GPU, Memory} {
			if strings.EqualFold(k, own) {
				return nil, fmt.Errorf("%w: %q cannot be set in --resources; use its own flag for %s", ErrInvalidRequest, k, own)
			}
		}
	}
	if err := ValidateTotal(set); err != nil {
		return nil, err
	}
	return set, nil
}

// ValidateAmounts checks amounts that are not a request, such as a node's
// available resources, which go below zero while the node is
// oversubscribed and hold fractions of GPUs: names as in Validate, amounts
// finite and within ±MaxMemory for memory and ±MaxAmount for anything
// else. Errors wrap ErrInvalidRequest.
func ValidateAmounts(s Set) error {
	for _, k := range s.names() {
		v := s[k]
		limit := float64(MaxAmount)
		if IsMemory(k) {
			limit = MaxMemory
		}
		switch {
		case !validName(k):
			return fmt.Errorf("%w: bad resource name %q (want a letter, then up to 63 of letters, digits, _ . : / -)", ErrInvalidRequest, k)
		case math.IsNaN(v) || math.IsInf(v, 0):
			return fmt.Errorf("%w: %s = %v is not finite", ErrInvalidRequest, k, v)
		case math.Abs(v) > limit:
			return fmt.Errorf("%w: %s = %v is absurd (limit %g)", ErrInvalidRequest, k, v, limit)
		}
	}
	return nil
}
