#!/usr/bin/env bash
# Functions that build the commands of k8s.io/kubernetes at KUBERNETES_VERSION from the Go
# module proxy into the cache. Source it after lib.sh; it defines functions and runs nothing.

# kubernetes_command_bin prints the cache folder of the command NAME at KUBERNETES_VERSION.
kubernetes_command_bin() { echo "$CACHE_DIR/$1-$KUBERNETES_VERSION/bin"; }

# kubernetes_staging_modules prints the staging modules that k8s.io/kubernetes replaces with
# its own ./staging/src folders, one a line. Their version is kubernetes_staging_version.
kubernetes_staging_modules() {
  local gomod
  gomod=$(cd / && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | jq -r .GoMod)
  [[ -f $gomod ]] || die "go.mod of k8s.io/kubernetes@$KUBERNETES_VERSION not found after go mod download; check GOPROXY"
  go mod edit -json "$gomod" | jq -r '.Replace[] | select(.New.Path | startswith("./staging/")) | .Old.Path'
}

# kubernetes_ldflags prints the -X flags that set the version that the commands report in
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

# build_kubernetes_command builds the command NAME of k8s.io/kubernetes/cmd, such as
# kube-apiserver or kubelet, into kubernetes_command_bin NAME, through a wrapper module that
# requires k8s.io/kubernetes. That module's go.mod points the staging modules at folders inside
# its own repository, which a dependency cannot use, so the wrapper replaces each with its
# published version. The module stays beside the binary, so its go.sum records what the build
# used.
build_kubernetes_command() {
  local name=$1 dir module staging_version staging ldflags replaces=()
  dir=$(kubernetes_command_bin "$name")
  [[ -x $dir/$name ]] && return

  log "building $name $KUBERNETES_VERSION into $dir"
  module=$CACHE_DIR/$name-$KUBERNETES_VERSION/module
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
    cd "$module" || exit
    go mod init "reaper.dev/$name-build"
    go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION" \
      -tool="k8s.io/kubernetes/cmd/$name" "${replaces[@]}"
    go mod tidy
    CGO_ENABLED=0 go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" \
      -o "$dir.tmp/$name" "k8s.io/kubernetes/cmd/$name"
  ) >&2
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}
