#!/usr/bin/env bash
# ensure-mcp-npm.sh installs the npm packages that the MCP tests drive
# (internal/mcptest and the tests that use it): the official TypeScript
# MCP SDK's client, the MCP Inspector's CLI and two reference MCP servers,
# at pinned versions, into one cache directory, and prints that directory.
#
#   @modelcontextprotocol/sdk                1.32.2
#   @modelcontextprotocol/inspector          2.12.0
#   @modelcontextprotocol/server-memory      2026.8.31
#   @modelcontextprotocol/server-everything  2026.8.31
#
# The directory is $RAYGO_MCP_NPM_DIR, or else
# ${XDG_CACHE_HOME:-$HOME/.cache}/raygo/mcp-npm. It holds a package.json
# naming exactly these versions, its package-lock.json and node_modules.
# The script is idempotent and fast when nothing changed: it runs npm only
# when an installed version differs from the pinned one (or is missing).
# It needs node and npm (Node 20 or later); when they are missing it
# installs Debian's nodejs and npm with apt-get (root or sudo), and
# elsewhere says what to install and fails. npm must reach its registry.
set -euo pipefail

DIR=${RAYGO_MCP_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/raygo/mcp-npm}

# name@version pairs; keep in step with internal/mcptest (Versions).
PKGS=(
	"@modelcontextprotocol/sdk@1.32.2"
	"@modelcontextprotocol/inspector@2.12.0"
	"@modelcontextprotocol/server-memory@2026.8.31"
	"@modelcontextprotocol/server-everything@2026.8.31"
)

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "ensure-mcp-npm: node and npm are not on PATH and there is no apt-get: install Node.js 20 or later (with npm) by hand" >&2
		exit 1
	fi
	SUDO=""
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			SUDO="sudo"
		else
			echo "ensure-mcp-npm: installing nodejs and npm needs root (or sudo)" >&2
			exit 1
		fi
	fi
	export DEBIAN_FRONTEND=noninteractive
	APT_OPTS=(-o DPkg::Lock::Timeout=600)
	$SUDO apt-get "${APT_OPTS[@]}" update -qq
	$SUDO apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends nodejs npm >/dev/null
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		echo "ensure-mcp-npm: apt-get installed nodejs and npm but node or npm is still not on PATH" >&2
		exit 1
	fi
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
	echo "ensure-mcp-npm: node $(node --version) is too old: the pinned packages need Node.js 20 or later" >&2
	exit 1
fi

# One node process checks every pinned version against what is installed
# and, when one differs, writes the package.json npm installs from.
mkdir -p "$DIR"
if node - "$DIR" "${PKGS[@]}" <<'JS'; then
const fs = require("fs"), path = require("path");
const [dir, ...pkgs] = process.argv.slice(2);
const deps = {};
let same = true;
for (const p of pkgs) {
  const at = p.lastIndexOf("@");
  const name = p.slice(0, at), version = p.slice(at + 1);
  deps[name] = version;
  try {
    const got = JSON.parse(fs.readFileSync(path.join(dir, "node_modules", name, "package.json"), "utf8")).version;
    if (got !== version) same = false;
  } catch { same = false; }
}
const manifest = { name: "raygo-mcp-npm", private: true, description: "Pinned npm packages for raygo's MCP tests (scripts/ensure-mcp-npm.sh)", dependencies: deps };
const file = path.join(dir, "package.json");
const want = JSON.stringify(manifest, null, 2) + "\n";
let had = "";
try { had = fs.readFileSync(file, "utf8"); } catch {}
if (had !== want) { fs.writeFileSync(file, want); same = false; }
process.exit(same ? 0 : 3);
JS
	echo "ensure-mcp-npm: $DIR is up to date"
	exit 0
else
	rc=$?
	if [ "$rc" != 3 ]; then
		echo "ensure-mcp-npm: checking the installed versions in $DIR failed (node exited $rc)" >&2
		exit 1
	fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --no-audit/--no-fund: no extra registry calls; the inspector's engine
# warnings (it asks for a newer Node than 20 for parts the CLI does not use)
# are expected and go to the log only.
if ! (cd "$DIR" && npm install --no-audit --no-fund --loglevel=error --engine-strict=false) >"$log" 2>&1; then
	cat "$log" >&2
	echo "ensure-mcp-npm: npm install in $DIR failed (does npm reach its registry?)" >&2
	exit 1
fi
echo "ensure-mcp-npm: installed ${PKGS[*]} into $DIR"
