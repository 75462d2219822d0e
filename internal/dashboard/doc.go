// Package dashboard is raygo's web dashboard, served by the head's HTTP
// server (internal/api) at its root: Overview, Jobs and a job's detail,
// Cluster, Actors, Tasks, Serve, Logs and Metrics pages, modelled on Ray's.
//
// The pages are hand-written HTML, CSS and JavaScript modules under web/,
// embedded in the binary with go:embed: there is no npm and no build step,
// `go build` alone produces them. They read the HTTP API the other
// features serve (the state API under /api/v0/, the jobs API under
// /api/jobs/, logs under /api/v0/logs, Serve's status at
// /api/serve/applications) and this package's own:
//
//	GET /api/dashboard/series?since=UNIX_MS   the head's time series
//	GET /api/dashboard/nodes                  the latest per-node figures
//
// A Series samples the cluster every 2 s (Config.SampleInterval, or
// RAYGO_DASHBOARD_SAMPLE_INTERVAL on the head) from the control store in
// the head's process and the nodes' NodeStats, and keeps one hour in a
// bounded ring. One goroutine samples; the feature's stop func ends it.
//
// Security: /login and the few files it needs are public; every other
// page needs a dashboard session (made by POST /api/login) or a bearer
// token, and a page request without one is redirected to /login. Every
// response carries a strict Content-Security-Policy (default-src 'self',
// no inline scripts) and refuses framing.
//
// Register it on a head with the features list of internal/node:
//
//	var features = []api.Feature{dashboard.Register}
//
// See docs/dashboard.md.
package dashboard
