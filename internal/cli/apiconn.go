package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/session"
)

// envAPIAddress names the head's HTTP API for the commands that use it
// (job, list, get, summary, logs, timeline, token), as RAY_ADDRESS does
// for Ray's job CLI when it is an http:// address.
const envAPIAddress = "RAYGO_API_ADDRESS"

// apiFlags are the flags of every command that talks to the HTTP API.
type apiFlags struct {
	address string
	token   string
}

func (f *apiFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.address, "address", "", "the cluster: its HTTP API (http://HOST:PORT, default $"+envAPIAddress+") or its control store (HOST:PORT, default $"+envAddress+", else this machine's latest session)")
	fs.StringVar(&f.token, "token", "", "token to send: the cluster token or one made by `raygo token create` (default $"+envToken+", else the local session's)")
}

// client resolves the API's URL and the token, in this order: an
// http(s):// --address or $RAYGO_API_ADDRESS as it is; else the cluster
// address (--address, $RAYGO_ADDRESS, session_latest) whose local
// session's api_address file names it, or whose control store tells it
// (GetClusterInfo).
func (f *apiFlags) client(ctx context.Context) (*apiclient.Client, error) {
	base := ""
	switch {
	case isAPIURL(f.address):
		base = f.address
	case f.address == "" && os.Getenv(envAPIAddress) != "":
		base = os.Getenv(envAPIAddress)
	}
	if base != "" {
		tok, _, err := f.apiToken(base)
		if err != nil {
			return nil, err
		}
		return apiclient.New(base, tok)
	}
	c, err := resolveCluster(f.address, f.token)
	if err != nil {
		return nil, err
	}
	if d, err := session.ForAddress(c.address); err == nil {
		if u, err := d.ReadFile(apiAddressFile); err == nil && u != "" {
			return apiclient.New(u, c.token)
		}
	}
	u, err := apiAddressOf(ctx, c)
	if err != nil {
		return nil, err
	}
	return apiclient.New(u, c.token)
}

// apiToken is the token for an API named by URL: the flag, $RAYGO_TOKEN,
// or the token of the local session whose api_address is that URL.
func (f *apiFlags) apiToken(base string) (tok, from string, err error) {
	if f.token != "" {
		return f.token, "--token", nil
	}
	if env := os.Getenv(envToken); env != "" {
		return env, envToken, nil
	}
	list, err := session.List()
	if err == nil {
		for i := len(list) - 1; i >= 0; i-- {
			if u, err := list[i].ReadFile(apiAddressFile); err == nil && strings.TrimRight(u, "/") == strings.TrimRight(base, "/") {
				if t, err := list[i].ReadFile(tokenFile); err == nil && t != "" {
					return t, list[i].Path(tokenFile), nil
				}
			}
		}
	}
	return "", "", fmt.Errorf("no token for %s: pass --token or set %s", base, envToken)
}

// apiAddressOf asks the control store at c where its HTTP API is.
func apiAddressOf(ctx context.Context, c clusterRef) (string, error) {
	conn, err := rpc.Dial(c.address, c.token)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", c.address, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	info, err := pb.NewControlStoreClient(conn).GetClusterInfo(ctx, &pb.GetClusterInfoRequest{})
	if err != nil {
		if rpc.IsUnavailable(err) || errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("cannot reach a raygo cluster at %s (address from %s; is it running?): %w", c.address, c.addressFrom, err)
		}
		return "", fmt.Errorf("ask %s for its HTTP API: %w", c.address, err)
	}
	if info.GetApiAddress() == "" {
		return "", fmt.Errorf("the cluster at %s serves no HTTP API (its head was started with --dashboard-port -1)", c.address)
	}
	return "http://" + info.GetApiAddress(), nil
}

// isAPIURL reports whether an --address names the HTTP API (http:// or
// https://) rather than a control store.
func isAPIURL(a string) bool {
	return strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://")
}
