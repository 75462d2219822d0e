#!/usr/bin/env bash
# ensure-prometheus.sh installs Debian's prometheus server for the metrics
# test that scrapes a real cluster (internal/metrics: TestRealPrometheus)
# when no prometheus binary is on PATH, and prints where it is. It is
# idempotent: with the binary present it only prints its path. Needs root
# (or sudo) and apt-get; elsewhere it says what to install and fails.
# Only the binary is used: the package's own service is not started here
# (in a container without systemd there is none to start).
set -euo pipefail

if command -v prometheus >/dev/null 2>&1; then
	echo "ensure-prometheus: $(command -v prometheus) is present"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-prometheus: no prometheus on PATH and no apt-get: install Prometheus (2.x or later) by hand" >&2
	exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "ensure-prometheus: installing prometheus needs root (or sudo)" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
# Other installs may hold dpkg's lock for a while (several scripts run at once in CI).
APT_OPTS=(-o DPkg::Lock::Timeout=600)
$SUDO apt-get "${APT_OPTS[@]}" update -qq
# policy-rc.d 101 keeps the package's postinst from starting a service.
POLICY=/usr/sbin/policy-rc.d
CREATED_POLICY=0
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
	$SUDO chmod +x "$POLICY"
	CREATED_POLICY=1
fi
status=0
$SUDO apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends prometheus >/dev/null || status=$?
if [ "$CREATED_POLICY" = 1 ]; then
	$SUDO rm -f "$POLICY"
fi
if [ "$status" != 0 ]; then
	echo "ensure-prometheus: apt-get install prometheus failed ($status)" >&2
	exit "$status"
fi
echo "ensure-prometheus: installed $(command -v prometheus)"
