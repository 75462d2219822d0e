#!/usr/bin/env bash
# bench/run.sh: raygo's microbenchmarks and its Go peers side by side, in
# one run, on this machine.
#
#   bench/run.sh [--duration 3s] [--filter REGEX] [--peers-filter REGEX] [--out DIR]
#
# It installs redis-server if it is missing (Debian's package, for asynq),
# starts one on a free 127.0.0.1 port (no persistence) and stops it on exit,
# builds raygo from the parent module and the peers and compare programs
# from this one, runs `raygo microbenchmark` and `peers`, and prints
# raygo / peer for each comparison. Results (raygo.json, peers.json,
# compare.txt, compare.md) go to --out (default: a new temporary
# directory, kept and named at the end).
#
# --filter is passed to `raygo microbenchmark --filter`; --peers-filter to
# `peers --filter`. A peer that cannot run (no Redis, say) is reported and
# the others still run; the script then exits non-zero.
set -uo pipefail

duration=3s
filter=
peers_filter=
out=
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) duration=$2; shift 2 ;;
	--duration=*) duration=${1#*=}; shift ;;
	--filter) filter=$2; shift 2 ;;
	--filter=*) filter=${1#*=}; shift ;;
	--peers-filter) peers_filter=$2; shift 2 ;;
	--peers-filter=*) peers_filter=${1#*=}; shift ;;
	--out) out=$2; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	-h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
tmp=$(mktemp -d)
[ -n "$out" ] || out=$(mktemp -d -t raygo-bench.XXXXXX)
mkdir -p "$out"
out=$(cd "$out" && pwd)

redis_pid=
cleanup() {
	if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
		kill "$redis_pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$redis_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n==> %s\n' "$*" >&2; }

# --- build --------------------------------------------------------------
# The raygo measured is the parent module's working tree as it is now.
rev=$(git -C "$root" log -1 --format='%h %s' 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- . ':(exclude)bench' ':(exclude)BENCHMARKS.md' 2>/dev/null || rev="$rev (plus uncommitted changes)"
step "building raygo (parent module) and peers, compare (bench module)"
(cd "$root" && go build -o "$tmp/raygo" ./cmd/raygo) || { echo "run.sh: building raygo failed" >&2; exit 1; }
(cd "$here" && go build -o "$tmp/peers" ./cmd/peers && go build -o "$tmp/compare" ./cmd/compare) ||
	{ echo "run.sh: building the peers failed" >&2; exit 1; }

# --- Redis, for asynq -----------------------------------------------------
install_redis() {
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get install -y redis-server >"$tmp/apt.log" 2>&1 && return 0
	# The package lists may be missing or stale: update them once, retry.
	$sudo apt-get update >>"$tmp/apt.log" 2>&1
	$sudo apt-get install -y redis-server >>"$tmp/apt.log" 2>&1
}
redis_addr=
if ! command -v redis-server >/dev/null 2>&1; then
	step "installing redis-server (apt-get install -y redis-server)"
	install_redis || { echo "run.sh: could not install redis-server; the asynq rows will fail:" >&2; tail -5 "$tmp/apt.log" >&2; }
fi
if command -v redis-server >/dev/null 2>&1; then
	port=$("$tmp/peers" freeport)
	step "starting redis-server on 127.0.0.1:$port"
	if redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
		--pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log" --dir "$tmp"; then
		for _ in $(seq 100); do
			[ -s "$tmp/redis.pid" ] && redis_pid=$(cat "$tmp/redis.pid")
			if [ -n "$redis_pid" ] && { ! command -v redis-cli >/dev/null 2>&1 || redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; }; then
				redis_addr=127.0.0.1:$port
				break
			fi
			sleep 0.1
		done
	fi
	[ -n "$redis_addr" ] || { echo "run.sh: redis-server did not come up; the asynq rows will fail" >&2; cat "$tmp/redis.log" >&2 2>/dev/null; }
fi

# --- run ------------------------------------------------------------------
rc=0
step "raygo microbenchmark --duration $duration${filter:+ --filter $filter}"
"$tmp/raygo" microbenchmark --duration "$duration" ${filter:+--filter "$filter"} --json "$out/raygo.json" >"$out/raygo.txt" || rc=1
cat "$out/raygo.txt"

step "peers --duration $duration${peers_filter:+ --filter $peers_filter}"
"$tmp/peers" --duration "$duration" ${peers_filter:+--filter "$peers_filter"} --redis "$redis_addr" --json "$out/peers.json" >"$out/peers.txt" || rc=1
cat "$out/peers.txt"

step "raygo / peer"
if [ -s "$out/raygo.json" ] && [ -s "$out/peers.json" ]; then
	"$tmp/compare" --raygo "$out/raygo.json" --peers "$out/peers.json" >"$out/compare.txt"
	cat "$out/compare.txt"
	"$tmp/compare" --raygo "$out/raygo.json" --peers "$out/peers.json" --markdown >"$out/compare.md"
else
	echo "run.sh: a JSON file is missing; no comparison" >&2
	rc=1
fi
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
	echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "go: $(go version)"
	echo "raygo: $rev"
	echo "redis: $(redis-server --version 2>/dev/null | head -1)"
} >"$out/machine.txt"
echo >&2
cat "$out/machine.txt" >&2
echo "results in $out" >&2
exit $rc
