#!/usr/bin/env bash
# Runs hack/generate.sh in the work tree and fails when a generated file differs from the
# committed one or is not committed at all, which happens when API types or markers changed
# without make generate.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

generated=(':(glob)api/**/zz_generated.*.go' config/crd/bases config/rbac/role.yaml charts/reaper/files)

cd "$REPO_ROOT"
hack/generate.sh
changed=$(git status --porcelain -- "${generated[@]}")
if [[ -n $changed ]]; then
  log "make generate changed these files:"
  echo "$changed" >&2
  die "generated files are out of date. Run make generate and commit the result."
fi
log "generated files are up to date"
