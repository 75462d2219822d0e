package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The echo service is declared by hand (no generated code): its messages
// are protobuf's well-known BytesValue, so gRPC's default proto codec
// serves it as it would any generated service.
const (
	echoService = "raygo.bench.Echo"
	unaryMethod = "/" + echoService + "/Unary"
	streamName  = "/" + echoService + "/Stream"
)

var okBytes = []byte("ok")

var echoDesc = grpc.ServiceDesc{
	ServiceName: echoService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.BytesValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return wrapperspb.Bytes(okBytes), nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		ClientStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			in := new(wrapperspb.BytesValue)
			out := wrapperspb.Bytes(okBytes)
			for {
				if err := stream.RecvMsg(in); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				if err := stream.SendMsg(out); err != nil {
					return err
				}
			}
		},
	}},
}

// serveGRPC is the child process: a grpc-go server with default settings
// on a free 127.0.0.1 port.
func serveGRPC() error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	s.RegisterService(&echoDesc, struct{}{})
	go func() { _ = s.Serve(lis) }()
	serveUntilStdinCloses(lis.Addr().String())
	s.Stop()
	return nil
}

// dialGRPCChild starts the server process and connects to it.
func dialGRPCChild(ctx context.Context) (*child, *grpc.ClientConn, error) {
	c, err := startChild(ctx, "serve-grpc")
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.stop()
		return nil, nil, err
	}
	return c, conn, nil
}

func checkOK(v *wrapperspb.BytesValue) error {
	if !bytes.Equal(v.GetValue(), okBytes) {
		return fmt.Errorf("reply %q, want %q", v.GetValue(), okBytes)
	}
	return nil
}

// grpcUnary: one unary call at a time; calls per second.
func grpcUnary(ctx context.Context, o options) (float64, error) {
	c, conn, err := dialGRPCChild(ctx)
	if err != nil {
		return 0, err
	}
	defer c.stop()
	defer conn.Close()
	req := wrapperspb.Bytes(okBytes)
	return measure(ctx, o.duration, 1, func(ctx context.Context) error {
		resp := new(wrapperspb.BytesValue)
		if err := conn.Invoke(ctx, unaryMethod, req, resp); err != nil {
			return err
		}
		return checkOK(resp)
	})
}

// grpcStream: one message and its reply at a time on one bidirectional
// stream; round trips per second.
func grpcStream(ctx context.Context, o options) (float64, error) {
	c, conn, err := dialGRPCChild(ctx)
	if err != nil {
		return 0, err
	}
	defer c.stop()
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := conn.NewStream(sctx, &echoDesc.Streams[0], streamName)
	if err != nil {
		return 0, err
	}
	req := wrapperspb.Bytes(okBytes)
	resp := new(wrapperspb.BytesValue)
	v, err := measure(ctx, o.duration, 1, func(context.Context) error {
		if err := stream.SendMsg(req); err != nil {
			return err
		}
		if err := stream.RecvMsg(resp); err != nil {
			return err
		}
		return checkOK(resp)
	})
	_ = stream.CloseSend()
	return v, err
}
