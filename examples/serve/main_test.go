package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

func TestMain(m *testing.M) {
	if ray.IsWorker() {
		_ = ray.Init(context.Background()) // serves tasks and replicas; never returns
	}
	os.Exit(m.Run())
}

// TestServeExample deploys the example's application on an embedded
// cluster with a proxy and checks the verdicts it prints.
func TestServeExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.LogWorkers(false), ray.ServePort(0)); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ray.Shutdown() }()
	url, err := deploy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&out, r); close(done) }()
	runErr := demo(ctx, url)
	os.Stdout = stdout
	w.Close()
	<-done
	if runErr != nil {
		t.Fatal(runErr)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	want := []string{`"What a great day" positive (+1)`, `"The train was slow and broken" negative (-2)`,
		`"It is Tuesday" neutral (+0)`, `"I love fast builds" positive (+2)`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("output:\n%s\nwant (spaces aside):\n%s", out.String(), strings.Join(want, "\n"))
	}
}
