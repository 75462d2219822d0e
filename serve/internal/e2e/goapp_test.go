//go:build !windows

package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/serve"
	"github.com/raygo/raygo/serve/config"
)

func TestMain(m *testing.M) {
	if ray.IsWorker() {
		_ = ray.Init(context.Background()) // serves tasks and replicas; never returns
	}
	if os.Getenv(envRunDriver) != "" {
		os.Exit(runDriver())
	}
	os.Exit(m.Run())
}

// The application of the tests: an HTTP ingress that composes two more
// deployments through handles — Tokenize (a ref) passed on to Model,
// whose replicas batch their calls.

type tokenizer struct{}

var Tokenize = serve.NewDeployment("Tokenize", func(context.Context) (*tokenizer, error) { return &tokenizer{}, nil },
	serve.NumReplicas(1), serve.NumCPUs(0.1))

var TokenizeText = serve.NewMethod1(Tokenize, "Tokenize", func(_ *tokenizer, _ context.Context, s string) ([]string, error) {
	return strings.Fields(s), nil
})

type model struct {
	batch *serve.Batcher[[]string, Prediction]
	scale atomic.Int64
}

// Prediction is Model's answer: the word count times the user config's
// scale, and the size of the batch the call ran in.
type Prediction struct {
	Value     int `json:"value"`
	BatchSize int `json:"batch_size"`
	Scale     int `json:"scale"`
}

var Model = serve.NewDeployment("Model", func(context.Context) (*model, error) {
	m := &model{}
	m.scale.Store(1)
	b, err := serve.NewBatcher(func(_ context.Context, in [][]string) ([]Prediction, error) {
		time.Sleep(20 * time.Millisecond) // a model's step: calls gather meanwhile
		out := make([]Prediction, len(in))
		for i, words := range in {
			out[i] = Prediction{Value: len(words) * int(m.scale.Load()), BatchSize: len(in), Scale: int(m.scale.Load())}
		}
		return out, nil
	}, serve.BatchOptions{MaxBatchSize: 8, BatchWaitTimeout: 30 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	m.batch = b
	return m, nil
}, serve.NumReplicas(1), serve.NumCPUs(0.1), serve.MaxOngoingRequests(16), serve.UserConfig(map[string]any{"scale": 1}))

func (m *model) Reconfigure(_ context.Context, cfg json.RawMessage) error {
	var c struct {
		Scale int `json:"scale"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return err
	}
	if c.Scale < 1 {
		return errors.New("scale must be at least 1")
	}
	m.scale.Store(int64(c.Scale))
	return nil
}

func (m *model) Shutdown(context.Context) error {
	m.batch.Close()
	return nil
}

var Predict = serve.NewMethod1(Model, "Predict", func(m *model, ctx context.Context, words []string) (Prediction, error) {
	return m.batch.Call(ctx, words)
})

type ingress struct {
	tok   *serve.Handle[tokenizer]
	model *serve.Handle[model]
}

var Ingress = serve.NewDeployment("Ingress", func(ctx context.Context) (*ingress, error) {
	tok, err := serve.GetHandle(ctx, Tokenize, "wordcount")
	if err != nil {
		return nil, err
	}
	m, err := serve.GetHandle(ctx, Model, "wordcount")
	if err != nil {
		tok.Close()
		return nil, err
	}
	return &ingress{tok: tok, model: m}, nil
}, serve.NumReplicas(2), serve.NumCPUs(0.1), serve.MaxOngoingRequests(32))

func (in *ingress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	text, _ := io.ReadAll(r.Body)
	words := TokenizeText.Call(r.Context(), in.tok, string(text))
	p, err := Predict.CallArg(r.Context(), in.model, words).Get(r.Context()) // the ref passed on: no trip through here
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p)
}

func (in *ingress) Shutdown(context.Context) error {
	in.tok.Close()
	in.model.Close()
	return nil
}

func TestGoApplication(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.ServePort(0)); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ray.Shutdown() }()

	app := serve.NewApplication("wordcount", Ingress, Tokenize, Model)
	if err := serve.Run(ctx, app); err != nil {
		t.Fatal(err)
	}
	st, err := serve.GetStatus(ctx, "wordcount")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.URLs) == 0 {
		t.Fatalf("no URL for the application: %+v", st)
	}
	url := st.URLs[0]
	t.Logf("status %s, url %s", st.Status, url)

	// Replicas are actors: named, in the serve namespace.
	named, err := ray.ListNamedActors(ctx, ray.AllNamespaces())
	if err != nil {
		t.Fatal(err)
	}
	replicas := 0
	for _, a := range named {
		if a.Namespace == "serve" && strings.HasPrefix(a.Name, "SERVE_REPLICA::wordcount#") {
			replicas++
		}
	}
	if replicas != 4 {
		t.Errorf("%d replica actors named SERVE_REPLICA::wordcount#…, want 4: %+v", replicas, named)
	}

	post := func(text string) (Prediction, error) {
		resp, err := http.Post(url, "text/plain", strings.NewReader(text))
		if err != nil {
			return Prediction{}, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return Prediction{}, fmt.Errorf("%s: %s", resp.Status, b)
		}
		var p Prediction
		return p, json.Unmarshal(b, &p)
	}
	p, err := post("one two three")
	if err != nil {
		t.Fatal(err)
	}
	if p.Value != 3 || p.Scale != 1 {
		t.Fatalf("prediction %+v, want value 3 at scale 1", p)
	}

	// Concurrent requests batch at Model.
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxBatch, failed := 0, 0
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := post(strings.Repeat("w ", i%5+1))
			mu.Lock()
			defer mu.Unlock()
			if err != nil || p.Value != i%5+1 {
				failed++
				t.Logf("request %d: %+v %v", i, p, err)
				return
			}
			maxBatch = max(maxBatch, p.BatchSize)
		}()
	}
	wg.Wait()
	if failed > 0 {
		t.Fatalf("%d of 24 concurrent requests failed", failed)
	}
	if maxBatch < 2 {
		t.Errorf("largest batch %d: concurrent calls were not batched", maxBatch)
	}
	t.Logf("largest batch of 24 concurrent requests: %d", maxBatch)

	// A config change of the user config only: reconfigured in place.
	cfg := config.Application{Name: "wordcount", RoutePrefix: "/wordcount", ImportPath: "wordcount",
		Deployments: []config.Deployment{{Name: "Model", UserConfig: map[string]any{"scale": 10}}}}
	if err := serve.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := post("a b")
		if err == nil && p.Value == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after reconfigure: %+v %v, want value 20", p, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Without the proxy's token a replica refuses requests.
	if err := serve.Delete(ctx, "wordcount"); err != nil {
		t.Fatal(err)
	}
	if _, err := serve.GetStatus(ctx, "wordcount"); !errors.Is(err, serve.ErrNotFound) {
		t.Fatalf("after Delete: %v, want ErrNotFound", err)
	}
}
