package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits on what Decode accepts. A msgpack value is checked against them,
// and against the bytes actually present, before anything is decoded:
// a container's element count, a string's, binary's or extension's length
// must fit in the bytes that follow it, so a decode allocates at most a
// fixed multiple of its input, however large the counts it claims.
const (
	// MaxDepth bounds the nesting of msgpack arrays and maps in a value
	// (the decoder recurses once per level).
	MaxDepth = 512
	// MaxRefBytes bounds one encoded object ref (a msgpack extension of
	// type RefExtID): two ids of up to 127 bytes, an owner address and
	// their length prefixes.
	MaxRefBytes = 4096
	// timeExtID is msgpack's own extension type for time.Time.
	timeExtID int8 = -1
)

// checkMsgpack walks data as a sequence of msgpack values without
// allocating (beyond appending to extOffsets) and without recursion, and reports the
// first thing that does not fit: a length or count larger than the bytes
// left, nesting deeper than MaxDepth, a reserved code, or an extension
// type other than an object ref or a timestamp (raygo writes no others).
//
// It also appends to extOffsets, and returns, the offset of every
// extension's first payload byte.
// msgpack reads a payload with Read, never a byte at a time, except when
// it decodes an extension where it expects a map: then it skips the
// header and reads the payload as a map header, out of step with this
// walk, so none of the counts it reads from there on were checked (a
// timestamp whose payload starts 0xdf claims up to 2^32 entries). Decode
// makes a byte read at those offsets fail (guardReader).
func checkMsgpack(data []byte, extOffsets []int) ([]int, error) {
	// pending[i] is how many values are still due at nesting level i;
	// due is their sum over all levels: each takes at least a byte, so
	// due never exceeds the bytes left.
	// stack holds one count per open container: on the goroutine's
	// stack for the usual shallow values (a MaxDepth array would be 4 KiB
	// to clear per decode), on the heap past that.
	var small [32]uint64
	stack := small[:]
	depth := 0
	var due uint64
	pos := 0
	for pos < len(data) || depth > 0 {
		if depth > 0 && stack[depth-1] == 0 {
			depth--
			continue
		}
		if pos >= len(data) {
			return nil, fmt.Errorf("%w: %d values missing at the end (%d bytes)", ErrMalformed, due, len(data))
		}
		if depth > 0 {
			stack[depth-1]--
			due--
		}
		c := data[pos]
		start := pos
		pos++
		var children uint64 // values inside this one (array elements, map keys and values)
		var skip uint64     // payload bytes
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			children = 2 * uint64(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			children = uint64(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = uint64(c & 0x1f)
		case c == 0xc1:
			return nil, fmt.Errorf("%w: reserved code 0xc1 at byte %d", ErrMalformed, start)
		case c == 0xc4, c == 0xd9: // bin8, str8
			n, err := readLen(data, &pos, 1)
			if err != nil {
				return nil, err
			}
			skip = n
		case c == 0xc5, c == 0xda:
			n, err := readLen(data, &pos, 2)
			if err != nil {
				return nil, err
			}
			skip = n
		case c == 0xc6, c == 0xdb:
			n, err := readLen(data, &pos, 4)
			if err != nil {
				return nil, err
			}
			skip = n
		case c >= 0xc7 && c <= 0xc9, c >= 0xd4 && c <= 0xd8: // ext
			var n uint64
			switch c {
			case 0xc7, 0xc8, 0xc9:
				var err error
				if n, err = readLen(data, &pos, 1<<(c-0xc7)); err != nil {
					return nil, err
				}
			default:
				n = 1 << (c - 0xd4)
			}
			if pos >= len(data) {
				return nil, fmt.Errorf("%w: extension at byte %d has no type", ErrMalformed, start)
			}
			typ := int8(data[pos])
			pos++
			if uint64(len(data)-pos) < n {
				return nil, fmt.Errorf("%w: extension at byte %d claims %d bytes, %d left", ErrMalformed, start, n, len(data)-pos)
			}
			if err := checkExt(typ, data[pos:pos+int(n)], start); err != nil {
				return nil, err
			}
			if n > 0 {
				extOffsets = append(extOffsets, pos)
			}
			skip = n
		case c == 0xca:
			skip = 4
		case c == 0xcb:
			skip = 8
		case c >= 0xcc && c <= 0xcf:
			skip = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3:
			skip = 1 << (c - 0xd0)
		case c == 0xdc:
			n, err := readLen(data, &pos, 2)
			if err != nil {
				return nil, err
			}
			children = n
		case c == 0xdd:
			n, err := readLen(data, &pos, 4)
			if err != nil {
				return nil, err
			}
			children = n
		case c == 0xde:
			n, err := readLen(data, &pos, 2)
			if err != nil {
				return nil, err
			}
			children = 2 * n
		case c == 0xdf:
			n, err := readLen(data, &pos, 4)
			if err != nil {
				return nil, err
			}
			children = 2 * n
		}
		if skip > 0 {
			if uint64(len(data)-pos) < skip {
				return nil, fmt.Errorf("%w: value at byte %d claims %d bytes, %d left", ErrMalformed, start, skip, len(data)-pos)
			}
			pos += int(skip)
		}
		if children > 0 {
			if due+children > uint64(len(data)-pos) {
				return nil, fmt.Errorf("%w: container at byte %d claims %d elements, %d bytes left", ErrMalformed, start, children, len(data)-pos)
			}
			if depth == MaxDepth {
				return nil, fmt.Errorf("%w: nesting deeper than %d at byte %d", ErrTooDeep, MaxDepth, start)
			}
			if depth == len(stack) {
				stack = append(stack, 0)
			}
			stack[depth] = children
			depth++
			due += children
		}
	}
	return extOffsets, nil
}

// readLen reads a big-endian length of size bytes at *pos.
func readLen(data []byte, pos *int, size int) (uint64, error) {
	if len(data)-*pos < size {
		return 0, fmt.Errorf("%w: length at byte %d cut short", ErrMalformed, *pos-1)
	}
	var n uint64
	for _, b := range data[*pos : *pos+size] {
		n = n<<8 | uint64(b)
	}
	*pos += size
	return n, nil
}

// checkExt accepts the two extension types raygo values hold: object refs
// (whose payload must parse, see parseRef) and msgpack timestamps (4, 8
// or 12 bytes).
func checkExt(typ int8, payload []byte, at int) error {
	switch typ {
	case RefExtID:
		if _, _, _, err := splitRef(payload); err != nil {
			return fmt.Errorf("%w (at byte %d)", err, at)
		}
		return nil
	case timeExtID:
		if n := len(payload); n == 4 || n == 8 || n == 12 {
			return nil
		}
		return fmt.Errorf("%w: timestamp at byte %d has %d bytes, want 4, 8 or 12", ErrMalformed, at, len(payload))
	}
	return fmt.Errorf("%w: msgpack extension type %d at byte %d (raygo decodes only object refs and timestamps)", ErrMalformed, typ, at)
}

// parseRef reads the payload of a ref extension (see EncodeRef). The
// result's ids alias b.
func parseRef(b []byte) (Ref, error) {
	id, ownerID, addr, err := splitRef(b)
	if err != nil {
		return Ref{}, err
	}
	return Ref{ID: id, OwnerID: ownerID, OwnerAddress: string(addr)}, nil
}

// splitRef checks the payload of a ref extension and returns its fields,
// aliasing b, without allocating. Id lengths are at most 127 bytes, so
// the payload never starts with a byte msgpack would read as a container
// header.
func splitRef(b []byte) (id, ownerID, addr []byte, err error) {
	if len(b) > MaxRefBytes {
		return nil, nil, nil, fmt.Errorf("%w: object ref of %d bytes exceeds the %d-byte limit", ErrMalformed, len(b), MaxRefBytes)
	}
	if id, b, err = refField(b, "id"); err != nil {
		return nil, nil, nil, err
	}
	if ownerID, b, err = refField(b, "owner id"); err != nil {
		return nil, nil, nil, err
	}
	l, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) != l {
		return nil, nil, nil, fmt.Errorf("%w: object ref: bad owner address", ErrMalformed)
	}
	return id, ownerID, b[k:], nil
}

// refField splits a length-prefixed id (at most 127 bytes) off b.
func refField(b []byte, what string) (field, rest []byte, err error) {
	if len(b) < 1 || b[0] > 127 || len(b) < 1+int(b[0]) {
		return nil, nil, fmt.Errorf("%w: object ref: bad %s", ErrMalformed, what)
	}
	return b[1 : 1+int(b[0])], b[1+int(b[0]):], nil
}

// guardReader feeds msgpack the checked bytes and fails a byte-at-a-time
// read at an extension's payload (see checkMsgpack).
type guardReader struct {
	data  []byte
	pos   int
	guard []int // sorted offsets; guard[:next] are all below pos
	next  int
}

func (r *guardReader) Read(p []byte) (int, error) {
	if r.pos >= len(r.data) {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.pos:])
	r.pos += n
	return n, nil
}

func (r *guardReader) ReadByte() (byte, error) {
	if r.pos >= len(r.data) {
		return 0, io.EOF
	}
	// Reads move forward (UnreadByte only steps back over a byte just
	// read, which was not a guarded one), so one cursor finds the next
	// guarded offset.
	for r.next < len(r.guard) && r.guard[r.next] < r.pos {
		r.next++
	}
	if r.next < len(r.guard) && r.guard[r.next] == r.pos {
		return 0, fmt.Errorf("%w: the extension at byte %d is read as another type", ErrMalformed, r.pos)
	}
	r.pos++
	return r.data[r.pos-1], nil
}

func (r *guardReader) UnreadByte() error {
	if r.pos == 0 {
		return errors.New("codec: unread at the start")
	}
	r.pos--
	return nil
}
