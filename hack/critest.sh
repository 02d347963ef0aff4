#!/usr/bin/env bash
# Runs the CRI validation suite critest against a private containerd, once with the reaper
# runtime handler and once with the default runc handler, one spec at a time, and prints the two
# results side by side. Fails when a spec fails under reaper that hack/critest/expected-failures.txt
# does not list. docs/compatibility.md explains each listed spec.
#
# Builds what is missing first: critest into the cache, and the images that critest pulls, which a
# registry on 127.0.0.1 serves to containerd (see hack/critest/images.sh).
# The run itself happens in new network, IPC, UTS, mount and PID namespaces (see
# hack/critest/run.sh). The reports and logs of the last run stay in .cache/critest-results.
#
# CRITEST_FLAGS passes more flags to both critest runs, separated by spaces, such as
# CRITEST_FLAGS=-ginkgo.focus=Streaming to run only the specs whose names match.
#
# Needs root, the components of `make components` (including the CNI plugins) and the binaries of
# `make build`.
set -euo pipefail
source "$(dirname "$0")/critest/lib.sh"

main() {
  require_root
  command -v unshare >/dev/null || die "unshare is missing; run hack/install-deps.sh (Debian package util-linux)"
  "$CRITEST_DIR/build.sh"
  "$CRITEST_DIR/images.sh"

  local results work status=0
  results=$(critest_results_dir)
  rm -rf "$results"
  mkdir -p "$results"
  # containerd-up.sh allows at most 36 characters for its folder, WORK/c.
  work=$(mktemp -d /tmp/rprc.XXXXXX)
  # run.sh checks that each of its namespaces differs from these.
  CRITEST_HOST_NAMESPACES=$(readlink /proc/self/ns/{net,ipc,uts,mnt,pid} | tr '\n' ' ')
  export CRITEST_HOST_NAMESPACES
  # run.sh becomes PID 1 of the new PID namespace: when it exits, the kernel kills every process
  # left in it. The new mount namespace gets its own /proc and propagates no mount to the host.
  unshare --net --ipc --uts --mount --propagation private --pid --fork --mount-proc -- \
    "$CRITEST_DIR/run.sh" "$work" "$results" || status=$?
  rmdir "$work" 2>/dev/null || true
  [[ $status -eq 0 ]] || die "the critest run failed with status $status before both handlers ran; see the logs in $results"

  "$CRITEST_DIR/report.sh" "$results"
}

main "$@"
