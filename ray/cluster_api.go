package ray

import (
	"context"
	"fmt"
	"os"

	"github.com/raygo/raygo/internal/pb"
)

// ClusterAPI returns the base URL of the cluster head's HTTP API
// (http://host:port, no trailing slash) and the token this program uses
// with it, sent as "Authorization: Bearer <token>". A driver gets the
// token ray.Init connected with (the Token option, RAYGO_TOKEN, or the
// embedded or local head's own); a task or actor gets its worker's token,
// which its node daemon sets in RAYGO_TOKEN.
//
// The address is asked of the control store on each call (the head may
// have restarted elsewhere), so ClusterAPI needs Init first
// (ErrNotInitialized) and a head that serves the API (ErrNoStateAPI for
// one started with --dashboard-port -1). It is what the state functions
// (ListNodes, GetJobState, …) and packages such as ray/raymcp, which
// reaches the head's MCP endpoints, build on. Safe for concurrent use.
func ClusterAPI(ctx context.Context) (baseURL, token string, err error) {
	cw, err := current()
	if err != nil {
		return "", "", err
	}
	info, err := cw.GCS().GetClusterInfo(ctx, &pb.GetClusterInfoRequest{})
	if err != nil {
		return "", "", fmt.Errorf("ray: ask the control store for its HTTP API: %w", err)
	}
	if info.GetApiAddress() == "" {
		return "", "", ErrNoStateAPI
	}
	global.mu.Lock()
	token = global.token
	global.mu.Unlock()
	if token == "" {
		token = os.Getenv(EnvToken) // a worker's, set by its node daemon
	}
	return "http://" + info.GetApiAddress(), token, nil
}
