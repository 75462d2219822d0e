package state

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// valueKind is what a column holds: it decides how a filter's value is
// read and compared, and how the value is written.
type valueKind uint8

const (
	kindString valueKind = iota // compared case-insensitively, as Ray does
	kindInt                     // the filter's value must be an integer
	kindBool                    // the filter's value must be true or false
	kindFloat                   // the filter's value must be a number
	kindOther                   // maps and lists: not filterable
)

// column is one field of a kind's rows: its JSON name, whether it is
// shown only with detail=true, and how to read it from a row. Exactly one
// of the getters is set, matching kind. Columns are written by append
// functions, not by reflection, so that 100,000 rows encode quickly.
type column[T any] struct {
	name   string
	detail bool
	kind   valueKind
	str    func(*T) string
	num    func(*T) int64
	flt    func(*T) float64
	flag   func(*T) bool
	other  func(*T) any // encoded with encoding/json
}

func strCol[T any](name string, detail bool, get func(*T) string) column[T] {
	return column[T]{name: name, detail: detail, kind: kindString, str: get}
}

func intCol[T any](name string, detail bool, get func(*T) int64) column[T] {
	return column[T]{name: name, detail: detail, kind: kindInt, num: get}
}

func floatCol[T any](name string, detail bool, get func(*T) float64) column[T] {
	return column[T]{name: name, detail: detail, kind: kindFloat, flt: get}
}

func boolCol[T any](name string, detail bool, get func(*T) bool) column[T] {
	return column[T]{name: name, detail: detail, kind: kindBool, flag: get}
}

func otherCol[T any](name string, detail bool, get func(*T) any) column[T] {
	return column[T]{name: name, detail: detail, kind: kindOther, other: get}
}

// filterable reports whether filters may name the column.
func (c *column[T]) filterable() bool { return c.kind != kindOther }

// appendValue appends the column's value in row as JSON.
func (c *column[T]) appendValue(b []byte, row *T) []byte {
	switch c.kind {
	case kindString:
		return appendJSONString(b, c.str(row))
	case kindInt:
		return strconv.AppendInt(b, c.num(row), 10)
	case kindFloat:
		return appendJSONFloat(b, c.flt(row))
	case kindBool:
		return strconv.AppendBool(b, c.flag(row))
	}
	v := c.other(row)
	raw, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

// appendRow appends row as a JSON object of the columns shown (all with
// detail, else those without the detail mark), in the table's order.
func appendRow[T any](b []byte, cols []column[T], detail bool, row *T) []byte {
	b = append(b, '{')
	first := true
	for i := range cols {
		c := &cols[i]
		if c.detail && !detail {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, c.name)
		b = append(b, ':')
		b = c.appendValue(b, row)
	}
	return append(b, '}')
}

// appendJSONFloat writes f as JSON (NaN and infinities, which JSON
// cannot carry, as null).
func appendJSONFloat(b []byte, f float64) []byte {
	if f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308 {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD (as
// encoding/json does), everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript parsers
		// that read JSON as script; escape them as encoding/json does.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
