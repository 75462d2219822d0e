// Package storagetest runs the real stores tests need: a redis-server of
// the test's own on a free loopback port.
package storagetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// EnvRequireRedis, set by scripts/test.sh (which installs redis-server),
// turns a missing redis-server into a failure instead of a skip.
const EnvRequireRedis = "RAYGO_TEST_REQUIRE_REDIS"

// StartRedis runs a redis-server on a free loopback port until the test
// ends (no persistence of its own) and returns its URL. Without
// redis-server the test is skipped, or fails under EnvRequireRedis.
func StartRedis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(EnvRequireRedis) != "" {
			t.Fatalf("redis-server is not installed (scripts/test.sh installs it): %v", err)
		}
		t.Skip("redis-server is not installed; scripts/test.sh installs it")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	lis.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "redis://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not come up: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
