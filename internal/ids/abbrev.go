package ids

import (
	"fmt"
	"strings"
)

// MinAbbrev is the fewest hex digits an abbreviated id may have.
const MinAbbrev = 6

// NormalizeAbbrev checks an id as a user gives it (the state API, `raygo
// logs`): a whole id (32 hex digits), or an abbreviation of at least
// MinAbbrev of its first or last digits (Short is the last ShortLen). It
// returns it in lower case; the error says what is wrong, for the caller
// to prefix with what it was.
func NormalizeAbbrev(q string) (string, error) {
	q = strings.ToLower(strings.TrimSpace(q))
	if len(q) < MinAbbrev || len(q) > 2*Size {
		return "", fmt.Errorf("want %d hex digits, or at least %d of its first or last ones", 2*Size, MinAbbrev)
	}
	for _, c := range q {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", fmt.Errorf("ids are hex digits (0-9, a-f)")
		}
	}
	return q, nil
}

// MatchesAbbrev reports whether id (lower-case hex) is q or starts or
// ends with it (q normalized by NormalizeAbbrev).
func MatchesAbbrev(id, q string) bool {
	return id == q || strings.HasPrefix(id, q) || strings.HasSuffix(id, q)
}

// PickAbbrev finds the one candidate q names: an exact match, or the only
// one MatchesAbbrev. Without one it returns "" and every match (none, or
// several: ambiguous).
func PickAbbrev(candidates []string, q string) (string, []string) {
	var found []string
	for _, id := range candidates {
		if id == q {
			return id, nil
		}
		if MatchesAbbrev(id, q) {
			found = append(found, id)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return "", found
}
