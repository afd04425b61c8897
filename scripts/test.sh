#!/usr/bin/env bash
# Runs every check CI runs: gofmt, go vet and the test suite, against real
# brokers (the embedded one, and Mosquitto, which this script installs when it
# is missing and it may).
set -euo pipefail

usage() {
	echo "usage: scripts/test.sh [go test flags...]" >&2
	echo "  Installs Mosquitto when missing (needs root), then runs gofmt, go vet and go test ./..." >&2
}
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
	usage
	exit 0
fi

cd "$(dirname "$0")/.."

if ! command -v mosquitto >/dev/null 2>&1 && [[ -x /usr/sbin/mosquitto ]]; then
	export PATH="$PATH:/usr/sbin"
fi
if ! command -v mosquitto >/dev/null 2>&1 || ! command -v mosquitto_pub >/dev/null 2>&1; then
	if [[ "$(id -u)" == "0" ]]; then
		echo "installing mosquitto and mosquitto-clients (Debian packages)" >&2
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
		export PATH="$PATH:/usr/sbin"
	else
		echo "mosquitto is not installed: its interop tests will be skipped (sudo apt-get install -y mosquitto mosquitto-clients)" >&2
	fi
fi

unformatted="$(gofmt -l .)"
if [[ -n "$unformatted" ]]; then
	echo "gofmt needed on:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go test -count=1 -timeout 30m "$@" ./...
