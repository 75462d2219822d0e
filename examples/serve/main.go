// Command serve puts a small model online with raygo Serve, on an
// embedded local cluster: an HTTP ingress deployment that calls a
// sentiment model deployment through a typed handle, the model batching
// the calls of concurrent requests.
//
//	go run ./examples/serve            # deploys, sends a few requests, prints the answers
//	go run ./examples/serve -serve     # then keeps serving: curl -d 'what a great day' http://127.0.0.1:8000/sentiment
//
// The same program joins a running cluster with RAYGO_ADDRESS (the
// application then runs there, on the nodes' proxies, after the program
// exits, until `raygo serve shutdown`).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/serve"
)

// Verdict is the model's answer for one text.
type Verdict struct {
	Text      string  `json:"text"`
	Label     string  `json:"label"`
	Score     float64 `json:"score"`
	BatchSize int     `json:"batch_size"` // how many texts the model saw at once
}

// sentimentModel scores texts by counting words from two lists: a
// stand-in for a real model, which would also be faster per text in
// batches.
type sentimentModel struct {
	batch *serve.Batcher[string, Verdict]
}

var positive = map[string]bool{"good": true, "great": true, "love": true, "happy": true, "fast": true}
var negative = map[string]bool{"bad": true, "slow": true, "hate": true, "sad": true, "broken": true}

func newSentimentModel(context.Context) (*sentimentModel, error) {
	b, err := serve.NewBatcher(func(_ context.Context, texts []string) ([]Verdict, error) {
		out := make([]Verdict, len(texts))
		for i, t := range texts {
			score := 0.0
			for _, w := range strings.Fields(strings.ToLower(t)) {
				w = strings.Trim(w, ".,!?")
				if positive[w] {
					score++
				} else if negative[w] {
					score--
				}
			}
			label := "neutral"
			if score > 0 {
				label = "positive"
			} else if score < 0 {
				label = "negative"
			}
			out[i] = Verdict{Text: t, Label: label, Score: score, BatchSize: len(texts)}
		}
		return out, nil
	}, serve.BatchOptions{MaxBatchSize: 16, BatchWaitTimeout: 5 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	return &sentimentModel{batch: b}, nil
}

// Shutdown closes the batcher when the replica stops.
func (m *sentimentModel) Shutdown(context.Context) error { m.batch.Close(); return nil }

// Model is the model deployment: two replicas, each taking up to 32
// calls at once (so that batches can fill).
var Model = serve.NewDeployment("SentimentModel", newSentimentModel,
	serve.NumReplicas(2), serve.NumCPUs(0.5), serve.MaxOngoingRequests(32))

// Classify is the model's method, called through handles.
var Classify = serve.NewMethod1(Model, "Classify", func(m *sentimentModel, ctx context.Context, text string) (Verdict, error) {
	return m.batch.Call(ctx, text)
})

// api is the HTTP ingress: POST a text, get its verdict as JSON.
type api struct{ model *serve.Handle[sentimentModel] }

func newAPI(ctx context.Context) (*api, error) {
	h, err := serve.GetHandle(ctx, Model, "sentiment")
	if err != nil {
		return nil, err
	}
	return &api{model: h}, nil
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	text, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || len(strings.TrimSpace(string(text))) == 0 {
		http.Error(w, "POST a text to classify", http.StatusBadRequest)
		return
	}
	v, err := Classify.Call(r.Context(), a.model, string(text)).Get(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Shutdown closes the handle when the replica stops.
func (a *api) Shutdown(context.Context) error { a.model.Close(); return nil }

// API is the ingress deployment.
var API = serve.NewDeployment("API", newAPI, serve.NumReplicas(1), serve.NumCPUs(0.5), serve.MaxOngoingRequests(64))

// App is the application: the ingress under /sentiment, and the model.
var App = serve.NewApplication("sentiment", API, Model)

func main() {
	keep := flag.Bool("serve", false, "keep serving until interrupted")
	port := flag.Int("port", 8000, "the embedded cluster's Serve proxy port")
	flag.Parse()
	ctx := context.Background()
	opts := []ray.InitOption{ray.LogWorkers(false)}
	if os.Getenv("RAYGO_ADDRESS") == "" {
		opts = append(opts, ray.ServePort(*port))
	}
	if err := ray.Init(ctx, opts...); err != nil { // workers start here and never return
		log.Fatal(err)
	}
	defer func() { _ = ray.Shutdown() }()
	url, err := deploy(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := demo(ctx, url); err != nil {
		log.Fatal(err)
	}
	if *keep {
		fmt.Printf("serving at %s (Ctrl-C to stop)\n", url)
		sig, stop := signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
		<-sig.Done()
	}
}

// deploy runs the application and returns its URL on the first proxy.
func deploy(ctx context.Context) (string, error) {
	if err := serve.Run(ctx, App); err != nil {
		return "", err
	}
	st, err := serve.GetStatus(ctx, App.Name())
	if err != nil {
		return "", err
	}
	if len(st.URLs) == 0 {
		return "", fmt.Errorf("the cluster runs no Serve proxy (start nodes with --serve-port)")
	}
	return st.URLs[0], nil
}

// demo sends a few texts at once and prints each verdict, in order.
func demo(ctx context.Context, url string) error {
	texts := []string{"What a great day", "The train was slow and broken", "It is Tuesday", "I love fast builds"}
	out := make([]Verdict, len(texts))
	errs := make([]error, len(texts))
	var wg sync.WaitGroup
	for i, t := range texts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = classify(ctx, url, t)
		}()
	}
	wg.Wait()
	for i, v := range out {
		if errs[i] != nil {
			return errs[i]
		}
		fmt.Printf("%-32q %s (%+.0f)\n", v.Text, v.Label, v.Score)
	}
	return nil
}

func classify(ctx context.Context, url, text string) (Verdict, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(text))
	if err != nil {
		return Verdict{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Verdict{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return Verdict{}, fmt.Errorf("%s: %s", resp.Status, b)
	}
	var v Verdict
	return v, json.Unmarshal(b, &v)
}
