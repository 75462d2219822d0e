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
	"io"
	"log"
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
	if err != nil {
		return nil, err
	}
	counts := Counts{}
	for _, w := range strings.Fields(strings.ToLower(string(data))) {
		counts[w]++
	}
	if len(counts) == 0 {
		return nil, &EmptyFileError{Path: path}
	}
	return counts, nil
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

// WordCount is a word and how often it occurs.
type WordCount struct {
	Word  string
	Count int
}

// Top returns the n most frequent words, ties in alphabetical order.
func (c Counts) Top(ctx context.Context, n int) ([]WordCount, error) {
	top := make([]WordCount, 0, len(c))
	for w, k := range c {
		top = append(top, WordCount{w, k})
	}
	slices.SortFunc(top, func(a, b WordCount) int { return cmp.Or(b.Count-a.Count, strings.Compare(a.Word, b.Word)) })
	return top[:min(n, len(top))], nil
}

// Registered as "main.countWords", "main.Counts", "Add" and "Top".
var (
	CountWords = ray.Func1(countWords)
	Aggregator = ray.Actor0(NewCounts)
	Add        = ray.Method1(Aggregator, (*Counts).Add)
	Top        = ray.Method1(Aggregator, (*Counts).Top)
)

func main() {
	ctx := context.Background()
	if err := ray.Init(ctx); err != nil {
		log.Fatal(err)
	}
	err := run(ctx, orSamples(os.Args[1:]), os.Stdout)
	if err = errors.Join(err, ray.Shutdown()); err != nil {
		log.Fatal(err)
	}
}

// run counts the words of the files and prints the ten most frequent.
func run(ctx context.Context, paths []string, out io.Writer) error {
	totals := Aggregator.Remote(ctx)
	adds := make([]ray.ObjectRef[int], len(paths))
	for i, p := range paths {
		adds[i] = Add.RemoteArgs(ctx, totals, CountWords.Remote(ctx, p)) // the counts go straight to the actor
	}
	for _, a := range adds {
		var empty *EmptyFileError
		if _, err := a.Get(ctx); errors.As(err, &empty) {
			fmt.Fprintf(out, "skipped %s: no words\n", empty.Path)
		} else if err != nil {
			return err
		}
	}
	top, err := Top.Remote(ctx, totals, 10).Get(ctx)
	for _, wc := range top {
		fmt.Fprintf(out, "%6d %s\n", wc.Count, wc.Word)
	}
	return err
}
