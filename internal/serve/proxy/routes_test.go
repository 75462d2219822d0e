package proxy

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestValidatePrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		want   string // substring of the error; "" for valid
	}{
		{"/", ""},
		{"/shop", ""},
		{"/shop/cart", ""},
		{"/a-b_c.d~e", ""},
		{"", "empty prefix"},
		{"shop", `does not start with "/"`},
		{"/shop/", `ends with "/"`},
		{"/a//b", "empty segment"},
		{"/{id}", `contains one of`},
		{"/a?b", `contains one of`},
		{"/a b", "space or control"},
		{"/a\tb", "space or control"},
	} {
		err := validatePrefix(tc.prefix)
		if tc.want == "" {
			if err != nil {
				t.Errorf("validatePrefix(%q) = %v, want nil", tc.prefix, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validatePrefix(%q) = %v, want an error containing %q", tc.prefix, err, tc.want)
		}
	}
}

func TestMatch(t *testing.T) {
	table := map[string]*routeEntry{}
	for _, p := range []string{"/", "/shop", "/shop/cart", "/api/v1"} {
		table[p] = &routeEntry{prefix: p}
	}
	noRoot := map[string]*routeEntry{"/shop": {prefix: "/shop"}}
	for _, tc := range []struct {
		table map[string]*routeEntry
		path  string
		want  string // "" for no match
	}{
		{table, "/", "/"},
		{table, "/shop", "/shop"},
		{table, "/shop/", "/shop"},
		{table, "/shop/item/7", "/shop"},
		{table, "/shop/cart", "/shop/cart"},
		{table, "/shop/cart/", "/shop/cart"},
		{table, "/shop/cart/add", "/shop/cart"},
		{table, "/shopping", "/"},
		{table, "/shop/carts", "/shop"},
		{table, "/api", "/"},
		{table, "/api/v1/x", "/api/v1"},
		{table, "/api/v10", "/"},
		{table, "", "/"},
		{noRoot, "/shop/x", "/shop"},
		{noRoot, "/shopping", ""},
		{noRoot, "/", ""},
		{noRoot, "/other/shop", ""},
		{map[string]*routeEntry{}, "/x", ""},
	} {
		got := ""
		if e := match(tc.table, tc.path); e != nil {
			got = e.prefix
		}
		if got != tc.want {
			t.Errorf("match(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestValidateRoutes(t *testing.T) {
	ok := Route{Prefix: "/a", App: "app", Deployment: "d",
		Replicas: []Replica{{ID: "r1", URL: "http://127.0.0.1:1"}}}
	with := func(f func(*Route)) []Route {
		r := ok
		r.Replicas = append([]Replica(nil), ok.Replicas...)
		f(&r)
		return []Route{r}
	}
	for _, tc := range []struct {
		name   string
		routes []Route
		want   []string // substrings; nil for valid
	}{
		{"valid", []Route{ok}, nil},
		{"empty table", nil, nil},
		{"bad prefix", with(func(r *Route) { r.Prefix = "a" }), []string{`routes[0] (a): Prefix: prefix "a" does not start`}},
		{"no app", with(func(r *Route) { r.App = "" }), []string{"App is empty"}},
		{"no deployment", with(func(r *Route) { r.Deployment = "" }), []string{"Deployment is empty"}},
		{"queue bound", with(func(r *Route) { r.MaxQueuedRequests = -2 }), []string{"MaxQueuedRequests -2"}},
		{"timeout", with(func(r *Route) { r.RequestTimeout = -time.Second }), []string{"RequestTimeout -1s is negative"}},
		{"replica id", with(func(r *Route) { r.Replicas[0].ID = "" }), []string{"Replicas[0]: empty ID"}},
		{"replica twice", with(func(r *Route) { r.Replicas = append(r.Replicas, r.Replicas[0]) }), []string{`replica "r1" listed twice`}},
		{"url scheme", with(func(r *Route) { r.Replicas[0].URL = "ftp://h:1" }), []string{"Replicas[0] (r1): URL \"ftp://h:1\": scheme must be http or https"}},
		{"url host", with(func(r *Route) { r.Replicas[0].URL = "http://" }), []string{"has no host"}},
		{"url path", with(func(r *Route) { r.Replicas[0].URL = "http://h:1/x" }), []string{"without path"}},
		{"max ongoing", with(func(r *Route) { r.Replicas[0].MaxOngoingRequests = -1 }), []string{"MaxOngoingRequests -1 is negative"}},
		{"state", with(func(r *Route) { r.Replicas[0].State = 9 }), []string{"unknown State 9"}},
		{"duplicate prefix", []Route{ok, {Prefix: "/a", App: "b", Deployment: "d"}}, []string{`routes[1] (/a): Prefix "/a" is also routes[0]'s`}},
		{"duplicate deployment", []Route{ok, {Prefix: "/b", App: "app", Deployment: "d"}}, []string{"deployment app/d already has a route, routes[0]"}},
		{"every problem", []Route{{Prefix: "x"}}, []string{"Prefix", "App is empty", "Deployment is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateRoutes(tc.routes)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an error wrapping ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, ""},
		{Options{RequestTimeout: time.Second, RetryAfter: time.Second, UpstreamHeaders: http.Header{"X-Raygo-Token": {"t"}}}, ""},
		{Options{RequestTimeout: -1}, "RequestTimeout -1ns is negative"},
		{Options{RetryAfter: -1}, "RetryAfter -1ns is negative"},
		{Options{UpstreamHeaders: http.Header{"Bad Name": {"x"}}}, `"Bad Name" is not a valid header name`},
		{Options{UpstreamHeaders: http.Header{"": {"x"}}}, `"" is not a valid header name`},
	} {
		err := tc.opts.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: got %v", tc.opts, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want ErrInvalid containing %q", err, tc.want)
		}
		if _, err := New(tc.opts); err == nil {
			t.Errorf("New accepted %+v", tc.opts)
		}
	}
}

func TestValidRequestID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"abc-123", true},
		{"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", true},
		{strings.Repeat("x", MaxRequestIDLen), true},
		{strings.Repeat("x", MaxRequestIDLen+1), false},
		{"", false},
		{"has space", false},
		{"tab\t", false},
		{"new\nline", false},
		{"caf\xc3\xa9", false},
		{"del\x7f", false},
	} {
		if got := validRequestID(tc.id); got != tc.want {
			t.Errorf("validRequestID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestRequestIDsUnique(t *testing.T) {
	var a, b RequestIDs
	a.Init()
	b.Init()
	seen := map[string]bool{}
	for range 1000 {
		for _, id := range []string{a.Next(), b.Next()} {
			if seen[id] || !validRequestID(id) {
				t.Fatalf("id %q repeated or invalid", id)
			}
			seen[id] = true
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {1500 * time.Millisecond, "2"}, {10 * time.Second, "10"},
	} {
		if got := retryAfterSeconds(tc.d); got != tc.want {
			t.Errorf("retryAfterSeconds(%s) = %s, want %s", tc.d, got, tc.want)
		}
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		method string
		body   string
		want   bool
	}{
		{http.MethodGet, "", true},
		{http.MethodHead, "", true},
		{http.MethodGet, "x", false},
		{http.MethodPost, "", false},
		{http.MethodPut, "", false},
		{http.MethodDelete, "", false},
	} {
		r, _ := http.NewRequest(tc.method, "http://h/", strings.NewReader(tc.body))
		if tc.body == "" {
			r.Body, r.ContentLength = http.NoBody, 0
		}
		if got := retryable(r); got != tc.want {
			t.Errorf("retryable(%s, body %q) = %v, want %v", tc.method, tc.body, got, tc.want)
		}
	}
}
