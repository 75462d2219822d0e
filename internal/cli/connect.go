package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/session"
)

// connectTimeout bounds one call to the control store from the CLI.
const connectTimeout = 5 * time.Second

// clusterRef is a cluster address with its token and where each came from,
// so that errors can tell the user which setting to fix.
type clusterRef struct {
	address, addressFrom string
	token, tokenFrom     string
}

// resolveAddress picks the cluster address: the flag, then RAYGO_ADDRESS
// ("auto" means session_latest, as for ray.Init), then session_latest.
func resolveAddress(flag string) (addr, from string, err error) {
	if flag != "" {
		return flag, "--address", nil
	}
	if env := os.Getenv(envAddress); env != "" && env != "auto" {
		return env, envAddress, nil
	}
	d, err := session.Latest()
	if errors.Is(err, session.ErrNotPrivate) {
		return "", "", fmt.Errorf("no cluster address: %w", err)
	}
	if err != nil {
		return "", "", fmt.Errorf("no cluster address: pass --address, set %s, or start a cluster here with `raygo start --head`", envAddress)
	}
	addr, err = d.ReadFile(addressFile)
	if err != nil || addr == "" {
		return "", "", fmt.Errorf("no cluster address: the latest session %s has no address file (is its head running?); pass --address or set %s", d, envAddress)
	}
	return addr, d.Path(addressFile), nil
}

// resolveToken picks the token for addr: the flag, then RAYGO_TOKEN, then
// the token file of the newest session on this machine whose address is
// addr (session.ForAddress), so a second head does not hide the first's.
func resolveToken(flag, addr string) (token, from string, err error) {
	if flag != "" {
		return flag, "--token", nil
	}
	if env := os.Getenv(envToken); env != "" {
		return env, envToken, nil
	}
	d, err := session.ForAddress(addr)
	if errors.Is(err, session.ErrNotPrivate) {
		return "", "", fmt.Errorf("no cluster token for %s: %w", addr, err)
	}
	if err == nil {
		if t, err := d.ReadFile(tokenFile); err == nil && t != "" {
			return t, d.Path(tokenFile), nil
		}
	}
	return "", "", fmt.Errorf("no cluster token for %s: pass --token or set %s (the head writes it to <session>/token)", addr, envToken)
}

// resolveCluster resolves both address and token from flags, environment
// and session_latest.
func resolveCluster(addrFlag, tokenFlag string) (clusterRef, error) {
	var c clusterRef
	var err error
	if c.address, c.addressFrom, err = resolveAddress(addrFlag); err != nil {
		return c, err
	}
	if c.token, c.tokenFrom, err = resolveToken(tokenFlag, c.address); err != nil {
		return c, err
	}
	return c, nil
}

// getNodes asks the control store at c for its nodes (dead ones too when
// includeDead). Errors name the address and say where it and the token came
// from; a rejected token wraps errs.ErrUnauthenticated, an unreachable
// cluster errs.ErrUnavailable or context.DeadlineExceeded.
func getNodes(ctx context.Context, c clusterRef, includeDead bool) ([]*pb.NodeInfo, error) {
	if _, _, err := net.SplitHostPort(c.address); err != nil {
		return nil, usageErrorf("bad cluster address %q from %s: want host:port", c.address, c.addressFrom)
	}
	conn, err := rpc.Dial(c.address, c.token)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c.address, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	reply, err := pb.NewControlStoreClient(conn).GetNodes(ctx, &pb.GetNodesRequest{IncludeDead: includeDead})
	switch {
	case err == nil:
		return reply.GetNodes(), nil
	case errors.Is(err, errs.ErrUnauthenticated):
		return nil, fmt.Errorf("the cluster at %s rejected the token from %s: %w", c.address, c.tokenFrom, err)
	case rpc.IsUnavailable(err) || errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("cannot reach a raygo cluster at %s (address from %s; is it running?): %w", c.address, c.addressFrom, err)
	default:
		return nil, fmt.Errorf("get nodes from %s: %w", c.address, err)
	}
}

// sameAddress reports whether a and b name the same control store on this
// machine (session.SameAddress).
func sameAddress(a, b string) bool { return session.SameAddress(a, b) }
