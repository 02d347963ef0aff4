#!/usr/bin/env bash
# Builds the pinned real components (containerd, ctr, the runc shim, runc, crictl) from the Go
# module proxy into the cache. A component already built at its pinned version is skipped.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$REPO_ROOT/hack/install-deps.sh"

# build_once DIR NAME... -- CMD: runs CMD with GOBIN=DIR unless every NAME already exists there.
build_once() {
  local dir=$1
  shift
  local names=()
  while [[ $1 != -- ]]; do
    names+=("$1")
    shift
  done
  shift

  local name missing=0
  for name in "${names[@]}"; do
    [[ -x $dir/$name ]] || missing=1
  done
  [[ $missing -eq 1 ]] || return 0

  log "building ${names[*]} into $dir"
  mkdir -p "$dir.tmp"
  GOBIN="$dir.tmp" GOFLAGS=-trimpath "$@"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

containerd_pkg=github.com/containerd/containerd/v2
build_once "$(containerd_bin)" containerd ctr -- \
  go install -ldflags "-X $containerd_pkg/version.Version=$CONTAINERD_VERSION" \
  "$containerd_pkg/cmd/containerd@$CONTAINERD_VERSION" "$containerd_pkg/cmd/ctr@$CONTAINERD_VERSION"

# The runc shim goes beside containerd, where containerd looks for shims it cannot find on PATH.
if [[ ! -x $(containerd_bin)/containerd-shim-runc-v2 ]]; then
  log "building containerd-shim-runc-v2 $CONTAINERD_VERSION"
  GOBIN="$(containerd_bin)" CGO_ENABLED=0 GOFLAGS=-trimpath go install \
    -ldflags "-X $containerd_pkg/version.Version=$CONTAINERD_VERSION" \
    "$containerd_pkg/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
fi

build_once "$(runc_bin)" runc -- \
  env CGO_ENABLED=1 go install -tags seccomp \
  -ldflags "-X main.version=${RUNC_VERSION#v}" "github.com/opencontainers/runc@$RUNC_VERSION"

build_once "$(crictl_bin)" crictl -- \
  go install -ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
  "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"

log "components ready in $CACHE_DIR"
