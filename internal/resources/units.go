package resources

import "math"

// UnitsPerWhole is the fixed-point scale of every resource but memory: an
// amount is kept as a whole number of 1/10,000ths (Ray's resource unit), so
// that ten requests of 0.1 GPU add up to exactly one GPU and a ledger
// returns to its totals exactly, however many fractional requests came and
// went. Memory is counted in whole bytes.
const UnitsPerWhole = 10000

// Units is a resource amount in fixed point: 1/UnitsPerWhole of a CPU, GPU
// or custom resource, or one byte of memory. All arithmetic and comparison
// of amounts inside the scheduler and the node ledger happens in Units;
// float64 appears only at the edges (Set, the wire, the user's options).
type Units int64

// maxUnits bounds conversions so that no amount Validate accepts, nor a sum
// of a few million of them, can overflow.
const maxUnits = Units(math.MaxInt64 / 4)

// IsMemory reports whether name counts bytes: memory, and a placement
// group's memory (its bundle resources, see BundleResource).
func IsMemory(name string) bool {
	return name == Memory || len(name) > len(Memory)+7 && name[:len(Memory)+7] == Memory+"_group_"
}

// scale is the number of Units in one whole of name.
func scale(name string) float64 {
	if IsMemory(name) {
		return 1
	}
	return UnitsPerWhole
}

// ToUnits converts an amount of name to fixed point, rounding to the
// nearest unit (half away from zero). Non-finite amounts convert to 0;
// amounts beyond ±2^61 units are clamped.
func ToUnits(name string, v float64) Units {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	u := math.Round(v * scale(name))
	switch {
	case u > float64(maxUnits):
		return maxUnits
	case u < -float64(maxUnits):
		return -maxUnits
	}
	return Units(u)
}

// FromUnits converts a fixed-point amount of name back to a float64. The
// result converts back to the same Units with ToUnits.
func FromUnits(name string, u Units) float64 {
	if IsMemory(name) {
		return float64(u)
	}
	return float64(u) / UnitsPerWhole
}

// unitMap is a Set in fixed point. Names with a zero amount may be present.
type unitMap map[string]Units

// toUnitMap converts the positive amounts of s; zero and negative amounts
// are dropped (a request of 0 or less asks for nothing).
func toUnitMap(s Set) unitMap {
	m := make(unitMap, len(s))
	for k, v := range s {
		if u := ToUnits(k, v); u > 0 {
			m[k] = u
		}
	}
	return m
}

// toSet converts m back to a Set, keeping every name.
func (m unitMap) toSet() Set {
	s := make(Set, len(m))
	for k, u := range m {
		s[k] = FromUnits(k, u)
	}
	return s
}

func (m unitMap) clone() unitMap {
	c := make(unitMap, len(m))
	for k, u := range m {
		c[k] = u
	}
	return c
}
