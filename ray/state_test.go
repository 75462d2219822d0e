//go:build !windows

package ray_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/ray"
)

// ActorsSeenFromTask lists the alive actors from inside a task: workers
// reach the state API with the token their node daemon gave them.
var ActorsSeenFromTask = ray.Func1(func(ctx context.Context, name string) (int, error) {
	rows, err := ray.ListActors(ctx, ray.Filter("name", name))
	return len(rows), err
}, ray.RegisterName("test.ActorsSeenFromTask"))

func TestStateFunctions(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	c := Counter.Options(ray.Name("state-probe")).Remote(ctx)
	if _, err := Inc.Remote(ctx, c).Get(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := Shout.Remote(ctx, "hi").Get(ctx); err != nil || s != "HI" {
		t.Fatalf("Shout = %q, %v", s, err)
	}

	nodes, err := ray.ListNodes(ctx)
	if err != nil || len(nodes) != 1 || !nodes[0].IsHeadNode || nodes[0].State != "ALIVE" || nodes[0].ResourcesTotal["CPU"] != 2 {
		t.Fatalf("ListNodes = %+v, %v", nodes, err)
	}
	actors, err := ray.ListActors(ctx, ray.Filter("name", "state-probe"), ray.Detail())
	if err != nil || len(actors) != 1 || actors[0].ActorID != c.ID() || actors[0].State != "ALIVE" || actors[0].ClassName != "test.Counter" ||
		actors[0].NodeID != nodes[0].NodeID || actors[0].WorkerID == "" {
		t.Fatalf("ListActors(name=state-probe) = %+v, %v", actors, err)
	}
	if n, err := ActorsSeenFromTask.Remote(ctx, "state-probe").Get(ctx); err != nil || n != 1 {
		t.Errorf("a task listing actors saw %d, %v; want 1", n, err)
	}
	a, err := ray.GetActorState(ctx, c.ID()[len(c.ID())-12:])
	if err != nil || a.ActorID != c.ID() || a.Name != "state-probe" {
		t.Errorf("GetActorState(short id) = %+v, %v", a, err)
	}
	if _, err := ray.GetActorState(ctx, "0123456789abcdef0123456789abcdef"); !ray.IsNotFound(err) {
		t.Errorf("GetActorState(unknown) = %v, want not found", err)
	}
	workers, err := ray.ListWorkers(ctx, ray.FilterNot("worker_type", "DRIVER"), ray.Detail())
	if err != nil || len(workers) == 0 {
		t.Fatalf("ListWorkers = %+v, %v", workers, err)
	}
	hosts := 0
	for _, w := range workers {
		if len(w.ActorIDs) == 1 && w.ActorIDs[0] == c.ID() {
			hosts++
		}
	}
	if hosts != 1 {
		t.Errorf("workers hosting the actor: %d, want 1: %+v", hosts, workers)
	}
	if rows, err := ray.ListJobs(ctx, ray.Filter("status", "RUNNING")); err != nil || len(rows) != 1 || rows[0].Type != "DRIVER" {
		t.Errorf("ListJobs(RUNNING) = %+v, %v", rows, err)
	}
	if rows, err := ray.ListNodes(ctx, ray.Limit(0)); err != nil || len(rows) != 1 {
		t.Errorf("ListNodes(Limit(0)) = %v, %v; want the default limit", rows, err)
	}
	if _, err := ray.ListNodes(ctx, ray.Limit(100_001)); !errors.Is(err, ray.ErrInvalidRequest) {
		t.Errorf("Limit(100001): %v, want ErrInvalidRequest", err)
	}
	if _, err := ray.ListNodes(ctx, ray.Filter("colour", "red")); err == nil || !strings.Contains(err.Error(), "node_id") {
		t.Errorf("an unknown filter key: %v, want an error naming the valid keys", err)
	}
	// Tasks and placement groups answer (their rows depend on other
	// features: task events, groups).
	if _, err := ray.ListTasks(ctx, ray.Limit(10)); err != nil {
		var p *ray.PartialStateError
		if !errors.As(err, &p) {
			t.Errorf("ListTasks: %v", err)
		}
	}
	if _, err := ray.ListPlacementGroups(ctx); err != nil {
		t.Errorf("ListPlacementGroups: %v", err)
	}
	if _, err := ray.ListObjects(ctx); err != nil {
		t.Errorf("ListObjects: %v", err)
	}

	// Every field the API sends has a home in the ray package's rows.
	cl, err := ray.StateClientForTest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.CloseIdle()
	for kind, row := range map[string]any{"nodes": &ray.NodeRow{}, "jobs": &ray.JobRow{}, "actors": &ray.ActorRow{},
		"workers": &ray.WorkerRow{}, "tasks": &ray.TaskRow{}, "objects": &ray.ObjectRow{}, "placement_groups": &ray.PlacementGroupRow{}} {
		res, err := cl.List(ctx, kind, apiclient.ListOptions{Detail: true})
		if err != nil {
			t.Fatalf("list %s: %v", kind, err)
		}
		for _, raw := range res.Rows {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(row); err != nil {
				t.Errorf("a %s row does not fit ray's type: %v: %s", kind, err, raw)
			}
		}
	}
}

func TestStateFunctionsNeedInit(t *testing.T) {
	if _, err := ray.ListNodes(context.Background()); !errors.Is(err, ray.ErrNotInitialized) {
		t.Errorf("ListNodes before Init: %v, want ErrNotInitialized", err)
	}
}
