#!/usr/bin/env bash
# Usage: hack/image.sh [--check]
#
# Builds Reaper's image without Docker, from the binaries of `make build`, as an OCI archive:
# bin/images/reaper-VERSION.tar, named reaper:VERSION. It has the content of the Dockerfile's
# image: the static binaries in /usr/local/bin, user 65532 and reaper-controller as the
# entrypoint. Load it into a node's containerd with
#   ctr -n k8s.io images import bin/images/reaper-VERSION.tar
#
# With --check it then imports the archive into a private containerd under a new folder in
# /tmp and runs reaper-controller --help and reaper-installer --help from the image with runc,
# as the image's user 65532. Then it removes that containerd and its folder. The check needs
# root and the containerd and runc of hack/build-components.sh.
#
# Environment: VERSION (default: git describe, as the Makefile's), IMAGE_NAME (default
# reaper:$VERSION), IMAGE_BIN_DIR (the folder of the binaries, default bin/; the binaries must
# have been built with the same VERSION).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

readonly READY_TIMEOUT_SECONDS=20
readonly CHECK_NAMESPACE=reaper-image-check

VERSION=${VERSION:-$(git -C "$REPO_ROOT" describe --tags --always --dirty 2>/dev/null || echo dev)}
IMAGE_NAME=${IMAGE_NAME:-reaper:$VERSION}

image_tar() { echo "$(reaper_bin)/images/reaper-$VERSION.tar"; }

build_image() {
  local work
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand work now
  trap "rm -rf '$work'" RETURN
  (cd "$REPO_ROOT" && CGO_ENABLED=0 go build -trimpath -o "$work/ociimage" ./hack/tools/ociimage)
  "$work/ociimage" -bin-dir "${IMAGE_BIN_DIR:-$(reaper_bin)}" -name "$IMAGE_NAME" -version "$VERSION" -output "$(image_tar)"
  log "wrote $IMAGE_NAME to $(image_tar)"
}

# full_image_name prints the name that containerd gives to IMAGE_NAME: docker.io/library/ for
# a name without a registry or path, docker.io/ for one without a registry.
full_image_name() {
  local first=${IMAGE_NAME%%/*}
  if [[ $IMAGE_NAME != */* ]]; then
    echo "docker.io/library/$IMAGE_NAME"
  elif [[ $first != *.* && $first != *:* && $first != localhost ]]; then
    echo "docker.io/$IMAGE_NAME"
  else
    echo "$IMAGE_NAME"
  fi
}

# write_check_config writes a containerd config whose root, state and sockets all live under
# DIR. The CRI plugins are off, because the check needs only the image service and ctr run.
# The native snapshotter copies files, so it works on any filesystem that DIR is on.
write_check_config() {
  cat >"$DIR/config.toml" <<EOF
version = 3
root = "$DIR/root"
state = "$DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"]

[grpc]
  address = "$DIR/containerd.sock"

[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "$DIR/s"

[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/opt"

[plugins."io.containerd.nri.v1.nri"]
  disable = true

# The transfer service, which ctr images import uses, unpacks only for the platforms listed here.
[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = "linux/$(go env GOARCH)"
  snapshotter = "native"
EOF
}

ctr_check() { "$(containerd_bin)/ctr" --address "$DIR/containerd.sock" --namespace "$CHECK_NAMESPACE" "$@"; }

start_containerd() {
  local attempt
  # hack/containerd-down.sh tears down only a folder with this marker.
  touch "$DIR/.containerd-up"
  PATH="$(containerd_bin):$PATH" "$(containerd_bin)/containerd" --config "$DIR/config.toml" \
    >"$DIR/containerd.log" 2>&1 &
  echo $! >"$DIR/containerd.pid"
  for ((attempt = 0; attempt < READY_TIMEOUT_SECONDS * 10; attempt++)); do
    if ctr_check version >/dev/null 2>&1; then
      return
    fi
    sleep 0.1
  done
  tail -20 "$DIR/containerd.log" >&2 || true
  die "containerd under $DIR did not respond within ${READY_TIMEOUT_SECONDS}s; its log is above"
}

check_import() {
  require_root
  [[ -x $(containerd_bin)/containerd && -x $(runc_bin)/runc ]] ||
    die "containerd $CONTAINERD_VERSION or runc $RUNC_VERSION is missing; run hack/build-components.sh"

  DIR=$(mktemp -d /tmp/rimg.XXXXXX)
  # shellcheck disable=SC2064 # expand DIR now
  trap "'$REPO_ROOT/hack/containerd-down.sh' '$DIR' >/dev/null" EXIT
  write_check_config
  start_containerd

  local name output
  name=$(full_image_name)
  ctr_check images import --snapshotter native "$(image_tar)" >&2 ||
    die "ctr images import rejected $(image_tar)"
  ctr_check images ls -q | grep -qxF "$name" ||
    die "ctr images import did not create $name; it lists: $(ctr_check images ls -q | paste -sd ' ')"

  local binary
  for binary in reaper-controller reaper-installer; do
    # ctr keeps the FIFOs of the container's stdio in /run/containerd/fifo without --fifo-dir.
    output=$(ctr_check run --rm --snapshotter native --runc-binary "$(runc_bin)/runc" --runc-root "$DIR/runc" --fifo-dir "$DIR/fifo" \
      "$name" reaper-image-check "/usr/local/bin/$binary" --help 2>&1) ||
      die "running $binary --help from $name failed: $output"
    grep -q "$binary" <<<"$output" || die "$binary --help from $name printed no usage: $output"
  done
  log "ctr imported $name and ran reaper-controller and reaper-installer from it"
}

main() {
  case ${1:-} in
    "") build_image ;;
    --check)
      build_image
      check_import
      ;;
    *) die "usage: $0 [--check]" ;;
  esac
}

main "$@"
