#!/usr/bin/env bash
# local-broker.sh: runs Mosquitto with TLS on loopback for trying the
# pipelines by hand: a CA, a server certificate (localhost, 127.0.0.1) and a
# client certificate are generated with openssl into a temporary folder, the
# broker listens on 127.0.0.1 only, and the flags that point a pipeline at it
# are printed. Ctrl-C stops the broker and removes the folder.
set -euo pipefail

usage() {
	cat >&2 <<'USAGE'
usage: scripts/local-broker.sh [options]

options:
  --port N          TLS listener port on 127.0.0.1 (default 8883; 0: a free port)
  --mtls            require a client certificate (the generated one)
  --username USER   require this username (with --password-file)
  --password-file F file holding the password of USER (never given on the command line)
  --max-inflight N  Mosquitto max_inflight_messages (default 20, Mosquitto's), to try
                    the inflight_window flag; 0 means no limit
  -h, --help        this help

Needs mosquitto (Debian: apt-get install mosquitto mosquitto-clients) and openssl.
USAGE
}

die() {
	echo "local-broker.sh: $*" >&2
	exit 2
}

PORT=8883 MTLS=0 USERNAME="" PASSWORD_FILE="" MAX_INFLIGHT=20
while [[ $# -gt 0 ]]; do
	case "$1" in
	-h | --help) usage; exit 0 ;;
	--port) PORT="${2:?--port needs a value}"; shift 2 ;;
	--mtls) MTLS=1; shift ;;
	--username) USERNAME="${2:?--username needs a value}"; shift 2 ;;
	--password-file) PASSWORD_FILE="${2:?--password-file needs a value}"; shift 2 ;;
	--max-inflight) MAX_INFLIGHT="${2:?--max-inflight needs a value}"; shift 2 ;;
	*) usage; die "unknown argument $1" ;;
	esac
done
[[ "$PORT" =~ ^[0-9]+$ && "$PORT" -le 65535 ]] || die "--port $PORT is not a port number"
[[ "$MAX_INFLIGHT" =~ ^[0-9]+$ ]] || die "--max-inflight $MAX_INFLIGHT is not a number"
if [[ -n "$USERNAME" && -z "$PASSWORD_FILE" ]] || [[ -z "$USERNAME" && -n "$PASSWORD_FILE" ]]; then
	die "--username and --password-file go together"
fi
[[ -z "$PASSWORD_FILE" || -r "$PASSWORD_FILE" ]] || die "cannot read --password-file $PASSWORD_FILE"

MOSQUITTO="$(command -v mosquitto || true)"
[[ -n "$MOSQUITTO" || ! -x /usr/sbin/mosquitto ]] || MOSQUITTO=/usr/sbin/mosquitto
[[ -n "$MOSQUITTO" ]] || die "mosquitto is not installed (Debian: sudo apt-get install -y mosquitto mosquitto-clients)"
command -v openssl >/dev/null 2>&1 || die "openssl is not installed"

if [[ "$PORT" == "0" ]]; then
	# Ask the kernel for a free port by binding port 0.
	PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null)" ||
		die "--port 0 needs python3 to find a free port; give a port"
fi

DIR="$(mktemp -d "${TMPDIR:-/tmp}/mqttbeam-broker.XXXXXX")"
PID=""
cleanup() {
	if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'echo "stopping the broker" >&2; exit 0' INT TERM

# Certificates: a CA, the server's (for localhost and 127.0.0.1) and a
# client's, EC P-256, valid for a day.
cert() { # cert NAME SUBJECT [EXTENSIONS]
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$DIR/$1-key.pem" -subj "$2" -out "$DIR/$1.csr" 2>/dev/null
	openssl x509 -req -in "$DIR/$1.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca-key.pem" -CAcreateserial \
		-days 1 -sha256 -extfile <(printf '%s\n' "$3") -out "$DIR/$1.pem" 2>/dev/null
	rm "$DIR/$1.csr"
}
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -sha256 \
	-keyout "$DIR/ca-key.pem" -subj "/CN=mqttbeam local CA" -out "$DIR/ca.pem" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
cert server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
cert client "/CN=mqttbeam-client" "extendedKeyUsage=clientAuth"
chmod 600 "$DIR"/*-key.pem

{
	# Run as the invoking user: as root, mosquitto would switch to the
	# "mosquitto" user, which cannot read the private temporary folder.
	echo "user $(id -un)"
	echo "per_listener_settings false"
	echo "persistence false"
	echo "max_inflight_messages $MAX_INFLIGHT"
	echo "max_queued_messages 100000"
	echo "listener $PORT 127.0.0.1"
	echo "cafile $DIR/ca.pem"
	echo "certfile $DIR/server.pem"
	echo "keyfile $DIR/server-key.pem"
	echo "tls_version tlsv1.2"
	if [[ "$MTLS" == "1" ]]; then
		echo "require_certificate true"
	fi
	if [[ -n "$USERNAME" ]]; then
		echo "allow_anonymous false"
		echo "password_file $DIR/passwd"
	else
		echo "allow_anonymous true"
	fi
} >"$DIR/mosquitto.conf"
if [[ -n "$USERNAME" ]]; then
	command -v mosquitto_passwd >/dev/null 2>&1 || die "mosquitto_passwd is not installed (Debian package mosquitto)"
	touch "$DIR/passwd"
	chmod 600 "$DIR/passwd"
	# mosquitto_passwd -b takes the password as an argument: pass it from the
	# file without echoing it.
	mosquitto_passwd -b "$DIR/passwd" "$USERNAME" "$(cat "$PASSWORD_FILE")"
fi

"$MOSQUITTO" -c "$DIR/mosquitto.conf" >"$DIR/mosquitto.log" 2>&1 &
PID=$!

# Wait (at most 10 s) until the listener accepts connections.
for _ in $(seq 100); do
	if ! kill -0 "$PID" 2>/dev/null; then
		cat "$DIR/mosquitto.log" >&2
		die "mosquitto exited (is port $PORT taken? try --port 0)"
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
		break
	fi
	sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || die "mosquitto did not listen on 127.0.0.1:$PORT within 10s"

flags="--broker=ssl://127.0.0.1:$PORT --tls_ca=$DIR/ca.pem"
if [[ "$MTLS" == "1" ]]; then
	flags+=" --tls_cert=$DIR/client.pem --tls_key=$DIR/client-key.pem"
fi
if [[ -n "$USERNAME" ]]; then
	flags+=" --username=$USERNAME --password=\"\$(cat $PASSWORD_FILE)\""
fi
if [[ "$MAX_INFLIGHT" != "0" ]]; then
	flags+=" --inflight_window=$MAX_INFLIGHT"
fi
cat <<INFO
Mosquitto (TLS) is listening on 127.0.0.1:$PORT, files in $DIR.
Flags for the pipelines:
FLAGS: $flags
Try it:
  go run ./pipelines/telemetry $flags --output_dir=out
  scripts/publish-sample.sh $flags
Ctrl-C stops the broker and removes $DIR.
INFO
wait "$PID"
