package node_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

// TestEveryEndpointNeedsAToken walks every endpoint a head serves: the
// control store's and the node daemon's gRPC, and every route of the HTTP
// API (whatever features registered them). Each refuses a missing or
// wrong token, and every route that changes something refuses a
// read-only token.
func TestEveryEndpointNeedsAToken(t *testing.T) {
	h, err := node.StartHead(headConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("grpc", func(t *testing.T) {
		for _, c := range []struct {
			name string
			call func(conn *grpc.ClientConn) error
		}{
			{"control store", func(conn *grpc.ClientConn) error {
				_, err := pb.NewControlStoreClient(conn).GetNodes(ctx, &pb.GetNodesRequest{})
				return err
			}},
			{"node daemon", func(conn *grpc.ClientConn) error {
				_, err := pb.NewNodeDaemonClient(conn).NodeStats(ctx, &pb.NodeStatsRequest{})
				return err
			}},
		} {
			addr := h.GCSAddress()
			if c.name == "node daemon" {
				addr = h.Raylet().Address()
			}
			for _, tok := range []string{"", "wrong"} {
				conn, err := rpc.Dial(addr, tok)
				if err == nil {
					err = c.call(conn)
					conn.Close()
				}
				if !errors.Is(err, errs.ErrUnauthenticated) {
					t.Errorf("%s with token %q: %v, want ErrUnauthenticated", c.name, tok, err)
				}
			}
		}
	})

	t.Run("http", func(t *testing.T) {
		s := h.API()
		if s == nil {
			t.Fatal("the head serves no HTTP API")
		}
		ro, err := s.Tokens().Create(ctx, "viewer", api.ScopeRead, false)
		if err != nil {
			t.Fatal(err)
		}
		param := regexp.MustCompile(`\{[^}]*\}`)
		routes := s.Routes()
		if len(routes) < 5 {
			t.Fatalf("only %d routes: %v", len(routes), routes)
		}
		for _, rt := range routes {
			if rt.Scope == api.ScopeNone {
				continue
			}
			method, path, _ := strings.Cut(rt.Pattern, " ")
			path = param.ReplaceAllString(strings.ReplaceAll(path, "{$}", ""), "x") // {$}: the path ends there
			status := func(bearer string) int {
				req, _ := http.NewRequestWithContext(ctx, method, h.APIURL()+path, nil)
				if bearer != "" {
					req.Header.Set("Authorization", "Bearer "+bearer)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", rt.Pattern, err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if got := status(""); got != http.StatusUnauthorized {
				t.Errorf("%s without a token: %d, want 401", rt.Pattern, got)
			}
			if got := status("wrong"); got != http.StatusUnauthorized {
				t.Errorf("%s with a wrong token: %d, want 401", rt.Pattern, got)
			}
			if rt.Scope >= api.ScopeWrite {
				if got := status(ro); got != http.StatusForbidden {
					t.Errorf("%s with a read-only token: %d, want 403", rt.Pattern, got)
				}
			}
		}
	})
}
