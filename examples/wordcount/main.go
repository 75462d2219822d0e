// Command wordcount counts the words of text files on an embedded local
// cluster: one task per file counts its words, and an aggregator actor
// merges the counts. Each task's result goes to the actor as a ref,
// without a trip through the driver; a file without words fails its task
// with a typed error that the driver matches with errors.As.
//
//	go run ./examples/wordcount [FILE...]
//
// Without files it counts the samples in testdata/. Workers read the
// files, so paths must be valid where they run (the embedded cluster's
// workers run beside the driver, in its directory).
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/raygo/raygo/ray"
)

// EmptyFileError says a file has no words.
type EmptyFileError struct{ Path string }

func (e *EmptyFileError) Error() string { return e.Path + ": no words" }

func init() { ray.RegisterError[*EmptyFileError]("wordcount.EmptyFileError") }

// Counts maps words to how often they occur.
type Counts map[string]int

// countWords is a task: the counts of one file.
func countWords(ctx context.Context, path string) (Counts, error) {
	data, err := os.ReadFile(path)
	counts := Counts{}
	for _, w := range strings.Fields(strings.ToLower(string(data))) {
		counts[w]++
	}
	if err == nil && len(counts) == 0 {
		err = &EmptyFileError{Path: path}
	}
	return counts, err
}

// As an actor, Counts merges the counts of many files.
func NewCounts(ctx context.Context) (*Counts, error) { return &Counts{}, nil }

// Add merges one file's counts and returns the number of distinct words.
func (c Counts) Add(ctx context.Context, more Counts) (int, error) {
	for w, n := range more {
		c[w] += n
	}
	return len(c), nil
}

// Top returns the n most frequent words with their counts, ties in
// alphabetical order, one "count word" line each.
func (c Counts) Top(ctx context.Context, n int) ([]string, error) {
	words := slices.SortedFunc(maps.Keys(c), func(a, b string) int { return cmp.Or(c[b]-c[a], strings.Compare(a, b)) })[:min(n, len(c))]
	for i, w := range words {
		words[i] = fmt.Sprintf("%6d %s", c[w], w)
	}
	return words, nil
}

// Registered as "main.countWords", "main.Counts", "Add" and "Top".
var CountWords = ray.Func1(countWords)
var Aggregator = ray.Actor0(NewCounts)
var Add = ray.Method1(Aggregator, (*Counts).Add)
var Top = ray.Method1(Aggregator, (*Counts).Top)

// run counts the words of the files and prints the ten most frequent.
func run(ctx context.Context, paths []string) error {
	totals := Aggregator.Remote(ctx)
	adds := make([]ray.ObjectRef[int], len(paths))
	for i, p := range paths {
		adds[i] = Add.RemoteArgs(ctx, totals, CountWords.Remote(ctx, p)) // the counts go straight to the actor
	}
	for _, a := range adds {
		var empty *EmptyFileError
		if _, err := a.Get(ctx); errors.As(err, &empty) {
			fmt.Printf("skipped %s: no words\n", empty.Path)
		} else if err != nil {
			return err
		}
	}
	top, err := Top.Remote(ctx, totals, 10).Get(ctx)
	fmt.Println(strings.Join(top, "\n"))
	return err
}

func main() {
	ctx := context.Background()
	if err := ray.Init(ctx); err != nil {
		log.Fatal(err)
	}
	defer ray.Shutdown()
	if err := run(ctx, orSamples(os.Args[1:])); err != nil {
		log.Fatal(err)
	}
}
