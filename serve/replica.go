package serve

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/serve/goapp"
	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/ray"
)

// Limits of a Go replica.
const (
	// replicaReadHeaderTimeout bounds reading a request's headers.
	replicaReadHeaderTimeout = 10 * time.Second
	// maxUserConfigBytes bounds a reconfigure request's body.
	maxUserConfigBytes = 1 << 20
	// apiTimeout bounds one call of the replica to the head's API.
	apiTimeout = 30 * time.Second
)

// replica is the actor a Go deployment's replica is: the user's value,
// its HTTP listener (the user's handler behind the proxy's token check,
// and the control paths), and the count of requests in flight.
type replica[T any] struct {
	user     *T
	init     goapp.Init
	srv      *http.Server
	addr     string
	ongoing  atomic.Int64
	handler  http.Handler // the user's, nil when *T is not one
	grpc     *grpc.Server // the user's services, nil when *T is not a GRPCService
	served   sync.WaitGroup
	stopOnce sync.Once
}

// startReplica is a replica actor's constructor: it asks the controller
// what it is, makes the user's value, applies the user config, starts
// listening and reports where, all before the actor is ALIVE.
func startReplica[T any](ctx context.Context, d *Deployment[T]) (*replica[T], error) {
	tc, ok := ray.CurrentTask(ctx)
	if !ok || tc.ActorID == "" {
		return nil, fmt.Errorf("serve: deployment %s: a replica is made by the Serve controller, not created directly", d.name)
	}
	var init goapp.Init
	if err := headCall(ctx, http.MethodGet, goapp.ReplicaPath+tc.ActorID, nil, &init); err != nil {
		return nil, fmt.Errorf("serve: deployment %s: replica %s: ask the controller what to serve: %w", d.name, tc.ActorID, err)
	}
	user, err := d.ctor(ctx)
	if err != nil {
		return nil, fmt.Errorf("serve: deployment %s: constructor: %w", d.name, err)
	}
	if user == nil {
		return nil, fmt.Errorf("serve: deployment %s: constructor returned nil", d.name)
	}
	r := &replica[T]{user: user, init: init}
	if len(init.UserConfig) > 0 && string(init.UserConfig) != "null" {
		if err := r.reconfigure(ctx, init.UserConfig); err != nil {
			return nil, err
		}
	}
	if h, ok := any(user).(http.Handler); ok {
		r.handler = h
	}
	if g, ok := any(user).(GRPCService); ok {
		r.grpc = grpc.NewServer()
		g.RegisterGRPC(r.grpc)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(init.Host, "0"))
	if err != nil {
		return nil, fmt.Errorf("serve: deployment %s: listen on %s: %w", d.name, init.Host, err)
	}
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: replicaReadHeaderTimeout,
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn)}
	if r.grpc != nil { // the gRPC proxies speak cleartext HTTP/2
		r.srv.Protocols = new(http.Protocols)
		r.srv.Protocols.SetHTTP1(true)
		r.srv.Protocols.SetUnencryptedHTTP2(true)
	}
	r.served.Add(1)
	go func() { // owned by the replica: ends with srv (drain or the process's end)
		defer r.served.Done()
		_ = r.srv.Serve(ln)
	}()
	if err := headCall(ctx, http.MethodPut, goapp.ReplicaPath+tc.ActorID, goapp.Address{HostPort: r.addr}, nil); err != nil {
		r.stop()
		return nil, fmt.Errorf("serve: deployment %s: report the replica's address: %w", d.name, err)
	}
	return r, nil
}

// ServeHTTP checks the proxy's token, answers the control paths and
// passes the rest to the user's handler.
func (r *replica[T]) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	tok := req.Header.Get(goapp.TokenHeader)
	if subtle.ConstantTimeCompare([]byte(tok), []byte(r.init.UpstreamToken)) != 1 {
		http.Error(w, "serve replica: requests come through a raygo Serve proxy (missing or wrong "+goapp.TokenHeader+")", http.StatusUnauthorized)
		return
	}
	req.Header.Del(goapp.TokenHeader) // never shown to the user's code
	switch req.URL.Path {
	case goapp.HealthPath:
		if hc, ok := any(r.user).(HealthChecker); ok {
			if err := hc.CheckHealth(req.Context()); err != nil {
				http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = io.WriteString(w, "ok")
		return
	case goapp.ReconfigurePath:
		b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxUserConfigBytes))
		if err == nil {
			err = r.reconfigure(req.Context(), b)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	case goapp.DrainPath:
		r.stop()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.grpc != nil && req.ProtoMajor == 2 && strings.HasPrefix(req.Header.Get("Content-Type"), "application/grpc") {
		done := r.begin()
		defer done()
		r.grpc.ServeHTTP(w, req)
		return
	}
	if r.handler == nil {
		http.Error(w, fmt.Sprintf("serve: deployment %s has no HTTP handler (its type is not an http.Handler): call it through a handle", r.init.Deployment), http.StatusNotFound)
		return
	}
	done := r.begin()
	defer done()
	if id := req.Header.Get(proxy.HeaderRequestID); id != "" {
		req = req.WithContext(context.WithValue(req.Context(), requestIDKey{}, id))
	}
	r.handler.ServeHTTP(w, req)
}

type requestIDKey struct{}

// RequestID returns the id of the HTTP request a Go replica's handler
// serves (the proxy's X-Request-Id, also in the response's headers and
// the proxy's logs), for the handler's own logs; "" outside one.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func (r *replica[T]) begin() func() {
	r.ongoing.Add(1)
	return func() { r.ongoing.Add(-1) }
}

func (r *replica[T]) reconfigure(ctx context.Context, userConfig []byte) error {
	rc, ok := any(r.user).(Reconfigurable)
	if !ok {
		return nil
	}
	if err := rc.Reconfigure(ctx, json.RawMessage(userConfig)); err != nil {
		return fmt.Errorf("serve: deployment %s: Reconfigure: %w", r.init.Deployment, err)
	}
	return nil
}

// stop drains the listener (requests in flight finish within the drain
// timeout) and then runs the value's Shutdown; later calls do nothing.
// The request that asks for it (DrainPath) is answered first: the
// server's Shutdown waits for it, so it runs on its own goroutine.
func (r *replica[T]) stop() {
	r.stopOnce.Do(func() {
		timeout := time.Duration(r.init.DrainTimeoutMs) * time.Millisecond
		if timeout <= 0 {
			timeout = 20 * time.Second
		}
		go func() { // owned by the replica: ends within the drain timeout
			sctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if r.srv != nil {
				if err := r.srv.Shutdown(sctx); err != nil {
					_ = r.srv.Close()
				}
				r.served.Wait()
			}
			if s, ok := any(r.user).(Shutdowner); ok {
				if err := s.Shutdown(sctx); err != nil {
					slog.Warn("serve: replica shutdown", "deployment", r.init.Deployment, "replica", r.init.Replica, "err", err)
				}
			}
		}()
	})
}

// headCall calls the head's API as this process (the worker's token).
func headCall(ctx context.Context, method, path string, in, out any) error {
	base, token, err := ray.ClusterAPI(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return &APIError{Status: resp.StatusCode, Method: method, Path: path, Body: string(b)}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// APIError is an error answer of the head's Serve API.
type APIError struct {
	Status       int
	Method, Path string
	Body         string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Body)
}

// ErrNotFound matches an APIError with status 404.
var ErrNotFound = errors.New("serve: not found")

// Is reports whether target is ErrNotFound and e is a 404.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}
