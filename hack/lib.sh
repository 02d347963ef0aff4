#!/usr/bin/env bash
# Shared settings for the hack/ scripts: pinned versions and the cache layout.
# Source it; it defines variables and small helpers and runs nothing.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${REAPER_CACHE:-$REPO_ROOT/.cache}

CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
RUNC_VERSION=${RUNC_VERSION:-v1.5.3}
CRICTL_VERSION=${CRICTL_VERSION:-v1.37.0}
CNI_PLUGINS_VERSION=${CNI_PLUGINS_VERSION:-v1.10.0}

# The containerd versions make compat runs the CRI suite on, besides the pinned one.
COMPAT_VERSIONS=${COMPAT_VERSIONS:-"v1.7.35 v2.0.14 v2.2.9"}
GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-v2.15.0}
CONTROLLER_GEN_VERSION=${CONTROLLER_GEN_VERSION:-v0.23.0}

# The etcd and kube-apiserver that envtest runs, built by hack/envtest-bins.sh. The version of
# the Kubernetes staging modules (k8s.io/api and the others) follows from KUBERNETES_VERSION.
KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}

# Each component version is installed into its own folder, so a version bump rebuilds only
# that component and the old build stays usable for a side-by-side run.
# containerd_module prints the Go module of the pinned containerd, which moved to /v2 in 2.0.
containerd_module() {
  if [[ $CONTAINERD_VERSION == v1.* ]]; then
    echo github.com/containerd/containerd
  else
    echo github.com/containerd/containerd/v2
  fi
}

containerd_bin() { echo "$CACHE_DIR/containerd-$CONTAINERD_VERSION/bin"; }
runc_bin() { echo "$CACHE_DIR/runc-$RUNC_VERSION/bin"; }
crictl_bin() { echo "$CACHE_DIR/crictl-$CRICTL_VERSION/bin"; }
cni_plugins_bin() { echo "$CACHE_DIR/cni-plugins-$CNI_PLUGINS_VERSION/bin"; }
golangci_lint_bin() { echo "$CACHE_DIR/golangci-lint-$GOLANGCI_LINT_VERSION/bin"; }
controller_gen_bin() { echo "$CACHE_DIR/controller-gen-$CONTROLLER_GEN_VERSION/bin"; }
etcd_bin() { echo "$CACHE_DIR/etcd-$ETCD_VERSION/bin"; }
# envtest_assets_dir prints the folder to set as KUBEBUILDER_ASSETS. It contains links to the
# etcd and kube-apiserver binaries in the two folders above.
envtest_assets_dir() { echo "$CACHE_DIR/envtest-$KUBERNETES_VERSION-etcd-$ETCD_VERSION/bin"; }
# kubernetes_staging_version prints the version of the staging modules that belong to
# KUBERNETES_VERSION. Kubernetes releases v1.N.P together with k8s.io/api and the others at v0.N.P.
kubernetes_staging_version() { echo "v0.${KUBERNETES_VERSION#v1.}"; }
images_dir() { echo "$CACHE_DIR/images"; }

# Images built by hack/images.sh. containerd-up.sh pins PAUSE_IMAGE as the CRI sandbox image.
# shellcheck disable=SC2034 # the scripts that source this file use it
PAUSE_IMAGE=localhost/reaper/pause:3.10
# shellcheck disable=SC2034
PLACEHOLDER_IMAGE=localhost/reaper/placeholder:1
pause_image_tar() { echo "$(images_dir)/pause.tar"; }
# shellcheck disable=SC2034
HTTPGET_IMAGE=localhost/reaper/httpget:1
placeholder_image_tar() { echo "$(images_dir)/placeholder.tar"; }
httpget_image_tar() { echo "$(images_dir)/httpget.tar"; }
reaper_bin() { echo "$REPO_ROOT/bin"; }

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# running PID: succeeds while PID exists and is not a zombie waiting for its parent.
running() {
  local stat
  # A failed $(<file) redirection exits the script under set -e, so read with a command.
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

require_root() {
  [[ $(id -u) -eq 0 ]] || die "this step must run as root (it starts containerd and host processes); rerun with sudo"
}
