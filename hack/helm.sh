#!/usr/bin/env bash
# Builds the pinned helm v4 from the Go module proxy into the cache and prints the path of the
# binary. A binary already built at its pinned version is skipped. Progress goes to stderr, so
#   HELM=$(hack/helm.sh)
# works. helm takes its default Kubernetes version, which helm template and helm lint render
# for, from the k8s.io/client-go module it was built with (v0.37 gives v1.37).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

HELM_VERSION=${HELM_VERSION:-v4.3.2}
helm_bin() { echo "$CACHE_DIR/helm-$HELM_VERSION/bin"; }

build_helm() {
  local dir
  dir=$(helm_bin)
  [[ -x $dir/helm ]] && return

  log "building helm $HELM_VERSION into $dir"
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  GOBIN="$dir.tmp" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.metadata=" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

build_helm
"$(helm_bin)/helm" version >&2
echo "$(helm_bin)/helm"
