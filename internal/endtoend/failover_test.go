//go:build !windows

package endtoend

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/testcluster"
	"github.com/raygo/raygo/ray"
)

// roleFailoverDriver runs a task, waits for a line on stdin (its node was
// killed meanwhile), and runs three more.
const roleFailoverDriver = "mh-failover-driver"

func runFailoverDriver() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ray.Init(ctx); err != nil { // RAYGO_ADDRESS, RAYGO_TOKEN
		fmt.Println("init:", err)
		return 1
	}
	defer ray.Shutdown()
	run := func(what string) bool {
		nodes, err := ray.Nodes(ctx)
		if err != nil {
			fmt.Println("nodes:", err)
			return false
		}
		id, err := NodeOf.Remote(ctx).Get(ctx)
		if err != nil {
			fmt.Println("task:", err)
			return false
		}
		for _, n := range nodes {
			if n.ID == id {
				fmt.Println(what, n.Address)
			}
		}
		return true
	}
	if !run("ran") {
		return 1
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Println("stdin:", err)
		return 1
	}
	time.Sleep(300 * time.Millisecond) // idle leases go back: the next tasks ask for new ones
	for range 3 {
		if !run("after") {
			return 1
		}
	}
	return 0
}

// TestNodelessDriverOutlivesItsNode: a driver on a host without a node
// uses another host's node (the lowest address: n1 here); when that node
// is killed, its tasks go to another node at once (the first lease
// request that finds n1 gone asks the control store for another), well
// before the node is declared dead.
func TestNodelessDriverOutlivesItsNode(t *testing.T) {
	bed := namespaceBed(t)
	hosts := map[string]*testcluster.Host{}
	for _, name := range []string{"n1", "n2", "head", "driver"} { // n1 gets the lowest address
		h, err := bed.AddHost(name)
		if err != nil {
			t.Fatal(err)
		}
		hosts[name] = h
	}
	tok := ray.EnvToken + "=e2e-failover"
	gcs := startRole(t, hosts["head"], roleMHHead, tok)
	n1, n1cmd := startRoleCmd(t, hosts["n1"], roleMHNode, tok, ray.EnvAddress+"="+gcs)
	startRole(t, hosts["n2"], roleMHNode, tok, ray.EnvAddress+"="+gcs)

	d := startDriverRole(t, hosts["driver"], roleFailoverDriver, tok, ray.EnvAddress+"="+gcs)
	// The driver asks n1 for its leases (it may place the task elsewhere).
	if f := d.Next("ran"); len(f) != 1 {
		t.Fatalf("the driver's first task: %v", f)
	}
	if err := n1cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	d.Send("killed")
	for range 3 {
		if f := d.Next("after"); len(f) != 1 || f[0] == n1 {
			t.Fatalf("after n1 was killed: %v", f)
		}
	}
	t.Logf("three tasks ran elsewhere %.2fs after the driver's node was killed (bed: %s)", time.Since(killed).Seconds(), bed.Mode())
}
