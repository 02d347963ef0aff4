#!/usr/bin/env bash
# Usage: hack/e2e-cluster.sh [GO TEST FLAG...]
#
# Runs the suite of test/cluster: Reaper installed by Helm on a real single-node cluster of
# hack/cluster-up.sh, from `helm install` through workloads, `helm upgrade` and `helm uninstall`.
#
# The cluster starts with CLUSTER_REAPER=none, so containerd serves no Reaper handler until the
# chart's agent registers it. The script imports three images into the cluster's containerd:
# reaper:VERSION from `make image`, reaper:NEXT built here from the same sources with another
# version, for the upgrade, and the httpget image of hack/images.sh. The suite runs in the
# cluster's network namespace, where the API server listens. Afterwards the cluster is torn down
# and the host must be as before, as in hack/cluster-smoke.sh. The last line counts the suite's
# tests: "N passed, N failed".
#
# The flags go to go test after -count=1 -v -timeout 25m. Every step needs the helm install
# step, so a -run filter keeps it, such as -run 'TestReaper/(helm_install|job)'.
# CLUSTER_KEEP=1 leaves the cluster running after the suite, for a look with DIR/kubectl.
#
# Needs root, everything hack/cluster-up.sh needs, helm (hack/helm.sh) and the image of
# `make image`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cluster-lib.sh"
source "$(dirname "$0")/kubernetes.sh"

VERSION=${VERSION:-$(git -C "$REPO_ROOT" describe --tags --always --dirty 2>/dev/null || echo dev)}
readonly NEXT_VERSION=$VERSION-next

# build_next_image builds the binaries again with NEXT_VERSION into WORK/bin and makes the image
# reaper:NEXT_VERSION of them.
build_next_image() {
  (cd "$REPO_ROOT" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-X reaper.dev/reaper/shim.Version=$NEXT_VERSION" -o "$WORK/bin/" ./cmd/...)
  VERSION=$NEXT_VERSION IMAGE_BIN_DIR=$WORK/bin "$REPO_ROOT/hack/image.sh"
}

# run_suite runs test/cluster in the cluster's network namespace and writes its verbose output
# to WORK/output.txt as well as to stdout. It returns go test's exit status.
run_suite() {
  local helm status=0
  helm=$("$REPO_ROOT/hack/helm.sh")
  write_reaper_values "$DIR" "$VERSION" "$WORK/values.yaml"
  (
    cd "$REPO_ROOT"
    CLUSTER_DIR=$DIR CLUSTER_KUBECTL=$(kubernetes_command_bin kubectl)/kubectl CLUSTER_HELM=$helm \
      CLUSTER_VALUES=$WORK/values.yaml REAPER_VERSION=$VERSION REAPER_NEXT_VERSION=$NEXT_VERSION \
      PLACEHOLDER_IMAGE=$PLACEHOLDER_IMAGE HTTPGET_IMAGE=$HTTPGET_IMAGE \
      go test -exec "nsenter --net=/run/netns/$NETNS --" -count=1 -v -timeout 25m "$@" ./test/cluster/...
  ) 2>&1 | tee "$WORK/output.txt" || status=$?
  return "$status"
}

# print_counts prints "N passed, N failed" for the subtests of the suite in WORK/output.txt. A
# failure outside any subtest, such as a build error, counts as one failed test.
print_counts() {
  local status=$1 passed failed
  passed=$(grep -c '^    --- PASS: ' "$WORK/output.txt" || true)
  failed=$(grep -c '^    --- FAIL: ' "$WORK/output.txt" || true)
  if [[ $status -ne 0 && $failed -eq 0 ]]; then
    failed=1
  fi
  echo "$passed passed, $failed failed"
}

# on_exit tears the cluster down unless CLUSTER_KEEP=1, removes WORK, and prints the counts as
# the last line, with a failure of the set-up counted as one failed test.
on_exit() {
  local status=$?
  if [[ ${CLUSTER_KEEP:-0} == 1 ]]; then
    log "the cluster keeps running: run kubectl as $DIR/kubectl ARGS; remove it with hack/cluster-down.sh $DIR"
  else
    [[ -f $DIR/netns ]] && NETNS=$(<"$DIR/netns")
    "$REPO_ROOT/hack/cluster-down.sh" "$DIR" || status=1
    if [[ -n ${NETNS:-} ]]; then
      (check_clean) || status=1
    fi
  fi
  rm -rf "$WORK"
  if [[ -z ${COUNTS:-} ]]; then
    log "error: the set-up failed before the suite ran"
    COUNTS="0 passed, 1 failed"
  fi
  echo "$COUNTS"
  exit "$status"
}

main() {
  require_root
  record_host_state
  DIR=$(mktemp -u /tmp/rce.XXXX)
  WORK=$(mktemp -d)
  trap on_exit EXIT

  [[ -f $(reaper_bin)/images/reaper-$VERSION.tar ]] ||
    die "$(reaper_bin)/images/reaper-$VERSION.tar is missing; run make image"
  build_next_image
  CLUSTER_REAPER=none "$REPO_ROOT/hack/cluster-up.sh" "$DIR"
  NETNS=$(<"$DIR/netns")
  import_image "$DIR" "$(reaper_bin)/images/reaper-$VERSION.tar"
  import_image "$DIR" "$(reaper_bin)/images/reaper-$NEXT_VERSION.tar"
  import_image "$DIR" "$(httpget_image_tar)"

  local status=0
  run_suite "$@" || status=$?
  COUNTS=$(print_counts "$status")
  return "$status"
}

main "$@"
