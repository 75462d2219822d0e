// Package storage is where the control store keeps state that must
// outlive a restart of the head: tables of keys and values (node, job,
// actor and placement-group records, the internal KV), written as the
// state changes and read back when a control store starts on the same
// storage. Three backends implement Store:
//
//   - Memory: nothing survives the process (the default; also the fake the
//     control store's tests use);
//   - File: an embedded bbolt database, one file on the head's disk, each
//     write a transaction synced before it returns (raygo start --head
//     --storage PATH);
//   - Redis: a Redis server, one hash per table under a namespace prefix
//     (--storage redis://[:password@]host:port[/db]), Ray's own choice for
//     a head that another machine can take over.
//
// Why bbolt rather than Pebble: the control store's state is small
// (thousands to a few million records of under a kilobyte) and written at
// the rate of cluster events, not of tasks; bbolt keeps it in one file
// with ACID transactions, no background compaction, no tuning and a
// small pure-Go dependency, and reads at memory speed once cached. An LSM
// tree (Pebble) pays off for write-heavy data far larger than memory,
// which this is not (docs/storage.md).
package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// KV is one record.
type KV struct {
	Key   string
	Value []byte
}

// Store is a set of tables of records. Implementations are safe for
// concurrent use.
type Store interface {
	// Put writes records to table, all or none.
	Put(ctx context.Context, table string, kvs ...KV) error
	// Delete removes keys from table (absent keys are no error).
	Delete(ctx context.Context, table string, keys ...string) error
	// Get reads one record; ok is false when it is absent.
	Get(ctx context.Context, table, key string) (value []byte, ok bool, err error)
	// Scan calls fn for every record of table, in no particular order,
	// until fn returns an error (which Scan returns).
	Scan(ctx context.Context, table string, fn func(key string, value []byte) error) error
	// Persistent reports whether what is written outlives the process.
	Persistent() bool
	// Close releases the store; it is the last call.
	Close() error
}

// Limits of what a Store accepts.
const (
	// MaxTableBytes bounds a table's name.
	MaxTableBytes = 64
	// MaxKeyBytes bounds a key.
	MaxKeyBytes = 1 << 10
	// MaxValueBytes bounds a value (the control store's KV takes values
	// of up to 64 MiB).
	MaxValueBytes = 80 << 20
)

// ErrInvalid wraps what a Store refuses.
var ErrInvalid = errors.New("storage: invalid")

func check(table string, kvs []KV, keys []string) error {
	if table == "" || len(table) > MaxTableBytes || strings.ContainsAny(table, ":\x00") {
		return fmt.Errorf("%w table name %q: 1 to %d bytes, no ':' or NUL", ErrInvalid, table, MaxTableBytes)
	}
	for _, kv := range kvs {
		if kv.Key == "" || len(kv.Key) > MaxKeyBytes {
			return fmt.Errorf("%w key of %d bytes in %s: want 1 to %d", ErrInvalid, len(kv.Key), table, MaxKeyBytes)
		}
		if len(kv.Value) > MaxValueBytes {
			return fmt.Errorf("%w value of %d bytes for %s/%s: at most %d", ErrInvalid, len(kv.Value), table, kv.Key, MaxValueBytes)
		}
	}
	for _, k := range keys {
		if k == "" || len(k) > MaxKeyBytes {
			return fmt.Errorf("%w key of %d bytes in %s: want 1 to %d", ErrInvalid, len(k), table, MaxKeyBytes)
		}
	}
	return nil
}

// Open opens the store spec names: "" is Memory, "redis://…" Redis (its
// tables under the key prefix namespace), anything else the path of a
// File store (created if absent).
func Open(ctx context.Context, spec, namespace string) (Store, error) {
	switch {
	case spec == "":
		return NewMemory(), nil
	case strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://"):
		return OpenRedis(ctx, spec, namespace)
	default:
		return OpenFile(spec)
	}
}
