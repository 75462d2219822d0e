package ray_test

import (
	"context"
	"strings"
	"testing"

	"github.com/raygo/raygo/ray"
)

// On windows a program joins a cluster running elsewhere; Init without an
// address says so instead of failing somewhere inside a node daemon. (The
// other tests of this package start local clusters, which need unix
// sockets with descriptor passing and a shared-memory region.)
func TestInitWithoutAddressOnWindows(t *testing.T) {
	t.Setenv(ray.EnvAddress, "")
	err := ray.Init(context.Background())
	if err == nil {
		_ = ray.Shutdown()
		t.Fatal("Init started an embedded cluster on windows")
	}
	if !strings.Contains(err.Error(), "Address(...)") {
		t.Fatalf("Init: %v; want it to say how to join a cluster", err)
	}
}
