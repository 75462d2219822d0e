// Package tokenauth proves, in both directions, that the two ends of a
// fresh connection hold the same cluster token, before either reads a
// message from the other. Every raygo connection starts with it: gRPC over
// TCP and over unix sockets (internal/rpc), and the framed sockets
// (internal/framed).
//
// The token itself never crosses the wire. The exchange is a challenge and
// response with HMAC-SHA256 keyed by the token, of fixed sizes:
//
//	client → server  magic (8 bytes) | client nonce (32)
//	server → client  server nonce (32) | HMAC(token, "raygo server" | cn | sn)
//	client → server  HMAC(token, "raygo client" | cn | sn)
//
// The client checks the server's proof before it sends its own, so a
// process that squats on an endpoint's address learns nothing it could
// replay, and a client that reaches another cluster's endpoint gets a
// clear error instead of talking to it. The server reads exactly 72 bytes
// from an unauthenticated peer, within Timeout, and answers every failure
// the same way: it closes the connection without a word.
//
// The server's proof comes first, so a peer that sends the magic can test
// guesses of the token offline: tokens must be high-entropy (the ones
// raygo makes are 256 random bits).
package tokenauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Magic opens every raygo connection (version 1 of the exchange).
var Magic = [8]byte{'r', 'a', 'y', 'g', 'o', 'a', 'u', '1'}

const (
	nonceSize = 32
	macSize   = sha256.Size
	// ServerReads is everything a server reads from a peer before it is
	// authenticated.
	ServerReads = len(Magic) + nonceSize + macSize
)

// Timeout bounds the whole exchange on either side.
const Timeout = 5 * time.Second

// ErrBadPeer means the peer did not prove that it holds the token: a wrong
// token on one side, or an endpoint of another cluster (or not raygo).
var ErrBadPeer = errors.New("tokenauth: the peer does not hold this cluster's token")

// Client runs the client's side on a fresh connection, within Timeout or
// ctx's deadline, whichever comes first (cancelling ctx stops it). It
// returns nil once the server has proved it holds token and the client's
// proof is sent; errors wrap ErrBadPeer when the server's proof is wrong,
// or the I/O error (the connection closed, the deadline passed).
func Client(ctx context.Context, c net.Conn, token string) error {
	deadline := time.Now().Add(Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		_ = c.SetDeadline(time.Time{})
	}()
	var hello [len(Magic) + nonceSize]byte
	copy(hello[:], Magic[:])
	cn := hello[len(Magic):]
	if _, err := rand.Read(cn); err != nil {
		return fmt.Errorf("tokenauth: %w", err)
	}
	if _, err := c.Write(hello[:]); err != nil {
		return fmt.Errorf("tokenauth: send challenge: %w", err)
	}
	var answer [nonceSize + macSize]byte
	if _, err := io.ReadFull(c, answer[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: it closed the connection during the token exchange (not a raygo endpoint of this version?)", ErrBadPeer)
		}
		return fmt.Errorf("tokenauth: read the server's proof: %w", err)
	}
	sn := answer[:nonceSize]
	if !hmac.Equal(answer[nonceSize:], mac(token, "raygo server", cn, sn)) {
		return ErrBadPeer
	}
	if _, err := c.Write(mac(token, "raygo client", cn, sn)); err != nil {
		return fmt.Errorf("tokenauth: send proof: %w", err)
	}
	return nil
}

// Server runs the server's side on a freshly accepted connection: it reads
// at most ServerReads bytes and returns nil once the client has proved it
// holds token. On any error the caller closes the connection and says
// nothing to the peer.
func Server(c net.Conn, token string) error {
	_ = c.SetDeadline(time.Now().Add(Timeout))
	defer c.SetDeadline(time.Time{})
	var hello [len(Magic) + nonceSize]byte
	// The magic first: a peer that speaks something else (a plain gRPC
	// client sends its preface and waits) is refused at once.
	if _, err := io.ReadFull(c, hello[:len(Magic)]); err != nil {
		return fmt.Errorf("tokenauth: read challenge: %w", err)
	}
	if [len(Magic)]byte(hello[:len(Magic)]) != Magic {
		return fmt.Errorf("%w: no raygo handshake", ErrBadPeer)
	}
	if _, err := io.ReadFull(c, hello[len(Magic):]); err != nil {
		return fmt.Errorf("tokenauth: read challenge: %w", err)
	}
	cn := hello[len(Magic):]
	var answer [nonceSize + macSize]byte
	sn := answer[:nonceSize]
	if _, err := rand.Read(sn); err != nil {
		return fmt.Errorf("tokenauth: %w", err)
	}
	copy(answer[nonceSize:], mac(token, "raygo server", cn, sn))
	if _, err := c.Write(answer[:]); err != nil {
		return fmt.Errorf("tokenauth: send proof: %w", err)
	}
	var proof [macSize]byte
	if _, err := io.ReadFull(c, proof[:]); err != nil {
		return fmt.Errorf("tokenauth: read the client's proof: %w", err)
	}
	if !hmac.Equal(proof[:], mac(token, "raygo client", cn, sn)) {
		return ErrBadPeer
	}
	return nil
}

func mac(token, label string, cn, sn []byte) []byte {
	h := hmac.New(sha256.New, []byte(token))
	h.Write([]byte(label))
	h.Write(cn)
	h.Write(sn)
	return h.Sum(nil)
}
