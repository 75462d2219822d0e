package taskevents

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// What rows refer to. A row holds no pointer at all, so the collector
// never scans a Store's rows (a full default Store is about 30 MiB, which
// every collection of the head's process would otherwise mark): names,
// functions and resource shapes are numbers in tables shared by every
// row; error messages, and names past the tables' bounds, are kept by row
// number in maps that hold only the rows that need them.
type refs struct {
	strTab  []string          // [0] is ""
	strIdx  map[string]uint32 // index in strTab
	strSize int               // bytes in strTab
	resTab  []map[string]float64
	resIdx  map[string]uint32 // canonical form (resKey) -> index in resTab
	recent  [4]uint32         // resTab indexes matched last
	errMsgs map[int32]string  // error messages, by row
	over    map[int32]overflow
}

// overflow is what a row could not refer to by number: names and a
// resource shape past the tables' bounds.
type overflow struct {
	name, fn string
	res      map[string]float64
}

const (
	// inOverflow as a row's name, fn or res: see refs.over.
	inOverflow = ^uint32(0)
	// maxInternedBytes bounds the bytes of the names kept in the table.
	maxInternedBytes = 16 << 20
	// maxResShapes bounds the distinct resource shapes shared by rows.
	maxResShapes = 4096
)

func (x *refs) init() {
	x.strTab, x.strIdx = []string{""}, map[string]uint32{}
	x.resTab, x.resIdx = []map[string]float64{nil}, map[string]uint32{}
	x.errMsgs, x.over = map[int32]string{}, map[int32]overflow{}
}

// str returns the number of v, adding it while fewer than maxInterned
// are kept; inOverflow past that.
func (x *refs) str(v string) uint32 {
	if v == "" {
		return 0
	}
	if i, ok := x.strIdx[v]; ok {
		return i
	}
	if len(x.strTab) > maxInterned || x.strSize+len(v) > maxInternedBytes {
		return inOverflow
	}
	x.strSize += len(v)
	v = strings.Clone(v) // not an alias of a larger decode buffer
	x.strTab = append(x.strTab, v)
	x.strIdx[v] = uint32(len(x.strTab) - 1)
	return uint32(len(x.strTab) - 1)
}

// res returns the number of the resource shape m (0: none), adding it
// while fewer than maxResShapes are kept; inOverflow past that.
func (x *refs) res(m map[string]float64) uint32 {
	if len(m) == 0 {
		return 0
	}
	for _, i := range x.recent {
		if i != 0 && maps.Equal(x.resTab[i], m) {
			return i
		}
	}
	key := resKey(m)
	i, ok := x.resIdx[key]
	if !ok {
		if len(x.resTab) > maxResShapes {
			return inOverflow
		}
		x.resTab = append(x.resTab, maps.Clone(m))
		i = uint32(len(x.resTab) - 1)
		x.resIdx[key] = i
	}
	copy(x.recent[1:], x.recent[:len(x.recent)-1])
	x.recent[0] = i
	return i
}

// resKey is a canonical form of a resource shape.
func resKey(m map[string]float64) string {
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = strconv.AppendQuote(b, k)
		b = append(b, '=')
		b = strconv.AppendFloat(b, m[k], 'g', -1, 64)
		b = append(b, ';')
	}
	return string(b)
}

// setDefinitionRefs points row i at its name, function and resources.
func (x *refs) setDefinitionRefs(i int32, r *row, name, fn string, res map[string]float64) {
	r.name, r.fn, r.res = x.str(name), x.str(fn), x.res(res)
	if r.name == inOverflow || r.fn == inOverflow || r.res == inOverflow {
		o := overflow{name: name, fn: fn}
		if r.res == inOverflow {
			o.res = maps.Clone(res)
		}
		x.over[i] = o
	} else {
		delete(x.over, i)
	}
}

// copyDefinitionRefs gives row dst (number di) the references of src.
func (x *refs) copyDefinitionRefs(di int32, dst *row, si int32, src *row) {
	dst.name, dst.fn, dst.res = src.name, src.fn, src.res
	if o, ok := x.over[si]; ok {
		x.over[di] = o
	}
}

func (x *refs) names(i int32, r *row) (name, fn string) {
	if r.name == inOverflow || r.fn == inOverflow {
		o := x.over[i]
		return o.name, o.fn
	}
	return x.strTab[r.name], x.strTab[r.fn]
}

func (x *refs) resources(i int32, r *row) map[string]float64 {
	if r.res == inOverflow {
		return x.over[i].res
	}
	return x.resTab[r.res]
}

// forget drops what row i referred to by number (it is evicted).
func (x *refs) forget(i int32) {
	delete(x.errMsgs, i)
	delete(x.over, i)
}
