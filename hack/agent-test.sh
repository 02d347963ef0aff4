#!/usr/bin/env bash
# Usage: hack/agent-test.sh [go test flags, such as -run TestDriftRepaired]
#
# Runs the node agent's suite (test/agent): the agent of reaper-installer against envtest's
# real kube-apiserver and etcd, with Reaper's CRD from config/crd/bases, on hosts whose
# containerd is a real private one under a supervisor loop, restarted by the signal method.
# Builds the pinned containerd, etcd and kube-apiserver into the cache first; a build
# already there is skipped. Needs root, because containerd runs as root.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require_root
"$REPO_ROOT/hack/build-components.sh"
assets=$("$REPO_ROOT/hack/envtest-bins.sh")

cd "$REPO_ROOT"
KUBEBUILDER_ASSETS="$assets" AGENT_CONTAINERD="$(containerd_bin)/containerd" \
  go test -count=1 -v -timeout 15m "$@" ./test/agent/...
