// Package registry maps the stable names of remote functions, actor types
// and actor methods to the code that runs them. Drivers and workers make
// the same registrations at package init, because both run the same
// binary.
package registry

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

// New returns an empty registry.
func New() *Registry {
	return &Registry{funcs: map[string]Func{}, classes: map[string]Constructor{}, methods: map[string]Method{}}
}

// AddFunc registers a function; registering a name twice panics (it is a
// programming error found at init).
func (r *Registry) AddFunc(name string, f Func) { add(r, r.funcs, "function", name, f) }

// AddClass registers an actor type's constructor.
func (r *Registry) AddClass(name string, c Constructor) { add(r, r.classes, "actor type", name, c) }

// AddMethod registers an actor method under "Class.Method".
func (r *Registry) AddMethod(name string, m Method) { add(r, r.methods, "actor method", name, m) }

// Func returns the function registered under name.
func (r *Registry) Func(name string) (Func, bool) { return get(r, r.funcs, name) }

// Class returns the actor constructor registered under name.
func (r *Registry) Class(name string) (Constructor, bool) { return get(r, r.classes, name) }

// Method returns the actor method registered under name.
func (r *Registry) Method(name string) (Method, bool) { return get(r, r.methods, name) }

func add[V any](r *Registry, m map[string]V, what, name string, v V) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := m[name]; dup {
		panic(fmt.Sprintf("raygo: %s %q registered twice", what, name))
	}
	m[name] = v
}

func get[V any](r *Registry, m map[string]V, name string) (V, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := m[name]
	return v, ok
}
