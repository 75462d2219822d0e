package state

import (
	"errors"
	"fmt"
	"strings"

	"github.com/raygo/raygo/internal/ids"
)

// MinIDPrefix is the fewest hex digits an abbreviated id may have.
const MinIDPrefix = 6

// Errors of id lookups; the handlers map them to 400 and 404.
var (
	errBadID     = errors.New("state: bad id")
	errNoSuchID  = errors.New("state: no such id")
	errAmbiguous = errors.New("state: ambiguous id")
)

// normalizeID checks what a caller gave as an id: a full id (32 hex
// digits), or an abbreviation of at least MinIDPrefix hex digits, which
// may be the start of an id or its end (raygo's short form, ids.Short, is
// the last 12 digits). It returns the id in lower case.
func normalizeID(q string) (string, error) {
	q = strings.ToLower(strings.TrimSpace(q))
	if len(q) < MinIDPrefix || len(q) > 2*ids.Size {
		return "", fmt.Errorf("%w: id %q: want %d hex digits, or at least %d of its first or last ones", errBadID, q, 2*ids.Size, MinIDPrefix)
	}
	for _, c := range q {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", fmt.Errorf("%w: id %q: ids are hex digits (0-9, a-f)", errBadID, q)
		}
	}
	return q, nil
}

// idMatches reports whether the id (lower-case hex) is q or abbreviates
// to it (q normalized).
func idMatches(id, q string) bool {
	return id == q || (len(q) < len(id) && (strings.HasPrefix(id, q) || strings.HasSuffix(id, q)))
}

// resolveID finds the one id among candidates that q names (q already
// normalized): an exact match wins; otherwise exactly one candidate must
// start or end with q. what names the kind for errors ("actor").
func resolveID(candidates []string, q, what string) (string, error) {
	var found []string
	for _, id := range candidates {
		if id == q {
			return id, nil
		}
		if idMatches(id, q) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: no %s has id %s", errNoSuchID, what, q)
	case 1:
		return found[0], nil
	}
	shown := found
	if len(shown) > 5 {
		shown = shown[:5]
	}
	return "", fmt.Errorf("%w: %d %ss match %s (%s…): give more digits", errAmbiguous, len(found), what, q, strings.Join(shown, ", "))
}
