package proxy

import "errors"

var (
	// ErrInvalid is wrapped by every error that rejects an Options or
	// Route value; the message names the route, the field and the value.
	ErrInvalid = errors.New("proxy: invalid argument")

	// ErrClosed is returned by SetRoutes after Close.
	ErrClosed = errors.New("proxy: closed")
)
