#!/usr/bin/env bash
# Builds what a critest run needs besides the components of hack/build-components.sh, which
# include the CNI plugins: critest itself, cached by version, and the registry and dirimage
# commands of hack/tools, which the Go build cache makes quick to rebuild.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# build_critest builds critest as a test binary: cri-tools ships it as the tests of its
# cmd/critest package, which `go install` cannot build. The throw-away module that requires
# cri-tools stays beside the binary, so its go.sum records what the build used.
build_critest() {
  local dir module
  dir=$(critest_bin)
  [[ -x $dir/critest ]] && return

  log "building critest $CRITEST_VERSION into $dir"
  module=$CACHE_DIR/critest-$CRITEST_VERSION/module
  rm -rf "$module" "$dir.tmp"
  mkdir -p "$module" "$dir.tmp"
  (
    cd "$module"
    go mod init reaper.dev/critest-build >/dev/null 2>&1
    go mod edit -require="sigs.k8s.io/cri-tools@$CRITEST_VERSION"
    go test -c -mod=mod -trimpath -o "$dir.tmp/critest" \
      -ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRITEST_VERSION" \
      sigs.k8s.io/cri-tools/cmd/critest
  )
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

# check_cni_plugins fails unless hack/build-components.sh has built the CNI plugins of the
# network that hack/critest/run.sh writes.
check_cni_plugins() {
  local plugin
  for plugin in bridge host-local loopback portmap; do
    [[ -x $(cni_plugins_bin)/$plugin ]] || die "the CNI plugin $(cni_plugins_bin)/$plugin is missing; run hack/build-components.sh"
  done
}

build_tools() {
  local dir
  dir=$(critest_tools_bin)
  mkdir -p "$dir"
  (cd "$REPO_ROOT" && CGO_ENABLED=0 go build -trimpath -o "$dir/" ./hack/tools/registry ./hack/tools/dirimage)
}

main() {
  build_critest
  check_cni_plugins
  build_tools
  log "critest $CRITEST_VERSION, CNI plugins $CNI_PLUGINS_VERSION and the image tools ready in $CACHE_DIR"
}

main "$@"
