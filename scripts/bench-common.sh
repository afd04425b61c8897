#!/usr/bin/env bash
# Sourced by the benchmark scripts (bench-mqttio.sh, bench-telemetry.sh):
# checks their arguments, finds the tools they need, manages the temporary
# directory and starts Mosquitto. Not meant to be run on its own. The
# sourcing script sets bench_name, the prefix of its messages.

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

# bench_tmp creates the run's temporary directory, $tmp, and sets the traps
# that, on exit, stop the brokers start_mosquitto started and remove $tmp
# (or keep it when KEEP is 1, which the sourcing script sets).
bench_tmp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/$bench_name.XXXXXX")
	broker_pids=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

bench_cleanup() {
	local pid
	for pid in "${broker_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${broker_pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if ((KEEP)); then
		echo "$bench_name: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}

# log prints its arguments as one progress line on stderr.
log() { echo "$bench_name: $*" >&2; }

# start_mosquitto NAME DESCRIPTION [CONF_LINE...]: starts Mosquitto without
# persistence on a free 127.0.0.1 port (from "$bench" freeport), with the
# extra configuration lines, its config and log in $tmp/NAME.conf and
# $tmp/NAME.log, and sets broker_url. DESCRIPTION goes into the progress
# line. A port another process takes between choosing and binding it makes
# it try again with another one.
start_mosquitto() {
	local name=$1 description=$2 attempt port pid i
	: "${bench:?the sourcing script sets bench, its bench tool}"
	shift 2
	for attempt in 1 2 3; do
		port=$("$bench" freeport)
		{
			echo "listener $port 127.0.0.1"
			echo "allow_anonymous true"
			echo "persistence false"
			printf '%s\n' "$@"
			if ((EUID == 0)); then
				# Otherwise mosquitto drops privileges to user mosquitto.
				echo "user root"
			fi
		} >"$tmp/$name.conf"
		"$mosquitto_bin" -c "$tmp/$name.conf" >"$tmp/$name.log" 2>&1 &
		pid=$!
		broker_pids+=("$pid")
		for ((i = 0; i < 100; i++)); do
			if ! kill -0 "$pid" 2>/dev/null; then
				break
			fi
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				broker_url=tcp://127.0.0.1:$port
				log "broker $name: $broker_url ($description), pid $pid"
				return 0
			fi
			sleep 0.1
		done
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		log "broker $name did not start on port $port (attempt $attempt):"
		tail -n 5 "$tmp/$name.log" >&2 || true
	done
	echo "$bench_name: could not start mosquitto; see above" >&2
	exit 1
}
