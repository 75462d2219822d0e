package state

import (
	"errors"
	"fmt"
	"strings"

	"github.com/raygo/raygo/internal/ids"
)

// MinIDPrefix is the fewest hex digits an abbreviated id may have.
const MinIDPrefix = ids.MinAbbrev

// Errors of id lookups; the handlers map them to 400 and 404.
var (
	errBadID     = errors.New("state: bad id")
	errNoSuchID  = errors.New("state: no such id")
	errAmbiguous = errors.New("state: ambiguous id")
)

// normalizeID checks what a caller gave as an id (ids.NormalizeAbbrev:
// a full id, or at least MinIDPrefix of its first or last hex digits;
// raygo's short form, ids.Short, is the last 12). It returns the id in
// lower case.
func normalizeID(q string) (string, error) {
	n, err := ids.NormalizeAbbrev(q)
	if err != nil {
		return "", fmt.Errorf("%w: id %q: %v", errBadID, strings.ToLower(strings.TrimSpace(q)), err)
	}
	return n, nil
}

// idMatches reports whether the id (lower-case hex) is q or abbreviates
// to it (q normalized).
func idMatches(id, q string) bool { return ids.MatchesAbbrev(id, q) }

// resolveID finds the one id among candidates that q names (q already
// normalized): an exact match wins; otherwise exactly one candidate must
// start or end with q. what names the kind for errors ("actor").
func resolveID(candidates []string, q, what string) (string, error) {
	id, found := ids.PickAbbrev(candidates, q)
	switch {
	case id != "":
		return id, nil
	case len(found) == 0:
		return "", fmt.Errorf("%w: no %s has id %s", errNoSuchID, what, q)
	}
	shown := found
	if len(shown) > 5 {
		shown = shown[:5]
	}
	return "", fmt.Errorf("%w: %d %ss match %s (%s…): give more digits", errAmbiguous, len(found), what, q, strings.Join(shown, ", "))
}
