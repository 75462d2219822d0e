package cli

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/raygo/raygo/internal/resources"
)

// TestServeGRPCPortFlag: --serve-grpc-port reaches the node daemon's
// config, in the foreground and through a detaching parent's child; it
// is off by default, and without --serve-port or out of range it is a
// usage error naming the flag.
func TestServeGRPCPortFlag(t *testing.T) {
	det := resources.Detected{CPUs: 2, MemoryBytes: 1 << 32}
	for _, tc := range []struct {
		args       []string
		port       int
		wantErrSub string
	}{
		{args: []string{"--head", "--serve-port", "8000"}, port: -1},
		{args: []string{"--head", "--serve-port", "8000", "--serve-grpc-port", "9000"}, port: 9000},
		{args: []string{"--address", "10.0.0.1:6380", "--serve-port", "0", "--serve-grpc-port", "0"}, port: 0},
		{args: []string{"--head", "--serve-grpc-port", "9000"}, wantErrSub: "--serve-grpc-port needs --serve-port"},
		{args: []string{"--head", "--serve-port", "0", "--serve-grpc-port", "65536"}, wantErrSub: "--serve-grpc-port must be in 0..65535"},
		{args: []string{"--head", "--serve-port", "0", "--serve-grpc-port", "-2"}, wantErrSub: "--serve-grpc-port must be in 0..65535"},
	} {
		o := &startOptions{}
		fs := pflag.NewFlagSet("start", pflag.ContinueOnError)
		o.addFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("parse %q: %v", tc.args, err)
		}
		err := o.validate(fs)
		if tc.wantErrSub != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErrSub) {
				t.Errorf("%q: validate = %v, want %q", tc.args, err, tc.wantErrSub)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		plan, err := planNode(o, func(n string) bool { return changed(fs, n) }, func() resources.Detected { return det })
		if err != nil {
			t.Fatal(err)
		}
		if rc := rayletConfig(o, plan, "/tmp/s"); rc.ServeGRPCPort != tc.port {
			t.Errorf("%q: node config gRPC port %d, want %d", tc.args, rc.ServeGRPCPort, tc.port)
		}
		co := &startOptions{}
		cfs := pflag.NewFlagSet("start", pflag.ContinueOnError)
		co.addFlags(cfs)
		if err := cfs.Parse(childArgs(o, plan, "/tmp/s")[1:]); err != nil {
			t.Fatal(err)
		}
		if co.serveGRPCPort != tc.port {
			t.Errorf("%q: child got --serve-grpc-port %d, want %d", tc.args, co.serveGRPCPort, tc.port)
		}
	}
}
