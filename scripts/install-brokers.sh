#!/usr/bin/env bash
# install-brokers.sh: installs, when missing, the brokers the interop tests
# and scripts/reference-stack.sh run: the Debian packages mosquitto,
# mosquitto-clients, rabbitmq-server, ejabberd, haproxy, nodejs and npm (as
# root), and aedes from npm into MQTTBEAM_AEDES_DIR (default
# ~/.cache/mqttbeam/aedes). None of the services is started or enabled: the
# tests start their own on free ports. Debian's packages start theirs on
# installation where systemd runs; this script stops those again.
set -euo pipefail

AEDES_VERSION=1.2.0
AEDES_DIR="${MQTTBEAM_AEDES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mqttbeam/aedes}"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
	echo "usage: scripts/install-brokers.sh   (installs missing broker packages; root for apt-get)" >&2
	exit 0
fi

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [[ -x "$2" ]]; }
have mosquitto /usr/sbin/mosquitto || missing+=(mosquitto)
have mosquitto_pub /usr/bin/mosquitto_pub || missing+=(mosquitto-clients)
[[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || missing+=(rabbitmq-server)
have ejabberdctl /usr/sbin/ejabberdctl || missing+=(ejabberd)
have haproxy /usr/sbin/haproxy || missing+=(haproxy)
have node /usr/bin/node || missing+=(nodejs)
have npm /usr/bin/npm || missing+=(npm)

if ((${#missing[@]})); then
	if [[ "$(id -u)" != "0" ]]; then
		echo "install-brokers.sh: missing ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "install-brokers.sh: installing ${missing[*]} (Debian packages)" >&2
	apt-get update -qq >/dev/null
	# policy-rc.d 101 keeps the packages from starting their services.
	policy=/usr/sbin/policy-rc.d
	made_policy=0
	if [[ ! -e "$policy" ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	if ((made_policy)); then
		rm -f "$policy"
	fi
fi

if [[ ! -f "$AEDES_DIR/node_modules/aedes/aedes.js" ]] ||
	[[ "$(node -p "require('$AEDES_DIR/node_modules/aedes/package.json').version" 2>/dev/null)" != "$AEDES_VERSION" ]]; then
	echo "install-brokers.sh: installing aedes $AEDES_VERSION into $AEDES_DIR (npm)" >&2
	mkdir -p "$AEDES_DIR"
	npm install --prefix "$AEDES_DIR" --no-audit --no-fund --silent "aedes@$AEDES_VERSION" >/dev/null
fi
