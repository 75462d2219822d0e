//go:build !windows

package state_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/ray"
)

type Counter struct{ n int }

func NewCounter(context.Context) (*Counter, error)  { return &Counter{}, nil }
func (c *Counter) Inc(context.Context) (int, error) { c.n++; return c.n, nil }

func double(_ context.Context, x int) (int, error) { return 2 * x, nil }

var (
	CounterActor = ray.Actor0(NewCounter)
	Inc          = ray.Method0(CounterActor, (*Counter).Inc)
	Double       = ray.Func1(double)
)

const testToken = "state-test-token"

// testHead is a head started by a test with this test binary connected
// to it as a driver (its workers are this binary too).
type testHead struct {
	t    *testing.T
	head *node.Head
	url  string
}

func startHead(t *testing.T) *testHead {
	t.Helper()
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	t.Setenv(resources.FakeGPUsEnv, "0")
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{"CPU": 4}
	rc.SessionDir = t.TempDir()
	rc.ObjectStoreBytes = 64 << 20
	gc := gcs.DefaultConfig()
	gc.NodeTimeout = time.Minute // the silent node TestStateAPIPartialFailure registers stays alive
	h, err := node.StartHead(node.HeadConfig{GCS: gc, Raylet: rc, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	th := &testHead{t: t, head: h, url: h.APIURL()}
	if th.url == "" {
		h.Stop()
		t.Fatal("the head serves no HTTP API")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ray.Init(ctx, ray.Address(h.GCSAddress()), ray.Token(testToken), ray.LogWorkers(testing.Verbose())); err != nil {
		h.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ray.Shutdown()
		h.Stop()
	})
	return th
}

// answer is a list's (or get's) JSON answer.
type answer struct {
	Total              int               `json:"total"`
	NumAfterTruncation int               `json:"num_after_truncation"`
	NumFiltered        int               `json:"num_filtered"`
	PartialFailure     string            `json:"partial_failure_warning"`
	Warnings           []string          `json:"warnings"`
	Result             json.RawMessage   `json:"result"`
	Error              map[string]string `json:"error"`
}

func (a answer) rows(t *testing.T) []map[string]any {
	t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal(a.Result, &rows); err != nil {
		t.Fatalf("result is not a list of rows: %v: %s", err, a.Result)
	}
	return rows
}

func (a answer) row(t *testing.T) map[string]any {
	t.Helper()
	var row map[string]any
	if err := json.Unmarshal(a.Result, &row); err != nil {
		t.Fatalf("result is not a row: %v: %s", err, a.Result)
	}
	return row
}

// get calls path with the cluster token and returns the status and the
// decoded answer.
func (h *testHead) get(path string) (int, answer) {
	h.t.Helper()
	return h.getWith(testToken, path)
}

func (h *testHead) getWith(token, path string) (int, answer) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		h.t.Fatalf("GET %s: HTTP %d, not JSON: %v: %s", path, resp.StatusCode, err, raw)
	}
	return resp.StatusCode, a
}

// list gets a list and fails the test unless it answered 200.
func (h *testHead) list(path string) answer {
	h.t.Helper()
	code, a := h.get(path)
	if code != http.StatusOK {
		h.t.Fatalf("GET %s: HTTP %d: %v", path, code, a.Error)
	}
	return a
}

func filter(kv ...string) string {
	v := url.Values{}
	for _, f := range kv {
		v.Add("filter", f)
	}
	return v.Encode()
}

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStateAPIEveryKind(t *testing.T) {
	h := startHead(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Something of every kind: a named actor, a placement group, an
	// object in the shared store, tasks.
	c := CounterActor.Options(ray.Name("counter")).Remote(ctx)
	if n, err := Inc.Remote(ctx, c).Get(ctx); err != nil || n != 1 {
		t.Fatalf("Inc = %d, %v", n, err)
	}
	pg, err := ray.PlacementGroup(ctx, []ray.Bundle{{"CPU": 1}}, ray.PlacementPack)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 2<<20)
	ref, err := ray.Put(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	defer ray.Free(ref)
	if v, err := Double.Remote(ctx, 21).Get(ctx); err != nil || v != 42 {
		t.Fatalf("Double = %d, %v", v, err)
	}
	headID := h.head.Raylet().NodeID().String()

	t.Run("nodes", func(t *testing.T) {
		a := h.list("/api/v0/nodes")
		rows := a.rows(t)
		if len(rows) != 1 || rows[0]["node_id"] != headID || rows[0]["is_head_node"] != true || rows[0]["state"] != "ALIVE" {
			t.Fatalf("nodes = %v", rows)
		}
		if _, ok := rows[0]["start_time_ms"]; ok {
			t.Errorf("start_time_ms is a detail column, shown without detail: %v", rows[0])
		}
		if res, _ := rows[0]["resources_total"].(map[string]any); res["CPU"] != 4.0 {
			t.Errorf("resources_total = %v", rows[0]["resources_total"])
		}
		if rows := h.list("/api/v0/nodes?detail=true&" + filter("state=alive")).rows(t); len(rows) != 1 || rows[0]["start_time_ms"] == nil {
			t.Errorf("detail rows with state=alive = %v", rows)
		}
		if a := h.list("/api/v0/nodes?" + filter("state=DEAD")); len(a.rows(t)) != 0 || a.Total != 1 || a.NumFiltered != 0 {
			t.Errorf("state=DEAD: %+v", a)
		}
		code, a := h.get("/api/v0/nodes?" + filter("colour=red"))
		if code != http.StatusBadRequest || !strings.Contains(a.Error["message"], "node_id, node_ip") {
			t.Errorf("unknown filter key: HTTP %d %v; want 400 naming the valid keys", code, a.Error)
		}
		if code, a := h.get("/api/v0/nodes/" + headID[len(headID)-12:]); code != http.StatusOK || a.row(t)["node_id"] != headID {
			t.Errorf("get node by short id: HTTP %d %s", code, a.Result)
		}
	})

	t.Run("jobs", func(t *testing.T) {
		rows := h.list("/api/v0/jobs?" + filter("status=RUNNING")).rows(t)
		if len(rows) != 1 || rows[0]["type"] != "DRIVER" || rows[0]["job_id"] == "" {
			t.Fatalf("running jobs = %v", rows)
		}
		id := rows[0]["job_id"].(string)
		if code, a := h.get("/api/v0/jobs/" + id[:8]); code != http.StatusOK || a.row(t)["job_id"] != id {
			t.Errorf("get job by prefix: HTTP %d %s", code, a.Result)
		}
	})

	t.Run("actors", func(t *testing.T) {
		rows := h.list("/api/v0/actors?" + filter("name=counter")).rows(t)
		if len(rows) != 1 || rows[0]["actor_id"] != c.ID() || rows[0]["state"] != "ALIVE" ||
			!strings.HasSuffix(rows[0]["class_name"].(string), "Counter") || rows[0]["node_id"] != headID || rows[0]["pid"].(float64) <= 0 {
			t.Fatalf("actors named counter = %v", rows)
		}
		code, a := h.get("/api/v0/actors/" + c.ID()[len(c.ID())-12:])
		if code != http.StatusOK || a.row(t)["actor_id"] != c.ID() {
			t.Fatalf("get actor by short id: HTTP %d %s %v", code, a.Result, a.Error)
		}
		if _, ok := a.row(t)["is_detached"]; !ok {
			t.Errorf("get shows no detail columns: %s", a.Result)
		}
		if code, a := h.get("/api/v0/actors/abc"); code != http.StatusBadRequest || !strings.Contains(a.Error["message"], "at least 6") {
			t.Errorf("3-digit id: HTTP %d %v", code, a.Error)
		}
		if code, a := h.get("/api/v0/actors/" + ids.New().String()); code != http.StatusNotFound || !strings.Contains(a.Error["message"], "no actor has id") {
			t.Errorf("unknown actor: HTTP %d %v", code, a.Error)
		}
		var sum struct {
			Result struct {
				NodeIDToSummary map[string]struct {
					Summary map[string]struct {
						StateCounts map[string]int `json:"state_counts"`
					} `json:"summary"`
					TotalActors int `json:"total_actors"`
				} `json:"node_id_to_summary"`
			} `json:"result"`
		}
		a = h.list("/api/v0/actors/summarize")
		if err := json.Unmarshal([]byte(`{"result":`+string(a.Result)+`}`), &sum); err != nil {
			t.Fatal(err)
		}
		cl := sum.Result.NodeIDToSummary["cluster"]
		if cl.TotalActors != 1 || cl.Summary[CounterActor.Name()].StateCounts["ALIVE"] != 1 {
			t.Errorf("actor summary = %s", a.Result)
		}
	})

	t.Run("placement_groups", func(t *testing.T) {
		rows := h.list("/api/v0/placement_groups?detail=true").rows(t)
		if len(rows) != 1 || rows[0]["placement_group_id"] != pg.ID() || rows[0]["state"] != "CREATED" || rows[0]["bundles"] == nil {
			t.Fatalf("placement groups = %v", rows)
		}
	})

	t.Run("workers", func(t *testing.T) {
		rows := h.list("/api/v0/workers?detail=true").rows(t)
		var driver, host bool
		for _, r := range rows {
			if r["worker_type"] == "DRIVER" {
				driver = true
			}
			if ids, _ := r["actor_ids"].([]any); len(ids) == 1 && ids[0] == c.ID() && r["state"] == "ACTOR" && r["node_id"] == headID {
				host = true
			}
		}
		if !driver || !host {
			t.Fatalf("workers lack the driver (%v) or the actor's host (%v): %v", driver, host, rows)
		}
		if rows := h.list("/api/v0/workers?" + filter("worker_type=driver")).rows(t); len(rows) != 1 {
			t.Errorf("driver rows = %v", rows)
		}
		if code, a := h.get("/api/v0/workers?" + filter("pid=abc")); code != http.StatusBadRequest || !strings.Contains(a.Error["message"], "pid is an integer") {
			t.Errorf("pid=abc: HTTP %d %v", code, a.Error)
		}
	})

	t.Run("objects", func(t *testing.T) {
		var rows []map[string]any
		eventually(t, "the 2 MiB object is listed", func() bool {
			rows = h.list("/api/v0/objects?" + filter("node_id="+headID)).rows(t)
			return len(rows) > 0 && rows[0]["object_size"].(float64) >= 2<<20
		})
		if rows[0]["state"] != raylet.ObjectInMemory || rows[0]["ip"] == "" {
			t.Errorf("largest object = %v", rows[0])
		}
		a := h.list("/api/v0/objects/summarize")
		if !strings.Contains(string(a.Result), headID) || !strings.Contains(string(a.Result), `"IN_MEMORY"`) {
			t.Errorf("object summary = %s", a.Result)
		}
	})

	t.Run("limits", func(t *testing.T) {
		a := h.list("/api/v0/workers?limit=1")
		if len(a.rows(t)) != 1 || a.NumFiltered < 2 || a.Total < 2 {
			t.Errorf("limit=1: %d rows, num_filtered %d, total %d", len(a.rows(t)), a.NumFiltered, a.Total)
		}
		if code, _ := h.get("/api/v0/workers?limit=100001"); code != http.StatusBadRequest {
			t.Errorf("limit over the maximum: HTTP %d, want 400", code)
		}
	})

	t.Run("auth", func(t *testing.T) {
		if code, _ := h.getWith("", "/api/v0/nodes"); code != http.StatusUnauthorized {
			t.Errorf("no token: HTTP %d, want 401", code)
		}
	})
}

// A node that does not answer makes a warning, not a failed list.
func TestStateAPIPartialFailure(t *testing.T) {
	h := startHead(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A node registered with the control store where nothing listens: it
	// is alive to the control store until its node timeout (a minute
	// here), and every call to it fails.
	silent := ids.New()
	if _, err := pbRegister(ctx, h, silent); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v0/workers", "/api/v0/objects", "/api/v0/objects/summarize"} {
		a := h.list(path)
		if !strings.Contains(a.PartialFailure, silent.String()) || !strings.Contains(a.PartialFailure, "1 of 2 nodes") {
			t.Errorf("%s: partial_failure_warning = %q, want it to name node %s", path, a.PartialFailure, silent)
		}
	}
	// The head's own node still answered.
	rows := h.list("/api/v0/workers?" + filter("worker_type=DRIVER")).rows(t)
	if len(rows) != 1 {
		t.Errorf("driver rows = %v", rows)
	}
}

// pbRegister registers a node at an address nothing listens on.
func pbRegister(ctx context.Context, h *testHead, id ids.ID) (*pb.RegisterNodeReply, error) {
	conn, err := rpc.Dial(h.head.GCSAddress(), testToken)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return pb.NewControlStoreClient(conn).RegisterNode(ctx, &pb.RegisterNodeRequest{Node: &pb.NodeInfo{NodeId: id.Bytes(), Address: "127.0.0.1:1",
		Hostname: "silent", Total: &pb.Resources{Amounts: map[string]float64{}}, Available: &pb.Resources{Amounts: map[string]float64{}}}})
}
