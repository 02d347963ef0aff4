#!/usr/bin/env bash
# Functions shared by the scripts that run a local cluster of hack/cluster-up.sh: the check that
# a teardown left the host as before, the image import and the Helm values of a Reaper install
# on that cluster. Source it after lib.sh; it defines functions and runs nothing.

# host_state prints what a cluster run leaves on the host outside its DIR unless cluster-down.sh
# removes it.
host_state() {
  local path
  for path in /var/lib/kubelet /var/log/containers /usr/libexec/kubernetes /run/xtables.lock /sys/fs/cgroup/*/kubepods; do
    [[ -e $path ]] && echo "exists: $path"
  done
  echo "vm.overcommit_memory=$(</proc/sys/vm/overcommit_memory)"
  echo "kernel.panic=$(</proc/sys/kernel/panic)"
  echo "kernel.panic_on_oops=$(</proc/sys/kernel/panic_on_oops)"
}

# shared_state prints the host paths that every private containerd on the machine may create, so
# a change there can come from another run and only gets a warning.
shared_state() {
  local path
  for path in /var/lib/cni /run/containerd /sys/fs/cgroup/*/k8s.io; do
    [[ -e $path ]] && echo "exists: $path"
  done
  return 0
}

# record_host_state keeps host_state and shared_state, for check_clean after the teardown.
record_host_state() {
  HOST_BEFORE=$(host_state)
  SHARED_BEFORE=$(shared_state)
}

# processes_under_dir prints the PID and command of every process with an argument or working
# directory under DIR.
processes_under_dir() {
  local path pid cwd
  for path in /proc/[0-9]*; do
    pid=${path#/proc/}
    cwd=$(readlink "$path/cwd" 2>/dev/null) || continue
    if [[ $cwd == "$DIR" || $cwd == "$DIR"/* ]] ||
      tr '\0' '\n' <"$path/cmdline" 2>/dev/null | grep -q "^$DIR\(/\|$\)"; then
      echo "$pid $(tr '\0' ' ' <"$path/cmdline" 2>/dev/null)"
    fi
  done
}

mounts_under_dir() {
  awk -v dir="$DIR" '$5 == dir || index($5, dir "/") == 1 { print $5 }' /proc/self/mountinfo
}

# check_clean fails unless no process, mount or file of the cluster in DIR is left, its network
# namespace NETNS is gone and host_state is as record_host_state saw it.
check_clean() {
  local failed=0 leftovers after

  leftovers=$(processes_under_dir)
  if [[ -n $leftovers ]]; then
    log "error: processes still refer to $DIR: ${leftovers//$'\n'/; }"
    failed=1
  fi
  leftovers=$(mounts_under_dir)
  if [[ -n $leftovers ]]; then
    log "error: still mounted under $DIR: ${leftovers//$'\n'/ }"
    failed=1
  fi
  if [[ -e $DIR ]]; then
    log "error: $DIR still exists"
    failed=1
  fi
  if ip netns list | grep -qw "$NETNS"; then
    log "error: network namespace $NETNS still exists"
    failed=1
  fi

  after=$(host_state)
  if [[ $after != "$HOST_BEFORE" ]]; then
    log "error: the host changed during the run"
    log "before: ${HOST_BEFORE//$'\n'/; }"
    log "after: ${after//$'\n'/; }"
    failed=1
  fi

  after=$(shared_state)
  if [[ $after != "$SHARED_BEFORE" ]]; then
    log "warning: paths that any private containerd may create changed during the run, possibly by another run on this machine"
    log "before: ${SHARED_BEFORE//$'\n'/; }"
    log "after: ${after//$'\n'/; }"
  fi
  [[ $failed -eq 0 ]] || die "the host is not clean after hack/cluster-down.sh $DIR"
  log "host clean: no process, mount or folder of $DIR left, and host paths, netns and sysctls as before"
}

# import_image DIR TAR: imports the image archive TAR into the containerd of the cluster in DIR,
# in the namespace that CRI uses.
import_image() {
  local output
  output=$("$(containerd_bin)/ctr" --address "$1/c/containerd.sock" -n k8s.io images import "$2" 2>&1) ||
    die "ctr images import $2 into the cluster's containerd failed: $output"
  log "imported $2 into the cluster's containerd"
}

# write_reaper_values DIR VERSION FILE: writes the Helm values of a Reaper install on the cluster
# in DIR to FILE. The image reaper:VERSION comes from `make image` and is imported, so it is
# never pulled. The node keeps containerd's files in DIR/c and has no systemd, so the agent
# mounts that folder, installs there, and restarts containerd by the signal method through the
# PID file of hack/supervise.sh.
write_reaper_values() {
  local dir=$1 version=$2 file=$3
  cat >"$file" <<VALUES
image:
  repository: reaper
  tag: "$version"
  pullPolicy: Never
agent:
  hostPaths:
    - $dir/c
  installDir: $dir/c/reaper-bin
  restartMethod: signal
  containerdConfig: $dir/c/config.toml
  containerdPIDFile: $dir/c/containerd.pid
  extraArgs:
    - --containerd-socket=$dir/c/containerd.sock
    - --link-dir=$dir/c/path
    - --lock-file=$dir/c/installer.lock
VALUES
}
