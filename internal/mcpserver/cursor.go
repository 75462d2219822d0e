package mcpserver

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/raygo/raygo/internal/state"
)

// Paging of the list tools.
const (
	// DefaultPageSize is how many rows a list tool returns when its input
	// names no limit.
	DefaultPageSize = 100
	// MaxPageSize is the largest limit a list tool takes.
	MaxPageSize = 1000
)

// Errors of the pure deciding code; tools wrap them with what to do.
var (
	// ErrBadCursor: a cursor that is not one a list tool returned, or one
	// returned for another query.
	ErrBadCursor = errors.New("mcpserver: bad cursor")
	// ErrBadInput: an input a tool cannot take (a bad filter, limit, …).
	ErrBadInput = errors.New("mcpserver: bad input")
)

// cursor is where the next page of a list starts: an offset into the
// rows the state API answers for one query (kind, filters, detail). The
// state API orders each kind stably (nodes and actors by id, jobs and
// placement groups by creation, tasks newest first), so an offset names
// the same place while the cluster does not change; rows added or
// removed between pages shift it.
type cursor struct {
	Kind   string `json:"k"`
	Query  uint64 `json:"q"` // queryHash of the filters and detail
	Offset int    `json:"o"`
}

// queryHash fingerprints a list query, so that a cursor is only taken
// back for the query it was made for. Filter order does not matter.
func queryHash(kind string, filters []string, detail bool) uint64 {
	fs := slices.Clone(filters)
	slices.Sort(fs)
	h := fnv.New64a()
	h.Write([]byte(kind))
	for _, f := range fs {
		h.Write([]byte{0})
		h.Write([]byte(f))
	}
	h.Write([]byte{0, '0' + boolByte(detail)})
	return h.Sum64()
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// encodeCursor makes the opaque next_cursor of a list.
func encodeCursor(c cursor) string {
	raw, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodeCursor reads a cursor a list returned and checks that it belongs
// to this query; "" is the first page (offset 0).
func decodeCursor(s, kind string, filters []string, detail bool) (int, error) {
	if s == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not a cursor a list tool returned; pass next_cursor exactly as it came, or leave cursor out for the first page", ErrBadCursor, s)
	}
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Offset < 0 || c.Kind == "" {
		return 0, fmt.Errorf("%w: %q is not a cursor a list tool returned; pass next_cursor exactly as it came, or leave cursor out for the first page", ErrBadCursor, s)
	}
	if c.Kind != kind {
		return 0, fmt.Errorf("%w: the cursor is for a list of %s, not %s", ErrBadCursor, c.Kind, kind)
	}
	if c.Query != queryHash(kind, filters, detail) {
		return 0, fmt.Errorf("%w: the cursor was made for other filters or detail; repeat the same filters and detail with it, or leave cursor out to start again", ErrBadCursor)
	}
	return c.Offset, nil
}

// pageRequest is what to ask the state API for one page: the rows up to
// the page's end plus one (to know whether another page follows).
type pageRequest struct {
	Offset int // first row of the page
	Size   int // rows in a page
	Limit  int // the state API's limit: Offset+Size+1, at most state.MaxLimit
}

// planPage checks a list tool's limit and cursor and says what to ask
// for.
func planPage(kind string, filters []string, detail bool, limit int, cur string) (pageRequest, error) {
	switch {
	case limit == 0:
		limit = DefaultPageSize
	case limit < 0 || limit > MaxPageSize:
		return pageRequest{}, fmt.Errorf("%w: limit %d: want 1 to %d (default %d); page on with next_cursor", ErrBadInput, limit, MaxPageSize, DefaultPageSize)
	}
	if err := checkFilters(filters); err != nil {
		return pageRequest{}, err
	}
	off, err := decodeCursor(cur, kind, filters, detail)
	if err != nil {
		return pageRequest{}, err
	}
	if off >= state.MaxLimit {
		return pageRequest{}, fmt.Errorf("%w: a list pages through its first %d rows only; narrow it with filters", ErrBadInput, state.MaxLimit)
	}
	return pageRequest{Offset: off, Size: limit, Limit: min(off+limit+1, state.MaxLimit)}, nil
}

// page cuts one page out of the rows the state API answered for p and
// returns the next cursor ("" when this is the last page).
func page[T any](rows []T, p pageRequest, kind string, filters []string, detail bool) ([]T, string) {
	if p.Offset >= len(rows) {
		return rows[:0], ""
	}
	end := min(p.Offset+p.Size, len(rows))
	next := ""
	if len(rows) > end {
		next = encodeCursor(cursor{Kind: kind, Query: queryHash(kind, filters, detail), Offset: end})
	}
	return rows[p.Offset:end], next
}

// checkFilters reads each filter as the state API will ("key=value" or
// "key!=value"), so that a malformed one is refused with its fix before
// any request; keys are checked by the state API, whose error lists the
// valid ones.
func checkFilters(filters []string) error {
	if len(filters) > state.MaxFilters {
		return fmt.Errorf("%w: %d filters: at most %d", ErrBadInput, len(filters), state.MaxFilters)
	}
	for _, f := range filters {
		if _, err := state.ParseFilter(f); err != nil {
			return fmt.Errorf("%w: %v (for example \"state=ALIVE\" or \"state!=DEAD\")", ErrBadInput, err)
		}
	}
	return nil
}

// shortList joins up to n items for a message.
func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + ", … (" + strconv.Itoa(len(items)-n) + " more)"
}
