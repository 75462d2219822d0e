#!/usr/bin/env bash
# ensure-chromium.sh installs Debian's chromium for the dashboard's browser
# tests (internal/dashboard) when no Chromium or Chrome is on PATH. It is
# idempotent: with a browser present it does nothing. Needs root (or sudo)
# and apt-get; elsewhere it says what to install and fails.
set -euo pipefail

for b in chromium chromium-browser google-chrome google-chrome-stable headless-shell; do
	if command -v "$b" >/dev/null 2>&1; then
		echo "ensure-chromium: $(command -v "$b") is present"
		exit 0
	fi
done

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-chromium: no chromium on PATH and no apt-get: install Chromium or Chrome by hand" >&2
	exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "ensure-chromium: installing chromium needs root (or sudo)" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "ensure-chromium: installed $(command -v chromium)"
