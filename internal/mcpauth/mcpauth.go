// Package mcpauth guards the head's MCP endpoints (/mcp and the hosted
// servers' gateways, /mcp/hosted/NAME) beyond what the API's guard does:
// a bearer token only (not a dashboard cookie), and each MCP session tied
// to the name of the token that opened it (the SDK refuses a session's
// requests carrying another token's), through the SDK's
// auth.RequireBearerToken.
package mcpauth

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/raygo/raygo/internal/api"
)

// Wrap guards next, an MCP endpoint at path on s.
func Wrap(s *api.Server, path string, next http.Handler) http.HandlerFunc {
	verify := auth.RequireBearerToken(func(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		who, ok := s.Tokens().Check(token)
		if !ok {
			return nil, fmt.Errorf("%w: unknown token", auth.ErrInvalidToken)
		}
		return &auth.TokenInfo{Scopes: []string{who.Scope.String()}, UserID: who.Name}, nil
	}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})
	guarded := verify(next)
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := Bearer(r.Header); !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="raygo"`)
			api.WriteError(w, api.Errorf(http.StatusUnauthorized, "unauthenticated",
				"%s takes a bearer token only: send Authorization: Bearer <token> (a dashboard session cookie is not accepted; `raygo token` prints the cluster token, `raygo token create` makes read or write ones)", path))
			return
		}
		guarded.ServeHTTP(w, r)
	}
}

// Bearer is the token of an "Authorization: Bearer …" header.
func Bearer(h http.Header) (string, bool) {
	tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	tok = strings.TrimSpace(tok)
	return tok, ok && tok != ""
}
