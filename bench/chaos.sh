#!/usr/bin/env bash
# bench/chaos.sh: the chaos run. A head keeping its state in storage and
# four nodes, each on a simulated host (network namespaces), and a driver
# on a host of its own running chains of dependent tasks with 2 MiB
# intermediate objects, an actor that restarts, tasks in a placement group
# and calls to a detached named actor, while a killer kills (SIGKILL) or
# partitions (6 s) a random node every 4-8 s and starts it again, and
# once kills the head and starts it again on the same address and
# storage. At the end it checks every result and that every CPU is free
# again within 10 s, and prints what it injected and what the workload
# saw.
#
#   sudo bench/chaos.sh [--seconds N]     (default 600; needs root and `ip`)
set -euo pipefail
seconds=600
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=$2; shift 2 ;;
	-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "chaos.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
cd "$(dirname "$0")/.."
RAYGO_CHAOS=1 RAYGO_CHAOS_SECONDS=$seconds \
	go test -count=1 -timeout $((seconds + 600))s -run '^TestChaos$' -v ./internal/endtoend/
