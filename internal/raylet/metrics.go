package raylet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
)

// Node metrics.
//
// Every node daemon keeps its own Prometheus registry (never the global
// default one: several daemons share a process in tests and in the
// embedded cluster). Its series are read from the daemon's state when the
// registry is gathered, by a collector (nodeCollector), except the
// placement-time histogram, which RequestLease observes on each grant.
// Every series carries the node's labels: node_id (hex) and NodeAddress
// (the daemon's host:port). NodeDaemon.Metrics answers with the registry
// in Prometheus's text format; the head's /metrics merges every node's
// (internal/metrics). docs/metrics.md lists each series and Ray's name
// for it.

// Metric names (raygo_ in place of Ray's ray_ prefix).
const (
	MetricResources          = "raygo_resources"
	MetricObjectStoreMemory  = "raygo_object_store_memory"
	MetricObjectStoreAvail   = "raygo_object_store_available_memory"
	MetricObjectStoreObjects = "raygo_object_store_num_local_objects"
	MetricSpillBytes         = "raygo_spill_manager_objects_bytes"
	MetricSpillObjects       = "raygo_spill_manager_objects"
	MetricSpillRequests      = "raygo_spill_manager_request_total"
	MetricEvictions          = "raygo_object_store_evictions_total"
	MetricWorkers            = "raygo_workers"
	MetricQueuedLeases       = "raygo_scheduler_queued_leases"
	MetricPlacementTime      = "raygo_scheduler_placement_time_s"
	MetricOOMKills           = "raygo_memory_manager_worker_eviction_total"
	MetricCPUUtilization     = "raygo_node_cpu_utilization"
	MetricCPUCount           = "raygo_node_cpu_count"
	MetricMemUsed            = "raygo_node_mem_used"
	MetricMemTotal           = "raygo_node_mem_total"
	MetricMemAvailable       = "raygo_node_mem_available"
	MetricGPUs               = "raygo_node_gpus_available"
	MetricGPUUtilization     = "raygo_node_gpus_utilization"
	MetricGRAMUsed           = "raygo_node_gram_used"
	MetricGRAMAvailable      = "raygo_node_gram_available"
)

// PlacementBuckets are the placement-time histogram's upper bounds in
// seconds: 100 µs to about 26 s, ×4 apart (a local grant takes well under
// a millisecond; a lease that waits for room can take minutes, and lands in
// +Inf).
var PlacementBuckets = prometheus.ExponentialBuckets(0.0001, 4, 10)

// gpuReadingMaxAge is how long a reading of nvidia-smi is reused: a
// scrape runs it at most this often (it takes tens of milliseconds).
const gpuReadingMaxAge = 5 * time.Second

// gpuQueryTimeout bounds one nvidia-smi run during a scrape; a wedged
// driver leaves the GPU utilization series out, not the scrape hanging.
const gpuQueryTimeout = 500 * time.Millisecond

// nodeMetrics is a node daemon's registry and what its collector keeps
// between scrapes.
type nodeMetrics struct {
	reg       *prometheus.Registry
	placement prometheus.Histogram
	cpu       cpuMeter
	gpu       gpuMeter
}

// newNodeMetrics makes r's registry. It reads nothing until gathered.
func newNodeMetrics(r *Raylet) *nodeMetrics {
	m := &nodeMetrics{reg: prometheus.NewRegistry()}
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"node_id": r.nodeID.String(), "NodeAddress": r.address}, m.reg)
	m.placement = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    MetricPlacementTime,
		Help:    "Time from a lease request's arrival at this node daemon to its grant of a worker, in seconds (Ray: ray_scheduler_placement_time_s).",
		Buckets: PlacementBuckets,
	})
	m.cpu.prime()
	wrapped.MustRegister(m.placement, &nodeCollector{r: r, m: m},
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "raygo_node_daemon"}))
	return m
}

// observePlacement records a grant that took d from the request's arrival.
func (m *nodeMetrics) observePlacement(d time.Duration) {
	if m != nil {
		m.placement.Observe(d.Seconds())
	}
}

// Metrics answers with the node's metrics in Prometheus's text exposition
// format (0.0.4).
func (r *Raylet) Metrics(context.Context, *pb.MetricsRequest) (*pb.MetricsReply, error) {
	text, err := r.MetricsText()
	if err != nil {
		return nil, errs.Systemf("raylet: metrics: %v", err)
	}
	return &pb.MetricsReply{Text: text}, nil
}

// MetricsText gathers the node's registry in Prometheus's text format.
func (r *Raylet) MetricsText() ([]byte, error) {
	mfs, err := r.metrics.reg.Gather()
	if err != nil && len(mfs) == 0 {
		return nil, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// nodeCollector reads the daemon's state on each gather.
type nodeCollector struct {
	r *Raylet
	m *nodeMetrics
}

var (
	descResources = prometheus.NewDesc(MetricResources,
		"Logical resources of the node by name, USED or AVAILABLE (Ray: ray_resources). Memory is in bytes.",
		[]string{"Name", "State"}, nil)
	descStoreMemory = prometheus.NewDesc(MetricObjectStoreMemory,
		"Object store bytes by location: MMAP_SHM (the shared-memory region), MMAP_DISK (objects larger than the region, in files), SPILLED (Ray: ray_object_store_memory).",
		[]string{"Location"}, nil)
	descStoreAvail = prometheus.NewDesc(MetricObjectStoreAvail,
		"Bytes of the shared-memory object store not allocated (Ray: ray_object_store_available_memory).", nil, nil)
	descStoreObjects = prometheus.NewDesc(MetricObjectStoreObjects,
		"Objects in the node's store, in memory or on disk (Ray: ray_object_store_num_local_objects).", nil, nil)
	descSpillBytes = prometheus.NewDesc(MetricSpillBytes,
		"Bytes of objects whose only copy is spilled to disk now (Ray: ray_spill_manager_objects_bytes).", []string{"Type"}, nil)
	descSpillObjects = prometheus.NewDesc(MetricSpillObjects,
		"Objects whose only copy is spilled to disk now (Ray: ray_spill_manager_objects).", []string{"Type"}, nil)
	descSpillRequests = prometheus.NewDesc(MetricSpillRequests,
		"Objects spilled to disk and restored from it since the node started (Ray: ray_spill_manager_request_total).", []string{"Type"}, nil)
	descEvictions = prometheus.NewDesc(MetricEvictions,
		"Secondary copies evicted from the object store since the node started.", nil, nil)
	descWorkers = prometheus.NewDesc(MetricWorkers,
		"Worker processes of the node by state: STARTING (not registered yet), IDLE, LEASED (running a lease), ACTOR_HOST (hosting actors that hold no CPU).",
		[]string{"State"}, nil)
	descQueued = prometheus.NewDesc(MetricQueuedLeases,
		"Lease requests waiting in the node's queue: FEASIBLE (waiting for room) or INFEASIBLE (no node can hold them) (Ray: ray_scheduler_tasks).",
		[]string{"State"}, nil)
	descOOMKills = prometheus.NewDesc(MetricOOMKills,
		"Workers the memory monitor killed since the node started (Ray: ray_memory_manager_worker_eviction_total).", nil, nil)
	descCPUUtil = prometheus.NewDesc(MetricCPUUtilization,
		"The machine's CPU utilization, in percent of all its cores (0..100), since the previous scrape (Ray: ray_node_cpu_utilization).", nil, nil)
	descCPUCount = prometheus.NewDesc(MetricCPUCount,
		"CPU cores of the machine (Ray: ray_node_cpu_count).", nil, nil)
	descMemUsed = prometheus.NewDesc(MetricMemUsed,
		"Memory in use, in bytes, as the memory monitor reads it (cgroup limits included) (Ray: ray_node_mem_used).", nil, nil)
	descMemTotal = prometheus.NewDesc(MetricMemTotal,
		"Memory there is to use, in bytes (Ray: ray_node_mem_total).", nil, nil)
	descMemAvail = prometheus.NewDesc(MetricMemAvailable,
		"Memory total less used, in bytes (Ray: ray_node_mem_available).", nil, nil)
	descGPUs = prometheus.NewDesc(MetricGPUs,
		"GPUs the node offers (Ray: ray_node_gpus_available).", nil, nil)
	descGPUUtil = prometheus.NewDesc(MetricGPUUtilization,
		"Utilization of each GPU in percent, from nvidia-smi (Ray: ray_node_gpus_utilization).", []string{"GpuIndex", "GpuDeviceName"}, nil)
	descGRAMUsed = prometheus.NewDesc(MetricGRAMUsed,
		"GPU memory in use per GPU, in bytes, from nvidia-smi (Ray: ray_node_gram_used).", []string{"GpuIndex", "GpuDeviceName"}, nil)
	descGRAMAvail = prometheus.NewDesc(MetricGRAMAvailable,
		"GPU memory free per GPU, in bytes, from nvidia-smi (Ray: ray_node_gram_available, in MB).", []string{"GpuIndex", "GpuDeviceName"}, nil)
)

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descResources, descStoreMemory, descStoreAvail, descStoreObjects, descSpillBytes,
		descSpillObjects, descSpillRequests, descEvictions, descWorkers, descQueued, descOOMKills, descCPUUtil, descCPUCount,
		descMemUsed, descMemTotal, descMemAvail, descGPUs, descGPUUtil, descGRAMUsed, descGRAMAvail} {
		ch <- d
	}
}

// nodeSnapshot is what the collector reads under the daemon's lock.
type nodeSnapshot struct {
	total, avail         map[string]float64
	workers              map[string]int
	feasible, infeasible int
	oomKills             int64
	gpus                 int
}

// WorkerStates are the values of raygo_workers' State label.
var WorkerStates = []string{"STARTING", "IDLE", "LEASED", "ACTOR_HOST"}

func (r *Raylet) metricsSnapshot() nodeSnapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := nodeSnapshot{total: r.res.Total(), avail: r.res.Available(), workers: map[string]int{}, oomKills: r.oomKills, gpus: len(r.cfg.GPUIDs)}
	for _, w := range r.workers {
		if w.dead {
			continue
		}
		s.workers[workerState(w)]++
	}
	for _, p := range r.queue {
		if p.infeasible {
			s.infeasible++
		} else {
			s.feasible++
		}
	}
	return s
}

// workerState is w's raygo_workers State (r.mu held).
func workerState(w *worker) string {
	select {
	case <-w.registered:
	default:
		return "STARTING"
	}
	switch {
	case w.hosted > 0:
		return "ACTOR_HOST"
	case w.lease != nil:
		return "LEASED"
	}
	return "IDLE"
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	s := r.metricsSnapshot()
	names := make([]string, 0, len(s.total))
	for n := range s.total {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ch <- prometheus.MustNewConstMetric(descResources, prometheus.GaugeValue, s.total[n]-s.avail[n], n, "USED")
		ch <- prometheus.MustNewConstMetric(descResources, prometheus.GaugeValue, s.avail[n], n, "AVAILABLE")
	}
	for _, st := range WorkerStates {
		ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(s.workers[st]), st)
	}
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(s.feasible), "FEASIBLE")
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(s.infeasible), "INFEASIBLE")
	ch <- prometheus.MustNewConstMetric(descOOMKills, prometheus.CounterValue, float64(s.oomKills))

	st := r.store.Stats(0)
	ch <- prometheus.MustNewConstMetric(descStoreMemory, prometheus.GaugeValue, float64(st.GetUsed()), "MMAP_SHM")
	ch <- prometheus.MustNewConstMetric(descStoreMemory, prometheus.GaugeValue, float64(st.GetFileBytes()), "MMAP_DISK")
	ch <- prometheus.MustNewConstMetric(descStoreMemory, prometheus.GaugeValue, float64(st.GetSpilledBytes()), "SPILLED")
	ch <- prometheus.MustNewConstMetric(descStoreAvail, prometheus.GaugeValue, float64(max(st.GetCapacity()-st.GetUsed(), 0)))
	ch <- prometheus.MustNewConstMetric(descStoreObjects, prometheus.GaugeValue, float64(st.GetObjects()))
	ch <- prometheus.MustNewConstMetric(descSpillBytes, prometheus.GaugeValue, float64(st.GetSpilledBytes()), "Spilled")
	ch <- prometheus.MustNewConstMetric(descSpillObjects, prometheus.GaugeValue, float64(st.GetSpilledCount()), "Spilled")
	ch <- prometheus.MustNewConstMetric(descSpillRequests, prometheus.CounterValue, float64(st.GetSpillsTotal()), "Spilled")
	ch <- prometheus.MustNewConstMetric(descSpillRequests, prometheus.CounterValue, float64(st.GetRestoresTotal()), "Restored")
	ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(st.GetEvictionsTotal()))

	ch <- prometheus.MustNewConstMetric(descCPUCount, prometheus.GaugeValue, float64(runtime.NumCPU()))
	if u, ok := c.m.cpu.utilization(); ok {
		ch <- prometheus.MustNewConstMetric(descCPUUtil, prometheus.GaugeValue, u)
	}
	if mem := r.memoryUsage(); mem != nil && mem.GetTotal() > 0 {
		ch <- prometheus.MustNewConstMetric(descMemUsed, prometheus.GaugeValue, float64(mem.GetUsed()))
		ch <- prometheus.MustNewConstMetric(descMemTotal, prometheus.GaugeValue, float64(mem.GetTotal()))
		ch <- prometheus.MustNewConstMetric(descMemAvail, prometheus.GaugeValue, float64(max(mem.GetTotal()-mem.GetUsed(), 0)))
	}
	ch <- prometheus.MustNewConstMetric(descGPUs, prometheus.GaugeValue, float64(s.gpus))
	if s.gpus > 0 {
		for _, g := range c.m.gpu.read(r.cfg.GPUIDs) {
			idx := strconv.Itoa(g.Index)
			ch <- prometheus.MustNewConstMetric(descGPUUtil, prometheus.GaugeValue, g.Utilization, idx, g.Name)
			ch <- prometheus.MustNewConstMetric(descGRAMUsed, prometheus.GaugeValue, float64(g.MemoryUsedMiB)*(1<<20), idx, g.Name)
			ch <- prometheus.MustNewConstMetric(descGRAMAvail, prometheus.GaugeValue, float64(max(g.MemoryTotalMiB-g.MemoryUsedMiB, 0))*(1<<20), idx, g.Name)
		}
	}
}

// ---------------------------------------------------------------- CPU

// cpuTimes is a reading of the machine's cumulative CPU time: busy and
// total, in clock ticks (Linux's /proc/stat) or another unit of the
// platform's; only differences between two readings mean anything.
type cpuTimes struct{ busy, total uint64 }

// cpuMeter computes the CPU utilization between scrapes from readings of
// readCPUTimes (cpu_linux.go, cpu_darwin.go, cpu_other.go).
type cpuMeter struct {
	mu      sync.Mutex
	last    cpuTimes // guarded by mu
	ok      bool     // guarded by mu; last holds a reading
	percent float64  // guarded by mu; the last figure computed
	have    bool     // guarded by mu; percent holds one
}

func (c *cpuMeter) prime() {
	t, err := readCPUTimes()
	c.mu.Lock()
	c.last, c.ok = t, err == nil
	c.mu.Unlock()
}

// utilization is the percentage of CPU time busy since the previous call
// (or since the daemon started); false when the platform cannot tell. A
// call too soon after the previous one for the counters to have moved
// answers the previous figure.
func (c *cpuMeter) utilization() (float64, bool) {
	t, err := readCPUTimes()
	if errors.Is(err, errLoadAverage) {
		return t.loadPercent(), true
	}
	if err != nil {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ok {
		c.last, c.ok = t, true
		return 0, false
	}
	if u, fresh := cpuUtilization(c.last, t); fresh {
		c.last, c.percent, c.have = t, u, true
	}
	return c.percent, c.have
}

// cpuUtilization is the busy share of the CPU time between two readings,
// in percent (0..100); fresh is false when no time passed between them.
func cpuUtilization(prev, cur cpuTimes) (percent float64, fresh bool) {
	if cur.total <= prev.total || cur.busy < prev.busy {
		return 0, false
	}
	p := 100 * float64(cur.busy-prev.busy) / float64(cur.total-prev.total)
	return min(max(p, 0), 100), true
}

// errLoadAverage: the platform gives no CPU time counters without cgo
// (darwin); cpuTimes holds the 1-minute load average instead, busy/total
// the load per core (total 1000, busy the load × 1000 / cores).
var errLoadAverage = errors.New("raylet: CPU utilization approximated by the load average")

func (t cpuTimes) loadPercent() float64 {
	if t.total == 0 {
		return 0
	}
	return min(100*float64(t.busy)/float64(t.total), 100)
}

// parseProcStat reads the aggregate "cpu" line of Linux's /proc/stat:
// user nice system idle iowait irq softirq steal [guest guest_nice].
// Busy is everything but idle and iowait; guest time is already counted
// in user and nice, so it is left out of the total.
func parseProcStat(s string) (cpuTimes, error) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 5 {
			return cpuTimes{}, fmt.Errorf("raylet: /proc/stat: short cpu line %q", sc.Text())
		}
		var t cpuTimes
		for i, v := range f[1:min(len(f), 9)] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("raylet: /proc/stat: field %d of the cpu line is %q", i+1, v)
			}
			t.total += n
			if i != 3 && i != 4 { // idle, iowait
				t.busy += n
			}
		}
		return t, nil
	}
	return cpuTimes{}, errors.New("raylet: /proc/stat has no cpu line")
}

// ---------------------------------------------------------------- GPU

// GPUReading is one GPU's use, from nvidia-smi.
type GPUReading struct {
	Index          int
	Name           string
	Utilization    float64 // percent
	MemoryUsedMiB  int64
	MemoryTotalMiB int64
}

// gpuQuery is the nvidia-smi query ParseGPUReadings reads.
var gpuQuery = []string{"--query-gpu=index,name,utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"}

// ParseGPUReadings parses the output of
//
//	nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits
//
// one GPU a line ("0, NVIDIA H100 80GB HBM3, 37, 1024, 81559"). A field
// of "[N/A]" or "[Not Supported]" reads as 0; a name may hold commas.
func ParseGPUReadings(out string) ([]GPUReading, error) {
	var gs []GPUReading
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 5 {
			return nil, fmt.Errorf("raylet: nvidia-smi: want 5 fields in %q", line)
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		n := len(f)
		idx, err := strconv.Atoi(f[0])
		if err != nil || idx < 0 {
			return nil, fmt.Errorf("raylet: nvidia-smi: bad index in %q", line)
		}
		num := func(s string) (float64, error) {
			if strings.HasPrefix(s, "[") {
				return 0, nil
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("raylet: nvidia-smi: bad number %q in %q", s, line)
			}
			return v, nil
		}
		util, err1 := num(f[n-3])
		used, err2 := num(f[n-2])
		total, err3 := num(f[n-1])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, err
		}
		gs = append(gs, GPUReading{Index: idx, Name: strings.Join(f[1:n-3], ", "), Utilization: util,
			MemoryUsedMiB: int64(used), MemoryTotalMiB: int64(total)})
	}
	return gs, sc.Err()
}

// gpuMeter runs nvidia-smi at most every gpuReadingMaxAge and keeps the
// node's GPUs' readings.
type gpuMeter struct {
	mu   sync.Mutex
	at   time.Time    // guarded by mu; when last was read (zero: never)
	last []GPUReading // guarded by mu
}

// read returns the readings of the GPUs named in ids (CUDA_VISIBLE_DEVICES
// values: indexes, or UUIDs, which are not matched and so keep every
// GPU). Nothing when nvidia-smi is absent or fails: fake GPUs (tests)
// have none.
func (g *gpuMeter) read(ids []string) []GPUReading {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.at) >= gpuReadingMaxAge {
		g.at = time.Now()
		g.last = nil
		if path, err := exec.LookPath("nvidia-smi"); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), gpuQueryTimeout)
			out, err := exec.CommandContext(ctx, path, gpuQuery...).Output()
			cancel()
			if err == nil {
				g.last, _ = ParseGPUReadings(string(out))
			}
		}
	}
	return selectGPUs(g.last, ids)
}

// selectGPUs keeps the readings whose index is among ids; when some id is
// not an index (a UUID), every reading is kept.
func selectGPUs(all []GPUReading, ids []string) []GPUReading {
	want := map[int]bool{}
	for _, id := range ids {
		n, err := strconv.Atoi(id)
		if err != nil {
			return all
		}
		want[n] = true
	}
	var out []GPUReading
	for _, g := range all {
		if want[g.Index] {
			out = append(out, g)
		}
	}
	return out
}
