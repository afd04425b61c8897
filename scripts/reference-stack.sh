#!/usr/bin/env bash
# reference-stack.sh: the reference architecture on loopback, from Debian
# packages (installed when missing, see install-brokers.sh): a three-node
# RabbitMQ cluster (MQTT plugin), HAProxy in front of it (TLS terminated,
# each MQTT client id stuck to a node), and a Mosquitto edge broker bridged
# to the cluster through HAProxy over TLS, with simulated devices behind it
# and the telemetry job reading through the balancer; its commands go back
# through the cluster and the edge broker to the devices. It prints what
# runs where and the pipelines' flags, and runs until Ctrl-C, which stops
# everything and removes its files.
#
# --check publishes a known set of QoS 1 messages through the edge broker,
# kills (SIGKILL) the cluster node holding the reader's queue mid-stream,
# brings it back and ends with the line
#   reference_stack: published=N received=M lost=K duplicates=D commands_delivered=C
# exiting 1 if anything was lost. The logic lives in internal/refstack.
set -euo pipefail

usage() {
	cat >&2 <<'USAGE'
usage: scripts/reference-stack.sh [--check] [--queue-type quorum|classic] [--messages N] [--rate R] [--devices N]

  --check               publish, kill a cluster node mid-stream, report and exit
  --queue-type T        RabbitMQ mqtt.durable_queue_type (default quorum; classic loses
                        what is published while the reader's node is down)
  --messages N          messages --check publishes (default 3000)
  --rate R              messages per second --check publishes (default 150)
  --devices N           simulated devices behind the edge broker (default 10)
USAGE
}

args=()
check=0
while [[ $# -gt 0 ]]; do
	case "$1" in
	-h | --help) usage; exit 0 ;;
	--check) check=1; args+=(--check); shift ;;
	--queue-type) args+=("--queue_type=${2:?--queue-type needs a value}"); shift 2 ;;
	--messages) args+=("--messages=${2:?--messages needs a value}"); shift 2 ;;
	--rate) args+=("--rate=${2:?--rate needs a value}"); shift 2 ;;
	--devices) args+=("--devices=${2:?--devices needs a value}"); shift 2 ;;
	*) usage; echo "reference-stack.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

cd "$(dirname "$0")/.."
scripts/install-brokers.sh
command -v go >/dev/null || { echo "reference-stack.sh: go not found on PATH" >&2; exit 1; }

bin="$(mktemp -d "${TMPDIR:-/tmp}/mqttbeam-refstack-bin.XXXXXX")"
pid=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$bin"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "reference-stack.sh: building (the first build compiles Beam: minutes)" >&2
go build -o "$bin/refstack" ./internal/refstack
if ((check == 0)); then
	go build -o "$bin/telemetry" ./pipelines/telemetry
	args+=("--telemetry=$bin/telemetry")
fi
# Run in the background so that Ctrl-C reaches the trap, which stops it
# (it stops the brokers it started).
"$bin/refstack" "${args[@]}" &
pid=$!
status=0
wait "$pid" || status=$?
pid=""
exit "$status"
