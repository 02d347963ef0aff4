#!/usr/bin/env bash
# Builds the Kubernetes commands of a local cluster at KUBERNETES_VERSION from the Go module
# proxy into the cache: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy and kubectl, with etcd. A command already built at its pinned version is skipped.
# Each command must report KUBERNETES_VERSION, which the script checks. It prints one cache
# folder a line, so a caller can put them on PATH.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/kubernetes.sh"

COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

# check_version fails unless the command NAME reports KUBERNETES_VERSION.
check_version() {
  local name=$1 output
  if [[ $name == kubectl ]]; then
    output=$("$(kubernetes_command_bin kubectl)/kubectl" version --client 2>&1)
  else
    output=$("$(kubernetes_command_bin "$name")/$name" --version 2>&1)
  fi
  grep -qF "$KUBERNETES_VERSION" <<<"$output" ||
    die "$name reports \"$output\", not $KUBERNETES_VERSION; remove $(kubernetes_command_bin "$name") and build again"
}

"$REPO_ROOT/hack/envtest-bins.sh" >/dev/null
for name in "${COMMANDS[@]}"; do
  build_kubernetes_command "$name"
  check_version "$name"
done
log "etcd $ETCD_VERSION and ${COMMANDS[*]} $KUBERNETES_VERSION ready"

etcd_bin
for name in "${COMMANDS[@]}"; do
  kubernetes_command_bin "$name"
done
