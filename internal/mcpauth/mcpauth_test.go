package mcpauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/raygo/raygo/internal/api"
)

func TestWrap(t *testing.T) {
	ctx := context.Background()
	tokens, err := api.NewTokens(ctx, "cluster-token-0123456789", nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Config{}, tokens)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := tokens.Create(ctx, "agent", api.ScopeRead, false)
	if err != nil {
		t.Fatal(err)
	}
	var seen *auth.TokenInfo
	h := Wrap(s, "/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = auth.TokenInfoFromContext(r.Context())
	}))
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
		body   string
		user   string
	}{
		{"no token", nil, http.StatusUnauthorized, "bearer token only", ""},
		{"a cookie only", map[string]string{"Cookie": "raygo_session=abc"}, http.StatusUnauthorized, "cookie is not accepted", ""},
		{"basic auth", map[string]string{"Authorization": "Basic YTpi"}, http.StatusUnauthorized, "bearer token only", ""},
		{"empty bearer", map[string]string{"Authorization": "Bearer  "}, http.StatusUnauthorized, "bearer token only", ""},
		{"wrong token", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized, "", ""},
		{"a read token", map[string]string{"Authorization": "Bearer " + reader}, http.StatusOK, "", "agent"},
		{"the cluster token", map[string]string{"Authorization": "Bearer cluster-token-0123456789"}, http.StatusOK, "", api.ClusterPrincipal},
	} {
		seen = nil
		req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h(w, req)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, w.Code, w.Body.String(), tc.status, tc.body)
		}
		if tc.user != "" && (seen == nil || seen.UserID != tc.user) {
			t.Errorf("%s: the handler saw token info %+v, want user %q", tc.name, seen, tc.user)
		}
	}
}
