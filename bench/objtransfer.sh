#!/usr/bin/env bash
# bench/objtransfer.sh: object transfer between simulated hosts (network
# namespaces) against raw TCP streams between the same hosts, in one run.
#
#   sudo bench/objtransfer.sh [--bytes N] [--reps N] [--nodes N]
#
# A head and --nodes nodes (default 4), each a real process in a network
# namespace of its own (internal/testcluster), with pre-faulted stores. A
# Go peer serves raw TCP streams on the head's host; a client on another
# host reads one stream (or one per node at once) into memory it touched
# before. Then a driver on the head's host puts objects of --bytes
# (default 1 GiB) and asks one node's daemon to pull each (pull), and
# every node's at once (broadcast). Figures are medians of --reps runs
# (default 3) after a warm-up. Needs root and `ip` (Linux); built
# without the race detector.
set -euo pipefail
bytes=$((1 << 30))
reps=3
nodes=4
while [ $# -gt 0 ]; do
	case "$1" in
	--bytes) bytes=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--nodes) nodes=$2; shift 2 ;;
	-h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "objtransfer.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
cd "$(dirname "$0")/.."
RAYGO_BENCH_TRANSFER=1 RAYGO_BENCH_BYTES=$bytes RAYGO_BENCH_REPS=$reps RAYGO_BENCH_NODES=$nodes \
	go test -count=1 -timeout 20m -run '^TestTransferThroughput$' -v ./internal/endtoend/
