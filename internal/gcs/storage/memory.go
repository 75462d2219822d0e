package storage

import (
	"context"
	"slices"
	"sync"
)

// Memory is a Store that keeps everything in the process: nothing
// survives it.
type Memory struct {
	mu     sync.Mutex
	tables map[string]map[string][]byte
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory { return &Memory{tables: map[string]map[string][]byte{}} }

func (m *Memory) Put(_ context.Context, table string, kvs ...KV) error {
	if err := check(table, kvs, nil); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tables[table]
	if t == nil {
		t = map[string][]byte{}
		m.tables[table] = t
	}
	for _, kv := range kvs {
		t[kv.Key] = slices.Clone(kv.Value)
	}
	return nil
}

func (m *Memory) Delete(_ context.Context, table string, keys ...string) error {
	if err := check(table, nil, keys); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.tables[table], k)
	}
	return nil
}

func (m *Memory) Get(_ context.Context, table, key string) ([]byte, bool, error) {
	if err := check(table, nil, []string{key}); err != nil {
		return nil, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.tables[table][key]
	return slices.Clone(v), ok, nil
}

func (m *Memory) Scan(_ context.Context, table string, fn func(string, []byte) error) error {
	if err := check(table, nil, nil); err != nil {
		return err
	}
	m.mu.Lock()
	kvs := make([]KV, 0, len(m.tables[table]))
	for k, v := range m.tables[table] {
		kvs = append(kvs, KV{k, slices.Clone(v)})
	}
	m.mu.Unlock()
	for _, kv := range kvs {
		if err := fn(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

func (m *Memory) Persistent() bool { return false }

func (m *Memory) Close() error { return nil }
