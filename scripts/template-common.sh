# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are the sourcing script's
# template-common.sh: what build-template.sh and run-template.sh share: the
# Google Cloud settings, the template's folder, and running (or, with
# --print-only, printing) commands. Sourced, not run.

# die prints an error and exits.
die() {
	echo "$(basename "$0"): $*" >&2
	exit 2
}

# quote prints its argument as a shell word: as it is when it is plain,
# else in single quotes.
quote() {
	if [[ "$1" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
		printf '%s' "$1"
	else
		printf "'%s'" "${1//\'/\'\\\'\'}"
	fi
}

# run runs a command, or prints it (one line, shell-quoted) when
# PRINT_ONLY=1.
run() {
	if [[ "${PRINT_ONLY:-0}" == "1" ]]; then
		local arg sep=""
		for arg in "$@"; do
			printf '%s' "$sep"
			quote "$arg"
			sep=" "
		done
		echo
	else
		"$@"
	fi
}

# Google Cloud settings: flags override the environment, which overrides the
# defaults (the gcloud configuration's project, unless --print-only).
PROJECT="${PROJECT:-${GOOGLE_CLOUD_PROJECT:-}}"
REGION="${REGION:-us-central1}"
BUCKET="${BUCKET:-}"
REPOSITORY="${REPOSITORY:-mqttbeam}"
PRINT_ONLY=0

# COMMON_OPTIONS documents the options parse_common_option takes.
COMMON_OPTIONS="  --project ID       Google Cloud project (env PROJECT; default: gcloud's configured project)
  --region REGION    Dataflow and Artifact Registry region (env REGION; default us-central1)
  --bucket NAME      Cloud Storage bucket of the template specs, staging and temp files (env BUCKET; required)
  --repository NAME  Artifact Registry Docker repository (env REPOSITORY; default mqttbeam)
  --print-only       print the commands instead of running them (needs no gcloud)
  -h, --help         this help"

# parse_common_option takes option $1 (value $2) if it is a common one (or
# -h, which prints the caller's usage and exits) and sets SHIFT to the number
# of arguments it used; it fails for any other argument.
parse_common_option() {
	SHIFT=2
	case "$1" in
	-h | --help) usage; exit 0 ;;
	--project) PROJECT="${2:?--project needs a value}" ;;
	--region) REGION="${2:?--region needs a value}" ;;
	--bucket) BUCKET="${2:?--bucket needs a value}" ;;
	--repository) REPOSITORY="${2:?--repository needs a value}" ;;
	--print-only) PRINT_ONLY=1 SHIFT=1 ;;
	*) return 1 ;;
	esac
}

# check_settings fills in the project and checks the settings and template
# NAME; it sets TEMPLATE_DIR and TEMPLATE_SPEC.
check_settings() {
	local name="$1"
	[[ "$name" =~ ^[a-z][a-z0-9_-]*$ ]] || die "template name '$name' is not a folder name under templates/"
	TEMPLATE_DIR="templates/$name"
	[[ -f "$TEMPLATE_DIR/metadata.json" ]] || die "no template '$name': $TEMPLATE_DIR/metadata.json is missing (templates: $(template_names))"
	if [[ -z "$PROJECT" && "$PRINT_ONLY" == "0" ]] && command -v gcloud >/dev/null 2>&1; then
		PROJECT="$(gcloud config get-value project 2>/dev/null || true)"
	fi
	[[ -n "$PROJECT" ]] || die "no project: give --project or set PROJECT"
	[[ -n "$BUCKET" ]] || die "no bucket: give --bucket or set BUCKET"
	BUCKET="${BUCKET#gs://}"
	BUCKET="${BUCKET%/}"
	TEMPLATE_SPEC="gs://$BUCKET/templates/$name.json"
	if [[ "$PRINT_ONLY" == "0" ]] && ! command -v gcloud >/dev/null 2>&1; then
		die "gcloud is not installed (https://cloud.google.com/sdk/docs/install); --print-only shows the commands"
	fi
}

# template_names lists the templates.
template_names() {
	local d names=()
	for d in templates/*/metadata.json; do
		d="${d%/metadata.json}"
		names+=("${d#templates/}")
	done
	echo "${names[*]}"
}
