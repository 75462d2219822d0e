package mcptest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Versions are the npm packages scripts/ensure-mcp-npm.sh installs, with
// the exact version of each; [Dir] checks that these are the ones
// installed. Keep the two in step (a test of this package compares them).
var Versions = map[string]string{
	"@modelcontextprotocol/sdk":               "1.32.2",
	"@modelcontextprotocol/inspector":         "2.12.0",
	"@modelcontextprotocol/server-memory":     "2026.8.31",
	"@modelcontextprotocol/server-everything": "2026.8.31",
}

// Environment variables that Dir reads.
const (
	// EnvDir overrides the directory the packages are installed in (the
	// same variable scripts/ensure-mcp-npm.sh reads).
	EnvDir = "RAYGO_MCP_NPM_DIR"
	// EnvRequire, set to 1, turns Dir's skip into a failure.
	EnvRequire = "RAYGO_REQUIRE_MCP_NPM"
)

// EnsureCommand is the command that installs the packages.
const EnsureCommand = "scripts/ensure-mcp-npm.sh"

// DefaultDir returns the directory scripts/ensure-mcp-npm.sh installs
// into: $RAYGO_MCP_NPM_DIR, or else ${XDG_CACHE_HOME:-$HOME/.cache}/raygo/mcp-npm
// (the same on every platform, as the script computes it).
func DefaultDir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return filepath.Abs(d)
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("mcptest: neither %s nor XDG_CACHE_HOME is set and there is no home directory: %w", EnvDir, err)
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "raygo", "mcp-npm"), nil
}

var (
	checkOnce sync.Once
	checkDir  string
	checkErr  error
)

// check finds the npm directory and node, and compares the installed
// versions with Versions; once per process, since neither changes while
// tests run.
func check() (string, error) {
	checkOnce.Do(func() {
		checkDir, checkErr = DefaultDir()
		if checkErr != nil {
			return
		}
		if _, err := exec.LookPath("node"); err != nil {
			checkErr = fmt.Errorf("mcptest: node is not on PATH: %w", err)
			return
		}
		names := make([]string, 0, len(Versions))
		for name := range Versions {
			names = append(names, name)
		}
		sort.Strings(names)
		var problems []string
		for _, name := range names {
			want := Versions[name]
			b, err := os.ReadFile(filepath.Join(checkDir, "node_modules", filepath.FromSlash(name), "package.json"))
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s is not installed", name))
				continue
			}
			var pkg struct {
				Version string `json:"version"`
			}
			if err := json.Unmarshal(b, &pkg); err != nil {
				problems = append(problems, fmt.Sprintf("%s: unreadable package.json: %v", name, err))
				continue
			}
			if pkg.Version != want {
				problems = append(problems, fmt.Sprintf("%s is %s, not %s", name, pkg.Version, want))
			}
		}
		if len(problems) > 0 {
			checkErr = fmt.Errorf("mcptest: npm packages in %s: %s", checkDir, strings.Join(problems, "; "))
		}
	})
	return checkDir, checkErr
}

// Dir returns the directory holding the pinned npm packages (its
// node_modules). When node or the packages are missing, or a version
// differs from Versions, it skips the test, or fails it when
// RAYGO_REQUIRE_MCP_NPM=1, naming scripts/ensure-mcp-npm.sh. It never
// installs anything itself. Safe for concurrent use.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := check()
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%v (%s=1; run %s)", err, EnvRequire, EnsureCommand)
		}
		t.Skipf("%v (run %s to install them)", err, EnsureCommand)
	}
	return dir
}

// Bin returns the path of an installed npm executable, such as
// "mcp-server-everything", "mcp-server-memory" or "mcp-inspector", in
// Dir's node_modules/.bin. It calls Dir (so it skips or fails the same way)
// and fails the test when no such executable is installed.
func Bin(t testing.TB, name string) string {
	t.Helper()
	dir := Dir(t)
	p := filepath.Join(dir, "node_modules", ".bin", name)
	if _, err := os.Stat(p); err != nil {
		entries, _ := os.ReadDir(filepath.Join(dir, "node_modules", ".bin"))
		var have []string
		for _, e := range entries {
			have = append(have, e.Name())
		}
		t.Fatalf("mcptest: no npm executable %q in %s/node_modules/.bin (have: %s)", name, dir, strings.Join(have, ", "))
	}
	return p
}
