#!/usr/bin/env bash
# Builds the pinned etcd and kube-apiserver from the Go module proxy into the cache and prints
# the folder to set as KUBEBUILDER_ASSETS for controller-runtime's envtest. A binary already
# built at its pinned version is skipped. Progress goes to stderr, so
#   export KUBEBUILDER_ASSETS=$(hack/envtest-bins.sh)
# works.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

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

# kubernetes_staging_modules prints the staging modules that k8s.io/kubernetes replaces with
# its own ./staging/src folders, one a line. Their version is kubernetes_staging_version.
kubernetes_staging_modules() {
  local gomod
  gomod=$(cd / && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | jq -r .GoMod)
  [[ -f $gomod ]] || die "go.mod of k8s.io/kubernetes@$KUBERNETES_VERSION not found after go mod download; check GOPROXY"
  go mod edit -json "$gomod" | jq -r '.Replace[] | select(.New.Path | startswith("./staging/")) | .Old.Path'
}

# kubernetes_ldflags prints the -X flags that set the version that kube-apiserver reports in
# --version and /version. Without them it reports v0.0.0-master. The module proxy does not serve
# the release's git commit, so gitCommit keeps its placeholder.
kubernetes_ldflags() {
  local version=${KUBERNETES_VERSION#v} package flags=()
  for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=(
      "-X $package.gitVersion=$KUBERNETES_VERSION"
      "-X $package.gitMajor=${version%%.*}"
      "-X $package.gitMinor=$(cut -d. -f2 <<<"$version")"
      "-X $package.gitTreeState=clean"
    )
  done
  echo "${flags[*]}"
}

# build_kube_apiserver builds kube-apiserver through a wrapper module that requires
# k8s.io/kubernetes. That module's go.mod points the staging modules at folders inside its own
# repository, which a dependency cannot use, so the wrapper replaces each with its published
# version. The module stays beside the binary, so its go.sum records what the build used.
build_kube_apiserver() {
  local dir module staging_version staging ldflags replaces=()
  dir=$(kube_apiserver_bin)
  [[ -x $dir/kube-apiserver ]] && return

  log "building kube-apiserver $KUBERNETES_VERSION into $dir"
  module=$CACHE_DIR/kube-apiserver-$KUBERNETES_VERSION/module
  staging_version=$(kubernetes_staging_version)
  for staging in $(kubernetes_staging_modules); do
    replaces+=("-replace=$staging=$staging@$staging_version")
  done
  [[ ${#replaces[@]} -gt 0 ]] || die "found no staging modules in the go.mod of k8s.io/kubernetes@$KUBERNETES_VERSION"
  log "replacing ${#replaces[@]} staging modules with their $staging_version releases"
  ldflags=$(kubernetes_ldflags)

  rm -rf "$module" "$dir.tmp"
  mkdir -p "$module" "$dir.tmp"
  (
    cd "$module"
    go mod init reaper.dev/kube-apiserver-build
    go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION" \
      -tool=k8s.io/kubernetes/cmd/kube-apiserver "${replaces[@]}"
    go mod tidy
    CGO_ENABLED=0 go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" \
      -o "$dir.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
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
  ln -sfn "$(realpath --relative-to="$assets" "$(kube_apiserver_bin)/kube-apiserver")" "$assets/kube-apiserver"
}

build_etcd
build_kube_apiserver
link_assets
log "etcd $ETCD_VERSION and kube-apiserver $KUBERNETES_VERSION ready"
envtest_assets_dir
