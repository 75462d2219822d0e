package memmonitor

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Parsers for the text files of /proc and cgroupfs. They return errors
// without a file name; callers name the file with malformed.

// malformed is the error for the file at path that does not parse.
func malformed(path string, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, path, fmt.Sprintf(format, args...))
}

// parseKB reads the "Key:   N kB" lines of /proc/meminfo or
// /proc/<pid>/status and returns the values of keys in bytes. Keys the file
// lacks are absent from the map; lines of other keys are not looked at.
func parseKB(data []byte, keys ...string) (map[string]int64, error) {
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	vals := make(map[string]int64, len(keys))
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || !want[key] {
			continue
		}
		f := strings.Fields(rest)
		var unit int64
		switch {
		case len(f) == 1:
			unit = 1
		case len(f) == 2 && f[1] == "kB":
			unit = 1 << 10
		default:
			return nil, fmt.Errorf("%s: want \"N kB\", have %q", key, strings.TrimSpace(rest))
		}
		n, err := parseCount(f[0])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if n > math.MaxInt64/unit {
			return nil, fmt.Errorf("%s: %s kB is out of range", key, f[0])
		}
		vals[key] = n * unit
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return vals, nil
}

// parseStat returns the value of key in a cgroup memory.stat file of
// "key N" lines. ok is false when no line has the key.
func parseStat(data []byte, key string) (n int64, ok bool, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != key {
			continue
		}
		if len(f) != 2 {
			return 0, false, fmt.Errorf("%s: want \"%s N\", have %q", key, key, sc.Text())
		}
		n, err := parseCount(f[1])
		if err != nil {
			return 0, false, fmt.Errorf("%s: %w", key, err)
		}
		return n, true, nil
	}
	return 0, false, sc.Err()
}

// parseCount parses a non-negative decimal count of bytes or kilobytes.
// Values above math.MaxInt64 become math.MaxInt64: cgroup v1 spells "no
// limit" as a number near 2^63, and some kernels as 2^64-1.
func parseCount(s string) (int64, error) {
	u, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a byte count: %q", s)
	}
	if u > math.MaxInt64 {
		return math.MaxInt64, nil
	}
	return int64(u), nil
}
