package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store on a Redis server: table T of namespace N is the hash
// "raygo:N:T"; a Put is one transaction (MULTI/EXEC) of HSETs.
type Redis struct {
	c      *redis.Client
	prefix string
}

// redisDialTimeout bounds connecting to the server.
const redisDialTimeout = 5 * time.Second

// OpenRedis connects to the server url names (redis://[user:password@]
// host:port[/db], rediss:// for TLS) and checks it answers; namespace
// keeps this cluster's tables apart from others' on the same server.
func OpenRedis(ctx context.Context, url, namespace string) (*Redis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("%w Redis address %q: %v", ErrInvalid, url, err)
	}
	if namespace == "" {
		namespace = "default"
	}
	opt.DialTimeout = redisDialTimeout
	c := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, redisDialTimeout)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("storage: Redis at %s does not answer: %w", opt.Addr, err)
	}
	return &Redis{c: c, prefix: "raygo:" + namespace + ":"}, nil
}

func (r *Redis) key(table string) string { return r.prefix + table }

func (r *Redis) Put(ctx context.Context, table string, kvs ...KV) error {
	if err := check(table, kvs, nil); err != nil {
		return err
	}
	if len(kvs) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(kvs))
	for _, kv := range kvs {
		args = append(args, kv.Key, kv.Value)
	}
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, r.key(table), args...)
		return nil
	})
	return err
}

func (r *Redis) Delete(ctx context.Context, table string, keys ...string) error {
	if err := check(table, nil, keys); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	return r.c.HDel(ctx, r.key(table), keys...).Err()
}

func (r *Redis) Get(ctx context.Context, table, key string) ([]byte, bool, error) {
	if err := check(table, nil, []string{key}); err != nil {
		return nil, false, err
	}
	v, err := r.c.HGet(ctx, r.key(table), key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// scanBatch is how many fields one HSCAN asks for.
const scanBatch = 512

func (r *Redis) Scan(ctx context.Context, table string, fn func(string, []byte) error) error {
	if err := check(table, nil, nil); err != nil {
		return err
	}
	var cursor uint64
	seen := map[string]bool{} // HSCAN may return a field twice (while the hash is rehashed)
	for {
		kv, next, err := r.c.HScan(ctx, r.key(table), cursor, "", scanBatch).Result()
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if seen[kv[i]] {
				continue
			}
			seen[kv[i]] = true
			if err := fn(kv[i], []byte(kv[i+1])); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

func (r *Redis) Persistent() bool { return true }

func (r *Redis) Close() error { return r.c.Close() }
