package cli

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStartStatusStop(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)

	r := e.raygo("start", "--head", "--port", "0", "--num-cpus", "3", "--resources", `{"widget": 2}`, "--labels", "zone=a,accel=h100")
	if r.code != 0 {
		t.Fatalf("start --head: %v", r)
	}
	sess := e.latest()
	if sess == "" {
		t.Fatalf("no session_latest after start; %v", r)
	}
	addr, err := sess.ReadFile(addressFile)
	if err != nil {
		t.Fatalf("address file: %v", err)
	}
	if !strings.Contains(r.stdout, "RAYGO_ADDRESS="+addr) || !strings.Contains(r.stdout, sess.Path(tokenFile)) {
		t.Errorf("start output lacks the address or token file:\n%s", r.stdout)
	}
	if st, err := os.Stat(sess.Path(tokenFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("token file: %v, mode %v; want mode 0600", err, st.Mode().Perm())
	}
	headPIDs, _ := readPIDs(sess)
	if len(headPIDs) != 1 || !processAlive(headPIDs[0]) {
		t.Fatalf("pids after start --head = %v, want one live pid", headPIDs)
	}

	r = e.raygo("status")
	if r.code != 0 {
		t.Fatalf("status: %v", r)
	}
	for _, want := range []string{addr, "Nodes: 1 alive", " 0.0/3.0 CPU\n", " 0.0/2.0 widget\n", "(no pending demands)", "accel=h100,zone=a"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = e.raygo("status", "--token", "not-the-token")
	if r.code != 1 || !strings.Contains(r.stderr, "rejected the token") {
		t.Errorf("status with a wrong token: want exit 1 and 'rejected the token'; %v", r)
	}

	// A second node joins through the local session: same pids file, token
	// from session_latest.
	r = e.raygo("start", "--address", addr, "--num-cpus", "1")
	if r.code != 0 {
		t.Fatalf("start --address: %v", r)
	}
	pids, _ := readPIDs(sess)
	if len(pids) != 2 {
		t.Fatalf("pids after the second node joined = %v, want 2", pids)
	}
	r = e.raygo("status")
	if r.code != 0 || !strings.Contains(r.stdout, "Nodes: 2 alive") || !strings.Contains(r.stdout, " 0.0/4.0 CPU\n") {
		t.Errorf("status with two nodes: want 2 alive and 0.0/4.0 CPU; %v", r)
	}

	r = e.raygo("stop")
	if r.code != 0 || !strings.Contains(r.stdout, "Stopped 2") {
		t.Fatalf("stop: %v", r)
	}
	for _, p := range pids {
		eventually(t, 15*time.Second, func() bool { return !processAlive(p) }, "pid %d still running after stop", p)
	}
	if _, err := os.Stat(string(sess)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("session dir after stop: %v, want it removed", err)
	}
	if e.latest() != "" {
		t.Errorf("session_latest still exists after stop")
	}

	r = e.raygo("stop")
	if r.code != 0 || !strings.Contains(r.stdout, "no running raygo cluster") {
		t.Errorf("second stop: %v", r)
	}
}

func TestStatusUnreachable(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	addr := closedAddress(t)
	r := e.raygo("status", "--address", addr, "--token", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "raygo: ") || !strings.Contains(r.stderr, addr) {
		t.Errorf("status against %s: want exit 1 naming the address; %v", addr, r)
	}
	r = e.run([]string{envAddress + "=" + addr, envToken + "=x"}, "status")
	if r.code != 1 || !strings.Contains(r.stderr, addr) || !strings.Contains(r.stderr, envAddress) {
		t.Errorf("status with %s=%s: want exit 1 naming the address and its source; %v", envAddress, addr, r)
	}
}

func TestStatusWithoutCluster(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	r := e.raygo("status")
	if r.code != 1 || !strings.Contains(r.stderr, "raygo start --head") {
		t.Errorf("status with no cluster: %v", r)
	}
	r = e.raygo("stop")
	if r.code != 0 || !strings.Contains(r.stdout, "no running raygo cluster") {
		t.Errorf("stop with no cluster: %v", r)
	}
}

func TestStartRejectsBadFlags(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--head", "--num-cpus", "-1"}, "--num-cpus must be a number ≥ 0"},
		{[]string{"--head", "--num-gpus", "-2"}, "--num-gpus must be ≥ 0"},
		{[]string{"--head", "--resources", `{"CPU": 1}`}, `"CPU" cannot be set in --resources`},
		{[]string{"--head", "--resources", `{"widget": -1}`}, "negative"},
		{[]string{"--head", "--resources", `not json`}, "JSON object"},
		{[]string{"--head", "--port", "70000"}, "--port must be in 0..65535"},
		{[]string{"--head", "--num-cpus", "lots"}, "invalid argument"},
		{nil, "--head"},
		{[]string{"--head", "--address", "127.0.0.1:1"}, "cannot be used together"},
		{[]string{"--address", "nonsense"}, "want HOST:PORT"},
		{[]string{"--address", "127.0.0.1:1", "--port", "5"}, "--port is for --head"},
		{[]string{"--head", "--node-timeout", "10ms"}, "--node-timeout must be between 1s and 1h"},
		{[]string{"--address", "127.0.0.1:1", "--node-timeout", "5s"}, "--node-timeout is for --head"},
		{[]string{"--head", "--task-events-max", "0"}, "--task-events-max must be between 1 and 10000000"},
		{[]string{"--address", "127.0.0.1:1", "--task-events-max", "5"}, "--task-events-max is for --head"},
		{[]string{"--head", "--labels", "zone"}, `--labels: label "zone" is not key=value`},
		{[]string{"--head", "--node-ip-address", "nonsense"}, `--node-ip-address "nonsense": want this machine's IP address`},
		{[]string{"--head", "--node-ip-address", "0.0.0.0"}, `--node-ip-address "0.0.0.0"`},
		{[]string{"--head", "--labels", "raygo.io/node-id=x"}, "reserved"},
		{[]string{"--address", "127.0.0.1:1", "--storage", "/tmp/x.db"}, "--storage is for --head"},
		{[]string{"--head", "--port", "0", "--storage", "/tmp/x.db"}, "--storage needs a fixed --port"},
		{[]string{"--head", "--storage", "ftp://host/x"}, "want a file path or redis://HOST:PORT"},
	} {
		r := e.raygo(append([]string{"start"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "raygo: ") || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("start %q: want exit 2 and %q; %v", tc.args, tc.want, r)
		}
	}
	r := e.run([]string{"RAYGO_TASK_EVENTS_RATE=lots"}, "start", "--head")
	if r.code == 0 || !strings.Contains(r.stderr, `RAYGO_TASK_EVENTS_RATE="lots"`) {
		t.Errorf("start with a bad RAYGO_TASK_EVENTS_RATE: want a failure naming it; %v", r)
	}
	if _, err := os.Stat(e.root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rejected starts touched the session root: %v", err)
	}
}

func TestStartFailsWhenPortTaken(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	r := e.raygo("start", "--head", "--port", port)
	if r.code != 1 || !strings.Contains(r.stderr, "exited during startup") || !strings.Contains(r.stderr, "address already in use") {
		t.Errorf("start on a taken port: want exit 1 with the child's log; %v", r)
	}
	if e.latest() != "" {
		t.Errorf("a failed start left session_latest behind")
	}
}

func TestJoinRejectsWrongToken(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	r := e.raygo("start", "--head", "--port", "0", "--num-cpus", "1")
	if r.code != 0 {
		t.Fatalf("start --head: %v", r)
	}
	t.Cleanup(func() { e.raygo("stop", "--force") })
	addr, _ := e.latest().ReadFile(addressFile)
	r = e.run([]string{envToken + "=wrong"}, "start", "--address", addr)
	if r.code != 1 || !strings.Contains(r.stderr, "rejected the token from RAYGO_TOKEN") {
		t.Errorf("join with a wrong token: %v", r)
	}
	if pids, _ := readPIDs(e.latest()); len(pids) != 1 {
		t.Errorf("pids after a rejected join = %v, want only the head", pids)
	}
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	if r := e.raygo("version"); r.code != 0 || r.stdout != Version+"\n" {
		t.Errorf("version: %v", r)
	}
	if r := e.raygo("stauts"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "stauts"`) || !strings.Contains(r.stderr, "status") {
		t.Errorf("unknown command: %v", r)
	}
	if r := e.raygo("stop", "--bogus"); r.code != 2 || !strings.Contains(r.stderr, "unknown flag") {
		t.Errorf("unknown flag: %v", r)
	}
	if r := e.raygo("status", "extra"); r.code != 2 {
		t.Errorf("positional argument: %v", r)
	}
	if r := e.raygo("--help"); r.code != 0 || !strings.Contains(r.stdout, "start") {
		t.Errorf("--help: %v", r)
	}
}

// closedAddress returns a loopback address where nothing listens.
func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestStartWithStorage: a head started with --storage, stopped and
// started again on the same port and storage, keeps its cluster's token
// (the new session's token file holds it) and finds its old node dead.
func TestStartWithStorage(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	db := filepath.Join(t.TempDir(), "gcs.db")
	start := func() string {
		t.Helper()
		r := e.raygo("start", "--head", "--port", port, "--num-cpus", "1", "--storage", db)
		if r.code != 0 {
			t.Fatalf("start --head --storage: %v", r)
		}
		tok, err := e.latest().ReadFile(tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	first := start()
	if r := e.raygo("stop"); r.code != 0 {
		t.Fatalf("stop: %v", r)
	}
	if second := start(); second != first {
		t.Errorf("restarted head's token %q, want the first one's %q", second, first)
	}
	r := e.raygo("status")
	if r.code != 0 || !strings.Contains(r.stdout, "Nodes: 1 alive") {
		t.Errorf("status after the restart: want 1 alive node (the old one dead); %v", r)
	}
	if r := e.raygo("stop"); r.code != 0 {
		t.Fatalf("stop: %v", r)
	}
}
