#!/usr/bin/env bash
# bench-bigquery.sh: rows/s that bigqueryio.Write moves from a Beam pipeline
# on prism into the in-memory BigQuery server (internal/bqtest): encoding,
# batching, Storage Write API appends over gRPC on loopback and the server's
# schema validation. The figure is for catching regressions; it says nothing
# about BigQuery itself.
#
# usage: scripts/bench-bigquery.sh [COUNT]   (COUNT runs of 20,000 rows, default 5)
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
	echo "usage: scripts/bench-bigquery.sh [COUNT]" >&2
	exit 0
fi
count="${1:-5}"
if ! [[ "$count" =~ ^[1-9][0-9]*$ ]]; then
	echo "bench-bigquery.sh: COUNT must be a positive whole number, got '$count'" >&2
	exit 2
fi

cd "$(dirname "$0")/.."
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# The runner logs to the same output as the benchmark; show its log on failure only.
if ! go test -run '^$' -bench BenchmarkWrite -benchtime "${count}x" ./transforms/bigqueryio >"$log" 2>&1; then
	cat "$log" >&2
	exit 1
fi
grep -E '^(goos|goarch|cpu|pkg):' "$log"
echo "BenchmarkWrite (${count} runs of 20,000 rows): $(grep -oE '[0-9]+ ns/op.*rows/s' "$log")"
