package mcphost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/replicaset"
	"github.com/raygo/raygo/internal/stopper"
)

// The gateway: one streamable-HTTP MCP endpoint per hosted server
// (/mcp/hosted/NAME), built with the SDK's server and its HTTP handler.
// Initialize, ping and the session itself are the gateway's own; every
// request of the server features (tools, resources, prompts,
// completions) goes through a receiving middleware to the replica the
// session is bound to, over that replica's one MCP session (the SDK's
// client), and its answer, or its JSON-RPC error, comes back as it is.
//
// A session is bound to a replica when it starts (the ready one with the
// fewest sessions) and stays there; when that replica goes, a call under
// way on it fails with CodeReplicaGone and a message saying so, and the
// session's next call goes to another ready replica.

// JSON-RPC error codes of the gateway's own errors.
const (
	// CodeReplicaGone: the replica serving the call went away during it.
	CodeReplicaGone = -32010
	// CodeNoReplica: no replica of the server is ready now.
	CodeNoReplica = -32011
)

// IdleSessionTimeout closes a gateway session no request has used for
// that long.
const IdleSessionTimeout = 30 * time.Minute

// hosted is one hosted server: its replica slots and its gateway.
type hosted struct {
	m    *Manager
	spec Spec
	log  *slog.Logger
	// sdkLog is log for the SDK's own messages, warnings and up (it logs
	// every session at info).
	sdkLog *slog.Logger
	stop   *stopper.Stopper
	set    *replicaset.Set // the replicas' supervision
	slots  []*slot         // fixed at creation, slots[i].rs is set's i

	mu      sync.Mutex
	server  *mcp.Server
	handler *mcp.StreamableHTTPHandler
	info    *mcp.Implementation
	bind    map[*mcp.ServerSession]*slot
	routes  map[string]progressRoute // rewritten progress tokens
	tie     uint64
	nextTok uint64
}

// progressRoute is where a replica's progress notifications for a call go.
type progressRoute struct {
	ctx  context.Context // the call's: its notifications go to its stream
	ss   *mcp.ServerSession
	orig any // the client's own token
}

// newHosted makes a hosted server and starts its replica slots.
func newHosted(m *Manager, spec Spec) (*hosted, error) {
	log := m.log.With("server", spec.Name)
	h := &hosted{m: m, spec: spec, log: log, sdkLog: slog.New(minLevel{log.Handler(), slog.LevelWarn}), stop: stopper.New(),
		bind: map[*mcp.ServerSession]*slot{}, routes: map[string]progressRoute{}}
	set, err := replicaset.New(replicaset.Config{
		Name: spec.Name, Kind: replicaset.KindMCP,
		Start:     &pb.ReplicaStart{Argv: spec.Command, RuntimeEnv: spec.RuntimeEnv().Proto(), ClusterAddress: m.cfg.ClusterAddress},
		Resources: spec.ResourceSet(), Launcher: m.launcher, Probe: mcpProbe{h},
		HealthPeriod: HealthPeriod, StartTimeout: StartTimeout, Logger: log,
		OnReady: func(_ *replicaset.Slot, c replicaset.Conn) { h.replicaReady(c.(*mcpConn).cs.InitializeResult()) },
	}, spec.Replicas)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	h.set = set
	for _, rs := range set.Slots() {
		h.slots = append(h.slots, &slot{rs: rs, index: rs.Index()})
	}
	return h, nil
}

// close ends the gateway's sessions and stops every replica.
func (h *hosted) close() {
	h.mu.Lock()
	srv := h.server
	h.mu.Unlock()
	if srv != nil {
		var sessions []*mcp.ServerSession
		for ss := range srv.Sessions() {
			sessions = append(sessions, ss)
		}
		for _, ss := range sessions {
			_ = ss.Close()
		}
	}
	h.set.Close() // closes the replicas' sessions, which ends their watchers in stop
	h.stop.Stop()
}

// replicaReady makes the gateway's server when the first replica is
// ready, with that replica's capabilities, identity and instructions.
func (h *hosted) replicaReady(res *mcp.InitializeResult) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.server != nil || res == nil {
		return
	}
	caps := &mcp.ServerCapabilities{}
	if c := res.Capabilities; c != nil {
		caps.Tools, caps.Prompts, caps.Completions = c.Tools, c.Prompts, c.Completions
		if c.Resources != nil {
			r := *c.Resources
			r.Subscribe = false // updates of one replica's resources are not routed to sessions
			caps.Resources = &r
		}
	}
	info := &mcp.Implementation{Name: h.spec.Name}
	if res.ServerInfo != nil {
		info = &mcp.Implementation{Name: res.ServerInfo.Name, Title: res.ServerInfo.Title, Version: res.ServerInfo.Version}
	}
	srv := mcp.NewServer(info, &mcp.ServerOptions{Capabilities: caps, Instructions: res.Instructions, Logger: h.sdkLog,
		InitializedHandler: h.initialized})
	srv.AddReceivingMiddleware(h.middleware)
	h.server, h.info = srv, info
	h.handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{SessionTimeout: IdleSessionTimeout, Logger: h.sdkLog})
}

// initialized binds a new session to a replica, and unbinds it when it
// ends.
func (h *hosted) initialized(_ context.Context, req *mcp.InitializedRequest) {
	ss := req.Session
	_, _, _, _ = h.route(ss)
	_ = h.stop.Go("mcphost.session", func(context.Context) {
		_ = ss.Wait() // close (or the session's end) returns it
		h.unbind(ss)
	})
}

func (h *hosted) unbind(ss *mcp.ServerSession) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sl := h.bind[ss]; sl != nil {
		sl.mu.Lock()
		sl.sessions--
		sl.mu.Unlock()
		delete(h.bind, ss)
	}
}

// route is the replica ss is bound to, binding it (again) to a ready one
// when it has none or its replica is not ready.
func (h *hosted) route(ss *mcp.ServerSession) (*slot, *mcp.ClientSession, <-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sl := h.bind[ss]; sl != nil {
		if cs, gone := sl.current(); cs != nil {
			return sl, cs, gone, nil
		}
		sl.mu.Lock()
		sl.sessions--
		sl.mu.Unlock()
		delete(h.bind, ss)
	}
	loads := make([]replicaLoad, len(h.slots))
	for i, sl := range h.slots {
		cs, _ := sl.current()
		sl.mu.Lock()
		loads[i] = replicaLoad{ready: cs != nil, sessions: sl.sessions, inFlight: sl.inFlight}
		sl.mu.Unlock()
	}
	i := pickReplica(loads, h.tie)
	h.tie++
	if i < 0 {
		return nil, nil, nil, &jsonrpc.Error{Code: CodeNoReplica, Message: fmt.Sprintf(
			"hosted MCP server %q has no ready replica now (%s); try again in a few seconds (`raygo mcp list` shows why)", h.spec.Name, h.summary())}
	}
	sl := h.slots[i]
	cs, gone := sl.current()
	if ss != nil {
		h.bind[ss] = sl
		sl.mu.Lock()
		sl.sessions++
		sl.mu.Unlock()
	}
	return sl, cs, gone, nil
}

// summary says what the replicas are doing, for errors.
func (h *hosted) summary() string {
	var parts []string
	for _, sl := range h.slots {
		st := sl.status()
		p := st.State
		if st.Message != "" {
			p += ": " + st.Message
		}
		parts = append(parts, fmt.Sprintf("replica %d %s", st.Index, p))
	}
	return strings.Join(parts, "; ")
}

// forwarded are the methods the gateway passes to a replica.
var forwarded = map[string]bool{
	"tools/list": true, "tools/call": true,
	"resources/list": true, "resources/templates/list": true, "resources/read": true,
	"prompts/list": true, "prompts/get": true,
	"completion/complete": true,
}

// middleware sends the server features' requests to the session's
// replica; everything else (initialize, ping, cancellation) is the
// gateway's own.
func (h *hosted) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if !forwarded[method] {
			return next(ctx, method, req)
		}
		ss, _ := req.GetSession().(*mcp.ServerSession)
		return h.forward(ctx, ss, method, req.GetParams())
	}
}

func (h *hosted) forward(ctx context.Context, ss *mcp.ServerSession, method string, params mcp.Params) (mcp.Result, error) {
	sl, cs, gone, err := h.route(ss)
	if err != nil {
		return nil, err
	}
	st := sl.rs.Status()
	id, node := st.ID, st.NodeID
	sl.mu.Lock()
	sl.inFlight++
	sl.mu.Unlock()
	defer func() {
		sl.mu.Lock()
		sl.inFlight--
		sl.mu.Unlock()
	}()
	res, err := h.call(ctx, ss, cs, method, params)
	if err == nil {
		return res, nil
	}
	var werr *jsonrpc.Error
	if errors.As(err, &werr) || ctx.Err() != nil {
		return nil, err // the replica's own answer, or the caller cancelled
	}
	// The link to the replica failed under the call: it is going (its
	// slot replaces it); the session moves to another replica.
	select {
	case <-gone:
	case <-time.After(time.Second):
	}
	h.mu.Lock()
	if h.bind[ss] == sl {
		delete(h.bind, ss)
		sl.mu.Lock()
		sl.sessions--
		sl.mu.Unlock()
	}
	h.mu.Unlock()
	return nil, &jsonrpc.Error{Code: CodeReplicaGone, Message: fmt.Sprintf(
		"hosted MCP server %q: replica %s on node %s went away during %s (%v); this session now uses another replica: repeat the call if it is safe to repeat",
		h.spec.Name, id, shortNode(node), method, err)}
}

// call makes the request on the replica's session.
func (h *hosted) call(ctx context.Context, ss *mcp.ServerSession, cs *mcp.ClientSession, method string, params mcp.Params) (mcp.Result, error) {
	switch p := params.(type) {
	case *mcp.CallToolParamsRaw:
		up := &mcp.CallToolParams{Name: p.Name, InputResponses: p.InputResponses, RequestState: p.RequestState}
		if len(p.Arguments) > 0 {
			up.Arguments = p.Arguments
		}
		if p.Meta != nil {
			up.Meta = maps.Clone(p.Meta)
		}
		if tok := p.GetProgressToken(); tok != nil && ss != nil {
			key := h.routeProgress(ctx, ss, tok)
			defer h.dropProgress(key)
			up.SetProgressToken(key)
		}
		return cs.CallTool(ctx, up)
	case *mcp.ListToolsParams:
		return cs.ListTools(ctx, p)
	case *mcp.ListResourcesParams:
		return cs.ListResources(ctx, p)
	case *mcp.ListResourceTemplatesParams:
		return cs.ListResourceTemplates(ctx, p)
	case *mcp.ReadResourceParams:
		return cs.ReadResource(ctx, p)
	case *mcp.ListPromptsParams:
		return cs.ListPrompts(ctx, p)
	case *mcp.GetPromptParams:
		return cs.GetPrompt(ctx, p)
	case *mcp.CompleteParams:
		return cs.Complete(ctx, p)
	}
	return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("gateway: %s: unexpected parameters %T", method, params)}
}

// routeProgress rewrites a call's progress token to one unique among the
// replica's callers, so its notifications go back to the right session.
func (h *hosted) routeProgress(ctx context.Context, ss *mcp.ServerSession, tok any) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextTok++
	key := fmt.Sprintf("raygo-gw-%d", h.nextTok)
	h.routes[key] = progressRoute{ctx: ctx, ss: ss, orig: tok}
	return key
}

func (h *hosted) dropProgress(key string) {
	h.mu.Lock()
	delete(h.routes, key)
	h.mu.Unlock()
}

// progress passes a replica's progress notification to the session whose
// call it is about.
func (h *hosted) progress(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	key, _ := req.Params.ProgressToken.(string)
	h.mu.Lock()
	r, ok := h.routes[key]
	h.mu.Unlock()
	if !ok {
		return
	}
	_ = r.ss.NotifyProgress(r.ctx, &mcp.ProgressNotificationParams{ProgressToken: r.orig, Progress: req.Params.Progress,
		Total: req.Params.Total, Message: req.Params.Message})
}

// serveHTTP serves the gateway endpoint.
func (h *hosted) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	handler := h.handler
	h.mu.Unlock()
	if handler == nil || r.Header.Get("Mcp-Session-Id") == "" && h.ready() == 0 {
		w.Header().Set("Retry-After", "1")
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, "no_replica",
			"hosted MCP server %q has no ready replica yet (%s); try again in a few seconds", h.spec.Name, h.summary()))
		return
	}
	handler.ServeHTTP(w, r)
}

// ready counts the ready replicas.
func (h *hosted) ready() int {
	n := 0
	for _, sl := range h.slots {
		if cs, _ := sl.current(); cs != nil {
			n++
		}
	}
	return n
}

// minLevel is a slog handler that drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}
func (h minLevel) WithGroup(g string) slog.Handler { return minLevel{h.Handler.WithGroup(g), h.min} }
