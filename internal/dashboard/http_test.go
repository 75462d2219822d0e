//go:build !windows

package dashboard_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/dashboard"
)

// noRedirect is a client that shows redirects instead of following them.
func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestPagesNeedASession(t *testing.T) {
	head := cluster(t)
	base := head.APIURL()
	c := noRedirect(nil)
	for _, tc := range []struct {
		path, location string
	}{
		{"/", "/login"},
		{"/tasks", "/login?next=%2Ftasks"},
		{"/jobs/raysubmit_1?x=1", "/login?next=%2Fjobs%2Fraysubmit_1%3Fx%3D1"},
	} {
		resp, err := c.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.location {
			t.Errorf("GET %s without a session: %d to %q, want 303 to %q", tc.path, resp.StatusCode, resp.Header.Get("Location"), tc.location)
		}
	}
	// The login page and its files are public, and strict.
	for _, p := range []string{"/login", "/static/style.css", "/static/login.js", "/static/favicon.svg"} {
		resp, err := c.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", p, resp.StatusCode)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy %q", p, csp)
		}
	}
	// The app's own files and data need a session or token.
	for _, p := range []string{"/static/app.js", "/static/pages/tasks.js", "/api/dashboard/series", "/api/dashboard/nodes"} {
		resp, err := c.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %d, want 401", p, resp.StatusCode)
		}
	}

	// With a session made by /api/login, the pages are served.
	jar, _ := cookiejar.New(nil)
	c = noRedirect(jar)
	body, _ := json.Marshal(map[string]string{"token": testToken})
	resp, err := c.Post(base+"/api/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	for _, p := range []string{"/", "/cluster", "/jobs/x", "/static/app.js"} {
		resp, err := c.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(b) == 0 {
			t.Errorf("GET %s with a session: %d (%d bytes)", p, resp.StatusCode, len(b))
		}
		if p != "/static/app.js" && !strings.Contains(string(b), `src="/static/app.js"`) {
			t.Errorf("GET %s is not the dashboard's shell", p)
		}
		if strings.Contains(string(b), "<script>") {
			t.Errorf("GET %s has an inline script", p)
		}
	}
	// A cached file is not sent again.
	resp, err = c.Get(base + "/static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", base+"/static/app.js", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET with the ETag: %d, want 304", resp.StatusCode)
	}
}

func TestSeriesAndNodes(t *testing.T) {
	head := cluster(t)
	var r dashboard.SeriesReply
	eventually(t, 20*time.Second, "two samples with the head's object store", func() bool {
		apiGet(t, "/api/dashboard/series", &r)
		return len(r.Samples) >= 2 && r.Samples[len(r.Samples)-1].StoreCapacity > 0
	})
	last := r.Samples[len(r.Samples)-1]
	if last.Nodes != 1 || last.CPUTotal != 2 || last.StoreCapacity != 64<<20 || last.MemTotal <= 0 {
		t.Errorf("last sample = %+v; want 1 node, 2 CPUs, a 64 MiB store, the host's memory", last)
	}
	if r.IntervalMs != 200 || r.RetentionMs != time.Hour.Milliseconds() {
		t.Errorf("interval %d ms, retention %d ms; want 200 and an hour", r.IntervalMs, r.RetentionMs)
	}
	for i := 1; i < len(r.Samples); i++ {
		if r.Samples[i].T < r.Samples[i-1].T {
			t.Fatalf("samples out of order at %d", i)
		}
	}
	var more dashboard.SeriesReply
	apiGet(t, "/api/dashboard/series?since="+strconv.FormatInt(last.T, 10), &more)
	for _, s := range more.Samples {
		if s.T <= last.T {
			t.Errorf("since=%d returned a sample of %d", last.T, s.T)
		}
	}
	if code := apiGet(t, "/api/dashboard/series?since=yesterday", nil); code != http.StatusBadRequest {
		t.Errorf("since=yesterday: %d, want 400", code)
	}

	var nodes dashboard.NodesReply
	apiGet(t, "/api/dashboard/nodes", &nodes)
	id := head.Raylet().NodeID().String()
	if len(nodes.Nodes) != 1 || nodes.Nodes[0].NodeID != id || !nodes.Nodes[0].IsHead || nodes.Nodes[0].State != "ALIVE" || nodes.Nodes[0].Total["CPU"] != 2 {
		t.Errorf("nodes = %+v; want the head %s, alive, 2 CPUs", nodes.Nodes, id)
	}
}
