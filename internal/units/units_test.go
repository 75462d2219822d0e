package units

import "testing"

const (
	mib = 1 << 20
	gib = 1 << 30
)

func TestFormatBytes(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{900, "900 B"},
		{1023, "1.0 KiB"},
		{1024, "1.0 KiB"},
		{1536 * 1024, "1.5 MiB"},
		{gib - 1, "1.0 GiB"},
		{gib - 60*mib, "964.0 MiB"},
		{gib, "1.0 GiB"},
		{2048 * gib, "2048.0 GiB"},
	} {
		if got := Bytes(tt.n); got != tt.want {
			t.Errorf("Bytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
