// Package metrics serves the cluster's Prometheus metrics from the head:
// GET /metrics on the head's HTTP API (internal/api), with the scope
// Server.MetricsScope (a read token, or none under --metrics-open).
//
// One scrape answers three sources merged into one exposition:
//
//   - every alive node daemon's registry (internal/raylet/metrics.go:
//     resources, object store, spilling, workers, lease placement time,
//     CPU, memory, GPUs), asked with NodeDaemon.Metrics in parallel with
//     NodeScrapeTimeout each; the head's own node daemon is read in
//     process. A node that fails or is slow is left out of that scrape and
//     counted in raygo_metrics_node_scrape_errors_total: it never fails
//     the scrape;
//   - the head's registry: cluster state read from the control store in
//     process when scraped (nodes, actors, tasks, jobs, placement groups,
//     cluster resources), the submission-to-start latency of tasks, and
//     the head process's Go runtime and process figures;
//
// Nothing polls: every figure is read when Prometheus asks.
//
// The head also writes Ray's service-discovery file,
// <session>/prom_metrics_service_discovery.json, in Prometheus's file_sd
// format, naming the API's address as the one target, so that a
// Prometheus with
//
//	scrape_configs:
//	  - job_name: raygo
//	    authorization: {credentials_file: /etc/prometheus/raygo-token}
//	    file_sd_configs:
//	      - files: [/tmp/raygo-1000/session_latest/prom_metrics_service_discovery.json]
//
// finds the cluster, whatever port its API took. docs/metrics.md lists
// every metric.
package metrics
