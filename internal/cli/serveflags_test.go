package cli

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
)

// TestServeFlags: --serve-port and --serve-host reach the node daemon's
// config, in the foreground and through a detaching parent's child, on
// heads and joining nodes; bad values are usage errors naming the flag.
func TestServeFlags(t *testing.T) {
	det := resources.Detected{CPUs: 2, MemoryBytes: 1 << 32}
	for _, tc := range []struct {
		args       []string
		port       int
		host       string
		wantErrSub string
	}{
		{args: []string{"--head"}, port: -1, host: raylet.DefaultServeHost},
		{args: []string{"--head", "--serve-port", "8000"}, port: 8000, host: raylet.DefaultServeHost},
		{args: []string{"--address", "10.0.0.1:6380", "--serve-port", "0", "--serve-host", "0.0.0.0"}, port: 0, host: "0.0.0.0"},
		{args: []string{"--head", "--serve-port", "70000"}, wantErrSub: "--serve-port must be in 0..65535"},
		{args: []string{"--head", "--serve-port", "-2"}, wantErrSub: "--serve-port must be in 0..65535"},
		{args: []string{"--head", "--serve-host", ""}, wantErrSub: "--serve-host must not be empty"},
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
		if rc := rayletConfig(o, plan, "/tmp/s"); rc.ServePort != tc.port || rc.ServeHost != tc.host {
			t.Errorf("%q: node config serve %s port %d, want %s port %d", tc.args, rc.ServeHost, rc.ServePort, tc.host, tc.port)
		}
		co := &startOptions{}
		cfs := pflag.NewFlagSet("start", pflag.ContinueOnError)
		co.addFlags(cfs)
		if err := cfs.Parse(childArgs(o, plan, "/tmp/s")[1:]); err != nil {
			t.Fatal(err)
		}
		if co.servePort != tc.port || co.serveHost != tc.host {
			t.Errorf("%q: child got --serve-port %d --serve-host %s, want %d %s", tc.args, co.servePort, co.serveHost, tc.port, tc.host)
		}
	}
}
