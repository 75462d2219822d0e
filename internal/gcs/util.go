package gcs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
)

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
