#!/usr/bin/env bash
# Usage: hack/installer-cases.sh
#
# Runs the installer tests that need a real containerd (test/installer):
# - loads each installed result of installer/testdata/golden: version 2 configs with containerd
#   v1.7.35 and CONTAINERD_VERSION, versions 3 and 4 with CONTAINERD_VERSION. Each must list the
#   Reaper handlers and keep the rest of `containerd config dump` as it was before the install.
# - installs with --restart signal into a private containerd under a supervisor loop, and into
#   one that rejects the drop-in, where the installer must restore the config.
# - installs with --restart systemd against systemd 252 as PID 1 of a new PID, mount and cgroup
#   namespace, on a cgroup2 folder of its own, with containerd as its unit.
# Builds the two containerd versions into the cache first. Needs root: each dump runs in a new
# mount namespace that shows the case as /etc/containerd, and containerd runs as root.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

readonly CONTAINERD_1X=v1.7.35

require_root
"$REPO_ROOT/hack/build-components.sh"
CONTAINERD_VERSION=$CONTAINERD_1X "$REPO_ROOT/hack/build-components.sh"

cd "$REPO_ROOT"
INSTALLER_CONTAINERD="$(containerd_bin)/containerd" \
  INSTALLER_CONTAINERD_1X="$(CONTAINERD_VERSION=$CONTAINERD_1X containerd_bin)/containerd" \
  go test -count=1 -v ./test/installer/...
