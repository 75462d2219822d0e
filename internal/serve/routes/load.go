package routes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// LoadPath is the head's load-report endpoint: every node's Serve proxy
// POSTs a LoadReport to it each report period (write scope: a proxy uses
// the cluster token); the controller feeds the sums to its autoscaling
// policies. The answer is 204 No Content.
const LoadPath = "/api/serve/load"

// MaxLoadReportBytes bounds a LoadReport's body on the head.
const MaxLoadReportBytes = 1 << 20

// LoadReport is POST /api/serve/load's body: one node's proxy's load per
// deployment it routes to, as counted now.
//
//	{"node": "9f…", "deployments": [{"app": "shop", "deployment": "Cart", "in_flight": 3, "queued": 1}]}
type LoadReport struct {
	Node        string           `json:"node"`
	Deployments []DeploymentLoad `json:"deployments"`
}

// DeploymentLoad is one deployment's load at one proxy: requests running
// on replicas (in_flight) and waiting at the proxy for a slot (queued).
type DeploymentLoad struct {
	App        string `json:"app"`
	Deployment string `json:"deployment"`
	InFlight   int    `json:"in_flight"`
	Queued     int    `json:"queued"`
}

// PostLoad sends r to the head at baseURL with token (write scope).
// Errors name the URL and, for an HTTP error, the status and the head's
// message.
func PostLoad(ctx context.Context, client *http.Client, baseURL, token string, r LoadReport) error {
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	u := strings.TrimSuffix(baseURL, "/") + LoadPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("routes: POST %s: %w", u, err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		return fmt.Errorf("routes: POST %s: %s: %s", u, res.Status, strings.TrimSpace(string(msg)))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
	return nil
}
