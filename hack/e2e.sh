#!/usr/bin/env bash
# Usage: hack/e2e.sh [GO TEST FLAG...]
#
# Runs the end-to-end CRI suite in test/e2e with go test, and runs its test binary in a new
# network namespace through hack/netns-exec.sh. There hack/containerd-up.sh gives the suite's
# containerd a CNI bridge network on E2E_SUBNET for pods without hostNetwork. The bridge plugin
# adds a bridge, addresses and routes and sets net.ipv4.ip_forward in the namespace it runs in, so
# all of that stays in the new namespace and ends with it. hostNetwork pods share that namespace,
# which takes the place of the host's network during the run.
#
# Afterwards the script checks the network namespace it runs in, normally the machine's, for
# traces of the run: a link named E2E_BRIDGE, an address or route in E2E_SUBNET, or another
# net.ipv4.ip_forward than before. A trace fails the run.
#
# The flags go to go test after -count=1 -v -timeout 20m, and a repeated flag overrides the
# default, such as -timeout 15m or -run TestPodNetwork.
#
# Needs root, unshare and ip (hack/install-deps.sh installs them), the components of
# `make components` and the binaries of `make build`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# The bridge network exists only in the new network namespace, so its subnet cannot clash with the
# machine's networks.
readonly E2E_SUBNET=10.88.77.0/24
readonly E2E_BRIDGE=reaper-e2e0
# libcni keeps its result cache here, and containerd offers no setting to move it.
readonly CNI_CACHE_DIR=/var/lib/cni

# machine_network_state prints what the run could leave in the network namespace of the script.
machine_network_state() {
  echo "links named $E2E_BRIDGE: $(ip -o link show dev "$E2E_BRIDGE" 2>/dev/null | wc -l)"
  echo "addresses in $E2E_SUBNET: $(ip -o -4 addr show to "$E2E_SUBNET" | awk '{ print $2, $4 }' | tr '\n' ' ')"
  echo "routes in $E2E_SUBNET: $(ip -4 route show root "$E2E_SUBNET" | tr '\n' ' ')"
  echo "net.ipv4.ip_forward: $(</proc/sys/net/ipv4/ip_forward)"
}

main() {
  require_root
  local tool
  for tool in unshare ip; do
    command -v "$tool" >/dev/null || die "$tool is missing; run hack/install-deps.sh"
  done

  local cache_existed=no status=0 network_before network_after
  [[ -e $CNI_CACHE_DIR ]] && cache_existed=yes
  network_before=$(machine_network_state)

  (
    cd "$REPO_ROOT"
    CONTAINERD_CNI_SUBNET=$E2E_SUBNET CONTAINERD_CNI_BRIDGE=$E2E_BRIDGE \
      go test -exec "$REPO_ROOT/hack/netns-exec.sh" -count=1 -v -timeout 20m "$@" ./test/e2e/...
  ) || status=$?

  # The suite removes its pods, and with them their cache entries, so a folder this run created
  # is empty unless a removal failed.
  if [[ $cache_existed == no && -e $CNI_CACHE_DIR ]]; then
    rmdir "$CNI_CACHE_DIR/results" 2>/dev/null || true
    rmdir "$CNI_CACHE_DIR" 2>/dev/null ||
      log "warning: $CNI_CACHE_DIR was created by this run and is not empty, so it stays: $(find "$CNI_CACHE_DIR" -mindepth 1 | head -n 5 | tr '\n' ' ')"
  fi

  network_after=$(machine_network_state)
  if [[ $network_after != "$network_before" ]]; then
    log "error: the network namespace of hack/e2e.sh changed during the run, although the suite ran in a new one"
    log "before: ${network_before//$'\n'/; }"
    log "after: ${network_after//$'\n'/; }"
    status=1
  fi
  return "$status"
}

main "$@"
