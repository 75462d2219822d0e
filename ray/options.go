package ray

import (
	"fmt"

	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

// Option configures Init, a task call, an actor's creation or an actor
// call. Each consumer accepts the options that make sense for it and
// rejects the others with an error naming them: NumCPUs, for example,
// sets the embedded node's CPUs in Init and the task's request in a call,
// as in Ray.
type Option func(*options)

type where int

const (
	forInit where = 1 << iota
	forTask
	forActor
	forMethod
	forGetActor
)

type options struct {
	set map[string]where // option name -> where it applies

	// Init
	address         string
	token           string
	namespace       string
	inlineThreshold int
	storeBytes      int64
	spillDir        string
	logWorkers      *bool

	// resources (Init: node totals; calls: requests)
	res resources.Set

	// tasks and calls
	numReturns      int
	maxRetries      *int
	oomRetries      *int
	retryExceptions bool
	retryTypes      []string
	name            string
	strategy        pb.SchedulingStrategy

	// actors
	getIfExists    bool
	detached       bool
	maxRestarts    int
	maxTaskRetries int
	maxConcurrency int

	// Cancel / Kill
	force        bool
	allowRestart bool
}

func (o *options) mark(name string, w where) {
	if o.set == nil {
		o.set = map[string]where{}
	}
	o.set[name] = w
}

func (o *options) resource(name string, v float64, w where) {
	if o.res == nil {
		o.res = resources.Set{}
	}
	o.res[name] = v
	o.mark(name, w)
}

func buildOptions(ctxName string, w where, opts []Option) (*options, error) {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	for name, ok := range o.set {
		if ok&w == 0 {
			return nil, fmt.Errorf("%w: option %s does not apply to %s", ErrInvalidRequest, name, ctxName)
		}
	}
	return o, nil
}

// Address connects Init to a running cluster ("host:port" of its head, or
// "auto" for the head started on this machine by `raygo start --head`).
// Without it (and without RAYGO_ADDRESS) Init starts an embedded cluster.
func Address(addr string) Option {
	return func(o *options) { o.address = addr; o.mark("Address", forInit) }
}

// Token sets the cluster token (default: RAYGO_TOKEN, or the token file of
// the local head's session).
func Token(t string) Option { return func(o *options) { o.token = t; o.mark("Token", forInit) } }

// Namespace sets the namespace for named actors: in Init, the default for
// the job; in an actor's creation or GetActor, that actor's.
func Namespace(ns string) Option {
	return func(o *options) { o.namespace = ns; o.mark("Namespace", forInit|forActor|forGetActor) }
}

// InlineThreshold sets (in Init) the largest encoded value, in bytes, that
// travels inline with its owner instead of through the object store.
// Default (and 0): 100 KiB. Workers of the job use the same threshold.
func InlineThreshold(n int) Option {
	return func(o *options) { o.inlineThreshold = n; o.mark("InlineThreshold", forInit) }
}

// ObjectStoreMemory sets (in Init) the embedded node's object store size.
func ObjectStoreMemory(bytes int64) Option {
	return func(o *options) { o.storeBytes = bytes; o.mark("ObjectStoreMemory", forInit) }
}

// SpillDir sets (in Init) where the embedded node spills objects when its
// store is full, and keeps objects larger than the store (default: the
// session directory's spill/). Its files are removed at Shutdown.
func SpillDir(dir string) Option {
	return func(o *options) { o.spillDir = dir; o.mark("SpillDir", forInit) }
}

// LogWorkers sets (in Init) whether worker output is copied to the
// driver's stderr with a "(pid=… node=…)" prefix. Default true for the
// embedded cluster.
func LogWorkers(on bool) Option {
	return func(o *options) { o.logWorkers = &on; o.mark("LogWorkers", forInit) }
}

// NumCPUs requests CPUs for a task or actor (fractions allowed), or sets
// the embedded node's CPUs in Init. Tasks default to 1 CPU, actors to 0.
func NumCPUs(n float64) Option {
	return func(o *options) { o.resource(resources.CPU, n, forInit|forTask|forActor) }
}

// NumGPUs requests GPUs (fractions below 1 share a GPU), or sets the
// embedded node's GPUs in Init.
func NumGPUs(n float64) Option {
	return func(o *options) { o.resource(resources.GPU, n, forInit|forTask|forActor) }
}

// Memory requests bytes of memory, or sets the embedded node's memory.
func Memory(bytes float64) Option {
	return func(o *options) { o.resource(resources.Memory, bytes, forInit|forTask|forActor) }
}

// Resources requests (or, in Init, provides) custom resources.
func Resources(r map[string]float64) Option {
	return func(o *options) {
		for k, v := range r {
			o.resource(k, v, forInit|forTask|forActor)
		}
	}
}

// MaxRetries sets how often a task is retried after system failures
// (worker or node death); default 3, -1 for no limit.
func MaxRetries(n int) Option {
	return func(o *options) { o.maxRetries = &n; o.mark("MaxRetries", forTask) }
}

// DefaultOOMRetries is how often a task whose worker the memory monitor
// killed is retried, by default.
const DefaultOOMRetries = 5

// OOMRetries sets how often a task is retried after the node's memory
// monitor killed its worker (default DefaultOOMRetries, -1 for no limit).
// These retries have their own counter, separate from MaxRetries, and
// wait a little longer each time (1 s, 2 s, … up to 10 s) so memory can
// come back.
func OOMRetries(n int) Option {
	return func(o *options) { o.oomRetries = &n; o.mark("OOMRetries", forTask) }
}

// RetryExceptions makes application errors retryable too (within
// MaxRetries for tasks, MaxTaskRetries for actor calls). With type names
// (as given to RegisterError) only those errors are retried.
func RetryExceptions(typeNames ...string) Option {
	return func(o *options) {
		o.retryExceptions = true
		o.retryTypes = typeNames
		o.mark("RetryExceptions", forTask|forMethod)
	}
}

// Name sets a display name for a task or call, or the name of an actor
// (unique in its namespace).
func Name(name string) Option {
	return func(o *options) { o.name = name; o.mark("Name", forTask|forActor|forMethod) }
}

// Spread asks the scheduler to spread tasks or actors across nodes.
func Spread() Option {
	return func(o *options) {
		o.strategy = pb.SchedulingStrategy_SCHEDULING_STRATEGY_SPREAD
		o.mark("Spread", forTask|forActor)
	}
}

// GetIfExists makes a named actor's creation return the existing live
// actor of that name instead of failing.
func GetIfExists() Option {
	return func(o *options) { o.getIfExists = true; o.mark("GetIfExists", forActor) }
}

// Detached makes an actor outlive its creator; it lives until killed or
// the cluster stops. Non-detached actors die with their owner.
func Detached() Option {
	return func(o *options) { o.detached = true; o.mark("Detached", forActor) }
}

// MaxRestarts sets how often an actor is restarted (its constructor run
// again) after its process dies; default 0, -1 for no limit.
func MaxRestarts(n int) Option {
	return func(o *options) { o.maxRestarts = n; o.mark("MaxRestarts", forActor) }
}

// MaxTaskRetries sets how often an actor call is retried when the actor's
// process dies while it runs; default 0 (at-most-once), -1 for no limit.
func MaxTaskRetries(n int) Option {
	return func(o *options) { o.maxTaskRetries = n; o.mark("MaxTaskRetries", forActor) }
}

// MaxConcurrency sets how many calls an actor runs at once (default 1).
func MaxConcurrency(n int) Option {
	return func(o *options) { o.maxConcurrency = n; o.mark("MaxConcurrency", forActor) }
}

// Force makes Cancel kill the worker running the task.
func Force() Option { return func(o *options) { o.force = true } }

// AllowRestart makes Kill let the actor restart (if it has restarts left).
func AllowRestart() Option { return func(o *options) { o.allowRestart = true } }
