package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync/atomic"
)

// The forwarding path. It does what httputil.ReverseProxy does for a
// request that is not a protocol upgrade, with one http.Transport round
// trip and without ReverseProxy's per-request work that the proxy does
// not need (a deep clone of the request, a ProxyRequest, an
// httptrace.ClientTrace for 1xx responses, a flush timer, a context
// value): the request's headers are copied once, shallowly, and the
// response's headers are moved, not copied. BenchmarkProxy's allocations
// per request (client and replica included) went from 154 to 115.

// hopHeaders are the hop-by-hop headers removed from both directions
// (RFC 9110 section 7.6.1, and ReverseProxy's list), in canonical form.
var hopHeaders = [...]string{
	"Connection",
	"Proxy-Connection", // non-standard, still sent by libcurl
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// Shared header values. Requests and responses only read them.
var (
	valueHTTP     = []string{"http"}
	valueHTTPS    = []string{"https"}
	valueTrailers = []string{"trailers"}
	valueEmpty    = []string{""}
)

// roundTrip sends one attempt of r to ex.tgt and copies the response to
// w. A failure before the response started is left in ex.err; one after
// it started aborts the response (panic(http.ErrAbortHandler)), as
// ReverseProxy does, after closing the replica's response body.
func (p *Proxy) roundTrip(w *responseWriter, r *http.Request, ex *exchange) {
	out := p.upstreamRequest(r, ex)
	if b, ok := out.Body.(*noCloseBody); ok {
		// A Transport goroutine may still be reading the body when the
		// handler returns; after that it reads nothing more.
		defer b.Close()
	}
	rt := p.transport
	if p.conns != nil && direct(out) {
		rt = p.conns
	}
	res, err := rt.RoundTrip(out)
	if err != nil {
		ex.err = err
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Only an upgrade request may be answered 101; this one was not.
		res.Body.Close()
		ex.err = fmt.Errorf("answered 101 Switching Protocols to a request that asked for no upgrade")
		return
	}
	h := res.Header
	removeHopByHop(h)
	delete(h, HeaderRequestID) // the proxy's is on the response already
	dst := w.Header()
	for k, vs := range h {
		if old, ok := dst[k]; ok {
			dst[k] = append(old, vs...)
		} else {
			dst[k] = vs // res is ours: its values need no copy
		}
	}
	// The Transport moves the Trailer header into res.Trailer; announce
	// the names again so that the client can expect them.
	announced := len(res.Trailer)
	if announced > 0 {
		names := make([]string, 0, announced)
		for k := range res.Trailer {
			names = append(names, k)
		}
		dst["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(res.StatusCode)

	// A response of unknown length (chunked, a stream) or an event
	// stream is flushed after its headers and after every write, so
	// that the client sees each piece when the replica sends it; one
	// with a Content-Length goes through the server's buffer (a write
	// less per request).
	flush := res.ContentLength < 0 || isEventStream(h["Content-Type"])
	if flush {
		if err := w.FlushError(); err != nil {
			res.Body.Close()
			panic(http.ErrAbortHandler) // the client is gone
		}
	}
	if err := copyBody(w, res.Body, flush); err != nil {
		res.Body.Close()
		if !errors.Is(err, errClientWrite) && r.Context().Err() == nil && ex.ctx.Err() == nil {
			d := ex.entry.dep
			p.logger.Warn("serve proxy: replica failed during its response", "app", d.app, "deployment", d.name,
				"replica", ex.tgt.id, "url", ex.tgt.raw, "request_id", ex.id, "error", err)
		}
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // now, so that res.Trailer has its values

	if len(res.Trailer) > 0 {
		// Force chunking, so that net/http does not compute a
		// Content-Length for a short body and drop the trailers.
		_ = w.FlushError()
		prefix := ""
		if len(res.Trailer) != announced {
			prefix = http.TrailerPrefix // names not announced before the body
		}
		for k, vs := range res.Trailer {
			dst[prefix+k] = vs
		}
	}
}

// upstreamRequest builds one attempt's request to ex.tgt: the client's
// method, full path, query and body; the client's Host; its headers less
// the hop-by-hop ones and any forwarding headers it sent (X-Forwarded-For
// is kept, and appended to, only with Options.TrustForwardedFor);
// X-Forwarded-For/-Host/-Proto, X-Forwarded-Prefix and X-Request-Id;
// and Options.UpstreamHeaders. Every attempt gets its own request and
// header map: a Transport may still read a failed attempt's.
func (p *Proxy) upstreamRequest(r *http.Request, ex *exchange) *http.Request {
	in := r.Header
	h := make(http.Header, len(in)+6)
	for k, vs := range in {
		h[k] = vs // only read by the Transport
	}
	removeHopByHop(h)
	if headerHasToken(in["Te"], "trailers") {
		h["Te"] = valueTrailers // the proxy passes trailers on
	}
	vals := make([]string, 3) // one allocation for the request's own values
	delete(h, "Forwarded")
	delete(h, "X-Forwarded-For")
	if clientIP, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := in["X-Forwarded-For"]; p.opts.TrustForwardedFor && len(prior) > 0 {
			clientIP = strings.Join(prior, ", ") + ", " + clientIP
		}
		vals[0] = clientIP
		h["X-Forwarded-For"] = vals[0:1:1]
	}
	vals[1] = r.Host
	h["X-Forwarded-Host"] = vals[1:2:2]
	if r.TLS == nil {
		h["X-Forwarded-Proto"] = valueHTTP
	} else {
		h["X-Forwarded-Proto"] = valueHTTPS
	}
	vals[2] = ex.id
	h[HeaderRequestID] = vals[2:3:3]
	if ex.entry.prefix != "/" {
		h[HeaderForwardedPrefix] = ex.entry.prefixValue
	} else {
		delete(h, HeaderForwardedPrefix)
	}
	for k, vs := range p.upstream {
		h[k] = vs[:len(vs):len(vs)] // full slice: an append copies
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = valueEmpty // not Go's default
	}

	out := r.WithContext(ex.ctx) // a shallow copy; the fields below are replaced
	out.URL = &url.URL{
		Scheme:   ex.tgt.url.Scheme,
		Host:     ex.tgt.url.Host,
		Path:     r.URL.Path,
		RawPath:  r.URL.RawPath,
		RawQuery: cleanQuery(r.URL.RawQuery),
	}
	out.Host = r.Host // as Ray passes the client's request scope on
	out.Header = h
	out.RequestURI = ""
	out.Close = false
	out.Trailer = nil // a client's request trailers are not passed on
	if r.ContentLength == 0 {
		out.Body = nil // lets the Transport resend it on a stale connection
	} else if r.Body != nil {
		// The Transport closes the body it is given, also when it fails
		// to connect; closing the server's own body early can hang a
		// client waiting for "100 Continue" (as ReverseProxy notes).
		out.Body = &noCloseBody{rc: r.Body}
	}
	return out
}

// noCloseBody passes reads to the client's request body and makes Close
// end them without closing it.
type noCloseBody struct {
	rc     io.ReadCloser
	closed atomic.Bool
}

var errBodyClosed = errors.New("proxy: request body read after the upstream request ended")

func (b *noCloseBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errBodyClosed
	}
	return b.rc.Read(p)
}

func (b *noCloseBody) Close() error { b.closed.Store(true); return nil }

// errClientWrite wraps a failure to write to the client.
var errClientWrite = errors.New("proxy: writing to the client")

// copyBody copies the replica's response body to the client through a
// pooled buffer, flushing after every write when flush is set. It
// returns the read error (not io.EOF), or a write error wrapping
// errClientWrite.
func copyBody(w *responseWriter, body io.Reader, flush bool) error {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return fmt.Errorf("%w: %w", errClientWrite, err)
			}
			if flush {
				if err := w.FlushError(); err != nil {
					return fmt.Errorf("%w: %w", errClientWrite, err)
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// removeHopByHop deletes the headers named by Connection, then the
// hop-by-hop headers.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// isUpgrade reports whether a request asks to switch protocols
// (Connection: Upgrade and an Upgrade header).
func isUpgrade(h http.Header) bool {
	return len(h["Upgrade"]) > 0 && headerHasToken(h["Connection"], "upgrade")
}

// headerHasToken reports whether one of the comma-separated values in vs
// is token, ignoring case.
func headerHasToken(vs []string, token string) bool {
	for _, v := range vs {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(part), token) {
				return true
			}
		}
	}
	return false
}

// isEventStream reports whether a Content-Type is text/event-stream
// (server-sent events), with or without parameters.
func isEventStream(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	const es = "text/event-stream"
	v := strings.TrimLeft(ct[0], " \t")
	if len(v) < len(es) || !strings.EqualFold(v[:len(es)], es) {
		return false
	}
	rest := strings.TrimLeft(v[len(es):], " \t")
	return rest == "" || rest[0] == ';'
}

// cleanQuery returns a query string the replica parses as the proxy
// would: one with a ';' or a malformed %-escape is re-encoded (dropping
// what does not parse), as ReverseProxy does against parameter
// smuggling; any other is passed on as it came.
func cleanQuery(q string) string {
	for i := 0; i < len(q); {
		switch q[i] {
		case ';':
			return reencodeQuery(q)
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return reencodeQuery(q)
			}
			i += 3
		default:
			i++
		}
	}
	return q
}

func reencodeQuery(q string) string {
	v, _ := url.ParseQuery(q) // keeps what parses
	return v.Encode()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
