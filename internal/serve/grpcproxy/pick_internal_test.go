package grpcproxy

import (
	"reflect"
	"testing"

	"google.golang.org/grpc/metadata"
)

func TestPickApplication(t *testing.T) {
	one := &table{byApp: map[string]*entry{"a": {app: "a"}}, apps: []string{"a"}}
	two := &table{byApp: map[string]*entry{"a": {app: "a"}, "b": {app: "b"}}, apps: []string{"a", "b"}}
	none := &table{byApp: map[string]*entry{}, apps: []string{}}
	for _, tc := range []struct {
		name    string
		t       *table
		meta    []string
		want    string // the app picked
		wantErr string
	}{
		{"no table", nil, nil, "", "grpcproxy: routing table not received yet"},
		{"named", two, []string{"b"}, "b", ""},
		{"first value wins", two, []string{"a", "b"}, "a", ""},
		{"only app, unnamed", one, nil, "a", ""},
		{"only app, empty name", one, []string{""}, "a", ""},
		{"several, unnamed", two, nil, "", `set the "application" metadata to name the application (applications: a, b)`},
		{"unknown", two, []string{"c"}, "", `application "c" not found (applications: a, b)`},
		{"unknown, none deployed", none, []string{"c"}, "", `application "c" not found (no applications are deployed)`},
		{"none deployed", none, nil, "", "no applications are deployed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := tc.t.pick(tc.meta)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || e.app != tc.want {
				t.Fatalf("picked %v %v, want %s", e, err, tc.want)
			}
		})
	}
}

func TestContentSubtype(t *testing.T) {
	for ct, want := range map[string]string{
		"":                           "",
		"application/grpc":           "",
		"application/grpc+proto":     "proto",
		"application/grpc+json":      "json",
		"Application/GRPC+JSON":      "json",
		"application/grpc;charset=x": "",
		"application/json":           "",
	} {
		md := metadata.MD{}
		if ct != "" {
			md.Set("content-type", ct)
		}
		if got := contentSubtype(md); got != want {
			t.Errorf("%q: %q, want %q", ct, got, want)
		}
	}
}

func TestUpstreamMetadata(t *testing.T) {
	in := metadata.MD{
		":authority": {"proxy:9000"}, "content-type": {"application/grpc"}, "user-agent": {"grpc-go"},
		"grpc-accept-encoding": {"gzip"}, "te": {"trailers"},
		"application": {"shop"}, "x-custom": {"1", "2"}, "x-raygo-token": {"forged"}, "x-request-id": {"old"},
		"trace-bin": {"\x00\x01"},
	}
	got := upstreamMetadata(in, "rid", []string{"x-raygo-token", "real"})
	want := metadata.MD{"application": {"shop"}, "x-custom": {"1", "2"}, "x-raygo-token": {"real"},
		"x-request-id": {"rid"}, "trace-bin": {"\x00\x01"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestValidRequestID(t *testing.T) {
	long := make([]byte, MaxRequestIDLen+1)
	for i := range long {
		long[i] = 'a'
	}
	for id, want := range map[string]bool{
		"": false, "abc-123": true, "with space": false, "tab\t": false, "é": false,
		string(long[:MaxRequestIDLen]): true, string(long): false,
	} {
		if got := validRequestID(id); got != want {
			t.Errorf("%q: %v, want %v", id, got, want)
		}
	}
}
