package registry

import (
	"context"
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	r := New()
	r.AddFunc("f", func(context.Context, [][]byte) ([]Encoded, error) { return nil, nil })
	r.AddClass("C", func(context.Context, [][]byte) (any, error) { return 1, nil })
	r.AddMethod("C.m", func(context.Context, any, [][]byte) ([]Encoded, error) { return nil, nil })
	if _, ok := r.Func("f"); !ok {
		t.Fatal("function not found")
	}
	if _, ok := r.Class("C"); !ok {
		t.Fatal("class not found")
	}
	if _, ok := r.Method("C.m"); !ok {
		t.Fatal("method not found")
	}
	if _, ok := r.Func("C"); ok {
		t.Fatal("a class found as a function")
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), `"f" registered twice`) {
			t.Fatalf("second registration: panic %v", p)
		}
	}()
	r.AddFunc("f", func(context.Context, [][]byte) ([]Encoded, error) { return nil, nil })
}
