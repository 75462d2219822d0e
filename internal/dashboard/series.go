package dashboard

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

// Sample is the cluster at one instant, as the head's sampler saw it:
// what the dashboard's charts draw. Resource amounts are the scheduler's
// (logical) ones, summed over the alive nodes; memory is the hosts' own
// (each machine counted once however many nodes it runs); the object
// store figures are the nodes' shared-memory stores.
type Sample struct {
	// T is when it was taken, in Unix milliseconds.
	T     int64 `json:"t"`
	Nodes int   `json:"nodes"`
	// CPUTotal and CPUUsed are logical CPUs (used: total less available).
	CPUTotal float64 `json:"cpu_total"`
	CPUUsed  float64 `json:"cpu_used"`
	GPUTotal float64 `json:"gpu_total"`
	GPUUsed  float64 `json:"gpu_used"`
	// MemTotal and MemUsed are the hosts' memory in bytes, as their
	// nodes' memory monitors read it.
	MemTotal int64 `json:"mem_total"`
	MemUsed  int64 `json:"mem_used"`
	// StoreCapacity and StoreUsed are the object stores' bytes.
	StoreCapacity int64 `json:"store_capacity"`
	StoreUsed     int64 `json:"store_used"`
	// StoreObjects counts the objects in the stores.
	StoreObjects int64 `json:"store_objects"`
	// Tasks counts tasks by state (Ray's names: RUNNING, FINISHED, …);
	// nil when the head keeps no task events.
	Tasks map[string]int64 `json:"tasks,omitempty"`
	// Partial: some alive nodes did not answer for their stats in time,
	// so memory and object store figures miss them.
	Partial bool `json:"partial,omitempty"`
}

// NodeStat is one node in the sampler's latest round: what the Cluster
// page shows.
type NodeStat struct {
	NodeID        string             `json:"node_id"`
	NodeIP        string             `json:"node_ip"`
	Address       string             `json:"address"`
	Hostname      string             `json:"hostname"`
	State         string             `json:"state"`
	IsHead        bool               `json:"is_head_node"`
	StartTimeMs   int64              `json:"start_time_ms"`
	Total         map[string]float64 `json:"resources_total"`
	Available     map[string]float64 `json:"resources_available"`
	Labels        map[string]string  `json:"labels,omitempty"`
	NumWorkers    int32              `json:"num_workers"`
	PendingLeases int32              `json:"pending_leases"`
	MemTotal      int64              `json:"mem_total"`
	MemUsed       int64              `json:"mem_used"`
	StoreCapacity int64              `json:"store_capacity"`
	StoreUsed     int64              `json:"store_used"`
	StoreObjects  int64              `json:"store_objects"`
	// StatsError says why the node's stats are missing (it did not
	// answer); empty when they are there or the node is dead.
	StatsError string `json:"stats_error,omitempty"`
}

// nodeRound is what one sampling round learnt of one node: its record
// and, for alive nodes that answered, its stats.
type nodeRound struct {
	info     *pb.NodeInfo
	stats    *pb.NodeStatsReply // nil: none
	statsErr error
}

// aggregate sums a sampling round into a Sample and the per-node table,
// alive nodes first, then by address. It is pure: t is the round's time.
func aggregate(t int64, round []nodeRound, headID []byte, tasks map[string]int64) (Sample, []NodeStat) {
	s := Sample{T: t, Tasks: tasks}
	hosts := map[string]bool{}
	table := make([]NodeStat, 0, len(round))
	for _, nr := range round {
		info := nr.info
		alive := info.GetState() == pb.NodeState_NODE_STATE_ALIVE
		total, avail := info.GetTotal().GetAmounts(), info.GetAvailable().GetAmounts()
		ns := NodeStat{
			NodeID:        fmt.Sprintf("%x", info.GetNodeId()),
			Address:       info.GetAddress(),
			NodeIP:        hostOf(info.GetAddress()),
			Hostname:      info.GetHostname(),
			State:         stateName(info.GetState()),
			IsHead:        len(headID) > 0 && string(headID) == string(info.GetNodeId()),
			StartTimeMs:   info.GetStartUnixMs(),
			Total:         total,
			Available:     avail,
			Labels:        info.GetLabels(),
			NumWorkers:    info.GetNumWorkers(),
			PendingLeases: info.GetPendingLeases(),
			StoreCapacity: info.GetObjectStoreCapacity(),
			MemTotal:      info.GetHostMemory(),
		}
		if alive {
			s.Nodes++
			s.CPUTotal += total[resources.CPU]
			s.CPUUsed += used(total[resources.CPU], avail[resources.CPU])
			s.GPUTotal += total[resources.GPU]
			s.GPUUsed += used(total[resources.GPU], avail[resources.GPU])
			s.StoreCapacity += info.GetObjectStoreCapacity()
			if nr.stats != nil {
				ns.StoreUsed = nr.stats.GetStoreBytes()
				ns.StoreObjects = nr.stats.GetStoreObjects()
				if m := nr.stats.GetMemory(); m.GetTotal() > 0 {
					ns.MemTotal, ns.MemUsed = m.GetTotal(), m.GetUsed()
				}
				s.StoreUsed += ns.StoreUsed
				s.StoreObjects += ns.StoreObjects
				host := info.GetHostId()
				if host == "" {
					host = ns.NodeID
				}
				if !hosts[host] {
					hosts[host] = true
					s.MemTotal += ns.MemTotal
					s.MemUsed += ns.MemUsed
				}
			} else {
				s.Partial = true
				if nr.statsErr != nil {
					ns.StatsError = nr.statsErr.Error()
				} else {
					ns.StatsError = "no stats"
				}
			}
		}
		table = append(table, ns)
	}
	sort.SliceStable(table, func(i, j int) bool {
		ai, aj := table[i].State == "ALIVE", table[j].State == "ALIVE"
		if ai != aj {
			return ai
		}
		if table[i].IsHead != table[j].IsHead {
			return table[i].IsHead
		}
		return table[i].Address < table[j].Address
	})
	return s, table
}

// used is total less available, never below zero (available can exceed
// total for a moment while a node's view is updated).
func used(total, avail float64) float64 {
	if u := total - avail; u > 0 {
		return u
	}
	return 0
}

// stateName is Ray's name of a node state: ALIVE or DEAD.
func stateName(s pb.NodeState) string {
	if s == pb.NodeState_NODE_STATE_ALIVE {
		return "ALIVE"
	}
	return "DEAD"
}

// hostOf is the host part of host:port (the address itself if it has
// no port).
func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// ring keeps the last len(buf) samples, oldest first. Not safe for
// concurrent use (Series guards it).
type ring struct {
	buf   []Sample
	start int // index of the oldest
	n     int
}

func newRing(capacity int) *ring { return &ring{buf: make([]Sample, capacity)} }

// push appends s, dropping the oldest sample when full.
func (r *ring) push(s Sample) {
	if len(r.buf) == 0 {
		return
	}
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = s
		r.n++
		return
	}
	r.buf[r.start] = s
	r.start = (r.start + 1) % len(r.buf)
}

// since returns, oldest first, the samples taken after since and no
// earlier than notBefore (both Unix ms).
func (r *ring) since(since, notBefore int64) []Sample {
	out := []Sample{}
	for i := 0; i < r.n; i++ {
		s := r.buf[(r.start+i)%len(r.buf)]
		if s.T > since && s.T >= notBefore {
			out = append(out, s)
		}
	}
	return out
}

// last is the newest sample, or false when there is none.
func (r *ring) last() (Sample, bool) {
	if r.n == 0 {
		return Sample{}, false
	}
	return r.buf[(r.start+r.n-1)%len(r.buf)], true
}

// parseSince reads the since query parameter: empty means every sample;
// otherwise a non-negative Unix time in milliseconds.
func parseSince(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("since=%q: want a Unix time in milliseconds (a non-negative integer)", v)
	}
	return n, nil
}

// source is where the sampler reads the cluster: the control store and
// node daemons (clusterSource), or a test's stand-in for the pure parts.
type source interface {
	// nodes returns every node the control store knows, dead ones too.
	nodes(ctx context.Context) ([]*pb.NodeInfo, error)
	// stats asks one alive node for its object store and memory figures.
	stats(ctx context.Context, n *pb.NodeInfo) (*pb.NodeStatsReply, error)
	// taskCounts counts tasks by state; nil, nil when no task events are
	// kept.
	taskCounts(ctx context.Context) (map[string]int64, error)
	// headID is the head node's id.
	headID() []byte
}

// Series samples the cluster every interval and keeps the samples of the
// last retention in a bounded ring. Its methods are safe for concurrent
// use; Run is its one sampling loop.
type Series struct {
	src       source
	interval  time.Duration
	retention time.Duration
	statsWait time.Duration

	mu    sync.Mutex
	ring  *ring      // guarded by mu
	nodes []NodeStat // guarded by mu: the latest round's table
	at    int64      // guarded by mu: when nodes was taken
}

func newSeries(src source, cfg Config) *Series {
	return &Series{src: src, interval: cfg.SampleInterval, retention: cfg.Retention, statsWait: cfg.StatsTimeout,
		ring: newRing(cfg.capacity())}
}

// Run samples at once and then every interval until ctx is done.
func (s *Series) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.SampleOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SampleOnce takes one sample and records it. A round whose node list
// cannot be read records nothing.
func (s *Series) SampleOnce(ctx context.Context) {
	infos, err := s.src.nodes(ctx)
	if err != nil {
		return
	}
	round := make([]nodeRound, len(infos))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxStatsCalls)
	for i, info := range infos {
		round[i].info = info
		if info.GetState() != pb.NodeState_NODE_STATE_ALIVE || i >= maxStatsNodes {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() { // owned: SampleOnce waits for it below
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, s.statsWait)
			round[i].stats, round[i].statsErr = s.src.stats(cctx, info)
			cancel()
		}()
	}
	wg.Wait()
	tasks, _ := s.src.taskCounts(ctx) // without task events the charts show none
	now := time.Now().UnixMilli()
	sample, table := aggregate(now, round, s.src.headID(), tasks)
	s.mu.Lock()
	s.ring.push(sample)
	s.nodes, s.at = table, now
	s.mu.Unlock()
}

// Since returns the samples taken after since (Unix ms), oldest first,
// within the retention window.
func (s *Series) Since(since int64) []Sample {
	notBefore := time.Now().Add(-s.retention).UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ring.since(since, notBefore)
}

// Last is the newest sample.
func (s *Series) Last() (Sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ring.last()
}

// Nodes is the latest round's node table and when it was taken.
func (s *Series) Nodes() ([]NodeStat, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes, s.at
}
