package codec

import "errors"

// Errors from Decode and DecodeRef; both wrap them with what was wrong
// and where.
var (
	// ErrMalformed: the bytes are not a value this package wrote: a
	// length or count beyond the bytes present, a truncated value, an
	// unknown format tag or extension type.
	ErrMalformed = errors.New("codec: malformed value")
	// ErrTooDeep: containers nest deeper than MaxDepth.
	ErrTooDeep = errors.New("codec: value nests too deeply")
)
