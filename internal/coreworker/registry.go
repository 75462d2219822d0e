package coreworker

import (
	"context"
	"fmt"
	"sync"

	"github.com/raygo/raygo/internal/codec"
)

// Encoded is one encoded return value and the refs nested in it.
type Encoded struct {
	Data   []byte
	Nested []codec.Ref
}

// Func runs a registered function on encoded arguments.
type Func func(ctx context.Context, args [][]byte) ([]Encoded, error)

// Constructor builds an actor instance from encoded arguments.
type Constructor func(ctx context.Context, args [][]byte) (any, error)

// Method runs a registered actor method on an instance.
type Method func(ctx context.Context, self any, args [][]byte) ([]Encoded, error)

// Registry maps stable names to functions, actor constructors and
// methods. The same registrations happen in drivers and workers because
// both run the same binary. It is safe for concurrent use.
type Registry struct {
	mu      sync.RWMutex
	funcs   map[string]Func
	classes map[string]Constructor
	methods map[string]Method
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{funcs: map[string]Func{}, classes: map[string]Constructor{}, methods: map[string]Method{}}
}

// AddFunc registers a function; registering a name twice panics (it is a
// programming error found at init).
func (r *Registry) AddFunc(name string, f Func) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.funcs[name]; dup {
		panic(fmt.Sprintf("raygo: function %q registered twice", name))
	}
	r.funcs[name] = f
}

// AddClass registers an actor type's constructor.
func (r *Registry) AddClass(name string, c Constructor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.classes[name]; dup {
		panic(fmt.Sprintf("raygo: actor type %q registered twice", name))
	}
	r.classes[name] = c
}

// AddMethod registers an actor method under "Class.Method".
func (r *Registry) AddMethod(name string, m Method) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.methods[name]; dup {
		panic(fmt.Sprintf("raygo: actor method %q registered twice", name))
	}
	r.methods[name] = m
}

func (r *Registry) fn(name string) (Func, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.funcs[name]
	return f, ok
}

func (r *Registry) class(name string) (Constructor, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.classes[name]
	return c, ok
}

func (r *Registry) method(name string) (Method, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.methods[name]
	return m, ok
}
