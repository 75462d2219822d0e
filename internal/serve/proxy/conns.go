package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// conns is the proxy's own HTTP/1.1 client for the requests that need
// nothing of http.Transport's concurrency: plain http to a replica, no
// request body or one of known length up to maxDirectBody, no
// "Expect: 100-continue". It writes the request and reads the response
// on the handler's own goroutine over a pooled keep-alive connection,
// where http.Transport hands each request to a writer goroutine and
// each response back from a reader goroutine, and wraps both in
// per-request contexts and channels. With the rest of the leaner
// forwarding path (upstream.go) it cut the proxy process's CPU time per
// request by a fifth on the 2-core development VM
// (TestProxyThroughputProcesses: 93–98 µs to 74–79 µs for a GET).
// Request serialisation and response parsing are net/http's own
// (Request.Write, ReadResponse).
//
// A connection is reused only after its response body was read to the
// end without error and neither side asked to close it; an idle one is
// dropped after DefaultIdleConnTimeout, and one the replica closed is
// handled as RoundTrip says. SetRoutes closes the idle connections of
// replicas that left the table. Each replica keeps up to
// DefaultMaxIdleConnsPerHost idle connections, or its
// MaxOngoingRequests when that is more. It starts no goroutine: cancellation
// (client gone, request timeout) sets a past deadline on the connection
// from context.AfterFunc.
type conns struct {
	dialer      net.Dialer
	maxIdle     int           // per address
	idleTimeout time.Duration // an idle connection older than this is closed when found

	mu     sync.Mutex
	idle   map[string][]*conn // address → idle connections, most recent last; guarded by mu
	limits map[string]int     // address → its replica's MaxOngoingRequests, when above maxIdle; guarded by mu
}

// maxDirectBody is the largest request body (known Content-Length)
// conns sends. It is well inside the receive window a Linux peer
// advertises before its application reads anything (tcp_rmem's default
// 128 KiB gives about 64 KiB), so the write completes even when the
// replica answers before reading the body. Larger bodies, and bodies of
// unknown length, go through http.Transport, which reads the response
// while it writes.
const maxDirectBody = 32 << 10

// max1xx bounds the informational responses (103 Early Hints and the
// like) skipped before a request's final response, as http.Transport
// does; they are not passed on.
const max1xx = 5

// conn is one keep-alive connection to a replica.
type conn struct {
	addr   string
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	reused bool   // it has carried a request before
	abort  func() // unblocks reads and writes for good; made once per connection
}

func newConns() *conns {
	return &conns{
		dialer:      net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second},
		maxIdle:     DefaultMaxIdleConnsPerHost,
		idleTimeout: DefaultIdleConnTimeout,
		idle:        make(map[string][]*conn),
		limits:      make(map[string]int),
	}
}

// direct reports whether req may go through conns rather than the
// http.Transport.
func direct(req *http.Request) bool {
	return canCheckConns && req.URL.Scheme == "http" &&
		(req.Body == nil || req.ContentLength > 0 && req.ContentLength <= maxDirectBody) &&
		len(req.Header["Expect"]) == 0
}

// errStale marks a failure on a reused connection before any byte of the
// response arrived: the replica had closed it while idle.
var errStale = errors.New("proxy: kept-alive connection closed by the replica")

// RoundTrip sends req (see direct) and returns its response, whose Body
// returns the connection to the pool when read to the end.
//
// An idle connection may have been closed by the replica (its own idle
// timeout, a restart). A replayable request (GET, HEAD, OPTIONS, TRACE
// or one with an Idempotency-Key, without a body) takes an idle
// connection as it is and, if the connection turns out stale, is sent
// once more on a new one; any other is sent only on a connection that
// connAlive has just checked. These are http.Transport's rules for
// stale connections; the check is one system call, saved where a retry
// is safe.
func (c *conns) RoundTrip(req *http.Request) (*http.Response, error) {
	retry := replayable(req)
	cn, err := c.get(req.Context(), req.URL.Host, false, !retry)
	if err != nil {
		return nil, err
	}
	res, err := c.send(cn, req)
	if retry && errors.Is(err, errStale) {
		if cn, err = c.get(req.Context(), req.URL.Host, true, false); err != nil {
			return nil, err
		}
		res, err = c.send(cn, req)
	}
	return res, err
}

// replayable reports whether req may be sent again after a stale
// connection lost it (http.Transport's rule).
func replayable(req *http.Request) bool {
	if req.Body != nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	_, xok := req.Header["X-Idempotency-Key"]
	return ok || xok
}

func (c *conns) send(cn *conn, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	stop := context.AfterFunc(ctx, cn.abort)
	fail := func(err error) (*http.Response, error) {
		stop()
		cn.nc.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	if err := req.Write(oneFlush{cn.bw}); err != nil {
		return fail(c.staleErr(cn, err))
	}
	if err := cn.bw.Flush(); err != nil {
		return fail(c.staleErr(cn, err))
	}
	if _, err := cn.br.Peek(1); err != nil {
		return fail(c.staleErr(cn, err))
	}
	res, err := http.ReadResponse(cn.br, req)
	for n := 0; err == nil && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols; n++ {
		if n == max1xx {
			return fail(fmt.Errorf("more than %d informational (1xx) responses", max1xx))
		}
		res, err = http.ReadResponse(cn.br, req)
	}
	if err != nil {
		return fail(err)
	}
	// After a 101 the connection speaks another protocol: never reused.
	keep := !res.Close && !req.Close && res.StatusCode != http.StatusSwitchingProtocols
	if res.Body == http.NoBody {
		c.done(cn, stop, keep)
		return res, nil
	}
	res.Body = &connBody{rc: res.Body, c: c, cn: cn, stop: stop, keep: keep}
	return res, nil
}

// staleErr marks err as errStale when cn was reused and nothing of the
// response arrived.
func (c *conns) staleErr(cn *conn, err error) error {
	if cn.reused {
		return fmt.Errorf("%w: %w", errStale, err)
	}
	return err
}

// done ends cn's request: stop is the cancellation hook's, keep whether
// the connection may carry another.
func (c *conns) done(cn *conn, stop func() bool, keep bool) {
	if !stop() {
		keep = false // canceled: the deadline is set, the connection is spent
	}
	if !keep {
		cn.nc.Close()
		return
	}
	cn.reused = true
	cn.idleAt = time.Now()
	c.mu.Lock()
	if l := c.idle[cn.addr]; len(l) < max(c.maxIdle, c.limits[cn.addr]) {
		c.idle[cn.addr] = append(l, cn)
		cn = nil
	}
	c.mu.Unlock()
	if cn != nil {
		cn.nc.Close()
	}
}

// get returns an idle connection to addr (host:port, or a host for port
// 80), the most recently used, or dials one; with fresh it always dials,
// with check it takes only an idle connection connAlive passes.
func (c *conns) get(ctx context.Context, addr string, fresh, check bool) (*conn, error) {
	now := time.Now()
	for !fresh {
		c.mu.Lock()
		l := c.idle[addr]
		var cn *conn
		if n := len(l); n > 0 {
			cn = l[n-1]
			l[n-1] = nil
			c.idle[addr] = l[:n-1]
		}
		c.mu.Unlock()
		if cn == nil {
			break
		}
		if now.Sub(cn.idleAt) < c.idleTimeout && (!check || connAlive(cn.nc)) {
			return cn, nil
		}
		cn.nc.Close()
	}
	dial := addr
	if _, _, err := net.SplitHostPort(addr); err != nil {
		dial = net.JoinHostPort(strings.Trim(addr, "[]"), "80")
	}
	nc, err := c.dialer.DialContext(ctx, "tcp", dial)
	if err != nil {
		return nil, err
	}
	cn := &conn{addr: addr, nc: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc)}
	cn.abort = func() { nc.SetDeadline(pastDeadline) }
	return cn, nil
}

// retain closes the idle connections to every address not in keep, and
// lets each address in it keep as many idle connections as its
// replica's MaxOngoingRequests (the value in keep), at least maxIdle, so
// that a replica busy with this proxy's requests never needs a new one.
func (c *conns) retain(keep map[string]int) {
	c.mu.Lock()
	var drop []*conn
	for addr, l := range c.idle {
		if _, ok := keep[addr]; !ok {
			drop = append(drop, l...)
			delete(c.idle, addr)
		}
	}
	c.limits = make(map[string]int)
	for addr, n := range keep {
		if n > c.maxIdle {
			c.limits[addr] = n
		}
	}
	c.mu.Unlock()
	for _, cn := range drop {
		cn.nc.Close()
	}
}

// closeIdle closes every idle connection.
func (c *conns) closeIdle() { c.retain(nil) }

// oneFlush hides a *bufio.Writer from Request.Write, which flushes the
// headers on their own before a body it does not know to be in memory
// (so that a server may act on them while the body is slow to come):
// for the small bodies of known length that conns sends, headers and
// body leave in one write, as they do for a request without a body.
type oneFlush struct{ *bufio.Writer }

// pastDeadline unblocks a connection's reads and writes at once.
var pastDeadline = time.Unix(1, 0)

// connBody is a response body read from a pooled connection; reading it
// to the end gives the connection back.
type connBody struct {
	rc   io.ReadCloser
	c    *conns
	cn   *conn
	stop func() bool
	keep bool
	done bool
}

func (b *connBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.done = true
		b.c.done(b.cn, b.stop, b.keep && err == io.EOF)
	}
	return n, err
}

func (b *connBody) Close() error {
	if !b.done {
		b.done = true
		b.c.done(b.cn, b.stop, false) // not read to the end: the connection is spent
	}
	return nil
}
