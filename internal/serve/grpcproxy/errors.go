package grpcproxy

import "errors"

var (
	// ErrInvalid is wrapped by every error that rejects an Options value
	// or a routing table; the message names the route, field and value.
	ErrInvalid = errors.New("grpcproxy: invalid argument")

	// ErrClosed is returned by SetRoutes after Close.
	ErrClosed = errors.New("grpcproxy: closed")

	// errRouteGone and errReroutes end a call whose application left
	// the table, or whose routing was redone too often, while it waited.
	errRouteGone = errors.New("grpcproxy: application removed while the request waited")
	errReroutes  = errors.New("grpcproxy: routing table changed too often while the request waited")
)
