package state

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Filter
		err  bool
	}{
		{in: "state=ALIVE", want: Filter{Key: "state", Value: "ALIVE"}},
		{in: "state!=DEAD", want: Filter{Key: "state", Negate: true, Value: "DEAD"}},
		{in: "State=alive", want: Filter{Key: "state", Value: "alive"}},
		{in: "name=", want: Filter{Key: "name", Value: ""}},
		{in: "name=a=b", want: Filter{Key: "name", Value: "a=b"}},
		{in: "name!=a!=b", want: Filter{Key: "name", Negate: true, Value: "a!=b"}},
		{in: "noequals", err: true},
		{in: "=value", err: true},
		{in: "!=value", err: true},
	} {
		got, err := ParseFilter(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParseFilter(%q) = %+v, %v; want %+v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Query
		errWith string
	}{
		{in: "", want: Query{Limit: DefaultLimit}},
		{in: "limit=5&detail=true&filter=state=ALIVE&filter=pid!=3", want: Query{Limit: 5, Detail: true,
			Filters: []Filter{{Key: "state", Value: "ALIVE"}, {Key: "pid", Negate: true, Value: "3"}}}},
		{in: "limit=100000", want: Query{Limit: MaxLimit}},
		{in: "limit=100001", errWith: "from 1 to 100000"},
		{in: "limit=0", errWith: "from 1 to 100000"},
		{in: "limit=ten", errWith: "limit \"ten\""},
		{in: "detail=maybe", errWith: "detail \"maybe\""},
		{in: "filter=bad", errWith: "key=value"},
		{in: "limt=5", errWith: "unknown parameter \"limt\""},
		{in: strings.Repeat("filter=a=b&", MaxFilters+1), errWith: "at most 32"},
	} {
		v, _ := url.ParseQuery(tc.in)
		got, err := ParseQuery(v)
		switch {
		case tc.errWith != "":
			if err == nil || !strings.Contains(err.Error(), tc.errWith) {
				t.Errorf("ParseQuery(%q) error = %v, want one containing %q", tc.in, err, tc.errWith)
			}
		case err != nil:
			t.Errorf("ParseQuery(%q): %v", tc.in, err)
		case !reflect.DeepEqual(got, tc.want):
			t.Errorf("ParseQuery(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// testRow is a row with one column of each kind.
type testRow struct {
	id    string
	jobID string
	n     int64
	f     float64
	ok    bool
	attrs map[string]string
}

var testColumns = []column[testRow]{
	strCol("id", false, func(r *testRow) string { return r.id }),
	strCol("job_id", true, func(r *testRow) string { return r.jobID }),
	intCol("n", false, func(r *testRow) int64 { return r.n }),
	floatCol("f", true, func(r *testRow) float64 { return r.f }),
	boolCol("ok", false, func(r *testRow) bool { return r.ok }),
	otherCol("attrs", true, func(r *testRow) any { return r.attrs }),
}

var testRows = []testRow{
	{id: "Alpha", jobID: "0123456789abcdef0123456789abcdef", n: 1, f: 0.5, ok: true},
	{id: "beta", jobID: "ffffffffffffffff0000000000000001", n: 2, f: 1.5},
	{id: "gamma", n: 2, f: 2, ok: true, attrs: map[string]string{"k": "v"}},
}

func TestCompileAndApply(t *testing.T) {
	for _, tc := range []struct {
		filters string // comma-separated
		limit   int
		want    []string
		matched int
		errWith string
	}{
		{filters: "", want: []string{"Alpha", "beta", "gamma"}, matched: 3},
		{filters: "", limit: 2, want: []string{"Alpha", "beta"}, matched: 3},
		{filters: "id=alpha", want: []string{"Alpha"}, matched: 1}, // strings: case-insensitive, as Ray
		{filters: "id!=ALPHA", want: []string{"beta", "gamma"}, matched: 2},
		{filters: "n=2", want: []string{"beta", "gamma"}, matched: 2},
		{filters: "n=2", limit: 1, want: []string{"beta"}, matched: 2},
		{filters: "n=2,ok=true", want: []string{"gamma"}, matched: 1},
		{filters: "ok=false", want: []string{"beta"}, matched: 1},
		{filters: "f=1.5", want: []string{"beta"}, matched: 1},
		{filters: "f!=1.5", want: []string{"Alpha", "gamma"}, matched: 2},
		{filters: "n=9", want: nil, matched: 0},
		{filters: "job_id=0123456789ABCDEF0123456789ABCDEF", want: []string{"Alpha"}, matched: 1},
		{filters: "job_id=000000000001", want: []string{"beta"}, matched: 1}, // a short id (the last 12 digits)
		{filters: "job_id=ffffff", want: []string{"beta"}, matched: 1},       // a prefix
		{filters: "job_id!=ffffff", want: []string{"Alpha", "gamma"}, matched: 2},
		{filters: "job_id=fff", want: nil, matched: 0}, // too short to abbreviate: compared whole
		{filters: "nope=1", errWith: `"nope" is no column; filter on one of id, job_id, n, f, ok`},
		{filters: "attrs=x", errWith: "cannot be filtered"},
		{filters: "n=two", errWith: "n is an integer"},
		{filters: "ok=yes", errWith: "ok is true or false"},
		{filters: "f=x", errWith: "f is a number"},
	} {
		var fs []Filter
		if tc.filters != "" {
			for _, s := range strings.Split(tc.filters, ",") {
				f, err := ParseFilter(s)
				if err != nil {
					t.Fatal(err)
				}
				fs = append(fs, f)
			}
		}
		keep, err := compile(testColumns, fs)
		if tc.errWith != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errWith) {
				t.Errorf("compile(%s) error = %v, want one containing %q", tc.filters, err, tc.errWith)
			}
			continue
		}
		if err != nil {
			t.Errorf("compile(%s): %v", tc.filters, err)
			continue
		}
		rows := append([]testRow(nil), testRows...)
		out, matched := apply(rows, keep, tc.limit)
		var got []string
		for _, r := range out {
			got = append(got, r.id)
		}
		if !reflect.DeepEqual(got, tc.want) || matched != tc.matched {
			t.Errorf("filters %q limit %d: rows %v, matched %d; want %v, %d", tc.filters, tc.limit, got, matched, tc.want, tc.matched)
		}
	}
}

func TestAppendRowProjection(t *testing.T) {
	r := testRows[2]
	for _, tc := range []struct {
		detail bool
		want   string
	}{
		{false, `{"id":"gamma","n":2,"ok":true}`},
		{true, `{"id":"gamma","job_id":"","n":2,"f":2,"ok":true,"attrs":{"k":"v"}}`},
	} {
		if got := string(appendRow(nil, testColumns, tc.detail, &r)); got != tc.want {
			t.Errorf("detail %v: %s, want %s", tc.detail, got, tc.want)
		}
	}
	if got := string(appendRow(nil, testColumns, true, &testRows[0])); got != `{"id":"Alpha","job_id":"0123456789abcdef0123456789abcdef","n":1,"f":0.5,"ok":true,"attrs":null}` {
		t.Errorf("nil map: %s", got)
	}
	if got := columnNames(testColumns, false); !reflect.DeepEqual(got, []string{"id", "n", "ok"}) {
		t.Errorf("columnNames = %v", got)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "tab\tnew\nline\rcr", "\x00\x01\x1f\x7f",
		"ünïcödé 日本 🎉", "bad \xff utf8 \xc3", "\u2028 and \u2029", "<html>&amp;",
	} {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%q encoded as %s: not JSON: %v", s, got, err)
			continue
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q: decodes to %q, encoding/json's to %q", s, back, wantBack)
		}
	}
	if got := string(appendJSONFloat(nil, 0.25)); got != "0.25" {
		t.Errorf("appendJSONFloat(0.25) = %s", got)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("a\"b\\c\n\x00\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q encoded as %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q: decodes to %q, encoding/json's to %q", s, back, wantBack)
		}
	})
}

func TestResolveID(t *testing.T) {
	a := "0123456789abcdef0123456789abcdef"
	b := "0123456789abcdef00000000deadbeef"
	c := "ffffffffffffffffffffffffcafe0001"
	cands := []string{a, b, c}
	for _, tc := range []struct {
		q       string
		want    string
		errIs   error
		errWith string
	}{
		{q: a, want: a},
		{q: strings.ToUpper(c), want: c},
		{q: "deadbeef", want: b}, // the end (short ids are the last 12 digits)
		{q: "ffffffff", want: c}, // the start
		{q: "cafe0001", want: c}, // the end
		{q: "0123456789", errIs: errAmbiguous, errWith: "2 ids match"},
		{q: "abcabc", errIs: errNoSuchID},
		{q: "abc", errIs: errBadID, errWith: "at least 6"},
		{q: "xyzxyzxyz", errIs: errBadID, errWith: "hex digits"},
		{q: a + "00", errIs: errBadID},
	} {
		q, err := normalizeID(tc.q)
		if err == nil {
			q, err = resolveID(cands, q, "id")
		}
		switch {
		case tc.errIs != nil:
			if !errors.Is(err, tc.errIs) || !strings.Contains(err.Error(), tc.errWith) {
				t.Errorf("%q: error %v, want %v containing %q", tc.q, err, tc.errIs, tc.errWith)
			}
		case err != nil || q != tc.want:
			t.Errorf("%q: %q, %v; want %q", tc.q, q, err, tc.want)
		}
	}
}
