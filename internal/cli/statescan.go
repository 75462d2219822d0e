package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// A list of 100,000 tasks is about 35 MB of JSON. encoding/json takes
// seconds to decode that into maps; `raygo list` only needs a few fields
// of each row, so it scans the answer itself as it arrives: one pass, one
// row in memory at a time, no allocation per field, values kept as the
// raw JSON they are. The scanner only splits what is there; it trusts
// the head to send valid JSON and fails with an error on anything it
// cannot split.

var errScan = errors.New("malformed JSON in the API's answer")

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at i.
func skipValue(b []byte, i int) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) {
		return 0, errScan
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errScan
	}
	// A number, true, false or null: up to the next delimiter.
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t' {
		j++
	}
	if j == i {
		return 0, errScan
	}
	return j, nil
}

// skipString returns the index just past the string starting at i.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errScan
}

// eachField calls fn with each key (raw, without quotes) and value (raw
// JSON) of the object at b[i:], and returns the index past it.
func eachField(b []byte, i int, fn func(key, value []byte) error) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, fmt.Errorf("%w: want an object", errScan)
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return 0, errScan
		}
		kEnd, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		key := b[i+1 : kEnd-1]
		i = skipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return 0, errScan
		}
		vStart := skipSpace(b, i+1)
		vEnd, err := skipValue(b, vStart)
		if err != nil {
			return 0, err
		}
		if err := fn(key, b[vStart:vEnd]); err != nil {
			return 0, err
		}
		i = skipSpace(b, vEnd)
		if i >= len(b) {
			return 0, errScan
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return i + 1, nil
		default:
			return 0, errScan
		}
	}
}

// scannedList is a list's answer: its counts and warnings (the rows go
// to a callback as they arrive).
type scannedList struct {
	Total              int      `json:"total"`
	NumAfterTruncation int      `json:"num_after_truncation"`
	NumFiltered        int      `json:"num_filtered"`
	PartialFailure     string   `json:"partial_failure_warning"`
	Warnings           []string `json:"warnings"`
	rows               int      // rows passed to the callback
}

// streamScanner reads JSON values off a stream without holding more
// than the value at hand: 100,000 rows are never in memory at once.
type streamScanner struct {
	r        io.Reader
	buf      []byte
	pos, end int
	err      error // the read error that ended the stream (io.EOF at the end)
}

func newStreamScanner(r io.Reader) *streamScanner {
	return &streamScanner{r: r, buf: make([]byte, 256<<10)}
}

// fill reads more of the stream; false when there is no more.
func (s *streamScanner) fill() bool {
	if s.err != nil {
		return false
	}
	s.pos, s.end = 0, 0
	n, err := io.ReadAtLeast(s.r, s.buf, 1)
	s.end = n
	if err != nil {
		s.err = err
	}
	return n > 0
}

// next returns the next byte that is not white space.
func (s *streamScanner) next() (byte, error) {
	for {
		for s.pos < s.end {
			c := s.buf[s.pos]
			s.pos++
			if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
				return c, nil
			}
		}
		if !s.fill() {
			return 0, s.eof()
		}
	}
}

func (s *streamScanner) eof() error {
	if s.err == io.EOF || s.err == nil {
		return fmt.Errorf("%w: the answer ends early", errScan)
	}
	return s.err
}

// value appends the next JSON value to dst (white space before it
// skipped) and returns it.
func (s *streamScanner) value(dst []byte) ([]byte, error) {
	c, err := s.next()
	if err != nil {
		return dst, err
	}
	s.pos-- // c is the value's first byte: take it in the loop below
	depth, inString, escaped := 0, false, false
	scalar := c != '"' && c != '{' && c != '['
	for {
		start := s.pos
		for i := s.pos; i < s.end; i++ {
			c := s.buf[i]
			switch {
			case inString:
				switch {
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					inString = false
					if depth == 0 {
						s.pos = i + 1
						return append(dst, s.buf[start:s.pos]...), nil
					}
				}
			case scalar:
				if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' || c == '\r' || c == '\t' {
					s.pos = i
					return append(dst, s.buf[start:i]...), nil
				}
			case c == '"':
				inString = true
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth == 0 {
					s.pos = i + 1
					return append(dst, s.buf[start:s.pos]...), nil
				}
				if depth < 0 {
					return dst, errScan
				}
			}
		}
		dst = append(dst, s.buf[start:s.end]...)
		s.pos = s.end
		if !s.fill() {
			if scalar && s.err == io.EOF && len(dst) > 0 {
				return dst, nil
			}
			return dst, s.eof()
		}
	}
}

// expect reads the next non-space byte and checks it is one of want.
func (s *streamScanner) expect(want string) (byte, error) {
	c, err := s.next()
	if err != nil {
		return 0, err
	}
	if !bytes.ContainsRune([]byte(want), rune(c)) {
		return 0, fmt.Errorf("%w: %q where %q was expected", errScan, c, want)
	}
	return c, nil
}

// streamList reads a list's answer off r: its rows go to onRow one at a
// time (the slice is reused: copy what is kept), its counts and warnings
// are returned.
func streamList(r io.Reader, onRow func(row []byte) error) (*scannedList, error) {
	s := newStreamScanner(r)
	out := &scannedList{}
	var meta, key, elem []byte
	meta = append(meta, '{')
	if _, err := s.expect("{"); err != nil {
		return nil, err
	}
	sawResult := false
	for {
		var err error
		if key, err = s.value(key[:0]); err != nil {
			return nil, err
		}
		if len(key) < 2 || key[0] != '"' {
			return nil, fmt.Errorf("%w: a key that is no string", errScan)
		}
		if _, err := s.expect(":"); err != nil {
			return nil, err
		}
		if string(key) == `"result"` {
			sawResult = true
			if _, err := s.expect("["); err != nil {
				return nil, err
			}
			c, err := s.next()
			if err != nil {
				return nil, err
			}
			if c != ']' {
				s.pos--
				for {
					if elem, err = s.value(elem[:0]); err != nil {
						return nil, err
					}
					out.rows++
					if err := onRow(elem); err != nil {
						return nil, err
					}
					if c, err = s.expect(",]"); err != nil {
						return nil, err
					}
					if c == ']' {
						break
					}
				}
			}
		} else {
			if len(meta) > 1 {
				meta = append(meta, ',')
			}
			meta = append(meta, key...)
			meta = append(meta, ':')
			if meta, err = s.value(meta); err != nil {
				return nil, err
			}
		}
		c, err := s.expect(",}")
		if err != nil {
			return nil, err
		}
		if c == '}' {
			break
		}
	}
	meta = append(meta, '}')
	if err := json.Unmarshal(meta, out); err != nil {
		return nil, fmt.Errorf("%w: %v", errScan, err)
	}
	if !sawResult {
		return nil, fmt.Errorf("%w: no result", errScan)
	}
	return out, nil
}

// pickFields sets vals[i] to the raw value of keys[i] in the object row
// (nil where the row lacks it).
func pickFields(row []byte, keys []string, vals []json.RawMessage) error {
	clear(vals)
	_, err := eachField(row, 0, func(key, value []byte) error {
		for i, k := range keys {
			if string(key) == k {
				vals[i] = value
				break
			}
		}
		return nil
	})
	return err
}
