#!/usr/bin/env bash
# Usage: hack/compat.sh [VERSION...]
#
# Runs the end-to-end CRI suite against each containerd version (default: COMPAT_VERSIONS in
# lib.sh), building each into the cache first. Each run goes through hack/e2e.sh, so it happens
# in a new network namespace with the suite's CNI bridge network. The runc timing test is left
# out, because the runc shims of older versions ignore the private socket folder. Ends with a line
# per version and "N passed, N failed" counted in versions.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require_root
versions=("$@")
[[ ${#versions[@]} -gt 0 ]] || read -r -a versions <<<"$COMPAT_VERSIONS"

passed=0 failed=0 results=()
for version in "${versions[@]}"; do
  CONTAINERD_VERSION=$version "$REPO_ROOT/hack/build-components.sh"

  log "running the CRI suite on containerd $version"
  if CONTAINERD_VERSION=$version "$REPO_ROOT/hack/e2e.sh" -timeout 15m -skip 'TestStartupTiming'; then
    passed=$((passed + 1))
    results+=("containerd $version: passed")
  else
    failed=$((failed + 1))
    results+=("containerd $version: failed")
  fi
done

printf '%s\n' "${results[@]}"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
