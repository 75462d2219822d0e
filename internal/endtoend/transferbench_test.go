//go:build !windows

package endtoend

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/objmgr"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/testcluster"
	"github.com/raygo/raygo/ray"
)

// The object transfer benchmark (bench/objtransfer.sh): object pulls
// between node daemons on separate hosts (network namespaces), against a
// raw TCP stream between the same hosts, measured in the same run.
const (
	envBenchTransfer = "RAYGO_BENCH_TRANSFER" // set: TestTransferThroughput runs
	envBenchBytes    = "RAYGO_BENCH_BYTES"    // object and stream size (default 1 GiB)
	envBenchReps     = "RAYGO_BENCH_REPS"     // measured repetitions (default 3)
	envBenchNodes    = "RAYGO_BENCH_NODES"    // nodes besides the head (default 4)
	envRawAddr       = "RAYGO_BENCH_RAW_ADDR"
	envRawStreams    = "RAYGO_BENCH_RAW_STREAMS" // a raw client's connections (default 1)

	roleRawServer = "raw-server" // serves raw TCP streams on RAYGO_E2E_IP
	roleRawClient = "raw-client" // reads one stream from RAYGO_BENCH_RAW_ADDR
	roleTBDriver  = "tb-driver"  // the pulls, from the head's host
)

func benchInt(env string, def int64) int64 {
	if n, err := strconv.ParseInt(os.Getenv(env), 10, 64); err == nil && n > 0 {
		return n
	}
	return def
}

func benchBytes() int64 { return benchInt(envBenchBytes, 1<<30) }

// rawRing bounds a raw client's destination buffer.
const rawRing = 256 << 20

// touched returns n bytes whose pages are all written (no first-touch
// faults in the measured part).
func touched(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// runRawServer answers each connection's 8-byte length with that many
// bytes, written from memory in one call, as a raw TCP stream.
func runRawServer() int {
	lis, err := net.Listen("tcp", net.JoinHostPort(os.Getenv(envIP), "0"))
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	buf := touched(benchBytes())
	fmt.Println("up", lis.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		lis.Close()
	}()
	for {
		c, err := lis.Accept()
		if err != nil {
			return 0
		}
		setRawBuffers(c)
		go func() {
			defer c.Close()
			var hdr [8]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			n := min(int64(binary.BigEndian.Uint64(hdr[:])), int64(len(buf)))
			piece := benchInt("RAYGO_BENCH_RAW_WRITE", n)
			for off := int64(0); off < n; off += piece {
				if _, err := c.Write(buf[off:min(off+piece, n)]); err != nil {
					return
				}
			}
		}()
	}
}

// rawStream reads n bytes of one stream from the raw server into dst,
// over and over (len(dst) divides n, or the last piece is shorter).
func rawStream(n int64, dst []byte) error {
	c, err := net.Dial("tcp", os.Getenv(envRawAddr))
	if err != nil {
		return err
	}
	defer c.Close()
	setRawBuffers(c)
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(n))
	if _, err := c.Write(hdr[:]); err != nil {
		return err
	}
	for off := int64(0); off < n; off += int64(len(dst)) {
		if _, err := io.ReadFull(c, dst[:min(int64(len(dst)), n-off)]); err != nil {
			return err
		}
	}
	return nil
}

// setRawBuffers gives the raw stream the socket buffers the object
// manager's connections ask for (objmgr.setBuffers), so both run on the
// same TCP settings; RAYGO_BENCH_RAW_AUTOTUNE=1 leaves the kernel's
// autotuning instead.
func setRawBuffers(c net.Conn) {
	if os.Getenv("RAYGO_BENCH_RAW_AUTOTUNE") != "" {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 20)
		_ = tc.SetWriteBuffer(4 << 20)
	}
}

// runRawClient reads streams of RAYGO_BENCH_BYTES into memory it
// touched before. It prints "ready", then for each line on stdin reads
// one stream over RAYGO_BENCH_RAW_STREAMS connections (default 1, each
// its share) and prints its start and end (Unix nanoseconds). It lives
// across runs, as a node daemon does: the first transfer of a process is
// slower than the next ones on the VMs measured (a warm-up run is not
// counted).
func runRawClient() int {
	n := benchBytes()
	// The destination is at most rawRing bytes, reused: memory stays
	// bounded with several clients, and reuse only favours the raw figure.
	buf := touched(min(n, rawRing))
	k := benchInt(envRawStreams, 1)
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		start := time.Now()
		errc := make(chan error, k)
		for i := range k {
			share, part := n/k, buf[int64(i)*int64(len(buf))/k:int64(i+1)*int64(len(buf))/k]
			go func() { errc <- rawStream(share, part) }()
		}
		for range k {
			if err := <-errc; err != nil {
				fmt.Println("stream:", err)
				return 1
			}
		}
		fmt.Printf("raw %d %d %d\n", n, start.UnixNano(), time.Now().UnixNano())
	}
	return 0
}

// runTBDriver puts objects on the head's node and has the other nodes'
// object managers pull them: one node at a time (pull), then all at once
// (broadcast). It prints one line per measured run.
func runTBDriver() int {
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	if err := tbDriver(ctx); err != nil {
		fmt.Println("FAIL:", err)
		return 1
	}
	return 0
}

func tbDriver(ctx context.Context) error {
	if err := ray.Init(ctx); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	defer ray.Shutdown()
	names := strings.Split(os.Getenv(envOMHosts), ",")
	cl, err := dialOMCluster(ctx, os.Getenv(ray.EnvAddress), os.Getenv(ray.EnvToken), names)
	if err != nil {
		return err
	}
	data := touched(benchBytes())
	// pullTo puts a fresh object and has nodes pull it at once; it
	// returns the time until the last has it, then frees it everywhere.
	pullTo := func(nodes []string) (time.Duration, int64, error) {
		obj, err := ray.Put(ctx, data)
		if err != nil {
			return 0, 0, err
		}
		defer func() { _ = ray.Free(obj) }()
		w, err := wireRef(obj)
		if err != nil {
			return 0, 0, err
		}
		id := ids.MustFromBytes(w.ID)
		_, st, err := cl.holds(ctx, names[0], id)
		if err != nil {
			return 0, 0, err
		}
		size := storedSize(st, id)
		if size < 0 {
			return 0, 0, fmt.Errorf("the object is not in the head's store")
		}
		req := &pb.PullObjectRequest{ObjectId: w.ID, Size: size, OwnerAddress: w.OwnerAddress, OwnerId: w.OwnerID,
			Locations: []string{cl.addr[names[0]]}}
		start := time.Now()
		var wg sync.WaitGroup
		errc := make(chan error, len(nodes))
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := cl.nodes[n].PullObject(ctx, req); err != nil {
					errc <- fmt.Errorf("pull to %s: %w", n, err)
				}
			}()
		}
		wg.Wait()
		took := time.Since(start)
		close(errc)
		for err := range errc {
			return 0, 0, err
		}
		// Wait for the copies to go before the next run.
		if err := ray.Free(obj); err != nil {
			return 0, 0, err
		}
		for _, n := range nodes {
			for {
				ok, _, err := cl.holds(ctx, n, id)
				if err != nil {
					return 0, 0, err
				}
				if !ok {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		return took, size, nil
	}
	nodes := names[1:]
	// Commands from the harness, one a line: pull (to the first node),
	// broadcast (to every node); an answer line each.
	in := bufio.NewScanner(os.Stdin)
	fmt.Println("ready")
	for in.Scan() {
		switch in.Text() {
		case "pull":
			d, n, err := pullTo(nodes[:1])
			if err != nil {
				return err
			}
			fmt.Printf("pull %d %.6f\n", n, d.Seconds())
		case "broadcast":
			d, n, err := pullTo(nodes)
			if err != nil {
				return err
			}
			fmt.Printf("broadcast %d %d %.6f\n", len(nodes), n, d.Seconds())
		default:
			return nil
		}
	}
	return nil
}

// wireRef returns a ref's wire form (its id, owner id and address).
func wireRef(obj ray.ObjectRef[[]byte]) (codec.Ref, error) {
	b, err := msgpack.Marshal(obj)
	if err != nil {
		return codec.Ref{}, err
	}
	return codec.DecodeRef(msgpack.NewDecoder(bytes.NewReader(b)))
}

// TestTransferThroughput measures object pulls against raw TCP streams
// between the same network namespaces (set RAYGO_BENCH_TRANSFER=1; see
// bench/objtransfer.sh). It reports figures; it asserts none.
func TestTransferThroughput(t *testing.T) {
	if os.Getenv(envBenchTransfer) == "" {
		t.Skip("a benchmark: set " + envBenchTransfer + "=1 (bench/objtransfer.sh)")
	}
	bed := namespaceBed(t)
	var err error
	size := benchBytes()
	nNodes := int(benchInt(envBenchNodes, 4))
	reps := int(benchInt(envBenchReps, 3))
	names := []string{"h1"}
	for i := range nNodes {
		names = append(names, "h"+strconv.Itoa(i+2))
	}
	hosts := make([]*testcluster.Host, len(names))
	for i, name := range names {
		if hosts[i], err = bed.AddHost(name); err != nil {
			t.Fatal(err)
		}
	}
	tok := ray.EnvToken + "=e2e-transfer-bench"
	// Stores hold the object with room to spare (3 × in om-head/om-node)
	// and are pre-faulted, as `raygo start` does.
	bytesEnv := envOMBytes + "=" + strconv.FormatInt(size/2+1, 10)
	pre := envPrefault + "=1"
	gcs := startRole(t, hosts[0], roleOMHead, tok, envOMName+"=h1", bytesEnv, pre)
	for i := 1; i < len(hosts); i++ {
		startRole(t, hosts[i], roleOMNode, tok, ray.EnvAddress+"="+gcs, envOMName+"="+names[i], bytesEnv, pre)
	}
	sizeEnv := envBenchBytes + "=" + strconv.FormatInt(size, 10)
	rawAddr := startRole(t, hosts[0], roleRawServer, sizeEnv)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sizeF := float64(size)
	// Raw clients, one process per host and stream count, kept for
	// every run.
	type rawClient struct {
		in  io.WriteCloser
		out *bufio.Reader
	}
	clients := map[string]rawClient{}
	client := func(h *testcluster.Host, streams int) rawClient {
		key := h.Name + "/" + strconv.Itoa(streams)
		if c, ok := clients[key]; ok {
			return c
		}
		cmd := h.Command(exe)
		cmd.Env = append(cmd.Env, envRole+"="+roleRawClient, sizeEnv, envRawAddr+"="+rawAddr,
			envRawStreams+"="+strconv.Itoa(streams))
		cmd.Stderr = os.Stderr
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close(); _ = cmd.Wait() })
		c := rawClient{in, bufio.NewReader(out)}
		if line, _ := c.out.ReadString('\n'); line != "ready\n" {
			t.Fatalf("raw client on %s: %q", h.Name, line)
		}
		clients[key] = c
		return c
	}
	// raw reads one stream (over streams connections) to each host at
	// once and returns the bytes per second in all, from the first start
	// to the last end.
	raw := func(streams int, hs ...*testcluster.Host) float64 {
		cs := make([]rawClient, len(hs))
		for i, h := range hs {
			cs[i] = client(h, streams)
		}
		for _, c := range cs {
			_, _ = io.WriteString(c.in, "go\n")
		}
		first, last := int64(1<<63-1), int64(0)
		for i, c := range cs {
			line, _ := c.out.ReadString('\n')
			f := strings.Fields(line)
			if len(f) != 4 || f[0] != "raw" {
				t.Fatalf("raw client on %s: %q", hs[i].Name, line)
			}
			s, _ := strconv.ParseInt(f[2], 10, 64)
			e, _ := strconv.ParseInt(f[3], 10, 64)
			first, last = min(first, s), max(last, e)
		}
		return sizeF * float64(len(hs)) / (float64(last-first) / 1e9)
	}

	cmd := hosts[0].Command(exe)
	cmd.Env = append(cmd.Env, envRole+"="+roleTBDriver, tok, ray.EnvAddress+"="+gcs, sizeEnv,
		envOMHosts+"="+strings.Join(names, ","))
	cmd.Stderr = os.Stderr
	drvIn, _ := cmd.StdinPipe()
	drvOutPipe, _ := cmd.StdoutPipe()
	drvOut := bufio.NewReader(drvOutPipe)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		drvIn.Close()
		_ = cmd.Wait()
	}()
	if line, _ := drvOut.ReadString('\n'); line != "ready\n" {
		t.Fatalf("driver: %q", line)
	}
	driver := func(what string) float64 {
		_, _ = io.WriteString(drvIn, what+"\n")
		line, _ := drvOut.ReadString('\n')
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != what {
			t.Fatalf("driver: %q", line)
		}
		secs, _ := strconv.ParseFloat(f[len(f)-1], 64)
		n, _ := strconv.ParseFloat(f[len(f)-2], 64)
		k := 1.0
		if what == "broadcast" {
			k, _ = strconv.ParseFloat(f[1], 64)
		}
		return k * n / secs
	}
	// Warm-up of each (stores' pages, connections), then the runs,
	// interleaved so that both see the same machine.
	raw(1, hosts[1])
	raw(objmgr.DefaultChunksInFlight, hosts[1])
	raw(1, hosts[1:]...)
	driver("pull")
	driver("broadcast")
	var rawRates, raw8Rates, pullRates, parRates, bcastRates []float64
	var busyPar, busyBcast []float64 // the machine's CPUs busy during each run (all processes)
	for range reps {
		rawRates = append(rawRates, raw(1, hosts[1]))
		raw8Rates = append(raw8Rates, raw(objmgr.DefaultChunksInFlight, hosts[1]))
		pullRates = append(pullRates, driver("pull"))
		before := readCPU(t)
		parRates = append(parRates, raw(1, hosts[1:]...))
		busyPar = append(busyPar, readCPU(t).busySince(before))
		before = readCPU(t)
		bcastRates = append(bcastRates, driver("broadcast"))
		busyBcast = append(busyBcast, readCPU(t).busySince(before))
	}
	t.Logf("CPU busy (of %d CPUs, whole machine): raw streams to every node %v, broadcast %v", runtime.NumCPU(), pcts(busyPar), pcts(busyBcast))
	raw1, raw8, pull, par, bcast := median(rawRates), median(raw8Rates), median(pullRates), median(parRates), median(bcastRates)
	gb := func(r float64) string { return fmt.Sprintf("%.2f GB/s", r/1e9) }
	t.Logf("%d bytes, %d nodes, %d runs each (medians; all runs: raw %v, raw x%d %v, pull %v, raw parallel %v, broadcast %v)",
		size, nNodes, reps, gbs(rawRates), objmgr.DefaultChunksInFlight, gbs(raw8Rates), gbs(pullRates), gbs(parRates), gbs(bcastRates))
	t.Logf("raw TCP stream h1 -> h2:          %s", gb(raw1))
	t.Logf("raw TCP, %d streams h1 -> h2:      %s (the pull's chunks in flight)", objmgr.DefaultChunksInFlight, gb(raw8))
	t.Logf("object pull h1 -> h2:             %s  = %.2f x raw (target >= 0.7), %.2f x raw with %d streams", gb(pull), pull/raw1, pull/raw8, objmgr.DefaultChunksInFlight)
	t.Logf("raw streams h1 -> %d nodes at once: %s aggregate = %.2f x (nodes x raw)", nNodes, gb(par), par/(float64(nNodes)*raw1))
	t.Logf("broadcast h1 -> %d nodes:          %s aggregate = %.2f x (nodes x raw) (target >= 0.5), %.2f x raw parallel",
		nNodes, gb(bcast), bcast/(float64(nNodes)*raw1), bcast/par)
	fmt.Printf("RESULT raw=%.3f raw8=%.3f pull=%.3f pull/raw=%.3f pull/raw8=%.3f rawpar=%.3f broadcast=%.3f broadcast/(nodes*raw)=%.3f nodes=%d bytes=%d\n",
		raw1/1e9, raw8/1e9, pull/1e9, pull/raw1, pull/raw8, par/1e9, bcast/1e9, bcast/(float64(nNodes)*raw1), nNodes, size)
}

// cpuTimes is the machine's CPU time from /proc/stat, in ticks.
type cpuTimes struct{ busy, total float64 }

func readCPU(t *testing.T) cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var c cpuTimes
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		c.total += v
		if i != 3 && i != 4 { // idle, iowait
			c.busy += v
		}
	}
	return c
}

// busySince is the share of CPU time spent busy since before.
func (c cpuTimes) busySince(before cpuTimes) float64 {
	return (c.busy - before.busy) / max(c.total-before.total, 1)
}

func pcts(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f%%", 100*x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func gbs(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x/1e9)
	}
	return "[" + strings.Join(parts, " ") + "] GB/s"
}
