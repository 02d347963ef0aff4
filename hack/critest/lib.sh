#!/usr/bin/env bash
# Shared settings for hack/critest.sh and the scripts beside this file: the pinned critest version
# and its cache folders. Source it: it sources hack/lib.sh, which pins the CNI plugins, and runs
# nothing.

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

CRITEST_VERSION=${CRITEST_VERSION:-v1.37.0}

CRITEST_DIR=$REPO_ROOT/hack/critest
# The specs that may fail, and the specs that are not run, each with the handlers it applies to.
# docs/compatibility.md gives the reasons.
# shellcheck disable=SC2034 # the scripts that source this file use them
EXPECTED_FAILURES=$CRITEST_DIR/expected-failures.txt
# shellcheck disable=SC2034
SKIPPED_SPECS=$CRITEST_DIR/skipped-specs.txt

critest_bin() { echo "$CACHE_DIR/critest-$CRITEST_VERSION/bin"; }
# The registry and dirimage commands from hack/tools, rebuilt on every run.
critest_tools_bin() { echo "$CACHE_DIR/critest-tools"; }
# The OCI image layout holding every image critest pulls, built by hack/critest/images.sh.
critest_images_layout() { echo "$CACHE_DIR/critest-images/layout"; }
# Debian's busybox binary, which run.sh adds to the host's PATH for the run (see run.sh).
critest_busybox() { echo "$CACHE_DIR/critest-images/busybox"; }
critest_results_dir() { echo "$CACHE_DIR/critest-results"; }
