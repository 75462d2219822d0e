package gcs

import (
	"context"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// clusterInfo is what GetClusterInfo answers: set by the head once its
// HTTP API serves (SetClusterInfo).
type clusterInfo struct {
	mu         sync.Mutex
	apiAddress string
	version    string
	headNode   ids.ID
	started    time.Time
}

// SetClusterInfo records the head's HTTP API address, raygo's version and
// the head's node, for GetClusterInfo.
func (s *Server) SetClusterInfo(apiAddress, version string, headNode ids.ID) {
	s.info.mu.Lock()
	defer s.info.mu.Unlock()
	s.info.apiAddress, s.info.version, s.info.headNode = apiAddress, version, headNode
}

// GetClusterInfo tells a client where the head's HTTP API is.
func (s *Server) GetClusterInfo(context.Context, *pb.GetClusterInfoRequest) (*pb.GetClusterInfoReply, error) {
	s.info.mu.Lock()
	defer s.info.mu.Unlock()
	return &pb.GetClusterInfoReply{ApiAddress: s.info.apiAddress, Version: s.info.version,
		StartUnixMs: s.info.started.UnixMilli(), HeadNodeId: s.info.headNode.Bytes()}, nil
}

// KV adapts the control store's key-value store, in namespace ns, for
// in-process users on the head (the HTTP API's token table). Writes are
// durable when the control store has persistent storage.
func (s *Server) KV(ns string) *KVNamespace { return &KVNamespace{s: s, ns: ns} }

// KVNamespace is one namespace of the control store's key-value store.
type KVNamespace struct {
	s  *Server
	ns string
}

// Get reads key.
func (k *KVNamespace) Get(ctx context.Context, key string) ([]byte, bool, error) {
	r, err := k.s.KVGet(ctx, &pb.KVGetRequest{Ns: k.ns, Key: key})
	if err != nil {
		return nil, false, err
	}
	return r.GetValue(), r.GetFound(), nil
}

// Put writes key, replacing what was there.
func (k *KVNamespace) Put(ctx context.Context, key string, value []byte) error {
	_, err := k.s.KVPut(ctx, &pb.KVPutRequest{Ns: k.ns, Key: key, Value: value, Overwrite: true})
	return err
}
