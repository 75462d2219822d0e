// Package jobbinary is how a job's binary is named and moved: by the hex
// SHA-256 of its content, in chunks of ChunkBytes. The driver uploads it
// to the control store, which serves it to node daemons that cannot read
// the driver's file themselves.
package jobbinary

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/raygo/raygo/internal/pb"
)

// ChunkBytes is the size of one streamed piece of a binary.
const ChunkBytes = 1 << 20

// Hash returns the hex SHA-256 of what r holds, read in a small buffer
// (a binary may be hundreds of megabytes).
func Hash(r io.Reader) (string, error) {
	sum := sha256.New()
	if _, err := io.Copy(sum, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// Send reads size bytes from r and sends them as the binary hash, in
// chunks of at most ChunkBytes (an empty binary as one empty chunk). An
// error from send is returned as it is; a short read is wrapped.
func Send(r io.Reader, hash string, size int64, send func(*pb.BinaryChunk) error) error {
	buf := make([]byte, min(size, ChunkBytes))
	for off := int64(0); off < size || off == 0; {
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), size-off)])
		if err != nil {
			return fmt.Errorf("read at %d of %d bytes: %w", off, size, err)
		}
		if err := send(&pb.BinaryChunk{Hash: hash, Offset: off, Data: buf[:n], Total: size}); err != nil {
			return err
		}
		if size == 0 {
			break
		}
		off += int64(n)
	}
	return nil
}
