#!/usr/bin/env bash
# Generates code and manifests from the markers under api/ and controllers/ with
# controller-gen, which it builds at its pinned version into the cache. It writes the
# deep-copy functions (api/*/zz_generated.deepcopy.go), the CRDs (config/crd/bases) and the
# controller's ClusterRole (config/rbac/role.yaml) from the +kubebuilder:rbac markers, and copies the
# CRDs and the ClusterRole into charts/reaper/files with hack/chart-sync.sh.
# --build-only builds controller-gen and generates nothing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

build_controller_gen() {
  local dir
  dir=$(controller_gen_bin)
  [[ -x $dir/controller-gen ]] && return
  log "building controller-gen $CONTROLLER_GEN_VERSION into $dir"
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  GOBIN="$dir.tmp" CGO_ENABLED=0 go install -trimpath \
    "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

# generate removes the old outputs first, because controller-gen leaves the file of a
# removed type in place.
generate() {
  cd "$REPO_ROOT"
  rm -f api/*/zz_generated.deepcopy.go config/crd/bases/*.yaml config/rbac/role.yaml
  "$(controller_gen_bin)/controller-gen" \
    object crd rbac:roleName=reaper-controller \
    paths=./api/... paths=./controllers/... \
    output:crd:artifacts:config=config/crd/bases \
    output:rbac:artifacts:config=config/rbac
  hack/chart-sync.sh
}

build_controller_gen
if [[ ${1:-} != --build-only ]]; then
  generate
fi
