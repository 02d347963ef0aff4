#!/usr/bin/env bash
# Runs go vet, a gofmt check and golangci-lint (built at its pinned version into the cache, with
# the linters listed in .golangci.yml). Exits non-zero when any of them reports a problem.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

build_golangci_lint() {
  local dir
  dir=$(golangci_lint_bin)
  [[ -x $dir/golangci-lint ]] && return
  log "building golangci-lint $GOLANGCI_LINT_VERSION into $dir"
  mkdir -p "$dir.tmp"
  GOBIN="$dir.tmp" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-X main.version=${GOLANGCI_LINT_VERSION#v}" \
    "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

check_gofmt() {
  local unformatted
  local -a dirs
  mapfile -t dirs < <(go list -f '{{.Dir}}' ./...)
  unformatted=$(gofmt -l "${dirs[@]}")
  if [[ -n $unformatted ]]; then
    log "gofmt would change these files; run gofmt -w on them:"
    echo "$unformatted" >&2
    return 1
  fi
}

main() {
  cd "$REPO_ROOT"
  local status=0
  go vet ./... || status=1
  check_gofmt || status=1
  build_golangci_lint
  "$(golangci_lint_bin)/golangci-lint" run ./... || status=1
  return "$status"
}

if [[ ${1:-} == --build-only ]]; then
  build_golangci_lint
else
  main
fi
