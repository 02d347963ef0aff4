#!/usr/bin/env bash
# Usage: hack/cluster-smoke.sh
#
# Smoke test of hack/cluster-up.sh and hack/cluster-down.sh. It starts a cluster in a new DIR,
# waits for the Node to be Ready and runs a pod of the local placeholder image with the default
# runc handler on the CNI bridge network. kubectl logs must print the placeholder's line. After
# the teardown, no process or mount may refer to DIR and the network namespace must be gone. The
# host paths and cgroups the kubelet creates must exist only if they did before, and the sysctls
# the kubelet sets must keep their values. /var/lib/cni, /run/containerd and the k8s.io cgroups
# are shared with every private containerd on the machine, so a change there only gets a warning.
#
# Needs root and everything hack/cluster-up.sh needs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cluster-lib.sh"

readonly NODE_NAME=reaper-node
readonly POD_NAME=smoke
readonly WAIT_TIMEOUT=90s
# The only line the placeholder program prints.
readonly EXPECTED_LOG="reaper placeholder image: Reaper runs host binaries, so this image's files are not used"

kubectl_cmd() { "$DIR/kubectl" "$@"; }

run_pod() {
  # The ServiceAccount admission plugin rejects pods until the controller-manager has created
  # the namespace's default ServiceAccount.
  local attempt
  for ((attempt = 0; attempt < 150; attempt++)); do
    kubectl_cmd get serviceaccount default >/dev/null 2>&1 && break
    sleep 0.2
  done
  kubectl_cmd apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $POD_NAME
spec:
  restartPolicy: Never
  containers:
  - name: placeholder
    image: $PLACEHOLDER_IMAGE
    imagePullPolicy: Never
EOF
  if ! kubectl_cmd wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$POD_NAME" --timeout "$WAIT_TIMEOUT" >/dev/null; then
    kubectl_cmd describe pod "$POD_NAME" >&2 || true
    die "pod $POD_NAME did not succeed within $WAIT_TIMEOUT"
  fi
  local output ip
  ip=$(kubectl_cmd get pod "$POD_NAME" -o jsonpath='{.status.podIP}')
  log "pod $POD_NAME succeeded with pod IP $ip"
  [[ $ip == 10.88.79.* ]] || die "pod $POD_NAME has IP '$ip', not one of the CNI bridge subnet 10.88.79.0/24"
  output=$(kubectl_cmd logs "$POD_NAME") || die "kubectl logs $POD_NAME failed"
  [[ $output == "$EXPECTED_LOG" ]] || die "kubectl logs $POD_NAME printed '$output', expected '$EXPECTED_LOG'"
  log "kubectl logs $POD_NAME printed the placeholder's line"
}

main() {
  require_root
  record_host_state
  DIR=$(mktemp -u /tmp/rcl.XXXX)
  # Tear down on any failure, so a failed run leaves nothing behind either.
  trap '"$REPO_ROOT/hack/cluster-down.sh" "$DIR" || true' EXIT

  "$REPO_ROOT/hack/cluster-up.sh" "$DIR"
  kubectl_cmd wait --for=condition=Ready "node/$NODE_NAME" --timeout "$WAIT_TIMEOUT" >/dev/null ||
    die "node $NODE_NAME was not Ready within $WAIT_TIMEOUT; see $DIR/logs/kubelet.log"
  log "node $NODE_NAME is Ready"
  run_pod

  # shellcheck disable=SC2034 # check_clean of cluster-lib.sh reads it
  NETNS=$(<"$DIR/netns")
  trap - EXIT
  "$REPO_ROOT/hack/cluster-down.sh" "$DIR"
  check_clean
  log "cluster smoke test passed"
}

main "$@"
