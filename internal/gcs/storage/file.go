package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// File is a Store in one bbolt database file: each table a bucket, each
// Put and Delete a transaction synced to disk before it returns.
type File struct {
	db *bolt.DB
}

// openTimeout bounds the wait for the file's lock (another control store
// using the same file).
const openTimeout = 2 * time.Second

// OpenFile opens (creating if need be) the database at path. A file
// another process has open fails after openTimeout, naming the file.
func OpenFile(path string) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout})
	if err != nil {
		return nil, fmt.Errorf("storage: open %s (is another head using it?): %w", path, err)
	}
	return &File{db: db}, nil
}

func (f *File) Put(ctx context.Context, table string, kvs ...KV) error {
	if err := check(table, kvs, nil); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(table))
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if err := b.Put([]byte(kv.Key), kv.Value); err != nil {
				return err
			}
		}
		return nil
	})
}

func (f *File) Delete(ctx context.Context, table string, keys ...string) error {
	if err := check(table, nil, keys); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(table))
		if b == nil {
			return nil
		}
		for _, k := range keys {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (f *File) Get(ctx context.Context, table, key string) (value []byte, ok bool, err error) {
	if err := check(table, nil, []string{key}); err != nil {
		return nil, false, err
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	err = f.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(table))
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(key)); v != nil {
			value, ok = slices.Clone(v), true // v is valid only in the transaction
		}
		return nil
	})
	return value, ok, err
}

func (f *File) Scan(ctx context.Context, table string, fn func(string, []byte) error) error {
	if err := check(table, nil, nil); err != nil {
		return err
	}
	return f.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(table))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fn(string(k), slices.Clone(v))
		})
	})
}

func (f *File) Persistent() bool { return true }

func (f *File) Close() error { return f.db.Close() }
