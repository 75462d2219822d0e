package routes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/stopper"
)

// Follower limits and defaults.
const (
	// MinBackoff and MaxBackoff bound the wait after a failed poll: it
	// starts at MinBackoff, doubles with each failure in a row up to
	// MaxBackoff, and starts over after a success.
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 5 * time.Second

	// RequestSlack is how long past its wait a poll may take before the
	// follower gives it up (the head's answer on the wire, a slow head).
	RequestSlack = 10 * time.Second

	// MaxResponseBytes bounds a routing table's JSON as Fetch reads it.
	MaxResponseBytes = 64 << 20
)

// Follower keeps a node's proxy in step with the head's Table: it
// long-polls GET /api/serve/routes and hands every new table to a
// function. Set the fields, then call Run; a Follower is not reused.
type Follower struct {
	// BaseURL is the head's HTTP API, "http://host:port".
	BaseURL string
	// Resolve, when set, replaces BaseURL: it is asked for the base URL
	// before the first poll and after every failed one, so that a head
	// that moved (restarted on another port) is found again. An error,
	// or an empty URL (no API served yet), counts as a failed poll.
	Resolve func(ctx context.Context) (string, error)
	// Token is sent as "Authorization: Bearer …"; it needs read scope.
	Token string
	// Wait is how long the head holds each poll open without a change;
	// 0 means DefaultWait. At most MaxWait.
	Wait time.Duration
	// Client sends the polls; nil means a client of the Follower's own,
	// whose idle connections Run closes when it returns. Its overall
	// Timeout, if any, must exceed Wait.
	Client *http.Client
	// OnError, when set, hears of every failed poll (for logging); it is
	// called on Run's goroutine.
	OnError func(err error)
}

// Follow long-polls the routing table at baseURL with token and calls
// apply with each new version and table, in order, until ctx ends; it
// then returns ctx's error. Failed polls are retried with backoff
// (MinBackoff to MaxBackoff). See Follower for the knobs.
func Follow(ctx context.Context, baseURL, token string, apply func(version uint64, routes []proxy.Route)) error {
	return (&Follower{BaseURL: baseURL, Token: token}).Run(ctx, apply)
}

// Run polls until ctx ends and returns ctx's error. apply is called on
// Run's goroutine with each table whose version differs from the last
// one applied, the first one included; it should not block for long (the
// next poll waits for it). A table the head sends but FromWire refuses
// counts as a failed poll.
func (f *Follower) Run(ctx context.Context, apply func(version uint64, routes []proxy.Route)) error {
	if f.Wait > MaxWait || f.Wait < 0 {
		return fmt.Errorf("routes: Follower.Wait %s: want 0 (default %s) up to %s", f.Wait, DefaultWait, MaxWait)
	}
	wait := f.Wait
	if wait == 0 {
		wait = DefaultWait
	}
	client := f.Client
	if client == nil {
		tr := &http.Transport{
			Proxy:               nil, // the head is reached directly, never through HTTP_PROXY
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     2 * MaxWait,
		}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	var since uint64
	base := f.BaseURL
	resolve := f.Resolve != nil
	backoff := MinBackoff
	for ctx.Err() == nil {
		err := func() error {
			if resolve {
				u, err := f.Resolve(ctx)
				if err != nil {
					return fmt.Errorf("routes: finding the head's API: %w", err)
				}
				if u == "" {
					return errors.New("routes: the head serves no HTTP API (yet)")
				}
				base = u
			}
			version, routes, err := Fetch(ctx, client, base, f.Token, since, wait)
			if err != nil {
				return err
			}
			resolve = false
			if version != since {
				since = version
				apply(version, routes)
			}
			return nil
		}()
		if err == nil {
			backoff = MinBackoff
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if f.Resolve != nil {
			resolve = true
		}
		if f.OnError != nil {
			f.OnError(err)
		}
		if !stopper.Sleep(ctx, backoff) {
			break
		}
		backoff = min(2*backoff, MaxBackoff)
	}
	return ctx.Err()
}

// Fetch makes one poll: GET baseURL+Path?since=…&wait=… with token. It
// returns since and nil routes when the head's wait ended without a
// change. Errors name the URL and, for an HTTP error, the status and the
// head's message.
func Fetch(ctx context.Context, client *http.Client, baseURL, token string, since uint64, wait time.Duration) (uint64, []proxy.Route, error) {
	ctx, cancel := context.WithTimeout(ctx, max(wait, 0)+RequestSlack)
	defer cancel()
	u := strings.TrimSuffix(baseURL, "/") + Path + "?" + url.Values{
		"since": {strconv.FormatUint(since, 10)},
		"wait":  {wait.String()},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("routes: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("routes: poll: %w", err)
	}
	defer res.Body.Close()
	body := io.LimitReader(res.Body, MaxResponseBytes+1)
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(body, 4<<10))
		return 0, nil, fmt.Errorf("routes: GET %s: %s: %s", u, res.Status, strings.TrimSpace(string(msg)))
	}
	var r Response
	dec := json.NewDecoder(body)
	if err := dec.Decode(&r); err != nil {
		return 0, nil, fmt.Errorf("routes: GET %s: reading the table (at most %d bytes): %w", u, MaxResponseBytes, err)
	}
	if !r.Changed {
		return since, nil, nil
	}
	if r.Version == 0 {
		return 0, nil, fmt.Errorf("%w: GET %s: changed table with version 0", ErrInvalid, u)
	}
	routes, err := FromWire(r.Routes)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return r.Version, routes, nil
}

// Put sets the head's table through PUT /api/serve/routes with token
// (write scope) and returns its version: for operators and tests while
// the controller does not own the table. Errors name the URL and, for an
// HTTP error, the status and the head's message.
func Put(ctx context.Context, client *http.Client, baseURL, token string, table []proxy.Route) (uint64, error) {
	body, err := json.Marshal(PutRequest{Routes: ToWire(table)})
	if err != nil {
		return 0, fmt.Errorf("routes: %w", err)
	}
	u := strings.TrimSuffix(baseURL, "/") + Path
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("routes: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("routes: PUT %s: %w", u, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		return 0, fmt.Errorf("routes: PUT %s: %s: %s", u, res.Status, strings.TrimSpace(string(msg)))
	}
	var r PutResponse
	if err := json.NewDecoder(io.LimitReader(res.Body, 4<<10)).Decode(&r); err != nil {
		return 0, fmt.Errorf("routes: PUT %s: reading the answer: %w", u, err)
	}
	return r.Version, nil
}
