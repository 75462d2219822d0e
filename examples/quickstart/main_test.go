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
		_ = ray.Init(context.Background()) // serves tasks; never returns
	}
	os.Exit(m.Run())
}

// TestQuickstart runs the example on an embedded cluster and checks the
// three lines it must print.
func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.LogWorkers(false)); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ray.Shutdown(); err != nil {
			t.Error(err)
		}
	}()

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&out, r); close(done) }()
	runErr := run(ctx)
	os.Stdout = stdout
	w.Close()
	<-done
	if runErr != nil {
		t.Fatal(runErr)
	}
	for _, want := range []string{
		"tasks: [Processed 0 Processed 1 Processed 2 Processed 3 Processed 4]",
		"actor count: 10",
		"chunk sum: 499500",
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
