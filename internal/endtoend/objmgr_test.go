//go:build !windows

package endtoend

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/testcluster"
	"github.com/raygo/raygo/ray"
)

// Roles of the object manager test (TestObjectManagerAcrossHosts).
const (
	roleOMHead   = "om-head"   // a head on RAYGO_E2E_IP with resource RAYGO_E2E_NAME
	roleOMNode   = "om-node"   // a node joining RAYGO_ADDRESS, with resource RAYGO_E2E_NAME and 3 CPUs
	roleOMDriver = "om-driver" // the checks, run from the head's host
	envOMName    = "RAYGO_E2E_NAME"
	envOMHosts   = "RAYGO_E2E_HOSTS" // the driver: every host's resource name, head's first
	envOMBarrier = "RAYGO_E2E_BARRIER"
	// envOMBytes sets the broadcast object's size (default omBytes); the
	// stores hold three times it.
	envOMBytes = "RAYGO_E2E_BROADCAST_BYTES"
	// envPrefault: the roles' stores are pre-faulted (as raygo start's).
	envPrefault = "RAYGO_E2E_PREFAULT"
)

// omBytes is the default size of the test's objects: beyond the inline
// threshold and several chunks, small enough for a 2-core CI box under
// -race. RAYGO_E2E_BROADCAST_BYTES=1073741824 runs it with 1 GiB.
const omBytes = 40 << 20

// omConcurrent is how many tasks on one node read one object at once;
// omDirectPulls how many PullObject calls the driver sends beside them.
const (
	omConcurrent  = 3
	omDirectPulls = 4
)

func omObjectBytes() int64 {
	if n, err := strconv.ParseInt(os.Getenv(envOMBytes), 10, 64); err == nil && n > 0 {
		return n
	}
	return omBytes
}

// SumOf reads the object in refs[0] zero-copy (ray.GetBuffer: no copy
// on the worker's heap, so 1 GiB objects fit four workers on a CI box)
// and reports its node and the object's SHA-256. With dir set it first
// waits until n tasks have reached that barrier directory, so that their
// gets are concurrent. The ref travels inside a slice: it is not resolved
// before the task runs.
var SumOf = ray.Func3(func(ctx context.Context, refs []ray.ObjectRef[[]byte], dir string, n int) (string, error) {
	if dir != "" {
		f, err := os.CreateTemp(dir, "arrived-")
		if err != nil {
			return "", err
		}
		f.Close()
		for {
			list, _ := os.ReadDir(dir)
			if len(list) >= n {
				break
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	buf, err := ray.GetBuffer(ctx, refs[0])
	if err != nil {
		return "", err
	}
	defer buf.Release()
	sum := sha256.Sum256(buf.Bytes())
	tc, _ := ray.CurrentTask(ctx)
	return tc.NodeID + " " + hex.EncodeToString(sum[:]), nil
}, ray.RegisterName("e2e.SumOf"))

func runOMNode(role string) int {
	ip := os.Getenv(envIP)
	rc, done, err := roleNodeConfig(3 * omObjectBytes())
	if err != nil {
		fmt.Println("session:", err)
		return 1
	}
	defer done()
	rc.PrefaultObjectStore = os.Getenv(envPrefault) != ""
	rc.Resources = resources.Set{resources.CPU: 1, os.Getenv(envOMName): 1}
	if role != roleOMHead {
		rc.Resources[resources.CPU] = omConcurrent
	}
	return serveRoleNode(rc, role == roleOMHead, ip)
}

// serveRoleNode runs a role's node daemon: a head with its control store
// on host ip when head, else a node joining RAYGO_ADDRESS; it says "up"
// and the control store's (head) or node's address, and serves until
// stdin closes.
func serveRoleNode(rc raylet.Config, head bool, ip string) int {
	if head {
		h, err := node.StartHead(node.HeadConfig{GCSAddress: net.JoinHostPort(ip, "0"), Raylet: rc, Token: os.Getenv(ray.EnvToken)})
		if err != nil {
			fmt.Println("head:", err)
			return 1
		}
		defer h.Stop()
		fmt.Println("up", h.GCSAddress())
	} else {
		rc.GCSAddress, rc.Token = os.Getenv(ray.EnvAddress), os.Getenv(ray.EnvToken)
		n, err := raylet.Start(rc)
		if err != nil {
			fmt.Println("node:", err)
			return 1
		}
		defer n.Stop()
		fmt.Println("up", n.Address())
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes stdin
	return 0
}

// omCluster reaches the node daemons of the driver's cluster.
type omCluster struct {
	nodes map[string]pb.NodeDaemonClient // by resource name
	addr  map[string]string
}

func dialOMCluster(ctx context.Context, gcs, token string, names []string) (*omCluster, error) {
	conn, err := rpc.Dial(gcs, token)
	if err != nil {
		return nil, err
	}
	rep, err := pb.NewControlStoreClient(conn).GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		return nil, err
	}
	c := &omCluster{nodes: map[string]pb.NodeDaemonClient{}, addr: map[string]string{}}
	for _, n := range rep.GetNodes() {
		for _, name := range names {
			if n.GetTotal().GetAmounts()[name] > 0 {
				dc, err := rpc.Dial(n.GetAddress(), token)
				if err != nil {
					return nil, err
				}
				c.nodes[name] = pb.NewNodeDaemonClient(dc)
				c.addr[name] = n.GetAddress()
			}
		}
	}
	if len(c.nodes) != len(names) {
		return nil, fmt.Errorf("found %d of the nodes %v", len(c.nodes), names)
	}
	return c, nil
}

// holds reports whether the node named has the object in its store.
func (c *omCluster) holds(ctx context.Context, name string, id ids.ID) (bool, *pb.NodeStatsReply, error) {
	st, err := c.nodes[name].NodeStats(ctx, &pb.NodeStatsRequest{Largest: 1000})
	if err != nil {
		return false, nil, err
	}
	return storedSize(st, id) >= 0, st, nil
}

// storedSize is the size of the object in a node's store, -1 if absent.
func storedSize(st *pb.NodeStatsReply, id ids.ID) int64 {
	for _, o := range st.GetStore().GetLargest() {
		if bytes.Equal(o.GetObjectId(), id[:]) {
			return o.GetSize()
		}
	}
	return -1
}

func runOMDriver() int {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := omDriver(ctx); err != nil {
		fmt.Println("FAIL:", err)
		return 1
	}
	return 0
}

func omDriver(ctx context.Context) error {
	if err := ray.Init(ctx); err != nil { // RAYGO_ADDRESS, RAYGO_TOKEN
		return fmt.Errorf("init: %w", err)
	}
	defer ray.Shutdown()
	names := strings.Split(os.Getenv(envOMHosts), ",")
	cl, err := dialOMCluster(ctx, os.Getenv(ray.EnvAddress), os.Getenv(ray.EnvToken), names)
	if err != nil {
		return err
	}
	size := omObjectBytes()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])

	// 1. Broadcast: one task on every node reads the object; the head's
	// node holds the primary copy (this driver's node), the others pull.
	obj, err := ray.Put(ctx, data)
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	id, ok := ids.Parse(obj.ID())
	if !ok {
		return fmt.Errorf("object id %q", obj.ID())
	}
	start := time.Now()
	var refs []ray.ObjectRef[string]
	for _, name := range names {
		refs = append(refs, SumOf.Options(ray.Resources(map[string]float64{name: 1})).Remote(ctx, []ray.ObjectRef[[]byte]{obj}, "", 0))
	}
	seen := map[string]bool{}
	for i, r := range refs {
		v, err := r.Get(ctx)
		if err != nil {
			return fmt.Errorf("task on %s: %w", names[i], err)
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != want {
			return fmt.Errorf("the task on %s read %q, want sum %s", names[i], v, want)
		}
		seen[f[0]] = true
	}
	if len(seen) != len(names) {
		return fmt.Errorf("tasks ran on %d nodes, want %d", len(seen), len(names))
	}
	fmt.Printf("broadcast %d bytes to %d nodes in %s\n", size, len(names)-1, time.Since(start).Round(time.Millisecond))
	_, primary, err := cl.holds(ctx, names[0], id)
	if err != nil {
		return err
	}
	stored := storedSize(primary, id) // the encoded object: size plus the codec's header
	for _, name := range names {
		ok, st, err := cl.holds(ctx, name, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("node %s does not hold the object after its task read it", name)
		}
		p := st.GetPulls()
		fmt.Printf("node %s: pulls %d, bytes pulled %d, chunks pulled %d, chunks served %d, source failures %d\n",
			name, p.GetPulls(), p.GetBytesPulled(), p.GetChunksPulled(), p.GetChunksServed(), p.GetSourceFailures())
		if name != names[0] && (p.GetPulls() != 1 || p.GetBytesPulled() != stored) {
			return fmt.Errorf("node %s pulled %d times, %d bytes: want once, %d bytes", name, p.GetPulls(), p.GetBytesPulled(), stored)
		}
	}

	// 2. Free: the owner frees the object; every copy goes, on every node.
	if err := ray.Free(obj); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range names {
		for {
			ok, _, err := cl.holds(ctx, name, id)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %s still holds the object 30 s after its owner freed it", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	fmt.Println("freed on every node")

	// 3. Concurrent gets of one object on one node pull it once.
	target := names[1]
	_, before, err := cl.holds(ctx, target, id)
	if err != nil {
		return err
	}
	obj2, err := ray.Put(ctx, data)
	if err != nil {
		return err
	}
	barrier := os.Getenv(envOMBarrier)
	var gets []ray.ObjectRef[string]
	for range omConcurrent {
		gets = append(gets, SumOf.Options(ray.Resources(map[string]float64{target: 0.25})).
			Remote(ctx, []ray.ObjectRef[[]byte]{obj2}, barrier, omConcurrent))
	}
	// Beside the tasks' gets, direct requests to the node's daemon, all
	// at once: they must merge into the same pull.
	w, err := wireRef(obj2)
	if err != nil {
		return err
	}
	req := &pb.PullObjectRequest{ObjectId: w.ID, Size: stored, OwnerAddress: w.OwnerAddress, OwnerId: w.OwnerID,
		Locations: []string{cl.addr[names[0]]}}
	errc := make(chan error, omDirectPulls)
	for range omDirectPulls {
		go func() {
			_, err := cl.nodes[target].PullObject(ctx, req)
			errc <- err
		}()
	}
	for range omDirectPulls {
		if err := <-errc; err != nil {
			return fmt.Errorf("direct pull: %w", err)
		}
	}
	for _, r := range gets {
		v, err := r.Get(ctx)
		if err != nil {
			return fmt.Errorf("concurrent get: %w", err)
		}
		if f := strings.Fields(v); len(f) != 2 || f[1] != want {
			return fmt.Errorf("a concurrent get read %q, want sum %s", v, want)
		}
	}
	_, after, err := cl.holds(ctx, target, id)
	if err != nil {
		return err
	}
	b, a := before.GetPulls(), after.GetPulls()
	fmt.Printf("node %s: %d requests for the object, %d pull, %d bytes pulled\n", target,
		a.GetRequests()-b.GetRequests(), a.GetPulls()-b.GetPulls(), a.GetBytesPulled()-b.GetBytesPulled())
	if a.GetRequests()-b.GetRequests() < omDirectPulls || a.GetPulls()-b.GetPulls() != 1 || a.GetBytesPulled()-b.GetBytesPulled() != stored {
		return fmt.Errorf("node %s: %d requests made %d pulls of %d bytes: want %d requests, one pull of %d bytes",
			target, a.GetRequests()-b.GetRequests(), a.GetPulls()-b.GetPulls(), a.GetBytesPulled()-b.GetBytesPulled(), omDirectPulls, stored)
	}
	return nil
}

// TestObjectManagerAcrossHosts: a head and three nodes, each on a host of
// its own (network namespaces), and a driver on the head's host. The
// driver's object is broadcast to every node (each pulls it once and
// holds a copy), freed by its owner (every copy goes), and read by
// several tasks at once on one node (one pull serves them all).
func TestObjectManagerAcrossHosts(t *testing.T) {
	bed := namespaceBed(t)
	var err error
	names := []string{"h1", "h2", "h3", "h4"}
	hosts := make([]*testcluster.Host, len(names))
	for i, name := range names {
		if hosts[i], err = bed.AddHost(name); err != nil {
			t.Fatal(err)
		}
	}
	const token = "e2e-objmgr"
	tok := ray.EnvToken + "=" + token
	bytesEnv := envOMBytes + "=" + strconv.FormatInt(omObjectBytes(), 10)
	gcs := startRole(t, hosts[0], roleOMHead, tok, envOMName+"=h1", bytesEnv)
	for i := 1; i < len(hosts); i++ {
		startRole(t, hosts[i], roleOMNode, tok, ray.EnvAddress+"="+gcs, envOMName+"="+names[i], bytesEnv)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	barrier := filepath.Join(t.TempDir(), "barrier")
	if err := os.Mkdir(barrier, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := hosts[0].Command(exe)
	cmd.Env = append(cmd.Env, envRole+"="+roleOMDriver, tok, ray.EnvAddress+"="+gcs, bytesEnv,
		envOMHosts+"="+strings.Join(names, ","), envOMBarrier+"="+barrier)
	cmd.Stderr = os.Stderr
	out, err := runWithin(cmd, 5*time.Minute)
	t.Logf("bed %s; driver:\n%s", bed.Mode(), out)
	if err != nil {
		t.Fatalf("driver: %v", err)
	}
}
