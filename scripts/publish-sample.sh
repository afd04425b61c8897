#!/usr/bin/env bash
# publish-sample.sh: publishes the sample telemetry of testdata/telemetry (one
# message a line: topic and payload) to a broker with mosquitto_pub, to feed a
# pipeline that runs against it (see local-broker.sh). Takes the pipelines'
# connection flags, so the line local-broker.sh prints can be pasted.
set -euo pipefail

usage() {
	cat >&2 <<'USAGE'
usage: scripts/publish-sample.sh --broker=URL [options]

options (the pipelines' flag names; --flag=value or --flag value):
  --broker URL           tcp://HOST:PORT or ssl://HOST:PORT (also mqtt, tls, mqtts); the first of a list
  --tls_ca FILE          CA of the broker's certificate (ssl: default the system roots)
  --tls_cert FILE        client certificate (with --tls_key)
  --tls_key FILE
  --tls_server_name NAME name to verify the certificate against
  --username USER
  --password PASSWORD    (or the environment variable MQTT_PASSWORD)
  --qos N                0, 1 (default) or 2
  --file FILE            samples (default testdata/telemetry/good.jsonl; also malformed.jsonl)
  --repeat N             publish the file N times (default 1; 0: until interrupted)
  --interval SECONDS     pause between rounds (default 1)
  --keep-time            publish payloads as they are; by default a JSON payload's "ts"
                         is set to now, so that a streaming pipeline does not find them late
  -h, --help             this help
Other pipeline flags (--inflight_window, --output_dir, ...) are ignored.
USAGE
}

die() {
	echo "publish-sample.sh: $*" >&2
	exit 2
}

cd "$(dirname "$0")/.."
BROKER="" CA="" CERT="" KEY="" SERVER_NAME="" USERNAME="" PASSWORD="${MQTT_PASSWORD:-}" QOS=1
FILE=testdata/telemetry/good.jsonl REPEAT=1 INTERVAL=1 KEEP_TIME=0
while [[ $# -gt 0 ]]; do
	arg="$1"
	shift
	if [[ "$arg" == --*=* ]]; then
		value="${arg#*=}"
		arg="${arg%%=*}"
	elif [[ "$arg" =~ ^--(broker|tls_ca|tls_cert|tls_key|tls_server_name|username|password|qos|file|repeat|interval)$ ]]; then
		[[ $# -gt 0 ]] || die "$arg needs a value"
		value="$1"
		shift
	else
		value=""
	fi
	case "$arg" in
	-h | --help) usage; exit 0 ;;
	--broker) BROKER="${value%%,*}" ;;
	--tls_ca) CA="$value" ;;
	--tls_cert) CERT="$value" ;;
	--tls_key) KEY="$value" ;;
	--tls_server_name) SERVER_NAME="$value" ;;
	--username) USERNAME="$value" ;;
	--password) PASSWORD="$value" ;;
	--qos) QOS="$value" ;;
	--file) FILE="$value" ;;
	--repeat) REPEAT="$value" ;;
	--interval) INTERVAL="$value" ;;
	--keep-time) KEEP_TIME=1 ;;
	--*) ;; # another pipeline flag
	*) usage; die "unexpected argument $arg" ;;
	esac
done
[[ -n "$BROKER" ]] || { usage; die "no --broker"; }
[[ "$BROKER" =~ ^(tcp|mqtt|ssl|tls|mqtts)://([^:/]+|\[[0-9A-Fa-f:.]+\]):([0-9]+)/?$ ]] ||
	die "--broker $BROKER is not tcp|mqtt|ssl|tls|mqtts://HOST:PORT (mosquitto_pub does not speak websockets)"
scheme="${BASH_REMATCH[1]}" host="${BASH_REMATCH[2]}" port="${BASH_REMATCH[3]}"
host="${host#[}" host="${host%]}"
[[ "$QOS" =~ ^[0-2]$ ]] || die "--qos $QOS is not 0, 1 or 2"
[[ "$REPEAT" =~ ^[0-9]+$ ]] || die "--repeat $REPEAT is not a number"
[[ "$INTERVAL" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--interval $INTERVAL is not a number of seconds"
[[ -r "$FILE" ]] || die "cannot read --file $FILE"
[[ -z "$CERT" && -z "$KEY" || -n "$CERT" && -n "$KEY" ]] || die "--tls_cert and --tls_key go together"
[[ -z "$SERVER_NAME" ]] || die "mosquitto_pub cannot verify against --tls_server_name: use a broker URL with the certificate's host name"
command -v mosquitto_pub >/dev/null 2>&1 || die "mosquitto_pub is not installed (Debian: sudo apt-get install -y mosquitto-clients)"
command -v jq >/dev/null 2>&1 || die "jq is not installed (Debian: sudo apt-get install -y jq)"

pub=(mosquitto_pub -h "$host" -p "$port" -q "$QOS" -i "mqttbeam-sample-$$")
case "$scheme" in
ssl | tls | mqtts)
	if [[ -n "$CA" ]]; then pub+=(--cafile "$CA"); else pub+=(--capath /etc/ssl/certs); fi
	[[ -z "$CERT" ]] || pub+=(--cert "$CERT" --key "$KEY")
	;;
esac
[[ -z "$USERNAME" ]] || pub+=(-u "$USERNAME")
# -P puts the password on mosquitto_pub's command line, where local users can
# see it (ps): meant for local brokers. It is never printed.
[[ -z "$PASSWORD" ]] || pub+=(-P "$PASSWORD")

# One line of jq output a message: the topic, then the payload base64-encoded
# (payloads may be bytes that are not UTF-8: payload_base64).
# shellcheck disable=SC2016 # jq's $-variables
filter='
	(if .payload_base64 then .payload_base64
	 elif $keep then (.payload | @base64)
	 else ((.payload | fromjson? // null) as $p
		| if ($p | type) == "object" and ($p | has("ts"))
		  then ($p | .ts = (now | strftime("%Y-%m-%dT%H:%M:%SZ")) | tojson)
		  else .payload end | @base64)
	 end) as $b64
	| "\(.topic)\t\($b64)"'
round=0 sent=0
while [[ "$REPEAT" == "0" || "$round" -lt "$REPEAT" ]]; do
	[[ "$round" == "0" ]] || sleep "$INTERVAL"
	round=$((round + 1))
	while IFS=$'\t' read -r topic b64; do
		base64 -d <<<"$b64" | "${pub[@]}" -t "$topic" -s
		sent=$((sent + 1))
	done < <(jq -r --argjson keep "$([[ "$KEEP_TIME" == 1 ]] && echo true || echo false)" "$filter" "$FILE")
	echo "published $sent messages to $BROKER" >&2
done
