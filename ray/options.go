package ray

import (
	"strconv"

	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

// Options come in one type per place they are used, so that an option
// given where it has no meaning does not compile:
//
//	InitOption      Init
//	TaskOption      a remote function's Options
//	ActorOption     an actor class's Options
//	CallOption      an actor method's Options
//	GetActorOption  GetActor
//	ListOption      ListNamedActors
//	CancelOption    Cancel
//	KillOption      Kill
//	RegisterOption  Func0…FuncV, Actor0, Actor1, Method0…Method2
//
// An option with a meaning in several places returns a type that is
// several of these at once: NumCPUs returns a ResourceOption, which is an
// InitOption (the embedded node's CPUs), a TaskOption and an ActorOption
// (the request), as in Ray. Values are checked where the option is used:
// a bad value (NumCPUs(-1), MaxRetries(-2)) makes that call fail with an
// error matching ErrInvalidRequest that names the option.

// InitOption configures Init.
type InitOption interface{ applyInit(*options) }

// TaskOption configures the calls of a remote function (its Options).
type TaskOption interface{ applyTask(*options) }

// ActorOption configures an actor's creation (an actor class's Options).
type ActorOption interface{ applyActor(*options) }

// CallOption configures calls of an actor method (its Options). Options
// given to the method handle stored in a package variable are the
// method's defaults; a copy made with Options for one call overrides them.
type CallOption interface{ applyCall(*options) }

// GetActorOption configures GetActor.
type GetActorOption interface{ applyGetActor(*options) }

// ListOption configures ListNamedActors.
type ListOption interface{ applyList(*options) }

// CancelOption configures Cancel.
type CancelOption interface{ applyCancel(*options) }

// KillOption configures Kill.
type KillOption interface{ applyKill(*options) }

// RegisterOption configures the registration of a function, actor class
// or method.
type RegisterOption interface{ applyRegister(*options) }

// options is what all options write; each consumer reads its fields.
type options struct {
	// Init
	address         string
	token           string
	namespace       string
	inlineThreshold int
	storeBytes      int64
	spillDir        string
	servePort       *int
	serveGRPCPort   *int
	logWorkers      *bool
	taskEvents      *bool
	failInfeasible  bool
	defaultLifetime ActorLifetime
	gcHeadroom      *uint64 // nil: gctune.DefaultHeadroom

	// Init, tasks and actors: WithRuntimeEnv (runtimeenv.go)
	runtimeEnv *RuntimeEnv

	// resources (Init: node totals; tasks and actors: requests)
	res resources.Set

	// tasks and actor calls
	maxRetries      *int
	oomRetries      *int
	retryExceptions bool
	retryTypes      []string
	name            string
	strategy        pb.SchedulingStrategy
	affinityNode    string
	affinitySoft    bool
	labels, prefer  []LabelMatch
	group           *PlacementGroupHandle
	bundle          int
	capture         bool

	// actors (maxTaskRetries: also per call)
	getIfExists    bool
	lifetime       ActorLifetime
	maxRestarts    int
	maxTaskRetries *int
	maxConcurrency int

	// lookups
	allNamespaces bool

	// Cancel / Kill
	force        bool
	noRecursive  bool
	allowRestart bool

	// registration
	regName *string
}

// opt is the body every option type shares.
type opt struct{ f func(*options) }

func (o opt) apply(x *options) {
	if o.f != nil {
		o.f(x)
	}
}

type (
	initOpt     struct{ opt }
	taskOpt     struct{ opt }
	actorOpt    struct{ opt }
	listOpt     struct{ opt }
	cancelOpt   struct{ opt }
	killOpt     struct{ opt }
	registerOpt struct{ opt }
)

func (o initOpt) applyInit(x *options)         { o.apply(x) }
func (o taskOpt) applyTask(x *options)         { o.apply(x) }
func (o actorOpt) applyActor(x *options)       { o.apply(x) }
func (o listOpt) applyList(x *options)         { o.apply(x) }
func (o cancelOpt) applyCancel(x *options)     { o.apply(x) }
func (o killOpt) applyKill(x *options)         { o.apply(x) }
func (o registerOpt) applyRegister(x *options) { o.apply(x) }

// ResourceOption is an InitOption (the embedded node's totals), a
// TaskOption and an ActorOption (what the task or actor holds while it
// runs). Made by NumCPUs, NumGPUs, Memory and Resources.
type ResourceOption struct{ opt }

func (o ResourceOption) applyInit(x *options)  { o.apply(x) }
func (o ResourceOption) applyTask(x *options)  { o.apply(x) }
func (o ResourceOption) applyActor(x *options) { o.apply(x) }

// NameOption is a TaskOption and a CallOption (a display name) and an
// ActorOption (the actor's name in its namespace). Made by Name.
type NameOption struct{ opt }

func (o NameOption) applyTask(x *options)  { o.apply(x) }
func (o NameOption) applyActor(x *options) { o.apply(x) }
func (o NameOption) applyCall(x *options)  { o.apply(x) }
func (o NameOption) applyGroup(x *options) { o.apply(x) }

// NamespaceOption is an InitOption (the job's namespace), an ActorOption
// (the namespace of the actor's name), a GetActorOption and a ListOption
// (where to look). Made by Namespace.
type NamespaceOption struct{ opt }

func (o NamespaceOption) applyInit(x *options)     { o.apply(x) }
func (o NamespaceOption) applyActor(x *options)    { o.apply(x) }
func (o NamespaceOption) applyGetActor(x *options) { o.apply(x) }
func (o NamespaceOption) applyList(x *options)     { o.apply(x) }
func (o NamespaceOption) applyGroup(x *options)    { o.apply(x) }

// RetryExceptionsOption is a TaskOption and a CallOption. Made by
// RetryExceptions.
type RetryExceptionsOption struct{ opt }

func (o RetryExceptionsOption) applyTask(x *options) { o.apply(x) }
func (o RetryExceptionsOption) applyCall(x *options) { o.apply(x) }

// MaxTaskRetriesOption is an ActorOption (the default of the actor's
// calls) and a CallOption (one method's, or one call's). Made by
// MaxTaskRetries.
type MaxTaskRetriesOption struct{ opt }

func (o MaxTaskRetriesOption) applyActor(x *options) { o.apply(x) }
func (o MaxTaskRetriesOption) applyCall(x *options)  { o.apply(x) }

// StrategyOption is a TaskOption and an ActorOption. Made by Spread,
// NodeAffinity, NodeLabels and PreferNodeLabels.
type StrategyOption struct{ opt }

func (o StrategyOption) applyTask(x *options)  { o.apply(x) }
func (o StrategyOption) applyActor(x *options) { o.apply(x) }

// -------------------------------------------------------------- Init only

// Address connects Init to a running cluster ("host:port" of its head, or
// "auto" for the head started on this machine by `raygo start --head`).
// Without it (and without RAYGO_ADDRESS) Init starts an embedded cluster.
func Address(addr string) InitOption { return initOpt{opt{func(o *options) { o.address = addr }}} }

// Token sets the cluster token (default: RAYGO_TOKEN, or the token file of
// the local head's session).
func Token(t string) InitOption { return initOpt{opt{func(o *options) { o.token = t }}} }

// InlineThreshold sets the largest encoded value, in bytes, that travels
// inline with its owner instead of through the object store. Default
// (and 0): 100 KiB; at most 64 MiB. Workers of the job use the same
// threshold.
func InlineThreshold(n int) InitOption {
	return initOpt{opt{func(o *options) { o.inlineThreshold = n }}}
}

// ObjectStoreMemory sets the embedded node's object store size.
func ObjectStoreMemory(bytes int64) InitOption {
	return initOpt{opt{func(o *options) { o.storeBytes = bytes }}}
}

// SpillDir sets where the embedded node spills objects when its store is
// full, and keeps objects larger than the store (default: the session
// directory's spill/). Its files are removed at Shutdown.
func SpillDir(dir string) InitOption { return initOpt{opt{func(o *options) { o.spillDir = dir }}} }

// ServePort makes the embedded cluster's node run Serve's HTTP proxy on
// 127.0.0.1:port (0: a free port), as `raygo start --serve-port` does, so
// that applications deployed with serve.Run answer HTTP there
// (serve.GetStatus lists the URLs). Without it the embedded cluster runs
// no proxy; handles work either way.
func ServePort(port int) InitOption {
	return initOpt{opt{func(o *options) { o.servePort = &port }}}
}

// ServeGRPCPort makes the embedded cluster's node also run Serve's gRPC
// proxy on 127.0.0.1:port (0: a free port), as `raygo start
// --serve-grpc-port`; it needs ServePort too.
func ServeGRPCPort(port int) InitOption {
	return initOpt{opt{func(o *options) { o.serveGRPCPort = &port }}}
}

// LogWorkers sets whether the output of the job's workers, on every node,
// is printed on the driver's stderr with a "(Name pid=…, node=…)" prefix
// and deduplicated (Ray's log_to_driver; see docs/logs.md). Default true,
// for an embedded cluster as for one joined by address.
func LogWorkers(on bool) InitOption { return initOpt{opt{func(o *options) { o.logWorkers = &on }}} }

// TaskEvents sets whether the job's processes (the driver and its
// workers) record task events for the state API and the timeline
// (docs/taskevents.md). Default true; RAYGO_TASK_EVENTS=0 in the
// environment switches them off too.
func TaskEvents(on bool) InitOption { return initOpt{opt{func(o *options) { o.taskEvents = &on }}} }

// FailIfInfeasible makes tasks and actors whose resource request no node
// of the cluster can satisfy fail at once with an *InfeasibleError. By
// default they wait, as in Ray: the driver is warned once per resource
// shape, the demand shows in `raygo status`, and they run when a node
// that fits joins (Cancel ends them).
func FailIfInfeasible() InitOption {
	return initOpt{opt{func(o *options) { o.failInfeasible = true }}}
}

// GCHeadroom sets how much the driver's heap may grow past its live size
// before Go collects, while the live heap is small (this process only;
// worker processes always keep 32 MiB). Default 32 MiB, as workers; 0
// leaves Go's collector as it is. A driver whose live heap is a few MiB
// otherwise collects dozens of times a second while it submits calls.
// GOGC in the environment turns it off; a GC percent set before Init is
// never lowered, and GOMEMLIMIT still applies. Shutdown restores the GC
// percent Init found.
func GCHeadroom(bytes uint64) InitOption {
	return initOpt{opt{func(o *options) { o.gcHeadroom = &bytes }}}
}

// ActorLifetime says whether an actor outlives the process that created
// it (Ray's lifetime="detached").
type ActorLifetime int

const (
	// NonDetached actors end when their owner (the process that created
	// them) dies, when the job ends, or when no handle to them remains.
	NonDetached ActorLifetime = iota + 1
	// Detached actors outlive their creator and the job; they live until
	// Kill, Terminate, ExitActor or the cluster stops. They must be named
	// (they can only be found by name).
	Detached
)

func (l ActorLifetime) String() string {
	switch l {
	case NonDetached:
		return "NonDetached"
	case Detached:
		return "Detached"
	case 0:
		return "the job's default"
	}
	return "ActorLifetime(" + strconv.Itoa(int(l)) + ")"
}

// DefaultActorLifetime sets the lifetime of the job's actors that do not
// choose one with Lifetime (Ray's JobConfig default_actor_lifetime). It
// applies to actors created by the driver and by the job's tasks and
// actors. Default NonDetached.
func DefaultActorLifetime(l ActorLifetime) InitOption {
	return initOpt{opt{func(o *options) { o.defaultLifetime = l }}}
}

// --------------------------------------------------- resources (several)

// NumCPUs requests CPUs for a task or actor, or sets the embedded node's
// CPUs in Init. Amounts below 1 may be fractions (0.5 shares a CPU);
// above 1 they must be whole, as in Ray. Tasks default to 1 CPU, actors
// to 0.
func NumCPUs(n float64) ResourceOption {
	return ResourceOption{opt{func(o *options) { o.resource(resources.CPU, n) }}}
}

// NumGPUs requests GPUs (fractions below 1 share a GPU; above 1 whole
// numbers), or sets the embedded node's GPUs in Init.
func NumGPUs(n float64) ResourceOption {
	return ResourceOption{opt{func(o *options) { o.resource(resources.GPU, n) }}}
}

// Memory requests bytes of memory, or sets the embedded node's memory.
func Memory(bytes float64) ResourceOption {
	return ResourceOption{opt{func(o *options) { o.resource(resources.Memory, bytes) }}}
}

// Resources requests (or, in Init, provides) custom resources.
func Resources(r map[string]float64) ResourceOption {
	return ResourceOption{opt{func(o *options) {
		for k, v := range r {
			o.resource(k, v)
		}
	}}}
}

func (o *options) resource(name string, v float64) {
	if o.res == nil {
		o.res = resources.Set{}
	}
	o.res[name] = v
}

// Name sets a display name for a task or actor call (shown in logs and
// errors), or the name of an actor, unique among the live actors of its
// namespace. An empty name leaves an actor unnamed; a Detached actor must
// have one.
func Name(name string) NameOption { return NameOption{opt{func(o *options) { o.name = name }}} }

// Namespace sets the namespace of named actors: in Init, the job's
// default; in an actor's creation, that actor's; in GetActor and
// ListNamedActors, where to look.
func Namespace(ns string) NamespaceOption {
	return NamespaceOption{opt{func(o *options) { o.namespace = ns }}}
}

// Spread asks the scheduler to spread tasks or actors across nodes
// instead of packing them.
func Spread() StrategyOption {
	return StrategyOption{opt{func(o *options) { o.strategy = pb.SchedulingStrategy_SCHEDULING_STRATEGY_SPREAD }}}
}

// RetryExceptions makes application errors retryable too: within
// MaxRetries for tasks, within MaxTaskRetries for actor calls. With type
// names (as given to RegisterError) only those errors are retried.
func RetryExceptions(typeNames ...string) RetryExceptionsOption {
	return RetryExceptionsOption{opt{func(o *options) {
		o.retryExceptions = true
		o.retryTypes = typeNames
	}}}
}

// MaxTaskRetries sets how often an actor call is retried when the actor's
// process dies while it runs (on the restarted actor; see MaxRestarts),
// or run again to rebuild a result of it that was lost with its node (as
// Ray does): default 0 (at most once: such a result is ObjectLost), -1
// for no limit. On an actor it is the
// default of all its calls; on a method handle it overrides that for the
// method or, on a copy made for one call, for that call.
func MaxTaskRetries(n int) MaxTaskRetriesOption {
	return MaxTaskRetriesOption{opt{func(o *options) { o.maxTaskRetries = &n }}}
}

// ------------------------------------------------------------- tasks only

// MaxRetries sets how often a task is retried after system failures
// (worker or node death); default 3, -1 for no limit.
func MaxRetries(n int) TaskOption { return taskOpt{opt{func(o *options) { o.maxRetries = &n }}} }

// DefaultOOMRetries is how often a task whose worker the memory monitor
// killed is retried, by default.
const DefaultOOMRetries = 5

// OOMRetries sets how often a task is retried after the node's memory
// monitor killed its worker (default DefaultOOMRetries, -1 for no limit).
// These retries have their own counter, separate from MaxRetries, and
// wait a little longer each time (1 s, 2 s, … up to 10 s) so memory can
// come back.
func OOMRetries(n int) TaskOption { return taskOpt{opt{func(o *options) { o.oomRetries = &n }}} }

// ------------------------------------------------------------ actors only

// GetIfExists makes a named actor's creation return the existing live
// actor of that name instead of failing with ErrAlreadyExists.
func GetIfExists() ActorOption { return actorOpt{opt{func(o *options) { o.getIfExists = true }}} }

// LifetimeOption is an ActorOption and a PlacementGroupOption. Made by
// Lifetime.
type LifetimeOption struct{ opt }

func (o LifetimeOption) applyActor(x *options) { o.apply(x) }
func (o LifetimeOption) applyGroup(x *options) { o.apply(x) }

// Lifetime sets whether an actor outlives its creator (Detached) or not
// (NonDetached), overriding the job's DefaultActorLifetime; for a
// placement group, whether it outlives its job (default NonDetached).
func Lifetime(l ActorLifetime) LifetimeOption {
	return LifetimeOption{opt{func(o *options) { o.lifetime = l }}}
}

// MaxRestarts sets how often an actor is restarted (its constructor run
// again) after its process dies; default 0, -1 for no limit.
func MaxRestarts(n int) ActorOption { return actorOpt{opt{func(o *options) { o.maxRestarts = n }}} }

// MaxConcurrency sets how many calls an actor runs at once (default 1).
// Above 1 its methods must be safe for concurrent use.
func MaxConcurrency(n int) ActorOption {
	return actorOpt{opt{func(o *options) { o.maxConcurrency = n }}}
}

// ------------------------------------------------------------- the others

// AllNamespaces makes ListNamedActors list every namespace.
func AllNamespaces() ListOption { return listOpt{opt{func(o *options) { o.allNamespaces = true }}} }

// Force makes Cancel kill the worker process running the task (other
// tasks in flight on it are retried). Actor calls cannot be forced: use
// Kill.
func Force() CancelOption { return cancelOpt{opt{func(o *options) { o.force = true }}} }

// Recursive(false) makes Cancel leave alone the tasks the cancelled task
// submitted; by default they are cancelled too, as in Ray.
func Recursive(on bool) CancelOption { return cancelOpt{opt{func(o *options) { o.noRecursive = !on }}} }

// AllowRestart makes Kill let the actor restart (if it has restarts left).
func AllowRestart() KillOption { return killOpt{opt{func(o *options) { o.allowRestart = true }}} }

// RegisterName registers a function, actor class or method under name
// instead of the name derived from it (see Func0). Names must be unique
// in the binary and stable across its builds: every process of a job
// finds code by them.
func RegisterName(name string) RegisterOption {
	return registerOpt{opt{func(o *options) { o.regName = &name }}}
}

// ------------------------------------------------------------- collecting

// collect applies opts in order (later ones win) to fresh options.
func collect[O any](opts []O, apply func(O, *options)) *options {
	o := &options{}
	for _, x := range opts {
		if any(x) != nil {
			apply(x, o)
		}
	}
	return o
}
