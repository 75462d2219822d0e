package mcpserver

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/raygo/raygo/internal/metrics"
	"github.com/raygo/raygo/internal/raylet"
)

// MetricsOutput is metrics_summary's output.
type MetricsOutput struct {
	Metrics []MetricValue `json:"metrics" jsonschema:"key metrics, each summed (or averaged) over the nodes that report it; series at zero are left out"`
}

// MetricValue is one series of MetricsOutput.
type MetricValue struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
	// Aggregate is how per-node series were combined: "sum", "mean", or
	// for a histogram "mean" of its observations (Count of them).
	Aggregate string `json:"aggregate"`
	Count     uint64 `json:"count,omitempty" jsonschema:"observations of a histogram"`
	Help      string `json:"help,omitempty"`
}

// keyMetric is a metric metrics_summary keeps, and how it combines the
// nodes' series.
type keyMetric struct {
	name string
	mean bool // average over nodes instead of summing
}

// keyMetrics are the metrics metrics_summary keeps, in its order.
var keyMetrics = []keyMetric{
	{name: metrics.MetricActiveNodes}, {name: metrics.MetricDeadNodes},
	{name: metrics.MetricJobs}, {name: metrics.MetricActors}, {name: metrics.MetricTasks}, {name: metrics.MetricPlacementGroups},
	{name: metrics.MetricClusterResources},
	{name: metrics.MetricSubmissionToStart},
	{name: metrics.MetricTaskEventsEvicted}, {name: metrics.MetricTaskEventsDropped},
	{name: raylet.MetricWorkers}, {name: raylet.MetricQueuedLeases},
	{name: raylet.MetricObjectStoreMemory}, {name: raylet.MetricObjectStoreAvail}, {name: raylet.MetricObjectStoreObjects},
	{name: raylet.MetricSpillBytes}, {name: raylet.MetricSpillObjects}, {name: raylet.MetricEvictions},
	{name: raylet.MetricOOMKills},
	{name: raylet.MetricCPUUtilization, mean: true}, {name: raylet.MetricCPUCount},
	{name: raylet.MetricMemUsed}, {name: raylet.MetricMemTotal},
	{name: raylet.MetricGPUs}, {name: raylet.MetricGPUUtilization, mean: true},
	{name: metrics.MetricNodeScrapeErrors},
}

// nodeLabels identify the node a series came from: summing drops them.
var nodeLabels = map[string]bool{"node_id": true, "NodeAddress": true, "instance": true, "SessionName": true}

func (b *backend) metrics(ctx context.Context, req mcp.Request) (MetricsOutput, error) {
	out := MetricsOutput{Metrics: []MetricValue{}}
	c, err := b.client(ctx, req)
	if err != nil {
		return out, err
	}
	body, err := c.Metrics(ctx)
	if err != nil {
		return out, b.apiError(err, "")
	}
	defer body.Close()
	out.Metrics, err = summarizeMetrics(body)
	return out, err
}

// summarizeMetrics parses a Prometheus text scrape and keeps keyMetrics,
// combining series that differ only in node labels. It is pure, for
// tests.
func summarizeMetrics(r io.Reader) ([]MetricValue, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics summary: read the head's /metrics: %v", err)
	}
	out := []MetricValue{}
	for _, km := range keyMetrics {
		f := fams[km.name]
		if f == nil {
			continue
		}
		type acc struct {
			labels map[string]string
			sum    float64
			n      int
			hsum   float64
			hcount uint64
		}
		groups := map[string]*acc{}
		var order []string
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				if !nodeLabels[lp.GetName()] {
					labels[lp.GetName()] = lp.GetValue()
				}
			}
			key := labelKey(labels)
			a := groups[key]
			if a == nil {
				a = &acc{labels: labels}
				groups[key] = a
				order = append(order, key)
			}
			a.n++
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				a.hsum += m.GetHistogram().GetSampleSum()
				a.hcount += m.GetHistogram().GetSampleCount()
			case dto.MetricType_COUNTER:
				a.sum += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				a.sum += m.GetGauge().GetValue()
			default:
				a.sum += m.GetUntyped().GetValue()
			}
		}
		slices.Sort(order)
		for _, key := range order {
			a := groups[key]
			v := MetricValue{Name: km.name, Aggregate: "sum", Value: a.sum, Help: f.GetHelp()}
			if len(a.labels) > 0 {
				v.Labels = a.labels
			}
			switch {
			case f.GetType() == dto.MetricType_HISTOGRAM:
				if a.hcount == 0 {
					continue
				}
				v.Aggregate, v.Count, v.Value = "mean", a.hcount, a.hsum/float64(a.hcount)
			case km.mean:
				v.Aggregate, v.Value = "mean", a.sum/float64(a.n)
			}
			// Series at zero say nothing an agent needs (states nobody is
			// in), except the node counts.
			if v.Value == 0 && km.name != metrics.MetricActiveNodes {
				continue
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// labelKey is a canonical string of a label set.
func labelKey(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	return b.String()
}

// sortBy sorts s by key.
func sortBy[T any](s []T, key func(T) string) {
	slices.SortFunc(s, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
}
