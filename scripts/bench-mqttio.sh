#!/usr/bin/env bash
# bench-mqttio.sh: benchmark mqttio.Read and mqttio.Write against Mosquitto on
# loopback, next to plain paho.mqtt.golang clients, in one run.
#
# Two Mosquitto brokers run for the whole benchmark, each on a free 127.0.0.1
# port, without persistence and without queue limits (max_queued_messages 0,
# max_queued_bytes 0): one with the default max_inflight_messages (20), one
# with it raised (RAISED_INFLIGHT, default 1000). The Go program
# internal/bench/mqttiobench runs each phase in a fresh process; its
# publishers are paho clients (2 by default) publishing ~100-byte messages as
# fast as the broker takes them. Phases:
#
#   raw_paho_qos0 / read_qos0      plain paho subscriber vs mqttio.Read on
#                                  prism, QoS 0 (run REPEAT times, alternating;
#                                  the figures are the medians)
#   raw_paho_qos0_buffered_conn    raw_paho_qos0 with the subscriber's socket
#                                  read through a 4 KB buffer (paho makes
#                                  several read syscalls per packet): the
#                                  headroom a buffered connection would give
#   read_qos0_terminal_stage       read_qos0 with the counting step as the last
#                                  step of the pipeline (see below)
#   raw_paho_qos1_{default,raised}_inflight / read_qos1_{default,raised}_inflight
#                                  the same at QoS 1 on each broker; mqttio's
#                                  InflightWindow set to the broker's window
#   raw_paho_publish_qos1 / write_qos1 / write_qos1_terminal_stage
#                                  paho publishing (1000 in flight) vs
#                                  mqttio.Write (MaxPending 1000) at QoS 1
#                                  (the first two REPEAT times, alternating)
#   backlog                        BACKLOG QoS 1 messages queued on the raised
#                                  broker for an offline persistent session,
#                                  then read by mqttio.Read: rate and the
#                                  process's peak RSS (VmHWM), before and after
#
# and the same at MQTT 5 (-mqtt-version 5): plain paho.golang next to
# mqttio.Read and mqttio.Write with ProtocolVersion(5), named with a 5
# (raw_paho5_qos0 / read5_qos0, raw_paho5_qos1_{default,raised}_inflight /
# read5_qos1_{default,raised}_inflight, raw_paho5_publish_qos1 /
# write5_qos1, backlog5). The publishers of the read phases speak MQTT 3.1.1
# at both versions. The MQTT 5 readers get no InflightWindow: they announce
# their default window (1000, MaxBuffered) and checkpoint on the broker's
# Receive Maximum from CONNACK (its max_inflight_messages). The QoS 1 read
# phases on the raised broker alternate between the versions REPEAT times.
#
# Each phase also reports the CPU time its process (publishers included) used
# per message, *_cpu_us_per_msg, which suffers less than the rates when other
# processes compete for the cores.
#
# A receive rate is the messages received over the time from the first to the
# last one (for mqttio.Read, as they reach the step after the read). The read
# pipelines give that step an (empty) output into a GroupByKey, as real
# pipelines have; the *_terminal_stage figures show what prism v2.77.0 costs a
# pipeline whose read or write stage has no outputs (it busy-waits during every
# bundle of such a stage).
#
# The output ends with one name=value line per figure, then the ratios
# (mqttio over paho, same run): write_qos1_ratio,
# read_qos1_default_inflight_ratio, read_qos1_raised_inflight_ratio (each over
# the plain paho QoS 1 subscriber on the same broker), their MQTT 5 twins
# (write5_qos1_ratio, read5_..._ratio, over plain paho.golang), MQTT 5 over
# MQTT 3.1.1 (read5_vs_v3_qos0, read5_vs_v3_qos1_{default,raised}_inflight,
# write5_vs_v3_qos1), and last read_qos0_ratio. Targets: read_qos0_ratio >=
# 0.9, write_qos1_ratio >= 0.8, read5_vs_v3_qos1_raised_inflight >= 0.9.
# Progress and logs go to stderr.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: scripts/bench-mqttio.sh [-n MSGS] [-b BACKLOG] [-i RAISED_INFLIGHT] [-r REPEAT] [-p PROFILE_DIR] [-k] [-h]

Benchmarks mqttio.Read and mqttio.Write against Mosquitto on loopback.

  -n MSGS             messages per throughput phase (env MSGS, default 200000)
  -b BACKLOG          messages in the backlog phase, 0 to skip it
                      (env BACKLOG, default 1000000)
  -i RAISED_INFLIGHT  max_inflight_messages of the second broker
                      (env RAISED_INFLIGHT, default 1000)
  -r REPEAT           runs of the QoS 0 read pair and of the write pair,
                      medians reported
                      (env REPEAT, default 3)
  -p PROFILE_DIR      write a CPU profile of every phase there
                      (env PROFILE_DIR; view with
                      go tool pprof -top PROFILE_DIR/mqttiobench PROFILE_DIR/PHASE.prof)
  -k                  keep the temporary directory (configs, logs)
  -h                  show this help

Needs go and mosquitto (apt-get install -y mosquitto mosquitto-clients).
Takes about 8 minutes with the defaults on 2 cores.
EOF
}

MSGS=${MSGS:-200000}
BACKLOG=${BACKLOG:-1000000}
RAISED_INFLIGHT=${RAISED_INFLIGHT:-1000}
REPEAT=${REPEAT:-3}
PROFILE_DIR=${PROFILE_DIR:-}
KEEP=0

while getopts ":n:b:i:r:p:kh" opt; do
	case $opt in
	n) MSGS=$OPTARG ;;
	b) BACKLOG=$OPTARG ;;
	i) RAISED_INFLIGHT=$OPTARG ;;
	r) REPEAT=$OPTARG ;;
	p) PROFILE_DIR=$OPTARG ;;
	k) KEEP=1 ;;
	h)
		usage
		exit 0
		;;
	:)
		echo "bench-mqttio: option -$OPTARG needs a value" >&2
		usage >&2
		exit 2
		;;
	*)
		echo "bench-mqttio: unknown option -$OPTARG" >&2
		usage >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
if (($# > 0)); then
	echo "bench-mqttio: unexpected arguments: $*" >&2
	usage >&2
	exit 2
fi

bench_name="bench-mqttio"
# shellcheck source=scripts/bench-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"
check_int MSGS "$MSGS" 1
check_int BACKLOG "$BACKLOG" 0
check_int RAISED_INFLIGHT "$RAISED_INFLIGHT" 1
check_int REPEAT "$REPEAT" 1
if ((MSGS >= 1000000000 || BACKLOG >= 1000000000 || RAISED_INFLIGHT > 65535)); then
	echo "bench-mqttio: MSGS and BACKLOG must be below 1e9, RAISED_INFLIGHT at most 65535" >&2
	exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
find_bench_tools
started=$SECONDS
bench_tmp

bench=$tmp/mqttiobench
log "building internal/bench/mqttiobench (a cold build takes a few minutes)"
go build -o "$bench" ./internal/bench/mqttiobench
if [[ -n $PROFILE_DIR ]]; then
	mkdir -p "$PROFILE_DIR"
	cp "$bench" "$PROFILE_DIR/mqttiobench"
fi
log "$("$mosquitto_bin" -h 2>/dev/null | head -n 1 || true)"

results=$tmp/results.txt
: >"$results"
failed=()

# phase LABEL TIMEOUT_S SUBCOMMAND ARGS...: runs one phase of the Go program,
# bounded by TIMEOUT_S (the program's own -timeout) and a hard limit two
# minutes later; its figures go to the results, its log to $tmp/LABEL.log.
phase() {
	local label=$1 limit=$2 cmd=$3 out rc=0
	shift 3
	local args=("$@" -timeout "${limit}s")
	if [[ -n $PROFILE_DIR ]]; then
		args+=(-cpuprofile "$PROFILE_DIR/$label.prof")
	fi
	log "== $label"
	out=$tmp/$label.out
	timeout --kill-after=10 "$((limit + 120))" "$bench" "$cmd" "${args[@]}" >"$out" 2>"$tmp/$label.log" || rc=$?
	cat "$out" >>"$results"
	sed 's/^/    /' "$out" >&2
	if ((rc != 0)); then
		failed+=("$label")
		log "phase $label FAILED (exit status $rc); the end of its log:"
		tail -n 25 "$tmp/$label.log" >&2
	elif grep -q WARNING "$tmp/$label.log"; then
		grep WARNING "$tmp/$label.log" >&2
	fi
}

start_mosquitto default "max_inflight_messages 20, the default" "max_queued_messages 0" "max_queued_bytes 0"
default_url=$broker_url
start_mosquitto raised "max_inflight_messages $RAISED_INFLIGHT" "max_queued_messages 0" "max_queued_bytes 0" \
	"max_inflight_messages $RAISED_INFLIGHT"
raised_url=$broker_url

t=180 # seconds per throughput phase
n=(-n "$MSGS")
for ((r = 1; r <= REPEAT; r++)); do
	phase "raw_paho_qos0_run$r" "$t" rawsub -broker "$default_url" -qos 0 "${n[@]}" -name raw_paho_qos0
	phase "read_qos0_run$r" "$t" read -broker "$default_url" -qos 0 "${n[@]}" -name read_qos0
done
phase raw_paho_qos0_buffered_conn "$t" rawsub -broker "$default_url" -qos 0 "${n[@]}" -buffered-conn -name raw_paho_qos0_buffered_conn
phase read_qos0_terminal_stage "$t" read -broker "$default_url" -qos 0 "${n[@]}" -terminal -name read_qos0_terminal_stage

for ((r = 1; r <= REPEAT; r++)); do
	phase "raw_paho5_qos0_run$r" "$t" rawsub -mqtt-version 5 -broker "$default_url" -qos 0 "${n[@]}" -name raw_paho5_qos0
	phase "read5_qos0_run$r" "$t" read -mqtt-version 5 -broker "$default_url" -qos 0 "${n[@]}" -name read5_qos0
done

phase raw_paho_qos1_default_inflight "$t" rawsub -broker "$default_url" -qos 1 "${n[@]}" -name raw_paho_qos1_default_inflight
phase read_qos1_default_inflight "$t" read -broker "$default_url" -qos 1 -window 20 "${n[@]}" -name read_qos1_default_inflight
phase raw_paho5_qos1_default_inflight "$t" rawsub -mqtt-version 5 -broker "$default_url" -qos 1 "${n[@]}" -name raw_paho5_qos1_default_inflight
phase read5_qos1_default_inflight "$t" read -mqtt-version 5 -broker "$default_url" -qos 1 -window 0 "${n[@]}" -name read5_qos1_default_inflight
phase raw_paho_qos1_raised_inflight "$t" rawsub -broker "$raised_url" -qos 1 "${n[@]}" -name raw_paho_qos1_raised_inflight
phase raw_paho5_qos1_raised_inflight "$t" rawsub -mqtt-version 5 -broker "$raised_url" -qos 1 "${n[@]}" -name raw_paho5_qos1_raised_inflight
for ((r = 1; r <= REPEAT; r++)); do
	phase "read_qos1_raised_inflight_run$r" "$t" read -broker "$raised_url" -qos 1 -window "$RAISED_INFLIGHT" "${n[@]}" -name read_qos1_raised_inflight
	phase "read5_qos1_raised_inflight_run$r" "$t" read -mqtt-version 5 -broker "$raised_url" -qos 1 -window 0 "${n[@]}" -name read5_qos1_raised_inflight
done

for ((r = 1; r <= REPEAT; r++)); do
	phase "raw_paho_publish_qos1_run$r" "$t" rawpub -broker "$default_url" -qos 1 "${n[@]}" -name raw_paho_publish_qos1
	phase "write_qos1_run$r" "$t" write -broker "$default_url" -qos 1 "${n[@]}" -name write_qos1
	phase "raw_paho5_publish_qos1_run$r" "$t" rawpub -mqtt-version 5 -broker "$default_url" -qos 1 "${n[@]}" -name raw_paho5_publish_qos1
	phase "write5_qos1_run$r" "$t" write -mqtt-version 5 -broker "$default_url" -qos 1 "${n[@]}" -name write5_qos1
done
phase write_qos1_terminal_stage "$t" write -broker "$default_url" -qos 1 "${n[@]}" -terminal -name write_qos1_terminal_stage

if ((BACKLOG > 0)); then
	bt=$((BACKLOG / 4000 > 180 ? BACKLOG / 4000 : 180))
	for v in 3 5; do
		name=backlog
		((v == 5)) && name=backlog5
		id=mqttiobench-$name-$$
		phase "${name}_fill" "$bt" backlog-fill -broker "$raised_url" -id "$id" -n "$BACKLOG" -name "$name"
		if [[ " ${failed[*]} " != *" ${name}_fill "* ]]; then
			window=$RAISED_INFLIGHT
			((v == 5)) && window=0
			phase "${name}_read" "$bt" backlog-read -mqtt-version "$v" -broker "$raised_url" -id "$id" -n "$BACKLOG" -window "$window" -name "$name"
		fi
	done
fi

echo "bench_wall_s=$((SECONDS - started))" >>"$results"
log "done in $((SECONDS - started))s; figures:"
"$bench" summarize "$results"
if ((${#failed[@]} > 0)); then
	log "FAILED phases: ${failed[*]} (their logs: rerun with -k)"
	exit 1
fi
