package grpcproxy

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // clients may compress their messages; the proxy decompresses them
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// frame is one gRPC message as the proxy forwards it: its bytes, never
// decoded. The codec hands a received message's buffers to the frame
// (one reference, no copy) and a sent frame's buffers to gRPC, which
// frees them once written.
type frame struct {
	data mem.BufferSlice
}

// free drops the frame's buffers when it is not sent after all.
func (f *frame) free() {
	f.data.Free()
	f.data = nil
}

// codec passes frames through unchanged and encodes every other message
// (the proxy's own grpc.health.v1 service) as protobuf. Its name is
// "proto" so that a call that names no content-subtype goes upstream as
// the usual "application/grpc+proto".
type codec struct{}

var protoCodec = encoding.GetCodecV2(proto.Name)

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*frame); ok {
		out := f.data
		f.data = nil // gRPC owns the buffers now
		return out, nil
	}
	if protoCodec == nil {
		return nil, fmt.Errorf("grpcproxy: cannot marshal %T: no protobuf codec registered", v)
	}
	return protoCodec.Marshal(v)
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	if f, ok := v.(*frame); ok {
		data.Ref() // gRPC frees data when Unmarshal returns; the frame keeps its own reference
		f.data = data
		return nil
	}
	if protoCodec == nil {
		return fmt.Errorf("grpcproxy: cannot unmarshal %T: no protobuf codec registered", v)
	}
	return protoCodec.Unmarshal(data, v)
}

func (codec) Name() string { return proto.Name }
