package gcs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/jobbinary"
)

// Runtime-environment packages (internal/runtimeenv) share the binary
// store with job binaries: both are content-addressed by the hex SHA-256
// of their bytes, so a package is fetched by node daemons with GetBinary
// like a job binary, kept in storage (and recovered) the same way, and
// evicted under MaxBinaryStoreBytes the same way (never while a running
// job's runtime environment names it).

// PutPackage stores data under digest (hex SHA-256) for the head's HTTP
// API, which received it. The content must match digest; a package
// stored already is kept as it is. data must not be modified afterwards.
func (s *Server) PutPackage(ctx context.Context, digest string, data []byte) error {
	if int64(len(data)) > s.cfg.MaxBinaryBytes {
		return errs.Invalidf("gcs: package of %d bytes exceeds the %d-byte limit", len(data), s.cfg.MaxBinaryBytes)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != digest {
		return errs.Invalidf("gcs: package hash mismatch: named sha256:%s, content sha256:%s", digest, got)
	}
	if s.HasPackage(digest) {
		return nil
	}
	b := &binary{size: int64(len(data))}
	for off := 0; off < len(data); off += jobbinary.ChunkBytes {
		b.chunks = append(b.chunks, data[off:min(off+jobbinary.ChunkBytes, len(data))])
	}
	if err := s.saveBinary(ctx, digest, b.size, b.reader()); err != nil {
		return err
	}
	s.storeBinary(digest, b)
	return nil
}

// HasPackage reports whether a package (or binary) with digest is stored.
func (s *Server) HasPackage(digest string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.binaries[digest]
	return ok
}

// packageDigest is the store key of a runtime env's working_dir
// ("sha256:<hex>" → "<hex>").
func packageDigest(workingDir string) string {
	if len(workingDir) > len("sha256:") && workingDir[:len("sha256:")] == "sha256:" {
		return workingDir[len("sha256:"):]
	}
	return workingDir
}
