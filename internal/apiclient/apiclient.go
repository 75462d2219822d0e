// Package apiclient is a Go client of the head's HTTP API (internal/api):
// what the CLI's job, list, get, summary, logs and timeline commands, the
// ray package's state functions and the MCP server use. Each feature's
// calls are in their own file; this one has the transport and the errors.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one head's HTTP API with one token.
type Client struct {
	base  string // http://host:port, no trailing slash
	token string
	hc    *http.Client
}

// New makes a client of the API at baseURL (http://host:port) that sends
// token as a bearer token.
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("apiclient: API address %q: want http://HOST:PORT", baseURL)
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token,
		hc: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute}}}, nil
}

// BaseURL is the API's base URL.
func (c *Client) BaseURL() string { return c.base }

// Error is an error the API answered (its JSON error).
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return e.Message
}

// IsNotFound reports whether err is the API's 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// IsUnauthorized reports whether err is a refused token (401 or 403).
func IsUnauthorized(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden)
}

// Request sends a request with body (nil: none; an io.Reader: sent as it
// is with contentType; anything else: as JSON) and returns the response
// when its status is 2xx, else the API's error. The caller closes the body.
func (c *Client) Request(ctx context.Context, method, path string, body any, contentType string) (*http.Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd, contentType = bytes.NewReader(raw), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the raygo API at %s: %w", c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp, method, path)
}

// decodeError reads the API's error from a non-2xx response.
func decodeError(resp *http.Response, method, path string) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var wrapped struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(raw, &wrapped) == nil && wrapped.Error != nil {
		wrapped.Error.Status = resp.StatusCode
		return wrapped.Error
	}
	return &Error{Status: resp.StatusCode, Message: fmt.Sprintf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(raw)))}
}

// Do sends a JSON request (in nil: no body) and decodes the JSON answer
// into out (nil: discarded).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.Request(ctx, method, path, in, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// TokenInfo describes a named API token.
type TokenInfo struct {
	Name    string    `json:"name"`
	Scope   string    `json:"scope"`
	Created time.Time `json:"created"`
}

// NewToken is a token just made, with its secret.
type NewToken struct {
	Name   string `json:"name"`
	Scope  string `json:"scope"`
	Secret string `json:"token"`
}

// Tokens lists the named API tokens (needs the cluster token).
func (c *Client) Tokens(ctx context.Context) ([]TokenInfo, error) {
	var out struct {
		Tokens []TokenInfo `json:"tokens"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/tokens", nil, &out)
	return out.Tokens, err
}

// CreateToken makes a named token of scope read or write.
func (c *Client) CreateToken(ctx context.Context, name, scope string) (NewToken, error) {
	var out NewToken
	err := c.Do(ctx, http.MethodPost, "/api/tokens", map[string]string{"name": name, "scope": scope}, &out)
	return out, err
}

// RotateToken gives a named token a new secret; the old one stops working.
func (c *Client) RotateToken(ctx context.Context, name string) (NewToken, error) {
	var out NewToken
	err := c.Do(ctx, http.MethodPost, "/api/tokens/"+url.PathEscape(name)+"/rotate", nil, &out)
	return out, err
}

// RevokeToken deletes a named token.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/api/tokens/"+url.PathEscape(name), nil, nil)
}
