#!/usr/bin/env bash
# Sourced by the benchmark scripts (bench-mqttio.sh, bench-telemetry.sh):
# finds the tools they need. Not meant to be run on its own.

# find_bench_tools NAME sets mosquitto_bin to the mosquitto binary (Debian
# installs it in /usr/sbin, not on every user's PATH) and checks that go is
# on PATH, exiting with a message prefixed with NAME when either is missing.
find_bench_tools() {
	local name=$1
	mosquitto_bin=$(command -v mosquitto || true)
	if [[ -z $mosquitto_bin && -x /usr/sbin/mosquitto ]]; then
		mosquitto_bin=/usr/sbin/mosquitto
	fi
	if [[ -z $mosquitto_bin ]]; then
		echo "$name: mosquitto not found; install it with: apt-get install -y mosquitto mosquitto-clients" >&2
		exit 1
	fi
	if ! command -v go >/dev/null; then
		echo "$name: go not found on PATH" >&2
		exit 1
	fi
	export mosquitto_bin
}
