#!/usr/bin/env bash
# bench/multidriver.sh: tasks per second from several drivers across as
# many nodes, each pair on a simulated host of its own (network
# namespaces, internal/testcluster), all submitting at once.
#
#   sudo bench/multidriver.sh [--drivers N] [--cpus N] [--seconds N] [--batch N]
#
# A head and --drivers - 1 nodes (default 4 in all) with --cpus CPUs each
# (default 2), and a driver on each host that submits batches of --batch
# trivial tasks (default 1000) and gets them, for --seconds (default 5)
# after a warm-up. Prints the aggregate rate, each driver's, and how busy
# the machine's CPUs were. Needs root and `ip` (Linux); built without the
# race detector.
set -euo pipefail
drivers=4
cpus=2
seconds=5
batch=1000
while [ $# -gt 0 ]; do
	case "$1" in
	--drivers) drivers=$2; shift 2 ;;
	--cpus) cpus=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--batch) batch=$2; shift 2 ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "multidriver.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
cd "$(dirname "$0")/.."
RAYGO_BENCH_TASKS=1 RAYGO_BENCH_DRIVERS=$drivers RAYGO_BENCH_CPUS=$cpus RAYGO_BENCH_SECONDS=$seconds RAYGO_BENCH_BATCH=$batch \
	go test -count=1 -timeout 10m -run '^TestMultiDriverTaskThroughput$' -v ./internal/endtoend/
