// Package mcptest holds helpers for tests that drive MCP servers with the
// real npm clients: the official TypeScript SDK's Client (through a small
// node script, testdata/client.mjs, that follows a [Plan]) and the MCP
// Inspector's CLI, and that start the reference npm MCP servers
// (mcp-server-everything, mcp-server-memory).
//
// The npm packages come, at pinned versions ([Versions]), from
// scripts/ensure-mcp-npm.sh, which installs them into one cache directory
// ([Dir]). A test that needs them calls Dir first: when the packages are
// missing it skips, unless RAYGO_REQUIRE_MCP_NPM=1 (scripts/test.sh sets
// it), in which case it fails and names the command to run. Dir does not
// run npm itself: installing needs the npm registry and half a minute,
// which a test should not do behind the caller's back; it only checks the
// installed versions (reading four package.json files).
//
// Every node process a helper starts is bounded by the context given (or
// by [DefaultTimeout] when the context has no deadline), runs in its own
// process group on Unix, and is killed with that group (the MCP servers
// it started included) when the context ends or the helper returns.
//
// A test against a Go MCP server over streamable HTTP:
//
//	func TestTools(t *testing.T) {
//		mcptest.Dir(t) // skips (or fails, in CI) without the npm packages
//		srv := httptest.NewServer(handler)
//		defer srv.Close()
//		res := mcptest.RunClient(t, t.Context(), mcptest.Plan{
//			Transport: mcptest.HTTP(srv.URL, map[string]string{"Authorization": "Bearer " + token}),
//			Steps:     []mcptest.Step{mcptest.ListTools(), mcptest.CallTool("add", map[string]any{"a": 1, "b": 2})},
//		})
//		s := res.Session(t, 0) // fails the test if the session could not connect
//		if got := s.Steps[1].Text(t); got != "3" {
//			t.Errorf("add returned %q", got)
//		}
//	}
//
// And with the Inspector's CLI against an npm server over stdio:
//
//	out, err := mcptest.Inspector(t, ctx, mcptest.Bin(t, "mcp-server-memory"), "--method", "tools/list")
package mcptest
