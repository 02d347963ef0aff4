#!/usr/bin/env bash
# Copies the generated manifests that the Helm chart renders into charts/reaper/files: the CRDs
# of config/crd/bases and the controller's ClusterRole config/rbac/role.yaml. Run it after make
# generate. With --check it copies nothing and fails when a copy differs from its source, which
# the chart tests also check.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CHART_FILES=$REPO_ROOT/charts/reaper/files

# pairs prints SOURCE COPY lines, paths relative to the repository root.
pairs() {
  local crd
  for crd in config/crd/bases/*.yaml; do
    echo "$crd charts/reaper/files/crds/$(basename "$crd")"
  done
  echo "config/rbac/role.yaml charts/reaper/files/rbac/controller-role.yaml"
}

# stale_copies prints the CRD copies whose source is gone.
stale_copies() {
  local copy
  for copy in "$CHART_FILES"/crds/*.yaml; do
    [[ -e $copy ]] || continue
    [[ -f $REPO_ROOT/config/crd/bases/$(basename "$copy") ]] || echo "${copy#"$REPO_ROOT"/}"
  done
}

check() {
  local source copy failed=0 stale
  while read -r source copy; do
    if ! cmp -s "$source" "$copy"; then
      log "$copy differs from $source"
      failed=1
    fi
  done < <(pairs)
  stale=$(stale_copies)
  if [[ -n $stale ]]; then
    log "copies without a source: $stale"
    failed=1
  fi
  [[ $failed -eq 0 ]] || die "the chart's copies of the generated manifests are out of date. Run hack/chart-sync.sh and commit the result."
  log "the chart's copies of the generated manifests are up to date"
}

sync() {
  local source copy stale
  stale=$(stale_copies)
  if [[ -n $stale ]]; then
    # shellcheck disable=SC2086 # one path a word
    rm -f $stale
  fi
  while read -r source copy; do
    mkdir -p "$(dirname "$copy")"
    cp "$source" "$copy"
  done < <(pairs)
  log "copied the generated manifests into charts/reaper/files"
}

cd "$REPO_ROOT"
case ${1:-} in
  --check) check ;;
  "") sync ;;
  *) die "usage: $0 [--check]" ;;
esac
