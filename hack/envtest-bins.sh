#!/usr/bin/env bash
# Builds the pinned etcd and kube-apiserver from the Go module proxy into the cache and prints
# the folder to set as KUBEBUILDER_ASSETS for controller-runtime's envtest. A binary already
# built at its pinned version is skipped. Progress goes to stderr, so
#   export KUBEBUILDER_ASSETS=$(hack/envtest-bins.sh)
# works.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/kubernetes.sh"

"$REPO_ROOT/hack/install-deps.sh"

# build_etcd builds etcd from a throw-away module whose main calls etcdmain.Main. The etcd
# command's own package, go.etcd.io/etcd/server/v3, cannot be built with go install PKG@VERSION
# because its go.mod replaces the other etcd modules with local folders. The module stays
# beside the binary, so its go.sum records what the build used.
build_etcd() {
  local dir module
  dir=$(etcd_bin)
  [[ -x $dir/etcd ]] && return

  log "building etcd $ETCD_VERSION into $dir"
  module=$CACHE_DIR/etcd-$ETCD_VERSION/module
  rm -rf "$module" "$dir.tmp"
  mkdir -p "$module" "$dir.tmp"
  cat >"$module/main.go" <<'GO'
// Command etcd runs the etcd server, as the etcd binary of the etcd release does.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
GO
  (
    cd "$module"
    go mod init reaper.dev/etcd-build
    go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go mod tidy
    CGO_ENABLED=0 go build -trimpath -o "$dir.tmp/etcd" .
  ) >&2
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

# link_assets fills the KUBEBUILDER_ASSETS folder with relative links to the cached binaries,
# so each binary keeps its own version-keyed folder and the cache can move as a whole.
link_assets() {
  local assets
  assets=$(envtest_assets_dir)
  mkdir -p "$assets"
  ln -sfn "$(realpath --relative-to="$assets" "$(etcd_bin)/etcd")" "$assets/etcd"
  ln -sfn "$(realpath --relative-to="$assets" "$(kubernetes_command_bin kube-apiserver)/kube-apiserver")" "$assets/kube-apiserver"
}

build_etcd
build_kubernetes_command kube-apiserver
link_assets
log "etcd $ETCD_VERSION and kube-apiserver $KUBERNETES_VERSION ready"
envtest_assets_dir
