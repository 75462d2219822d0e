package routes

import "errors"

var (
	// ErrClosed is returned by Table.Set after Close, and by Table.Get to
	// callers waiting when the table closes or calling after.
	ErrClosed = errors.New("routes: table closed")

	// ErrInvalid is wrapped by every error that rejects a routing table
	// (Set) or a wire value (FromWire, Fetch): the message names the
	// route, the field and the value.
	ErrInvalid = errors.New("routes: invalid routing table")
)
