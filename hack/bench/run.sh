#!/usr/bin/env bash
# Usage: hack/bench/run.sh [BENCH FLAGS]
#
# Compares the reaper and runc runtime handlers on one private containerd. It starts containerd
# with hack/containerd-up.sh in a new directory DIR=/tmp/rbench.XXXX and builds hack/bench and
# its sleeper into DIR/bench. bench then prints a table and writes docs/benchmarks.md. At the
# end, also after a failure or Ctrl-C, hack/containerd-down.sh tears down DIR, and this script
# removes the pods' parent cgroup /reaper-bench-XXXX.
#
# Flags go to bench, such as -samples 5 or -output FILE. `go run ./hack/bench -help` lists them.
#
# Needs root, the components from `make components` and the binaries from `make build`.
# BENCH_COMMAND, if set, is the command line that the report names (the Makefile sets it).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

DIR=""
CGROUP_PARENT=""

cleanup() {
  local status=$?
  [[ -n $DIR ]] || exit "$status"
  "$REPO_ROOT/hack/containerd-down.sh" "$DIR" || status=1
  remove_cgroups || status=1
  exit "$status"
}

# cgroup_mounts prints the mount point of every cgroup and cgroup2 file system. In
# /proc/self/mountinfo the file system type follows the "-" field.
cgroup_mounts() {
  awk '{
    for (i = 7; i < NF; i++) {
      if ($i == "-") {
        if ($(i + 1) == "cgroup" || $(i + 1) == "cgroup2") print $5
        break
      }
    }
  }' /proc/self/mountinfo
}

# remove_cgroups removes CGROUP_PARENT and the pod cgroups under it in every hierarchy. The
# shims remove the containers' cgroups, but the pod cgroups above them stay.
remove_cgroups() {
  local mount_point dir failed=0
  while read -r mount_point; do
    dir=$mount_point$CGROUP_PARENT
    [[ -d $dir ]] || continue
    # -depth lists children before their parent, and rmdir removes only empty cgroups.
    if ! find "$dir" -depth -type d -exec rmdir {} +; then
      log "warning: cannot remove cgroup $dir"
      failed=1
    fi
  done < <(cgroup_mounts)
  return "$failed"
}

main() {
  require_root
  DIR=$(mktemp -d /tmp/rbench.XXXX)
  CGROUP_PARENT=/reaper-bench-${DIR##*.}
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  "$REPO_ROOT/hack/containerd-up.sh" "$DIR"
  mkdir "$DIR/bench"
  (cd "$REPO_ROOT" && CGO_ENABLED=0 go build -trimpath -o "$DIR/bench/" ./hack/bench ./hack/bench/sleeper)

  log "running the benchmark against $DIR; Ctrl-C stops it and tears down"
  "$DIR/bench/bench" -dir "$DIR" -sleeper "$DIR/bench/sleeper" -runc "$(runc_bin)/runc" \
    -cgroup-parent "$CGROUP_PARENT" -output "$REPO_ROOT/docs/benchmarks.md" \
    -command "${BENCH_COMMAND:-hack/bench/run.sh${*:+ $*}}" "$@"
}

main "$@"
