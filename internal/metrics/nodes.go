package metrics

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

// nodeGatherer asks every alive node daemon for its metrics.
type nodeGatherer struct {
	c       *api.Cluster
	errors  prometheus.Counter
	timeout time.Duration
	log     *slog.Logger
}

// withContext binds a scrape's context to the gatherer.
func (g *nodeGatherer) withContext(ctx context.Context) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return g.gather(ctx), nil })
}

// gather asks the alive nodes in parallel (at most MaxParallelNodeScrapes
// at once, each within g.timeout) and merges their families. A node that
// fails is counted in g.errors and logged, and left out.
func (g *nodeGatherer) gather(ctx context.Context) []*dto.MetricFamily {
	rctx, cancel := context.WithTimeout(ctx, headReadTimeout)
	reply, err := g.c.GCS.GetNodes(rctx, &pb.GetNodesRequest{})
	cancel()
	if err != nil {
		g.errors.Inc()
		g.log.Warn("metrics: list nodes", "err", err)
		return nil
	}
	var (
		mu      sync.Mutex
		results = make([]map[string]*dto.MetricFamily, 0, len(reply.GetNodes()))
		wg      sync.WaitGroup
		sem     = make(chan struct{}, MaxParallelNodeScrapes)
	)
	for _, n := range reply.GetNodes() {
		if n.GetState() != pb.NodeState_NODE_STATE_ALIVE {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			mfs, err := g.scrapeNode(ctx, n)
			if err != nil {
				g.errors.Inc()
				id, _ := ids.FromBytes(n.GetNodeId())
				g.log.Debug("metrics: node left out of the scrape", "node", id.Short(), "address", n.GetAddress(), "err", err)
				return
			}
			mu.Lock()
			results = append(results, mfs)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return mergeFamilies(results)
}

// scrapeNode reads one node's metrics: in process for the head's own node
// daemon, else with NodeDaemon.Metrics.
func (g *nodeGatherer) scrapeNode(ctx context.Context, n *pb.NodeInfo) (map[string]*dto.MetricFamily, error) {
	var text []byte
	if hn := g.c.HeadNode; hn != nil && bytes.Equal(hn.NodeID().Bytes(), n.GetNodeId()) {
		t, err := hn.MetricsText()
		if err != nil {
			return nil, err
		}
		text = t
	} else {
		conn, err := g.c.Pool.Get(n.GetAddress())
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, g.timeout)
		reply, err := pb.NewNodeDaemonClient(conn).Metrics(ctx, &pb.MetricsRequest{})
		cancel()
		if err != nil {
			return nil, rpc.FromStatus(err)
		}
		text = reply.GetText()
	}
	return ParseText(text)
}

// ParseText parses a text exposition (format 0.0.4).
func ParseText(text []byte) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("metrics: node's exposition: %w", err)
	}
	return mfs, nil
}

// mergeFamilies joins the families of several nodes by name (their series
// differ by the node_id label), sorted by name. The first node's help and
// type win; a family of another type under the same name is dropped.
func mergeFamilies(nodes []map[string]*dto.MetricFamily) []*dto.MetricFamily {
	byName := map[string]*dto.MetricFamily{}
	for _, mfs := range nodes {
		for name, mf := range mfs {
			have, ok := byName[name]
			if !ok {
				byName[name] = mf
				continue
			}
			if have.GetType() != mf.GetType() {
				continue
			}
			have.Metric = append(have.Metric, mf.Metric...)
		}
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		out = append(out, mf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}
