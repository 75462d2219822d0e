package dashboard

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/pb"
)

func TestRing(t *testing.T) {
	mk := func(ts ...int64) []Sample {
		out := []Sample{}
		for _, v := range ts {
			out = append(out, Sample{T: v})
		}
		return out
	}
	cases := []struct {
		name             string
		capacity         int
		push             []int64
		since, notBefore int64
		want             []Sample
		last             int64
	}{
		{name: "empty", capacity: 3, want: mk()},
		{name: "under capacity", capacity: 3, push: []int64{1, 2}, want: mk(1, 2), last: 2},
		{name: "wraps and drops the oldest", capacity: 3, push: []int64{1, 2, 3, 4, 5}, want: mk(3, 4, 5), last: 5},
		{name: "since is exclusive", capacity: 4, push: []int64{1, 2, 3, 4}, since: 2, want: mk(3, 4), last: 4},
		{name: "since after the newest", capacity: 4, push: []int64{1, 2}, since: 9, want: mk(), last: 2},
		{name: "retention cut is inclusive", capacity: 5, push: []int64{10, 20, 30}, notBefore: 20, want: mk(20, 30), last: 30},
		{name: "wrapped with since", capacity: 2, push: []int64{1, 2, 3}, since: 2, want: mk(3), last: 3},
		{name: "zero capacity keeps nothing", capacity: 0, push: []int64{1}, want: mk()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRing(c.capacity)
			for _, v := range c.push {
				r.push(Sample{T: v})
			}
			if got := r.since(c.since, c.notBefore); !reflect.DeepEqual(got, c.want) {
				t.Errorf("since(%d, %d) = %v, want %v", c.since, c.notBefore, got, c.want)
			}
			l, ok := r.last()
			if ok != (c.last != 0) || l.T != c.last {
				t.Errorf("last = %v, %v; want %d", l, ok, c.last)
			}
		})
	}
}

func TestParseSince(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"", 0, false}, {"0", 0, false}, {"1700000000000", 1700000000000, false},
		{"-1", 0, true}, {"abc", 0, true}, {"1.5", 0, true}, {"99999999999999999999", 0, true},
	} {
		got, err := parseSince(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("parseSince(%q) = %d, %v; want %d, error %v", c.in, got, err, c.want, c.err)
		}
		if err != nil && !strings.Contains(err.Error(), "since=") {
			t.Errorf("parseSince(%q) error %q does not name the parameter", c.in, err)
		}
	}
}

func TestConfig(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvSampleInterval {
				return v
			}
			return ""
		}
	}
	for _, c := range []struct {
		env      string
		interval time.Duration
		capacity int
		err      string
	}{
		{env: "", interval: 2 * time.Second, capacity: 1801},
		{env: "500ms", interval: 500 * time.Millisecond, capacity: 7201},
		{env: "100ms", interval: 100 * time.Millisecond, capacity: MaxSamples},
		{env: "10ms", err: "sample interval"},
		{env: "2h", err: "sample interval"},
		{env: "often", err: EnvSampleInterval},
	} {
		cfg, err := configFromEnv(DefaultConfig(), env(c.env))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("env %q: error %v, want one naming %q", c.env, err, c.err)
			}
			continue
		}
		if err != nil || cfg.SampleInterval != c.interval || cfg.capacity() != c.capacity {
			t.Errorf("env %q: %v (capacity %d), %v; want %v, capacity %d", c.env, cfg.SampleInterval, cfg.capacity(), err, c.interval, c.capacity)
		}
	}
	bad := DefaultConfig()
	bad.Retention = time.Second
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "retention") {
		t.Errorf("retention under the interval: %v", err)
	}
}

func node(id byte, addr, host string, state pb.NodeState, total, avail map[string]float64, store int64) *pb.NodeInfo {
	return &pb.NodeInfo{NodeId: []byte{id}, Address: addr, HostId: host, State: state,
		Total: &pb.Resources{Amounts: total}, Available: &pb.Resources{Amounts: avail}, ObjectStoreCapacity: store}
}

func stats(storeUsed, objects, memUsed, memTotal int64) *pb.NodeStatsReply {
	return &pb.NodeStatsReply{StoreBytes: storeUsed, StoreObjects: objects, Memory: &pb.MemoryUsage{Used: memUsed, Total: memTotal}}
}

func TestAggregate(t *testing.T) {
	alive, dead := pb.NodeState_NODE_STATE_ALIVE, pb.NodeState_NODE_STATE_DEAD
	cases := []struct {
		name  string
		round []nodeRound
		want  Sample
		order []string // node ids in table order
	}{
		{name: "no nodes", want: Sample{T: 7}, order: []string{}},
		{
			name: "sums alive nodes, skips dead ones",
			round: []nodeRound{
				{info: node(1, "10.0.0.1:1", "h1", alive, map[string]float64{"CPU": 8, "GPU": 2}, map[string]float64{"CPU": 5, "GPU": 2}, 100), stats: stats(40, 3, 1000, 4000)},
				{info: node(2, "10.0.0.2:1", "h2", dead, map[string]float64{"CPU": 64}, map[string]float64{"CPU": 0}, 900)},
				{info: node(3, "10.0.0.3:1", "h3", alive, map[string]float64{"CPU": 4}, map[string]float64{"CPU": 0}, 50), stats: stats(10, 1, 500, 2000)},
			},
			want:  Sample{T: 7, Nodes: 2, CPUTotal: 12, CPUUsed: 7, GPUTotal: 2, GPUUsed: 0, MemTotal: 6000, MemUsed: 1500, StoreCapacity: 150, StoreUsed: 50, StoreObjects: 4},
			order: []string{"01", "03", "02"},
		},
		{
			name: "one host's memory counts once",
			round: []nodeRound{
				{info: node(1, "127.0.0.1:2", "same", alive, map[string]float64{"CPU": 2}, map[string]float64{"CPU": 2}, 10), stats: stats(1, 1, 700, 1000)},
				{info: node(2, "127.0.0.1:1", "same", alive, map[string]float64{"CPU": 2}, map[string]float64{"CPU": 2}, 10), stats: stats(2, 1, 700, 1000)},
			},
			want:  Sample{T: 7, Nodes: 2, CPUTotal: 4, MemTotal: 1000, MemUsed: 700, StoreCapacity: 20, StoreUsed: 3, StoreObjects: 2},
			order: []string{"02", "01"}, // by address
		},
		{
			name: "available over total is not negative use; a silent node is partial",
			round: []nodeRound{
				{info: node(1, "a:1", "h1", alive, map[string]float64{"CPU": 2}, map[string]float64{"CPU": 3}, 10), statsErr: errors.New("deadline exceeded")},
			},
			want:  Sample{T: 7, Nodes: 1, CPUTotal: 2, StoreCapacity: 10, Partial: true},
			order: []string{"01"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, table := aggregate(7, c.round, nil, nil)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("sample = %+v\nwant     %+v", got, c.want)
			}
			ids := []string{}
			for _, n := range table {
				ids = append(ids, n.NodeID)
			}
			if !reflect.DeepEqual(ids, c.order) {
				t.Errorf("table order = %v, want %v", ids, c.order)
			}
		})
	}

	// The head comes first among alive nodes; a silent node says why.
	round := []nodeRound{
		{info: node(1, "a:1", "h1", alive, nil, nil, 0), stats: stats(0, 0, 0, 0)},
		{info: node(2, "b:1", "h2", alive, nil, nil, 0), statsErr: errors.New("deadline exceeded")},
	}
	_, table := aggregate(1, round, []byte{2}, map[string]int64{"RUNNING": 1})
	if !table[0].IsHead || table[0].NodeID != "02" || table[0].StatsError != "deadline exceeded" || table[0].NodeIP != "b" {
		t.Errorf("head row = %+v", table[0])
	}
}

// fakeSource stands in for the cluster in the sampler's own test.
type fakeSource struct {
	infos []*pb.NodeInfo
	tasks map[string]int64
}

func (f *fakeSource) nodes(context.Context) ([]*pb.NodeInfo, error) { return f.infos, nil }
func (f *fakeSource) stats(ctx context.Context, n *pb.NodeInfo) (*pb.NodeStatsReply, error) {
	if n.GetAddress() == "slow:1" {
		<-ctx.Done() // never answers: the round's timeout ends the wait
		return nil, ctx.Err()
	}
	return stats(5, 1, 10, 100), nil
}
func (f *fakeSource) taskCounts(context.Context) (map[string]int64, error) { return f.tasks, nil }
func (f *fakeSource) headID() []byte                                       { return nil }

func TestSeriesSampleOnce(t *testing.T) {
	alive := pb.NodeState_NODE_STATE_ALIVE
	src := &fakeSource{
		infos: []*pb.NodeInfo{node(1, "fast:1", "h1", alive, map[string]float64{"CPU": 1}, nil, 50), node(2, "slow:1", "h2", alive, nil, nil, 50)},
		tasks: map[string]int64{"FINISHED": 3},
	}
	cfg := DefaultConfig()
	cfg.StatsTimeout = 50 * time.Millisecond
	s := newSeries(src, cfg)
	s.SampleOnce(context.Background())
	s.SampleOnce(context.Background())
	got := s.Since(0)
	if len(got) != 2 {
		t.Fatalf("%d samples, want 2", len(got))
	}
	last := got[1]
	if last.Nodes != 2 || last.StoreUsed != 5 || !last.Partial || last.Tasks["FINISHED"] != 3 || last.CPUUsed != 1 {
		t.Errorf("sample = %+v", last)
	}
	if more := s.Since(last.T); len(more) != 0 {
		t.Errorf("Since(last) = %v, want nothing", more)
	}
	nodes, at := s.Nodes()
	if len(nodes) != 2 || at != last.T || nodes[1].StatsError == "" {
		t.Errorf("nodes = %+v at %d", nodes, at)
	}
}
