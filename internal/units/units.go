// Package units formats quantities for messages and reports.
package units

import (
	"fmt"
	"math"
)

// Bytes writes n bytes with one decimal in the largest binary unit up to
// GiB in which the rounded number is at least 1: "10.2 GiB", "512.0 MiB",
// "700 B". Node memory and store sizes read best in GiB even past 1 TiB.
func Bytes(n int64) string {
	units := []struct {
		size float64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}}
	for _, u := range units {
		// Round before choosing, so that 2^30-1 is "1.0 GiB", not "1024.0 MiB".
		if v := math.Round(float64(n)/u.size*10) / 10; v >= 1 {
			return fmt.Sprintf("%.1f %s", v, u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}
