#!/usr/bin/env bash
# build-template.sh: builds a pipeline's Dataflow flex template: the launcher
# image (templates/NAME/Dockerfile) with Cloud Build or a local Docker,
# pushed to Artifact Registry, then the template spec in Cloud Storage.
set -euo pipefail

usage() {
	cat >&2 <<USAGE
usage: scripts/build-template.sh [options] NAME

Builds and pushes the image of templates/NAME/Dockerfile, then writes the
template spec gs://BUCKET/templates/NAME.json with templates/NAME/metadata.json.
The image is REGION-docker.pkg.dev/PROJECT/REPOSITORY/NAME:TAG.

options:
$COMMON_OPTIONS
  --tag TAG          image tag (default: the git commit, with -dirty for uncommitted changes)
  --docker           build and push with the local docker instead of Cloud Build

example:
  scripts/build-template.sh --project my-project --bucket my-bucket telemetry
  scripts/build-template.sh --print-only --project my-project --bucket my-bucket telemetry
USAGE
}

cd "$(dirname "$0")/.."
# shellcheck source=scripts/template-common.sh
source scripts/template-common.sh

TAG="" DOCKER=0 NAME=""
while [[ $# -gt 0 ]]; do
	if parse_common_option "$@"; then
		shift "$SHIFT"
		continue
	fi
	case "$1" in
	--tag) TAG="${2:?--tag needs a value}"; shift 2 ;;
	--docker) DOCKER=1; shift ;;
	-*) usage; die "unknown option $1" ;;
	*)
		[[ -z "$NAME" ]] || { usage; die "one template at a time (got $NAME and $1)"; }
		NAME="$1"; shift ;;
	esac
done
[[ -n "$NAME" ]] || { usage; die "no template NAME"; }
check_settings "$NAME"
if [[ -z "$TAG" ]]; then
	TAG="$(git describe --always --dirty 2>/dev/null || echo latest)"
fi
IMAGE="$REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/$NAME:$TAG"

if [[ "$DOCKER" == "1" ]]; then
	run docker build -f "$TEMPLATE_DIR/Dockerfile" -t "$IMAGE" .
	run docker push "$IMAGE"
else
	run gcloud builds submit --project "$PROJECT" --region "$REGION" \
		--config templates/cloudbuild.yaml --ignore-file templates/build.gcloudignore \
		--substitutions "_DOCKERFILE=$TEMPLATE_DIR/Dockerfile,_IMAGE=$IMAGE" .
fi
run gcloud dataflow flex-template build "$TEMPLATE_SPEC" --project "$PROJECT" \
	--image "$IMAGE" --sdk-language GO --metadata-file "$TEMPLATE_DIR/metadata.json"
if [[ "$PRINT_ONLY" == "0" ]]; then
	echo "template $NAME: $TEMPLATE_SPEC (image $IMAGE)" >&2
	echo "launch it with: scripts/run-template.sh --project $PROJECT --region $REGION --bucket $BUCKET $NAME PARAMS_FILE" >&2
fi
