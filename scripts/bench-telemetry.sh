#!/usr/bin/env bash
# bench-telemetry.sh: benchmark the telemetry job (pipelines/telemetry) end
# to end on prism against Mosquitto, next to a plain paho subscriber under the
# same publisher load, in one run (issue 5, "Benchmark").
set -euo pipefail

usage() {
	cat <<'EOF'
usage: scripts/bench-telemetry.sh [--quick] [-d DEVICES] [-t READ_SECONDS] [-w WINDOW] [-i INFLIGHT]
                                  [-q MAX_QUEUED] [-c CONNECTIONS] [-r READERS] [-R RAW_SECONDS]
                                  [-p PROFILE_DIR] [-k] [-h]

Benchmarks the telemetry job on prism against Mosquitto on loopback, with a
simulated fleet (internal/devicesim: DEVICES devices on CONNECTIONS MQTT
connections, QoS 1, each publishing as fast as the broker takes the messages).

  --quick          smoke run: 1,000 devices, the job reads for 20 s, raw phase 10 s
  -d DEVICES       simulated devices (env DEVICES, default 10000)
  -t READ_SECONDS  how long the job reads, its --duration (env READ_SECONDS, default 60)
  -w WINDOW        the job's --window, fixed windows (env WINDOW, default 10s)
  -i INFLIGHT      Mosquitto's max_inflight_messages and the job's --inflight_window
                   (env INFLIGHT, default 1000)
  -q MAX_QUEUED    Mosquitto's max_queued_messages per client (env MAX_QUEUED,
                   default 1000, Mosquitto's default): beyond it the broker drops a
                   slow subscriber's messages instead of queueing without bound
  -c CONNECTIONS   the fleet's MQTT connections (env CONNECTIONS, default 4)
  -r READERS       the job's --readers (env READERS, default 1)
  -R RAW_SECONDS   how long the plain paho phase publishes (env RAW_SECONDS, default 20)
  -p PROFILE_DIR   build the job with a profiler (go build -overlay, no source
                   change): PROFILE_DIR/job.prof is its CPU profile of its first
                   READ_SECONDS, PROFILE_DIR/job.prof.heap its heap then; view with
                   go tool pprof -top PROFILE_DIR/telemetry PROFILE_DIR/job.prof
  -k               keep the temporary directory (broker config and log, the job's
                   log and output files)
  -h               show this help

Env JOB_FLAGS adds flags to the job's (space-separated; default
--max_out_of_orderness=1s, the hold the README's figures were measured with),
for experiments such as JOB_FLAGS=--max_out_of_orderness=0s; the latencies
assume fixed windows of WINDOW.

Phases, each under the same load on the same broker (one Mosquitto without
persistence, on a free 127.0.0.1 port):
  raw_paho   a plain paho subscriber (QoS 1, acknowledging each message) on
             devices/+/telemetry for RAW_SECONDS
  pipeline   the job, built with go build and run as its own process:
             --broker=tcp://127.0.0.1:PORT --qos=1 --inflight_window=INFLIGHT
             --readers=READERS --window=WINDOW --duration=READ_SECONDSs
             --output_dir=DIR --progress_every=0 (no registry, no rules) JOB_FLAGS;
             the fleet publishes from the job's start to READ_SECONDS + 5 s

Figures (name=value lines on stdout; progress and logs on stderr):
  raw_paho_msgs_per_s      messages the plain subscriber received, over the
                           time from its first to its last message
  pipeline_msgs_per_s      sustained rate in: rows of readings.jsonl (one per
                           message read), over the span of their received_at
                           (the reader's receive time); pipeline_messages_in is
                           the job's own count ("telemetry: done" log line)
  pipeline_peak_rss_mib    the job process's peak RSS (its maximum resident set
                           size from wait4, as /usr/bin/time -v reports)
  pipeline_cpu_us_per_msg  the job's CPU time (user + system, from wait4) per
                           message read, its final windows included
  *_publish_msgs_per_s     what the fleet published in the phase; the broker
                           drops what a subscriber does not take (MAX_QUEUED)
Latencies (p50, p99; the clock of this machine for every timestamp). The
publish time of a message is its payload's "ts", stamped by devicesim just
before the message is handed to paho. A row "appears" when the output file's
size first covers it (the harness looks every 25 ms; the job appends lines
every 64 KiB and at the end of each bundle).
  publish_to_raw_paho          plain subscriber's receive time - publish time
  publish_to_reading_row       appearance of the message's readings row
                               - publish time
  window_close_delay           appearance of an on-time aggregates row
                               - its window_end
  publish_to_aggregate_row     appearance of the first on-time aggregates row
                               of the message's device and window - publish
                               time; about the rest of the window plus the
                               close delay, so its p99 is about WINDOW + the
                               close delay. Windows that end after the job
                               stopped reading (fired by the stop, not by the
                               watermark) are left out of both.
Targets (issue 5): e2e_ratio >= 0.5, pipeline_peak_rss_mib < 1024, and
publish_to_aggregate_row_p99_ms <= WINDOW + 2 s (the target applies to the
aggregates, the job's main output; equivalently a window-close delay of at
most 2 s). The report ends with a target_* line per target, then
e2e_ratio=R (pipeline_msgs_per_s / raw_paho_msgs_per_s) as its last line.

Needs go and mosquitto (apt-get install -y mosquitto mosquitto-clients).
Takes about 3 minutes with the defaults on 2 cores (a cold build of the job
adds 2-3 minutes); --quick about 1 minute. Besides the figures, stderr shows
when the job read its first and last message and, for each window closed
during the read, when its on-time rows appeared.
EOF
}

DEVICES=${DEVICES:-10000}
READ_SECONDS=${READ_SECONDS:-60}
WINDOW=${WINDOW:-10s}
INFLIGHT=${INFLIGHT:-1000}
MAX_QUEUED=${MAX_QUEUED:-1000}
CONNECTIONS=${CONNECTIONS:-4}
READERS=${READERS:-1}
RAW_SECONDS=${RAW_SECONDS:-20}
PROFILE_DIR=${PROFILE_DIR:-}
JOB_FLAGS=${JOB_FLAGS:---max_out_of_orderness=1s}
KEEP=0

if [[ ${1:-} == --quick ]]; then
	DEVICES=1000 READ_SECONDS=20 RAW_SECONDS=10
	shift
fi
while getopts ":d:t:w:i:q:c:r:R:p:kh" opt; do
	case $opt in
	d) DEVICES=$OPTARG ;;
	t) READ_SECONDS=$OPTARG ;;
	w) WINDOW=$OPTARG ;;
	i) INFLIGHT=$OPTARG ;;
	q) MAX_QUEUED=$OPTARG ;;
	c) CONNECTIONS=$OPTARG ;;
	r) READERS=$OPTARG ;;
	R) RAW_SECONDS=$OPTARG ;;
	p) PROFILE_DIR=$OPTARG ;;
	k) KEEP=1 ;;
	h)
		usage
		exit 0
		;;
	:)
		echo "bench-telemetry: option -$OPTARG needs a value" >&2
		usage >&2
		exit 2
		;;
	*)
		echo "bench-telemetry: unknown option -$OPTARG (--quick goes first)" >&2
		usage >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
if (($# > 0)); then
	echo "bench-telemetry: unexpected arguments: $*" >&2
	usage >&2
	exit 2
fi

bench_name="bench-telemetry"
# shellcheck source=scripts/bench-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"
check_int DEVICES "$DEVICES" 1 1000000
check_int READ_SECONDS "$READ_SECONDS" 1 3600
check_int INFLIGHT "$INFLIGHT" 1 65535
check_int MAX_QUEUED "$MAX_QUEUED" 0 100000000
check_int CONNECTIONS "$CONNECTIONS" 1 "$DEVICES"
check_int READERS "$READERS" 1 64
check_int RAW_SECONDS "$RAW_SECONDS" 1 3600
if ! [[ $WINDOW =~ ^[0-9]+(ms|s|m)$ ]]; then
	echo "bench-telemetry: WINDOW must be a Go duration such as 10s, 500ms or 1m, got '$WINDOW'" >&2
	exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
find_bench_tools
started=$SECONDS
bench_tmp

bench=$tmp/telemetrybench
job=$tmp/telemetry
log "building internal/bench/telemetrybench and pipelines/telemetry (a cold build takes a few minutes)"
go build -o "$bench" ./internal/bench/telemetrybench
job_env=()
if [[ -n $PROFILE_DIR ]]; then
	mkdir -p "$PROFILE_DIR"
	PROFILE_DIR=$(cd "$PROFILE_DIR" && pwd)
	# Adds a file that starts a CPU profile to the job's main package for
	# this build only.
	printf '{"Replace":{"%s":"%s"}}\n' "$PWD/pipelines/telemetry/zz_telemetrybench_cpuprofile.go" \
		"$PWD/internal/bench/telemetrybench/testdata/cpuprofile.go" >"$tmp/overlay.json"
	go build -overlay "$tmp/overlay.json" -o "$job" ./pipelines/telemetry
	cp "$job" "$PROFILE_DIR/telemetry"
	job_env=(TELEMETRYBENCH_CPUPROFILE="$PROFILE_DIR/job.prof" TELEMETRYBENCH_CPUPROFILE_SECONDS="$READ_SECONDS")
else
	go build -o "$job" ./pipelines/telemetry
fi
log "$("$mosquitto_bin" -h 2>/dev/null | head -n 1 || true)"

results=$tmp/results.txt
: >"$results"

# phase LABEL LIMIT_S SUBCOMMAND ARGS...: runs one phase, killed after
# LIMIT_S seconds; its figures go to the results, its log to $tmp/LABEL.log.
phase() {
	local label=$1 limit=$2 cmd=$3 rc=0
	shift 3
	log "== $label"
	env "${job_env[@]}" timeout --kill-after=10 "$limit" "$bench" "$cmd" "$@" \
		>"$tmp/$label.out" 2>"$tmp/$label.log" || rc=$?
	cat "$tmp/$label.out" >>"$results"
	sed 's/^/    /' "$tmp/$label.out" >&2
	grep -E 'telemetrybench: (job: read|window ending)' "$tmp/$label.log" >&2 || true
	if ((rc != 0)); then
		log "phase $label FAILED (exit status $rc); the end of its log:"
		tail -n 25 "$tmp/$label.log" >&2
		exit 1
	fi
}

start_mosquitto mosquitto "max_inflight_messages $INFLIGHT, max_queued_messages $MAX_QUEUED" \
	"max_inflight_messages $INFLIGHT" "max_queued_messages $MAX_QUEUED"
fleet=(-broker "$broker_url" -devices "$DEVICES" -connections "$CONNECTIONS" -qos 1)
phase raw_paho $((RAW_SECONDS + 60)) rawsub "${fleet[@]}" -duration "${RAW_SECONDS}s"
phase pipeline $((READ_SECONDS + 300)) pipeline "${fleet[@]}" -job "$job" -out "$tmp/out" \
	-window "$WINDOW" -duration "${READ_SECONDS}s" -inflight "$INFLIGHT" -readers "$READERS" -grace 4m \
	-job-flags "$JOB_FLAGS"
if [[ -n $PROFILE_DIR ]]; then
	log "CPU profile: go tool pprof -top $PROFILE_DIR/telemetry $PROFILE_DIR/job.prof"
fi

echo "bench_wall_s=$((SECONDS - started))" >>"$results"
echo "load_average_1m=$(cut -d ' ' -f 1 /proc/loadavg)" >>"$results"
log "done in $((SECONDS - started))s; figures:"
"$bench" summarize "$results"
