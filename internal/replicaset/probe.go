package replicaset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// HTTPProbe limits (not Ray's: Ray checks a replica by calling its
// check_health method).
const (
	// DefaultProbeTimeout bounds one readiness attempt.
	DefaultProbeTimeout = 2 * time.Second
	// DefaultProbeInterval is the time between readiness attempts.
	DefaultProbeInterval = 100 * time.Millisecond
)

// HTTPProbe is the Probe of Serve's command replicas: a replica is ready
// once a GET of Path on its Process.HostPort answers 2xx (or, with Path
// empty, once a TCP connection to it opens), and healthy while each
// check does the same within the set's health timeout. Its zero value
// is a TCP probe.
type HTTPProbe struct {
	// Path is the health path ("/healthz"); empty: TCP connect only.
	Path string
	// Timeout bounds one readiness attempt (0: DefaultProbeTimeout).
	Timeout time.Duration
	// Interval is the time between readiness attempts (0:
	// DefaultProbeInterval).
	Interval time.Duration
	// Header is sent with every GET (Serve's Go replicas want the
	// proxies' token).
	Header http.Header
}

// Ready implements Probe: it tries until an attempt succeeds, the
// process ends, or ctx ends.
func (p HTTPProbe) Ready(ctx context.Context, proc *Process) (Conn, error) {
	if proc.HostPort == "" {
		return nil, errors.New("replicaset: HTTPProbe: the replica has no host:port (is its kind \"serve\"?)")
	}
	timeout, interval := p.Timeout, p.Interval
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	if interval <= 0 {
		interval = DefaultProbeInterval
	}
	c := &httpConn{probe: p, hostPort: proc.HostPort,
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := c.Check(actx)
		cancel()
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("not ready: %w (last attempt: %v)", ctx.Err(), err)
		case <-proc.Done:
			return nil, fmt.Errorf("the replica ended before it was ready (last attempt: %v)", err)
		case <-tick.C:
		}
	}
}

// httpConn is a ready replica as HTTPProbe checks it. Each check opens
// its own connection, so a replica that stops accepting fails it.
type httpConn struct {
	probe    HTTPProbe
	hostPort string
	client   *http.Client
}

// Check implements Conn.
func (c *httpConn) Check(ctx context.Context) error {
	if c.probe.Path == "" {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.hostPort)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", c.hostPort, err)
		}
		return conn.Close()
	}
	url := "http://" + c.hostPort + c.probe.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	for k, v := range c.probe.Header {
		req.Header[k] = v
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err // names the method and URL
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// Lost implements Conn: HTTP checks have no connection of their own.
func (c *httpConn) Lost() <-chan error { return nil }

// Close implements Conn.
func (c *httpConn) Close() error {
	c.client.CloseIdleConnections()
	return nil
}
