package state

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/raygo/raygo/internal/ids"
)

// Limits of a list request.
const (
	// DefaultLimit is how many rows a list returns when it names no limit
	// (Ray's default).
	DefaultLimit = 100
	// MaxLimit is the most rows one list returns: a larger limit is a 400.
	MaxLimit = 100_000
	// MaxFilters bounds the filters of one request.
	MaxFilters = 32
)

// Filter is one filter of a list: the rows whose column Key equals Value
// (or, with Negate, does not).
type Filter struct {
	Key    string
	Negate bool
	Value  string
}

func (f Filter) String() string {
	if f.Negate {
		return f.Key + "!=" + f.Value
	}
	return f.Key + "=" + f.Value
}

// Query is a list or summary request: filters (all must hold), the most
// rows to return and whether detail columns are wanted.
type Query struct {
	Filters []Filter
	Limit   int
	Detail  bool
}

// ParseFilter reads "key=value" or "key!=value".
func ParseFilter(s string) (Filter, error) {
	i := strings.IndexByte(s, '=')
	if i <= 0 {
		return Filter{}, fmt.Errorf("filter %q: want key=value or key!=value", s)
	}
	f := Filter{Key: s[:i], Value: s[i+1:]}
	if strings.HasSuffix(f.Key, "!") {
		f.Key, f.Negate = strings.TrimSuffix(f.Key, "!"), true
	}
	f.Key = strings.ToLower(strings.TrimSpace(f.Key))
	if f.Key == "" {
		return Filter{}, fmt.Errorf("filter %q: want key=value or key!=value", s)
	}
	return f, nil
}

// ParseQuery reads a list request's parameters: filter (repeatable),
// limit (default DefaultLimit, 1..MaxLimit) and detail (true or false).
// Unknown parameters are an error, so that a typo is not silently a
// different query.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Limit: DefaultLimit}
	for k := range v {
		switch k {
		case "filter", "limit", "detail":
		default:
			return q, fmt.Errorf("unknown parameter %q (want filter, limit or detail)", k)
		}
	}
	if len(v["filter"]) > MaxFilters {
		return q, fmt.Errorf("%d filters: at most %d", len(v["filter"]), MaxFilters)
	}
	for _, s := range v["filter"] {
		f, err := ParseFilter(s)
		if err != nil {
			return q, err
		}
		q.Filters = append(q.Filters, f)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return q, fmt.Errorf("limit %q: want a number from 1 to %d", s, MaxLimit)
		}
		q.Limit = n
	}
	if s := v.Get("detail"); s != "" {
		d, err := strconv.ParseBool(s)
		if err != nil {
			return q, fmt.Errorf("detail %q: want true or false", s)
		}
		q.Detail = d
	}
	return q, nil
}

// compile turns filters into one predicate over rows with columns cols.
// A key that is no column, or a column that cannot be filtered, is an
// error naming the keys that can; so is a value that does not read as the
// column's type. Strings compare case-insensitively (Ray's rule), and
// columns named *_id also match an abbreviated id; numbers and booleans
// compare by value. nil filters give a nil predicate (keep all).
func compile[T any](cols []column[T], filters []Filter) (func(*T) bool, error) {
	if len(filters) == 0 {
		return nil, nil
	}
	preds := make([]func(*T) bool, 0, len(filters))
	for _, f := range filters {
		c := findColumn(cols, f.Key)
		if c == nil || !c.filterable() {
			what := "no column"
			if c != nil {
				what = "a column that cannot be filtered"
			}
			return nil, fmt.Errorf("filter %q: %q is %s; filter on one of %s", f, f.Key, what, strings.Join(filterableNames(cols), ", "))
		}
		p, err := predicate(c, f)
		if err != nil {
			return nil, err
		}
		preds = append(preds, p)
	}
	if len(preds) == 1 {
		return preds[0], nil
	}
	return func(row *T) bool {
		for _, p := range preds {
			if !p(row) {
				return false
			}
		}
		return true
	}, nil
}

func predicate[T any](c *column[T], f Filter) (func(*T) bool, error) {
	neg := f.Negate
	switch c.kind {
	case kindString:
		get, want := c.str, f.Value
		if strings.HasSuffix(c.name, "_id") {
			// An id column also takes an abbreviated id (the short ids
			// tables print): at least MinIDPrefix of its first or last
			// hex digits.
			if q, err := normalizeID(want); err == nil && len(q) < 2*ids.Size {
				return func(row *T) bool { return idMatches(get(row), q) != neg }, nil
			}
		}
		return func(row *T) bool { return strings.EqualFold(get(row), want) != neg }, nil
	case kindInt:
		want, err := strconv.ParseInt(strings.TrimSpace(f.Value), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("filter %q: %s is an integer, not %q", f, c.name, f.Value)
		}
		get := c.num
		return func(row *T) bool { return (get(row) == want) != neg }, nil
	case kindFloat:
		want, err := strconv.ParseFloat(strings.TrimSpace(f.Value), 64)
		if err != nil {
			return nil, fmt.Errorf("filter %q: %s is a number, not %q", f, c.name, f.Value)
		}
		get := c.flt
		return func(row *T) bool { return (get(row) == want) != neg }, nil
	case kindBool:
		want, err := strconv.ParseBool(strings.TrimSpace(f.Value))
		if err != nil {
			return nil, fmt.Errorf("filter %q: %s is true or false, not %q", f, c.name, f.Value)
		}
		get := c.flag
		return func(row *T) bool { return (get(row) == want) != neg }, nil
	}
	return nil, fmt.Errorf("filter %q: %s cannot be filtered", f, c.name)
}

func findColumn[T any](cols []column[T], name string) *column[T] {
	for i := range cols {
		if cols[i].name == name {
			return &cols[i]
		}
	}
	return nil
}

func filterableNames[T any](cols []column[T]) []string {
	var out []string
	for i := range cols {
		if cols[i].filterable() {
			out = append(out, cols[i].name)
		}
	}
	return out
}

// columnNames lists the columns shown with or without detail.
func columnNames[T any](cols []column[T], detail bool) []string {
	var out []string
	for i := range cols {
		if detail || !cols[i].detail {
			out = append(out, cols[i].name)
		}
	}
	return out
}

// apply keeps the rows keep accepts (nil: all), up to limit (<= 0: all),
// and says how many matched in all.
func apply[T any](rows []T, keep func(*T) bool, limit int) (out []T, matched int) {
	if keep == nil {
		matched = len(rows)
		if limit > 0 && len(rows) > limit {
			rows = rows[:limit]
		}
		return rows, matched
	}
	for i := range rows {
		if !keep(&rows[i]) {
			continue
		}
		matched++
		if limit <= 0 || len(out) < limit {
			out = append(out, rows[i])
		}
	}
	return out, matched
}
