#!/usr/bin/env bash
# Builds the local images as docker-archive tarballs for `ctr images import`: the CRI sandbox
# (pause) image, the placeholder image that Reaper containers name, and the httpget image, whose
# pods fetch a URL in the cluster tests. The tarballs are rebuilt only when the sources of
# hack/tools, go.mod, go.sum or the Go version change.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# sources_digest prints one digest over everything the tarballs are built from.
sources_digest() {
  {
    go version
    go env GOARCH
    cd "$REPO_ROOT"
    find hack/tools hack/images.sh go.mod go.sum -type f -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}

# build_static OUT PKG: builds a static binary without cgo or debug information.
build_static() {
  (cd "$REPO_ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$1" "$2")
}

main() {
  local out stamp digest
  out=$(images_dir)
  stamp=$out/sources.sha256
  digest=$(sources_digest)

  if [[ -f $(pause_image_tar) && -f $(placeholder_image_tar) && -f $(httpget_image_tar) && -f $stamp && $(<"$stamp") == "$digest" ]]; then
    log "images up to date in $out"
    return
  fi

  log "building images into $out"
  local work=$out/build
  rm -rf "$work"
  mkdir -p "$work"
  build_static "$work/pause" ./hack/tools/pause
  build_static "$work/placeholder" ./hack/tools/placeholder
  build_static "$work/httpget" ./hack/tools/httpget
  build_static "$work/mkimage" ./hack/tools/mkimage

  # The pause process needs no privileges, so it runs as UID and GID 65535, which own no files.
  "$work/mkimage" -binary "$work/pause" -path /pause -user 65535:65535 \
    -name "$PAUSE_IMAGE" -output "$(pause_image_tar)"
  "$work/mkimage" -binary "$work/placeholder" -path /placeholder \
    -name "$PLACEHOLDER_IMAGE" -output "$(placeholder_image_tar)"
  "$work/mkimage" -binary "$work/httpget" -path /httpget -user 65534:65534 \
    -name "$HTTPGET_IMAGE" -output "$(httpget_image_tar)"

  echo "$digest" >"$stamp"
  rm -rf "$work"
  log "wrote $(pause_image_tar), $(placeholder_image_tar) and $(httpget_image_tar)"
}

main "$@"
