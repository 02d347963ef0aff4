#!/usr/bin/env bash
# Builds the pinned real components (containerd, ctr, the runc shim, runc, crictl and the CNI
# plugins) from the Go module proxy into the cache. A component already built at its pinned
# version is skipped.
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

# build_containerd builds containerd, ctr and the runc shim inside the containerd module's own
# source: go install PKG@VERSION refuses modules whose go.mod has exclude directives, as 1.7 and
# 2.0 do. The runc shim goes beside containerd, where containerd looks for shims not on PATH.
build_containerd() {
  local dir module source ldflags
  dir=$(containerd_bin)
  if [[ -x $dir/containerd && -x $dir/ctr && -x $dir/containerd-shim-runc-v2 ]]; then
    return 0
  fi

  module=$(containerd_module)
  log "building containerd $CONTAINERD_VERSION into $dir"
  source=$(cd / && go mod download -json "$module@$CONTAINERD_VERSION" | jq -r .Dir)
  [[ -d $source ]] || die "go mod download $module@$CONTAINERD_VERSION gave no source folder"

  ldflags="-X $module/version.Version=$CONTAINERD_VERSION"
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  (
    cd "$source"
    GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$dir.tmp/" ./cmd/containerd ./cmd/ctr
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$dir.tmp/" ./cmd/containerd-shim-runc-v2
  )
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

# build_cni_plugins builds the CNI plugins that the networks of hack/containerd-up.sh and
# hack/critest/run.sh use: bridge with host-local addresses, and portmap for critest's host
# ports. containerd also needs loopback for the pod's lo interface.
build_cni_plugins() {
  local dir module=github.com/containernetworking/plugins
  dir=$(cni_plugins_bin)
  if [[ -x $dir/bridge && -x $dir/host-local && -x $dir/loopback && -x $dir/portmap ]]; then
    return
  fi

  log "building the CNI plugins $CNI_PLUGINS_VERSION into $dir"
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  GOBIN="$dir.tmp" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-X $module/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" \
    "$module/plugins/main/bridge@$CNI_PLUGINS_VERSION" \
    "$module/plugins/ipam/host-local@$CNI_PLUGINS_VERSION" \
    "$module/plugins/main/loopback@$CNI_PLUGINS_VERSION" \
    "$module/plugins/meta/portmap@$CNI_PLUGINS_VERSION"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

build_containerd

build_once "$(runc_bin)" runc -- \
  env CGO_ENABLED=1 go install -tags seccomp \
  -ldflags "-X main.version=${RUNC_VERSION#v}" "github.com/opencontainers/runc@$RUNC_VERSION"

build_once "$(crictl_bin)" crictl -- \
  go install -ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
  "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"

build_cni_plugins

log "components ready in $CACHE_DIR"
