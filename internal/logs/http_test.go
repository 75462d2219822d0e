//go:build !windows

package logs_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/ray"
)

type Talker struct{}

func NewTalker(context.Context) (*Talker, error) { return &Talker{}, nil }

func (*Talker) Say(_ context.Context, s string) (int, error) {
	fmt.Println(s)
	fmt.Fprintln(os.Stderr, s+" on stderr")
	return os.Getpid(), nil
}

func say(_ context.Context, s string) (int, error) {
	fmt.Println(s)
	return os.Getpid(), nil
}

var (
	TalkerActor = ray.Actor0(NewTalker)
	TalkerSay   = ray.Method1(TalkerActor, (*Talker).Say)
	Say         = ray.Func1(say, ray.RegisterName("logs_test.say"))
)

const testToken = "logs-test-token"

type testHead struct {
	t       *testing.T
	head    *node.Head
	url     string
	logsDir string
	client  *apiclient.Client
}

func startHead(t *testing.T) *testHead {
	t.Helper()
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	t.Setenv(resources.FakeGPUsEnv, "0")
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{"CPU": 2}
	rc.SessionDir = t.TempDir()
	rc.ObjectStoreBytes = 64 << 20
	h, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if h.APIURL() == "" {
		h.Stop()
		t.Fatal("the head serves no HTTP API")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ray.Init(ctx, ray.Address(h.GCSAddress()), ray.Token(testToken), ray.LogWorkers(testing.Verbose())); err != nil {
		h.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ray.Shutdown()
		h.Stop()
	})
	c, err := apiclient.New(h.APIURL(), testToken)
	if err != nil {
		t.Fatal(err)
	}
	return &testHead{t: t, head: h, url: h.APIURL(), logsDir: raylet.LogsDir(rc.SessionDir), client: c}
}

// get calls the API with token and returns the status and the body.
func (h *testHead) get(token, path string) (int, string, http.Header) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLogAPI(t *testing.T) {
	h := startHead(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	headID := h.head.Raylet().NodeID()

	a := TalkerActor.Remote(ctx)
	apid, err := TalkerSay.Remote(ctx, a, "the actor speaks").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref := Say.Remote(ctx, "the task speaks")
	tpid, err := ref.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	taskID := ref.ID()[:2*ids.Size-4] + "0000" // a task's return ids are its id numbered in the last two bytes

	// file fetches a log and returns its status and text.
	file := func(q string) (int, string, http.Header) {
		t.Helper()
		return h.get(testToken, "/api/v0/logs/file?"+q)
	}

	t.Run("actor", func(t *testing.T) {
		actor := a.ID()
		q := "actor_id=" + actor[len(actor)-8:] // abbreviated to its end
		eventually(t, "the actor's print in its log", func() bool {
			code, body, _ := file(q)
			return code == 200 && strings.Contains(body, "the actor speaks\n")
		})
		code, body, hdr := file(q + "&suffix=err")
		if code != 200 || !strings.Contains(body, "the actor speaks on stderr\n") {
			t.Fatalf("actor's stderr: HTTP %d %q", code, body)
		}
		if hdr.Get("X-Raygo-Node-Id") != headID.String() || !strings.HasSuffix(hdr.Get("X-Raygo-Log-File"), fmt.Sprintf("-%d.err", apid)) {
			t.Fatalf("headers %v: want the head node and a file of pid %d", hdr, apid)
		}
		// The same file by worker id (the file name's short form) and by pid.
		short := strings.Split(hdr.Get("X-Raygo-Log-File"), "-")[1]
		if code, body, _ := file("worker_id=" + short + "&suffix=err"); code != 200 || !strings.Contains(body, "on stderr") {
			t.Fatalf("by worker id: HTTP %d %q", code, body)
		}
		if code, body, _ := file(fmt.Sprintf("pid=%d&node_id=%s", apid, headID.Short())); code != 200 || !strings.Contains(body, "the actor speaks") {
			t.Fatalf("by pid: HTTP %d %q", code, body)
		}
	})

	t.Run("task", func(t *testing.T) {
		eventually(t, "the task's log by task id (task events are reported in the background)", func() bool {
			code, body, hdr := file("task_id=" + taskID)
			return code == 200 && strings.Contains(body, "the task speaks\n") && strings.HasSuffix(hdr.Get("X-Raygo-Log-File"), fmt.Sprintf("-%d.out", tpid))
		})
	})

	t.Run("list", func(t *testing.T) {
		var out apiclient.LogList
		code, body, _ := h.get(testToken, "/api/v0/logs?glob="+url.QueryEscape("worker-*.out"))
		if code != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("HTTP %d %s", code, body)
		}
		files := out.Result[headID.String()]["worker_out"]
		found := false
		for _, f := range files {
			found = found || strings.HasSuffix(f, fmt.Sprintf("-%d.out", apid))
		}
		if !found || len(out.Result[headID.String()]["worker_err"]) != 0 {
			t.Fatalf("listing %v: want the actor's .out and no .err (glob)", out.Result)
		}
		l, err := h.client.ListLogs(ctx, headID.String()[:8], "")
		if err != nil || len(l.Files[headID.String()]) == 0 {
			t.Fatalf("ListLogs by node prefix: %v, %v", l, err)
		}
	})

	t.Run("submission and follow", func(t *testing.T) {
		p := filepath.Join(h.logsDir, "job-driver-raysubmit_test.log")
		if err := os.WriteFile(p, []byte("line 1\nline 2\nline 3\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, body, _ := file("submission_id=raysubmit_test&lines=2"); code != 200 || body != "line 2\nline 3\n" {
			t.Fatalf("submission log, last 2 lines: HTTP %d %q", code, body)
		}
		fctx, fcancel := context.WithCancel(ctx)
		defer fcancel()
		l, err := h.client.GetLog(fctx, apiclient.LogQuery{NodeID: headID.Short(), Filename: "job-driver-raysubmit_test.log", Lines: 1, Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Body.Close()
		rd := bufio.NewReader(l.Body)
		if s, err := rd.ReadString('\n'); err != nil || s != "line 3\n" {
			t.Fatalf("first followed line %q, %v", s, err)
		}
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, "line 4")
		f.Close()
		if s, err := rd.ReadString('\n'); err != nil || s != "line 4\n" {
			t.Fatalf("appended line %q, %v", s, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			q    string
			code int
			msg  string
		}{
			{"actor_id=abcdef&task_id=abcdef", 400, "conflicting parameters"},
			{"", 400, "give one of"},
			{"actor_id=fedcba", 404, "no actor has id fedcba"},
			{"task_id=fedcba", 404, "no task has id fedcba"},
			{"worker_id=fedcbafedcba", 404, "no log file of worker fedcbafedcba"},
			{"submission_id=nope", 404, "no log file of job nope"},
			{"node_id=" + headID.Short() + "&filename=nope.log", 404, "no log file nope.log"},
			{"node_id=" + headID.Short() + "&filename=../token", 400, "outside the node's logs directory"},
			{"node_id=fedcbafedcba&filename=x.log", 404, "no alive node has id fedcbafedcba"},
		} {
			code, body, _ := file(tc.q)
			if code != tc.code || !strings.Contains(body, tc.msg) {
				t.Errorf("%q: HTTP %d %s, want %d naming %q", tc.q, code, body, tc.code, tc.msg)
			}
		}
	})

	t.Run("audit log needs the cluster token", func(t *testing.T) {
		tok, err := h.client.CreateToken(ctx, "reader", "read")
		if err != nil {
			t.Fatal(err)
		}
		// The head's audit log (creating the token wrote to it).
		q := "/api/v0/logs/file?node_id=" + headID.Short() + "&filename=audit.log"
		if code, body, _ := h.get(tok.Secret, q); code != 403 {
			t.Fatalf("audit log with a read token: HTTP %d %s", code, body)
		}
		if code, _, _ := h.get(tok.Secret, "/api/v0/logs/file?actor_id="+a.ID()); code != 200 {
			t.Fatalf("a worker log with a read token: HTTP %d", code)
		}
		if code, _, _ := h.get(testToken, q); code != 200 {
			t.Fatalf("audit log with the cluster token: HTTP %d", code)
		}
	})
}
