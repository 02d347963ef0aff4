#!/usr/bin/env bash
# Usage: hack/containerd-down.sh DIR
#
# Tears down what hack/containerd-up.sh DIR started: removes every CRI pod, stops containerd,
# kills the shims left under DIR with all their descendants, removes the cgroups of runc
# containers they left, unmounts everything under DIR and removes DIR. Each step also works after
# a failed or partial start, and a missing DIR is not an error, so it is safe to run twice.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

readonly STOP_TIMEOUT_SECONDS=10

# pid_with_arg FILE ARG prints the PID in FILE if that process runs with the argument ARG, so a
# PID that the kernel has given to another process is left alone. It prints nothing otherwise.
pid_with_arg() {
  local pid=""
  [[ -f $1 ]] && pid=$(<"$1")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 0
  if tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "$2"; then
    echo "$pid"
  fi
}

# containerd_pid prints the PID of the containerd serving DIR, or nothing.
containerd_pid() { pid_with_arg "$DIR/containerd.pid" "$DIR/config.toml"; }

remove_pods() {
  [[ -n $(containerd_pid) && -f $DIR/crictl.yaml ]] || return 0
  # --force stops each pod and its containers before removing them.
  timeout 120 "$(crictl_bin)/crictl" --config "$DIR/crictl.yaml" rmp --all --force >/dev/null ||
    log "warning: removing the CRI pods failed; their shims are killed below"
}

# wait_gone SECONDS PID...: waits until every PID has exited; fails after SECONDS.
wait_gone() {
  local seconds=$1 attempt pid alive
  shift
  for ((attempt = 0; attempt < seconds * 10; attempt++)); do
    alive=0
    for pid in "$@"; do
      if running "$pid"; then
        alive=1
      fi
    done
    [[ $alive -eq 1 ]] || return 0
    sleep 0.1
  done
  return 1
}

# supervisor_pid prints the PID of the hack/supervise.sh loop that restarts the containerd of DIR,
# or nothing.
supervisor_pid() { pid_with_arg "$DIR/supervisor.pid" "$DIR/supervisor.stop"; }

# stop_supervisor creates the stop file of the CONTAINERD_SUPERVISE=1 loop, so the loop does not
# start containerd again after stop_containerd. The loop exits when containerd does.
stop_supervisor() {
  [[ -n $(supervisor_pid) ]] || return 0
  touch "$DIR/supervisor.stop"
}

wait_supervisor_gone() {
  local pid
  pid=$(supervisor_pid)
  [[ -n $pid ]] || return 0
  if ! wait_gone "$STOP_TIMEOUT_SECONDS" "$pid"; then
    log "hack/supervise.sh (PID $pid) still runs after containerd stopped; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

stop_containerd() {
  local pid
  pid=$(containerd_pid)
  [[ -n $pid ]] || return 0
  log "stopping containerd (PID $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  if ! wait_gone "$STOP_TIMEOUT_SECONDS" "$pid"; then
    log "containerd (PID $pid) still runs ${STOP_TIMEOUT_SECONDS}s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone 5 "$pid" || die "containerd (PID $pid) survived SIGKILL"
  fi
}

# is_dir_shim PID: succeeds when PID is a containerd shim with an argument under DIR (its
# -address or -bundle) or with its working directory, the bundle, under DIR.
is_dir_shim() {
  local pid=$1 arg cwd
  local -a args
  mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || return 1
  [[ ${#args[@]} -gt 0 && ${args[0]##*/} == containerd-shim-* ]] || return 1
  for arg in "${args[@]}"; do
    [[ $arg == "$DIR" || $arg == "$DIR"/* ]] && return 0
  done
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 1
  [[ $cwd == "$DIR" || $cwd == "$DIR"/* ]]
}

# descendants PID...: prints every descendant of the given PIDs, read from /proc/*/stat.
descendants() {
  local -A children=()
  local stat pid ppid rest child
  for stat in /proc/[0-9]*/stat; do
    # The command name in field 2 may contain spaces and parentheses, so parse after the last ')'.
    rest=$(cat "$stat" 2>/dev/null) || continue
    pid=${rest%% *}
    rest=${rest##*) }
    read -r _ ppid _ <<<"$rest"
    children[$ppid]+=" $pid"
  done

  local -a queue=("$@")
  while [[ ${#queue[@]} -gt 0 ]]; do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    for child in ${children[$pid]:-}; do
      echo "$child"
      queue+=("$child")
    done
  done
}

kill_shims() {
  local path pid
  local -a shims=() targets=()
  for path in /proc/[0-9]*; do
    pid=${path#/proc/}
    if is_dir_shim "$pid"; then
      shims+=("$pid")
    fi
  done
  [[ ${#shims[@]} -gt 0 ]] || return 0

  mapfile -t targets < <(descendants "${shims[@]}")
  targets+=("${shims[@]}")
  log "killing ${#shims[@]} shim(s) left under $DIR and their processes: ${targets[*]}"
  kill -KILL "${targets[@]}" 2>/dev/null || true
  wait_gone 5 "${targets[@]}" || log "warning: some of PIDs ${targets[*]} still run"
}

# mounts_under_dir prints the mount points at or under DIR, in /proc/self/mountinfo order.
mounts_under_dir() {
  local mount_point
  while read -r _ _ _ _ mount_point _; do
    # mountinfo escapes space, tab, newline and backslash as octal.
    mount_point=$(printf '%b' "$mount_point")
    if [[ $mount_point == "$DIR" || $mount_point == "$DIR"/* ]]; then
      echo "$mount_point"
    fi
  done </proc/self/mountinfo
}

unmount_all() {
  local -a mounts
  local i
  for _ in 1 2 3; do
    mapfile -t mounts < <(mounts_under_dir)
    [[ ${#mounts[@]} -gt 0 ]] || return 0
    # The newest mounts come last and may sit on top of earlier ones, so unmount in reverse.
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
      umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" || true
    done
  done
  mapfile -t mounts < <(mounts_under_dir)
  [[ ${#mounts[@]} -eq 0 ]] || die "still mounted after three passes: ${mounts[*]}"
}

# remove_runc_cgroups removes the cgroups that runc recorded for containers under DIR/runc. runc
# removes them itself on a normal delete, so this matters only after a shim was killed.
remove_runc_cgroups() {
  local state path
  for state in "$DIR"/runc/*/*/state.json; do
    [[ -f $state ]] || continue
    if ! command -v jq >/dev/null; then
      log "warning: jq is missing, so the cgroups listed in $state stay; run hack/install-deps.sh"
      return
    fi
    while read -r path; do
      [[ $path == /sys/fs/cgroup/* && -d $path ]] || continue
      rmdir "$path" 2>/dev/null || log "warning: cannot remove cgroup $path"
    done < <(jq -r '.cgroup_paths // {} | .[]' "$state")
  done
}

# remove_k8s_cgroups removes the empty /k8s.io cgroup of every hierarchy, the parent of the
# cgroups of pods without a cgroup parent, unless it existed before containerd-up.
remove_k8s_cgroups() {
  [[ -f $DIR/.k8s-cgroup-created ]] || return 0
  local dir
  for dir in /sys/fs/cgroup/k8s.io /sys/fs/cgroup/*/k8s.io; do
    [[ -d $dir ]] || continue
    rmdir "$dir" 2>/dev/null || log "warning: cgroup $dir is not empty; it stays"
  done
}

# remove_default_state removes the empty /run/containerd/s and /run/containerd that runc shims
# older than containerd 2.3 create for their sockets, unless they existed before containerd-up.
remove_default_state() {
  [[ -f $DIR/.default-state-created ]] || return 0
  rmdir /run/containerd/s 2>/dev/null || true
  rmdir /run/containerd 2>/dev/null || true
}

main() {
  [[ $# -eq 1 && $1 == /* ]] || die "usage: $0 DIR (the absolute path given to containerd-up.sh)"
  DIR=${1%/}
  if [[ ! -e $DIR ]]; then
    log "$DIR does not exist; nothing to tear down"
    return
  fi
  if [[ -d $DIR && -z $(ls -A "$DIR") ]]; then
    rmdir "$DIR"
    log "removed the empty $DIR"
    return
  fi
  [[ -f $DIR/.containerd-up ]] || die "$DIR has no .containerd-up file, so containerd-up.sh did not create it; not touching it"
  require_root

  remove_pods
  stop_supervisor
  stop_containerd
  wait_supervisor_gone
  kill_shims
  remove_runc_cgroups
  remove_default_state
  remove_k8s_cgroups
  unmount_all
  # --one-file-system keeps rm from descending into anything still mounted under DIR.
  rm -rf --one-file-system "$DIR"
  log "removed $DIR"
}

main "$@"
