package taskevents

import (
	"encoding/hex"
	"iter"
	"maps"
	"strconv"

	"github.com/raygo/raygo/internal/ids"
)

func mapsKeys[K comparable, V any](m map[K]V) iter.Seq[K] { return maps.Keys(m) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// parseID reads an id printed by ids.ID.String.
func parseID(s string) (ids.ID, bool) {
	raw, err := hex.DecodeString(s)
	if err != nil {
		return ids.Nil, false
	}
	return ids.FromBytes(raw)
}
