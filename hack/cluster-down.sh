#!/usr/bin/env bash
# Usage: hack/cluster-down.sh DIR
#
# Tears down what hack/cluster-up.sh DIR started. It stops the kubelet first, then the private
# containerd with hack/containerd-down.sh, then the control plane by the PIDs in DIR/pids. It
# unmounts everything in the private mount namespace and stops the process that keeps it alive.
# Deleting the network namespace also removes its iptables chains, the CNI bridge and the node address.
# Last it removes the host paths and cgroups listed in DIR/created, and DIR. Each step also works
# after a failed or partial start, and a missing DIR is not an error, so it is safe to run twice.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

readonly STOP_TIMEOUT_SECONDS=10

# component_pid NAME prints the PID in DIR/pids/NAME.pid if that process still runs with an
# argument under DIR, so a PID the kernel has given to another process is left alone.
component_pid() {
  local file=$DIR/pids/$1.pid pid
  [[ -f $file ]] || return 0
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] && running "$pid" || return 0
  if [[ $1 == mount-namespace ]]; then
    # The holder runs sleep infinity with no path argument; check that it is still in DIR's netns.
    [[ $(readlink "/proc/$pid/ns/net" 2>/dev/null) == "$(netns_id)" ]] && echo "$pid"
    return 0
  fi
  if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "^$DIR/"; then
    echo "$pid"
  fi
}

# netns_id prints the net:[INODE] link of DIR's network namespace, or nothing.
netns_id() {
  [[ -n $NETNS && -e /run/netns/$NETNS ]] || return 0
  nsenter --net="/run/netns/$NETNS" readlink /proc/self/ns/net 2>/dev/null || true
}

# stop NAME: sends SIGTERM to the component NAME, then SIGKILL after STOP_TIMEOUT_SECONDS.
stop() {
  local name=$1 pid attempt
  pid=$(component_pid "$name")
  [[ -n $pid ]] || return 0
  log "stopping $name (PID $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((attempt = 0; attempt < STOP_TIMEOUT_SECONDS * 10; attempt++)); do
    running "$pid" || return 0
    sleep 0.1
  done
  log "$name (PID $pid) still runs ${STOP_TIMEOUT_SECONDS}s after SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
  ! running "$pid" || die "$name (PID $pid) survived SIGKILL"
}

# in_namespaces COMMAND...: runs COMMAND in DIR's network and mount namespaces while their holder
# runs, otherwise in the caller's namespaces.
in_namespaces() {
  local holder
  holder=$(component_pid mount-namespace)
  if [[ -n $holder ]]; then
    nsenter --net="/proc/$holder/ns/net" --mount="/proc/$holder/ns/mnt" -- "$@"
  else
    "$@"
  fi
}

stop_containerd() {
  [[ -d $DIR/c ]] || return 0
  in_namespaces "$REPO_ROOT/hack/containerd-down.sh" "$DIR/c" ||
    log "warning: hack/containerd-down.sh $DIR/c failed; see its output above"
}

# unmount_in_namespace unmounts, in the private mount namespace, everything at or under DIR and
# the /proc/sys bind mounts. The kernel would drop them with the namespace, but the kubelet's
# volume mounts are unmounted first so that no process is left holding them.
unmount_in_namespace() {
  [[ -n $(component_pid mount-namespace) ]] || return 0
  # shellcheck disable=SC2016 # the inner script expands its own variables
  in_namespaces bash -c '
    for pass in 1 2 3; do
      mapfile -t mounts < <(awk -v dir="$1" '"'"'$5 == dir || index($5, dir "/") == 1 || index($5, "/proc/sys/") == 1 { print $5 }'"'"' /proc/self/mountinfo)
      [[ ${#mounts[@]} -gt 0 ]] || exit 0
      for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null || true
      done
    done
    echo "still mounted: ${mounts[*]}" >&2
    exit 1
  ' unmount "$DIR" || log "warning: some mounts in the private mount namespace stay until it ends"
}

delete_netns() {
  [[ -n $NETNS ]] || return 0
  if ip netns list | grep -qw "$NETNS"; then
    ip netns delete "$NETNS"
    log "deleted network namespace $NETNS"
  fi
}

# remove_cgroup PATH removes the cgroup PATH and its children, deepest first.
remove_cgroup() {
  local dir
  while read -r dir; do
    rmdir "$dir" 2>/dev/null || log "warning: cannot remove cgroup $dir"
  done < <(find "$1" -depth -type d 2>/dev/null)
}

remove_created() {
  [[ -f $DIR/created ]] || return 0
  local path
  while read -r path; do
    [[ -e $path ]] || continue
    case $path in
      /sys/fs/cgroup/*) remove_cgroup "$path" ;;
      /var/lib/cni)
        # libcni's result cache contains an entry per pod, so the folder is empty unless a pod
        # removal failed.
        find "$path" -depth -type d -empty -delete 2>/dev/null || true
        [[ ! -e $path ]] || log "warning: $path is not empty, so it stays"
        ;;
      *)
        rm -rf --one-file-system "$path"
        ;;
    esac
    [[ -e $path ]] || log "removed $path"
  done <"$DIR/created"
}

main() {
  [[ $# -eq 1 && $1 == /* ]] || die "usage: $0 DIR (the absolute path given to cluster-up.sh)"
  DIR=${1%/}
  if [[ ! -e $DIR ]]; then
    log "$DIR does not exist; nothing to tear down"
    return
  fi
  [[ -f $DIR/.cluster-up ]] || die "$DIR has no .cluster-up file, so cluster-up.sh did not create it; not touching it"
  require_root
  NETNS=""
  [[ -f $DIR/netns ]] && NETNS=$(<"$DIR/netns")

  # The kubelet goes first, so it does not restart the containers that containerd-down.sh removes.
  stop kubelet
  stop_containerd
  local name
  for name in kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd; do
    stop "$name"
  done
  unmount_in_namespace
  stop mount-namespace
  delete_netns
  remove_created
  rm -rf --one-file-system "$DIR"
  log "removed $DIR"
}

main "$@"
