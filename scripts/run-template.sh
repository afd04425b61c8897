#!/usr/bin/env bash
# run-template.sh: launches a Dataflow job from a pipeline's flex template
# (built by build-template.sh) with its parameters read from a file.
set -euo pipefail

usage() {
	cat >&2 <<USAGE
usage: scripts/run-template.sh [options] NAME PARAMS_FILE [-- GCLOUD_FLAGS...]

Runs gcloud dataflow flex-template run with the template spec
gs://BUCKET/templates/NAME.json. PARAMS_FILE has one KEY=VALUE a line (blank
lines and lines starting with # are skipped; the value is everything after the
first =, taken as it is: no quotes). Every KEY must be a parameter of
templates/NAME/metadata.json. GCLOUD_FLAGS go to gcloud as they are, e.g.
--max-workers 5 --service-account-email SA.

options:
$COMMON_OPTIONS
  --job-name NAME    Dataflow job name (default: NAME-YYYYMMDD-HHMMSS, UTC)

example:
  scripts/run-template.sh --project my-project --bucket my-bucket \\
      telemetry templates/telemetry/params.example -- --max-workers 3
USAGE
}

cd "$(dirname "$0")/.."
# shellcheck source=scripts/template-common.sh
source scripts/template-common.sh

JOB_NAME="" NAME="" PARAMS_FILE="" EXTRA=()
while [[ $# -gt 0 ]]; do
	if parse_common_option "$@"; then
		shift "$SHIFT"
		continue
	fi
	case "$1" in
	--job-name) JOB_NAME="${2:?--job-name needs a value}"; shift 2 ;;
	--) shift; EXTRA=("$@"); break ;;
	-*) usage; die "unknown option $1" ;;
	*)
		if [[ -z "$NAME" ]]; then NAME="$1"
		elif [[ -z "$PARAMS_FILE" ]]; then PARAMS_FILE="$1"
		else usage; die "unexpected argument $1"
		fi
		shift ;;
	esac
done
[[ -n "$NAME" && -n "$PARAMS_FILE" ]] || { usage; die "give a template NAME and a PARAMS_FILE"; }
check_settings "$NAME"
[[ -f "$PARAMS_FILE" ]] || die "no parameters file $PARAMS_FILE"
JOB_NAME="${JOB_NAME:-$NAME-$(date -u +%Y%m%d-%H%M%S)}"
[[ "$JOB_NAME" =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] || die "job name '$JOB_NAME' must be lower-case letters, digits and -, starting with a letter"

# The template's parameter names, from its metadata.
mapfile -t known < <(grep -oE '"name" *: *"[a-z][a-z0-9_]*"' "$TEMPLATE_DIR/metadata.json" | sed -E 's/.*"([a-z0-9_]+)"$/\1/')

# Each parameter is its own --parameters flag. A value with a comma (a broker
# list) gets gcloud's alternate delimiter syntax (gcloud topic escaping), so
# that gcloud does not split it.
params=()
lineno=0
while IFS= read -r line || [[ -n "$line" ]]; do
	lineno=$((lineno + 1))
	[[ -z "${line//[[:space:]]/}" || "$line" =~ ^[[:space:]]*# ]] && continue
	[[ "$line" == *=* ]] || die "$PARAMS_FILE:$lineno: not KEY=VALUE"
	key="${line%%=*}" value="${line#*=}"
	case "$key" in
	password) die "$PARAMS_FILE:$lineno: password is for local runs; put the password in Secret Manager and give password_secret" ;;
	tls_key) die "$PARAMS_FILE:$lineno: tls_key is for local runs; put the client key in Secret Manager and give tls_key_secret" ;;
	esac
	printf '%s\n' "${known[@]}" | grep -qxF -- "$key" ||
		die "$PARAMS_FILE:$lineno: $key is not a parameter of $NAME (parameters: ${known[*]})"
	if [[ "$value" == *,* ]]; then
		delim=""
		for d in '~' '|' ';' '@' '!'; do
			if [[ "$value" != *"$d"* ]]; then delim="$d"; break; fi
		done
		[[ -n "$delim" ]] || die "$PARAMS_FILE:$lineno: the value of $key has a comma and every delimiter gcloud could use instead"
		params+=("--parameters=^$delim^$key=$value")
	else
		params+=("--parameters=$key=$value")
	fi
done <"$PARAMS_FILE"
[[ ${#params[@]} -gt 0 ]] || die "$PARAMS_FILE has no parameters"

run gcloud dataflow flex-template run "$JOB_NAME" --project "$PROJECT" --region "$REGION" \
	--template-file-gcs-location "$TEMPLATE_SPEC" \
	--staging-location "gs://$BUCKET/staging" --temp-location "gs://$BUCKET/temp" \
	"${params[@]}" ${EXTRA[@]+"${EXTRA[@]}"}
