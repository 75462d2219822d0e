package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// TestWordCount runs the example on files of its own: the counts of all
// files, the typed error of an empty one, and the error of a missing one.
func TestWordCount(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.NumCPUs(2), ray.LogWorkers(false)); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ray.Shutdown(); err != nil {
			t.Error(err)
		}
	}()

	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	paths := []string{
		write("a.txt", "the cat and the dog\n"),
		write("b.txt", "The end of THE story"),
		write("empty.txt", " \n\t\n"),
		write("c.txt", "a dog"),
	}
	var out bytes.Buffer
	if err := run(ctx, paths, &out); err != nil {
		t.Fatal(err)
	}
	want := "skipped " + paths[2] + ": no words\n" +
		"     4 the\n" +
		"     2 dog\n" +
		"     1 a\n" +
		"     1 and\n" +
		"     1 cat\n" +
		"     1 end\n" +
		"     1 of\n" +
		"     1 story\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}

	// The typed error crosses the wire intact.
	_, err := CountWords.Remote(ctx, paths[2]).Get(ctx)
	var empty *EmptyFileError
	if !errors.As(err, &empty) || empty.Path != paths[2] {
		t.Fatalf("CountWords(empty) = %v, want an *EmptyFileError", err)
	}
	// Any other error ends the run.
	out.Reset()
	if err := run(ctx, []string{filepath.Join(dir, "missing.txt")}, &out); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Fatalf("run(missing) = %v, want the file's error", err)
	}
}

// TestSamples: with no files named, the samples are counted.
func TestSamples(t *testing.T) {
	if got := orSamples(nil); len(got) != 4 {
		t.Fatalf("samples: %v", got)
	}
	if got := orSamples([]string{"x"}); len(got) != 1 || got[0] != "x" {
		t.Fatalf("named files: %v", got)
	}
}

// TestDocsListing: docs/wordcount.md shows this program as it is, with
// its line count.
func TestDocsListing(t *testing.T) {
	doc, err := os.ReadFile("../../docs/wordcount.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```go\n"+string(src)+"```") {
		t.Error("docs/wordcount.md does not show main.go as it is")
	}
	code := 0 // lines neither blank nor only a comment
	for _, l := range strings.Split(string(src), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "//") {
			code++
		}
	}
	if want := fmt.Sprintf("Go (raygo): %d lines", code); !strings.Contains(string(doc), want) {
		t.Errorf("docs/wordcount.md does not say %q", want)
	}
}
