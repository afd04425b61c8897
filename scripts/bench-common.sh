#!/usr/bin/env bash
# Sourced by the benchmark scripts (bench-mqttio.sh, bench-telemetry.sh):
# checks their arguments and finds the tools they need. Not meant to be run
# on its own. The sourcing script sets bench_name, the prefix of its messages.

: "${bench_name:?the sourcing script sets bench_name}"

# check_int NAME VALUE MIN [MAX] exits with status 2 unless VALUE is an
# integer of at least MIN (and at most MAX, when given).
check_int() {
	if [[ $# -ge 4 ]]; then
		if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 < $3 || $2 > $4)); then
			echo "$bench_name: $1 must be an integer from $3 to $4, got '$2'" >&2
			exit 2
		fi
	elif ! [[ $2 =~ ^[0-9]+$ ]] || (($2 < $3)); then
		echo "$bench_name: $1 must be an integer >= $3, got '$2'" >&2
		exit 2
	fi
}

# find_bench_tools sets mosquitto_bin to the mosquitto binary (Debian
# installs it in /usr/sbin, not on every user's PATH) and checks that go is
# on PATH, exiting with status 1 when either is missing.
find_bench_tools() {
	local name=$bench_name
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
