//go:build !windows

package endtoend

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/testcluster"
	"github.com/raygo/raygo/ray"
)

// roleGroupDriver creates a STRICT_SPREAD placement group over every node,
// runs a task in each bundle, and then, each time a line arrives on stdin,
// moves on: reports the group waiting after a node died, then the group
// placed again after a node joined.
const roleGroupDriver = "mh-group-driver"

const groupBundles = 4

func runGroupDriver() int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := ray.Init(ctx); err != nil { // RAYGO_ADDRESS, RAYGO_TOKEN
		fmt.Println("init:", err)
		return 1
	}
	defer ray.Shutdown()
	fail := func(what string, err error) int { fmt.Println(what+":", err); return 1 }
	bundles := make([]ray.Bundle, groupBundles)
	for i := range bundles {
		bundles[i] = ray.Bundle{"CPU": 0.5}
	}
	pg, err := ray.PlacementGroup(ctx, bundles, ray.PlacementStrictSpread, ray.Name("spread"))
	if err != nil {
		return fail("create", err)
	}
	in := bufio.NewReader(os.Stdin)
	for round := 1; round <= 2; round++ {
		ready, cancel := context.WithTimeout(ctx, time.Minute)
		err := pg.Ready(ready)
		cancel()
		if err != nil {
			return fail("ready", err)
		}
		info, err := pg.Info(ctx)
		if err != nil {
			return fail("info", err)
		}
		addrs, err := nodeAddresses(ctx, info.BundleNodes)
		if err != nil {
			return fail("nodes", err)
		}
		fmt.Println("bundles", strings.Join(addrs, " "))
		for i := range bundles {
			id, err := NodeOf.Options(ray.NumCPUs(0.5), ray.InPlacementGroup(pg, i)).Remote(ctx).Get(ctx)
			if err != nil {
				return fail("task", err)
			}
			if id != info.BundleNodes[i] {
				fmt.Printf("misplaced: bundle %d's task ran on %s, not %s\n", i, id, info.BundleNodes[i])
				return 1
			}
		}
		fmt.Println("ran", round)
		if round == 2 {
			return 0
		}
		if _, err := in.ReadString('\n'); err != nil { // a node was killed
			return fail("stdin", err)
		}
		deadline := time.Now().Add(time.Minute)
		for info.State == ray.GroupCreated {
			if time.Now().After(deadline) {
				fmt.Println("the group stayed CREATED after its node died")
				return 1
			}
			time.Sleep(100 * time.Millisecond)
			if info, err = pg.Info(ctx); err != nil {
				return fail("info", err)
			}
		}
		fmt.Printf("waiting %s %s\n", info.State, info.Reason)
		if _, err := in.ReadString('\n'); err != nil { // a node was added
			return fail("stdin", err)
		}
	}
	return 0
}

func nodeAddresses(ctx context.Context, ids []string) ([]string, error) {
	nodes, err := ray.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		for _, n := range nodes {
			if n.ID == id {
				out[i] = n.Address
			}
		}
	}
	return out, nil
}

// TestPlacementGroupAcrossHosts: a head and three nodes, each on its own
// host, and a driver on the head's host: a STRICT_SPREAD group of four bundles
// takes every node and each bundle's task runs on its node; when a node
// holding a bundle is killed the group waits (three nodes cannot hold four
// strictly spread bundles) until a node joins on a fifth host, and is then
// placed again there, its tasks running where the bundles are.
func TestPlacementGroupAcrossHosts(t *testing.T) {
	bed := namespaceBed(t)
	hosts := map[string]*testcluster.Host{}
	for _, name := range []string{"head", "n1", "n2", "n3", "n4"} {
		h, err := bed.AddHost(name)
		if err != nil {
			t.Fatal(err)
		}
		hosts[name] = h
	}
	tok := ray.EnvToken + "=e2e-groups"
	gcs := startRole(t, hosts["head"], roleMHHead, tok)
	procs := map[string]func() error{}
	var nodes []string
	for _, name := range []string{"n1", "n2", "n3"} {
		addr, cmd := startRoleCmd(t, hosts[name], roleMHNode, tok, ray.EnvAddress+"="+gcs)
		procs[addr] = cmd.Process.Kill
		nodes = append(nodes, addr)
	}

	// The driver runs on the head's host, so its node is the head's, which
	// stays (TestNodelessDriverOutlivesItsNode is the other case).
	d := startDriverRole(t, hosts["head"], roleGroupDriver, tok, ray.EnvAddress+"="+gcs)
	next := d.Next
	first := next("bundles")
	if got := slices.Sorted(slices.Values(first)); len(got) != groupBundles || len(slices.Compact(slices.Clone(got))) != groupBundles {
		t.Fatalf("STRICT_SPREAD bundles on %v, want one on each of four nodes", first)
	}
	next("ran")
	victim := first[0]
	if procs[victim] == nil {
		victim = first[1] // the head's node: keep the head
	}
	if err := procs[victim](); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	d.Send("killed")
	waiting := next("waiting")
	t.Logf("the group %s %.2fs after its node was killed: %s", waiting[0], time.Since(killed).Seconds(), strings.Join(waiting[1:], " "))
	added := startRole(t, hosts["n4"], roleMHNode, tok, ray.EnvAddress+"="+gcs)
	d.Send("added")
	second := next("bundles")
	if slices.Contains(second, victim) || !slices.Contains(second, added) || len(slices.Compact(slices.Sorted(slices.Values(second)))) != groupBundles {
		t.Fatalf("after the node died and another joined: bundles on %v (killed %s, added %s)", second, victim, added)
	}
	next("ran")
	t.Logf("bundles on %v, then on %v (bed: %s)", first, second, bed.Mode())
}
