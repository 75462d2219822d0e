package controller

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/replicaset"
	"github.com/raygo/raygo/internal/scheduler"
	"github.com/raygo/raygo/internal/serve/goapp"
	"github.com/raygo/raygo/internal/serve/routes"
	"github.com/raygo/raygo/serve/config"
)

func registration(job string) goapp.Registration {
	cpus := 0.25
	return goapp.Registration{Name: "shop", JobID: job, Ingress: "Cart", RoutePrefix: "/shop", Deployments: []goapp.Deployment{
		{Name: "Cart", Class: goapp.ClassName("Cart"), HTTP: true, Config: config.Deployment{NumReplicas: config.Replicas(2),
			RayActorOptions: &config.RayActorOptions{NumCPUs: &cpus}, UserConfig: map[string]any{"discount": 10}}},
		{Name: "Model", Class: goapp.ClassName("Model"), Config: config.Deployment{}},
	}}
}

func TestResolve(t *testing.T) {
	job := ids.New().String()
	c, err := New(Options{Launcher: localNodes{}, Table: routes.NewTable()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Register(context.Background(), registration(job)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, yaml string
		totals     []map[string]float64
		want       []string // substrings of the error; none: valid
		check      func(t *testing.T, a config.Application)
	}{
		{name: "the code's options", yaml: "applications: [{name: s, route_prefix: /s, import_path: shop}]\n", check: func(t *testing.T, a config.Application) {
			if a.Ingress != "Cart" || a.ImportPath != "shop@"+job || len(a.Deployments) != 2 {
				t.Fatalf("resolved %+v", a)
			}
			cart, model := a.Deployments[0], a.Deployments[1]
			if cart.NumReplicas.N != 2 || *cart.RayActorOptions.NumCPUs != 0.25 || cart.UserConfig["discount"] != 10 {
				t.Errorf("Cart: %+v", cart)
			}
			if model.NumReplicas.N != config.DefaultNumReplicas || *model.MaxOngoingRequests != config.DefaultMaxOngoingRequests {
				t.Errorf("Model without options: defaults not filled: %+v", model)
			}
		}},
		{name: "the file's over the code's", yaml: "applications: [{name: s, import_path: shop, deployments: [{name: Cart, num_replicas: 5, user_config: {discount: 20}}]}]\n",
			check: func(t *testing.T, a config.Application) {
				cart := a.Deployments[0]
				if cart.NumReplicas.N != 5 || cart.UserConfig["discount"] != 20 || *cart.RayActorOptions.NumCPUs != 0.25 {
					t.Errorf("Cart: %+v (want the file's count and user config, the code's resources)", cart)
				}
			}},
		{name: "unregistered", yaml: "applications: [{name: s, import_path: nope}]\n", want: []string{`import_path "nope" names no registered Go application`}},
		{name: "unknown deployment", yaml: "applications: [{name: s, import_path: shop, deployments: [{name: Carts}]}]\n",
			want: []string{`deployment "Carts" is not one of Go application shop's (Cart, Model)`}},
		{name: "impossible resources", yaml: "applications: [{name: s, import_path: shop, deployments: [{name: Model, ray_actor_options: {num_gpus: 4}}]}]\n",
			totals: []map[string]float64{{"CPU": 8}}, want: []string{"impossible resources", `"Model"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Check([]byte(tc.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Resolve(cfg, tc.totals)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, out.Applications[0])
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Resolve: %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Resolve: %v\nwant %q in it", err, w)
				}
			}
		})
	}
}

func TestRegisterRefuses(t *testing.T) {
	c, err := New(Options{Launcher: localNodes{}, Table: routes.NewTable()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bad := registration("not-a-job")
	bad.Ingress = "Nope"
	bad.Deployments[1].Class = "main.Model"
	err = c.Register(context.Background(), bad)
	for _, w := range []string{`job_id "not-a-job"`, `class "main.Model"`, `ingress "Nope"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Register: %v, want %q in it", err, w)
		}
	}
}

// localNodes is a Launcher neighbour with one node; command replicas
// are not for it.
type localNodes struct{}

var oneNode = ids.New().String()

func (localNodes) Nodes(context.Context) ([]scheduler.Node, error) {
	return []scheduler.Node{{ID: oneNode, Address: "127.0.0.1:1", Alive: true, Total: map[string]float64{"CPU": 4}, Available: map[string]float64{"CPU": 4}}}, nil
}

func (localNodes) Start(context.Context, scheduler.Node, *pb.ReplicaStart) (*replicaset.Process, error) {
	return nil, errors.New("localNodes starts no command replicas")
}

// fakeActors is the control store's actor service as Go replicas see it:
// a created actor's constructor runs (asks for its Init, reports the
// address of a replica HTTP server) and it becomes ALIVE; KillActor and
// crash make it DEAD.
type fakeActors struct {
	c       *Controller
	replica *httptest.Server // what every actor "listens" with

	mu      sync.Mutex
	created []*pb.ActorInfo
	state   map[ids.ID]*pb.ActorInfo
	changed chan struct{}
}

func (f *fakeActors) CreateActor(_ context.Context, req *pb.CreateActorRequest) (*pb.CreateActorReply, error) {
	a := req.GetActor()
	aid := ids.MustFromBytes(a.GetActorId())
	f.mu.Lock()
	f.created = append(f.created, a)
	f.state[aid] = &pb.ActorInfo{ActorId: a.GetActorId(), State: pb.ActorState_ACTOR_STATE_PENDING_CREATION, Version: 1}
	f.mu.Unlock()
	go func() { // the constructor
		if _, ok := f.c.goReplicaInit(aid); !ok {
			f.set(aid, pb.ActorState_ACTOR_STATE_DEAD, "no init")
			return
		}
		f.c.goReplicaAddress(aid, strings.TrimPrefix(f.replica.URL, "http://"))
		f.set(aid, pb.ActorState_ACTOR_STATE_ALIVE, "")
	}()
	return &pb.CreateActorReply{Actor: a}, nil
}

func (f *fakeActors) set(aid ids.ID, st pb.ActorState, cause string) {
	f.mu.Lock()
	a := f.state[aid]
	a.State, a.Version = st, a.Version+1
	if cause != "" {
		a.DeathCause = &pb.ErrorInfo{Message: cause}
	}
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeActors) WaitActor(ctx context.Context, req *pb.WaitActorRequest) (*pb.WaitActorReply, error) {
	aid := ids.MustFromBytes(req.GetActorId())
	for {
		f.mu.Lock()
		a, ch := f.state[aid], f.changed
		info := &pb.ActorInfo{ActorId: a.ActorId, State: a.State, Version: a.Version, DeathCause: a.DeathCause, Pid: 42}
		f.mu.Unlock()
		if info.Version > req.GetSinceVersion() {
			return &pb.WaitActorReply{Actor: info}, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (f *fakeActors) ListActors(context.Context, *pb.ListActorsRequest) (*pb.ListActorsReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reply := &pb.ListActorsReply{}
	for _, a := range f.created {
		st := f.state[ids.MustFromBytes(a.GetActorId())]
		reply.Actors = append(reply.Actors, &pb.ActorInfo{ActorId: a.GetActorId(), Name: a.GetName(), Namespace: a.GetNamespace(), State: st.State})
	}
	return reply, nil
}

func (f *fakeActors) KillActor(_ context.Context, req *pb.KillActorRequest) (*pb.KillActorReply, error) {
	f.set(ids.MustFromBytes(req.GetActorId()), pb.ActorState_ACTOR_STATE_DEAD, req.GetReason())
	return &pb.KillActorReply{}, nil
}

// TestActorLauncher starts a Go replica through the launcher with fakes
// of the control store and of the replica: the actor it creates, the
// process it returns, a crash, and a stop that drains before it kills.
func TestActorLauncher(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	replica := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path+" token="+r.Header.Get(goapp.TokenHeader))
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer replica.Close()
	fa := &fakeActors{replica: replica, state: map[ids.ID]*pb.ActorInfo{}, changed: make(chan struct{})}
	c, err := New(Options{Launcher: localNodes{}, Table: routes.NewTable(), Actors: fa, UpstreamToken: "up"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fa.c = c
	job := ids.New()
	ctx := context.Background()
	if err := c.Register(ctx, registration(job.String())); err != nil {
		t.Fatal(err)
	}
	cfg, err := Check([]byte("applications: [{name: s, route_prefix: /s, import_path: shop, deployments: [{name: Cart, num_replicas: 1, graceful_shutdown_wait_loop_s: 0.1, graceful_shutdown_timeout_s: 0.3}, {name: Model, num_replicas: 1, graceful_shutdown_wait_loop_s: 0.1, graceful_shutdown_timeout_s: 0.3}]}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// Both deployments' replicas are created as actors and become ready.
	waitFor(t, "two ready replicas", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.ready) == 2
	})
	fa.mu.Lock()
	created := append([]*pb.ActorInfo(nil), fa.created...)
	fa.mu.Unlock()
	if len(created) != 2 {
		t.Fatalf("%d actors created, want 2", len(created))
	}
	for _, a := range created {
		spec := a.GetCreation()
		if !a.GetDetached() || a.GetNamespace() != goapp.ReplicaNamespace || !strings.HasPrefix(a.GetName(), "SERVE_REPLICA::s#") ||
			ids.MustFromBytes(a.GetJobId()) != job || spec.GetStrategy() != pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY ||
			len(spec.GetScheduling().GetNodeId()) == 0 || spec.GetFunction() != a.GetClassName() || !spec.GetActorCreation() {
			t.Errorf("replica actor: %v", a)
		}
		if a.GetClassName() == goapp.ClassName("Cart") && spec.GetResources().GetAmounts()["CPU"] != 0.25 {
			t.Errorf("Cart replica resources %v, want the code's 0.25 CPU", spec.GetResources().GetAmounts())
		}
	}
	// Handles see the ready replicas.
	tgt, err := c.HandleTarget("s", "Model")
	if err != nil || len(tgt.Replicas) != 1 || !strings.HasPrefix(tgt.Replicas[0].ActorName, "SERVE_REPLICA::s#Model#") {
		t.Fatalf("HandleTarget: %+v %v", tgt, err)
	}

	// A crash (the actor DEAD on its own): the slot starts another.
	first := ids.MustFromBytes(created[0].GetActorId())
	fa.set(first, pb.ActorState_ACTOR_STATE_DEAD, "worker process died")
	waitFor(t, "a replacement actor", func() bool {
		fa.mu.Lock()
		defer fa.mu.Unlock()
		return len(fa.created) == 3
	})
	waitFor(t, "two ready replicas again", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.ready) == 2
	})

	// Shutdown drains each replica (with the token) before killing it
	// (this fake listener stays open: the drain timeout ends the wait).
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replicas killed", func() bool {
		fa.mu.Lock()
		defer fa.mu.Unlock()
		dead := 0
		for _, a := range fa.state {
			if a.State == pb.ActorState_ACTOR_STATE_DEAD {
				dead++
			}
		}
		return dead == 3
	})
	mu.Lock()
	defer mu.Unlock()
	drains := 0
	for _, c := range calls {
		if strings.HasPrefix(c, "POST "+goapp.DrainPath) {
			drains++
			if !strings.HasSuffix(c, "token=up") {
				t.Errorf("drain without the upstream token: %s", c)
			}
		}
	}
	if drains != 2 {
		t.Errorf("%d drains, want 2 (the replicas running at shutdown): %v", drains, calls)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLoadStopsOldReplicas: a controller starting on a head that kept
// Go replica actors (restarted with storage) stops them; other actors
// are left alone.
func TestLoadStopsOldReplicas(t *testing.T) {
	fa := &fakeActors{state: map[ids.ID]*pb.ActorInfo{}, changed: make(chan struct{})}
	alive := func(name, ns string) ids.ID {
		aid := ids.New()
		fa.created = append(fa.created, &pb.ActorInfo{ActorId: aid.Bytes(), Name: name, Namespace: ns})
		fa.state[aid] = &pb.ActorInfo{ActorId: aid.Bytes(), State: pb.ActorState_ACTOR_STATE_ALIVE, Version: 2}
		return aid
	}
	old := alive(goapp.ReplicaActorName("shop", "Cart", "0-abc"), goapp.ReplicaNamespace)
	other := alive("SERVE_REPLICA::not-in-serve", "default")
	user := alive("Cart", goapp.ReplicaNamespace)
	c, err := New(Options{Launcher: localNodes{}, Table: routes.NewTable(), Actors: fa})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[ids.ID]pb.ActorState{old: pb.ActorState_ACTOR_STATE_DEAD, other: pb.ActorState_ACTOR_STATE_ALIVE, user: pb.ActorState_ACTOR_STATE_ALIVE} {
		if got := fa.state[id].State; got != want {
			t.Errorf("actor %s: %v, want %v", id, got, want)
		}
	}
}
