#!/usr/bin/env bash
# Usage: hack/containerd-up.sh DIR
#
# Starts a private containerd with CRI whose config, state, sockets and logs live under DIR,
# registers the Reaper runtime handler through bin/reaper-installer, and imports the local pause
# and placeholder images. Outside DIR it uses the binaries in the cache, creates cgroups, and
# CNI may write /var/lib/cni/results, which containerd cannot move. Stop it and remove DIR with hack/containerd-down.sh DIR.
#
# Files written in DIR:
#   config.toml          root config (schema version 3), imports DIR/conf.d/*.toml
#   conf.d/reaper.toml   drop-in written by `reaper-installer install`: handlers reaper and
#                        reaper-protected
#   reaper-bin/          the installed containerd-shim-reaper-v2 and reaper-runtime
#   crictl.yaml          crictl config: `crictl --config DIR/crictl.yaml ...`
#   containerd.log       containerd's stdout and stderr
#   containerd.pid       containerd's PID, written as soon as it starts
#   supervisor.pid       with CONTAINERD_SUPERVISE=1, the PID of the loop that restarts containerd
#   env                  KEY=VALUE lines, listed in write_env; `set -a; . DIR/env; set +a` exports them
#   cni/net.d/           CNI network configs, such as the bridge network of CONTAINERD_CNI_SUBNET
#   cni/ipam/            host-local's address leases for that bridge network
#
# Running it again while that containerd runs only imports the images again and rewrites env.
#
# Optional environment, for callers that bring their own registry hosts or CNI network:
#   CONTAINERD_CERTS_DIR     registry hosts folder (hosts.toml files) to use instead of DIR/certs.d
#   CONTAINERD_CNI_BIN_DIR   CNI plugin folder to use instead of DIR/cni/bin, or instead of the
#                            cached plugins of hack/build-components.sh with CONTAINERD_CNI_SUBNET
#   CONTAINERD_CNI_CONF_DIR  CNI network config folder to use instead of DIR/cni/net.d
#   CONTAINERD_CNI_SUBNET    an IPv4 subnet, such as 10.88.77.0/24, for a CNI bridge network that
#                            the script writes to the CNI config folder. host-local keeps its
#                            address leases in DIR/cni/ipam. The bridge plugin changes the network
#                            namespace containerd runs in, so the script accepts this option only
#                            in a namespace whose sole interface is lo, such as the new one that
#                            hack/e2e.sh runs the suite in.
#   CONTAINERD_CNI_BRIDGE    the name of that network's bridge (default reaper0)
#   CONTAINERD_REAPER        "install" (default) registers the Reaper handlers with
#                            bin/reaper-installer before the start; "none" leaves containerd
#                            without them, for a caller that installs Reaper itself, such as the
#                            agent of a Helm install
#   CONTAINERD_SUPERVISE     "1" runs containerd under hack/supervise.sh, which starts it again
#                            whenever it exits, as systemd would; DIR/supervisor.pid holds the
#                            loop's PID and DIR/containerd.pid the current containerd's
#
# Needs root, the components from hack/build-components.sh, the images from hack/images.sh and
# the binaries from `make build`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# containerd v2.4.2 rejects a shim socket_dir longer than 42 characters on Linux and 38 on other
# Unix systems (core/runtime/v2/socket_*.go). DIR/s keeps to the smaller limit, so DIR can have
# at most 36.
readonly MAX_DIR_LENGTH=36
readonly READY_TIMEOUT_SECONDS=20
# The name of the CNI network that CONTAINERD_CNI_SUBNET requests. host-local keeps its leases in
# a folder of this name under DIR/cni/ipam.
readonly CNI_NETWORK=reaper-bridge
# Linux limits interface names to 15 bytes (IFNAMSIZ - 1).
readonly MAX_BRIDGE_NAME_LENGTH=15

usage() { die "usage: $0 DIR (an absolute path of at most $MAX_DIR_LENGTH characters, such as /tmp/rpr.XXXX)"; }

check_dir() {
  [[ $DIR == /* ]] || usage
  [[ ${#DIR} -le $MAX_DIR_LENGTH ]] || die "DIR $DIR has ${#DIR} characters, the maximum is $MAX_DIR_LENGTH so that the shim socket directory DIR/s stays within 38"
  if [[ -e $DIR && ! -f $DIR/.containerd-up ]] && [[ -n $(ls -A "$DIR") ]]; then
    die "$DIR exists, is not empty and was not made by $0; choose a new or empty directory"
  fi
}

check_inputs() {
  local file
  for file in "$(containerd_bin)/containerd" "$(containerd_bin)/ctr" "$(containerd_bin)/containerd-shim-runc-v2" \
    "$(runc_bin)/runc" "$(crictl_bin)/crictl"; do
    [[ -x $file ]] || die "$file is missing; run hack/build-components.sh"
  done
  for file in "$(pause_image_tar)" "$(placeholder_image_tar)"; do
    [[ -f $file ]] || die "$file is missing; run hack/images.sh"
  done
  [[ -x $(reaper_bin)/reaper-installer ]] || die "$(reaper_bin)/reaper-installer is missing; run make build"
}

cni_bin_dir() {
  if [[ -n ${CONTAINERD_CNI_BIN_DIR:-} ]]; then
    echo "$CONTAINERD_CNI_BIN_DIR"
  elif [[ -n ${CONTAINERD_CNI_SUBNET:-} ]]; then
    cni_plugins_bin
  else
    echo "$DIR/cni/bin"
  fi
}

# cni_bin_setting prints the CNI plugin folder setting of a schema version 3 config. containerd
# v2.0.14 reads only bin_dir there, v2.4.2 only bin_dirs, and v2.2.9 either.
cni_bin_setting() {
  if [[ $CONTAINERD_VERSION == v2.0.* ]]; then
    echo "bin_dir = \"$(cni_bin_dir)\""
  else
    echo "bin_dirs = [\"$(cni_bin_dir)\"]"
  fi
}

cni_conf_dir() { echo "${CONTAINERD_CNI_CONF_DIR:-$DIR/cni/net.d}"; }
cni_bridge() { echo "${CONTAINERD_CNI_BRIDGE:-reaper0}"; }

# check_cni_network fails unless the bridge network that CONTAINERD_CNI_SUBNET requests is valid
# and may change the network namespace the script runs in. A namespace whose sole interface is lo
# has no connection to any network, so a bridge there cannot disturb one. A machine's own
# namespace has at least one other interface.
check_cni_network() {
  [[ -n ${CONTAINERD_CNI_SUBNET:-} ]] || return 0
  local subnet=$CONTAINERD_CNI_SUBNET bridge interfaces plugin
  bridge=$(cni_bridge)
  [[ $subnet =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]] ||
    die "CONTAINERD_CNI_SUBNET=$subnet is not an IPv4 subnet such as 10.88.77.0/24"
  [[ $bridge =~ ^[A-Za-z0-9_.-]+$ && ${#bridge} -le $MAX_BRIDGE_NAME_LENGTH ]] ||
    die "CONTAINERD_CNI_BRIDGE=$bridge is not a valid interface name of at most $MAX_BRIDGE_NAME_LENGTH letters, digits, '.', '-' or '_'"
  # /proc/net/dev lists the interfaces of the reader's network namespace after two header lines.
  interfaces=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' /proc/net/dev | paste -sd ' ')
  if [[ $interfaces != lo ]]; then
    die "CONTAINERD_CNI_SUBNET requests a CNI bridge network, whose plugin would add the bridge $bridge, addresses and routes to this network namespace, which has the interfaces $interfaces; run in a new network namespace, such as under unshare --net, as hack/e2e.sh does"
  fi
  for plugin in bridge host-local loopback; do
    [[ -x $(cni_bin_dir)/$plugin ]] || die "the CNI plugin $(cni_bin_dir)/$plugin is missing; run hack/build-components.sh"
  done
}

# write_cni_network writes the bridge network that CONTAINERD_CNI_SUBNET requests. The bridge
# gets the subnet's first address (isGateway), so the namespace containerd runs in reaches every
# pod IP. ipMasq is off, so the plugin adds no masquerade rule. containerd adds the pod's lo
# interface itself with the loopback plugin.
write_cni_network() {
  [[ -n ${CONTAINERD_CNI_SUBNET:-} ]] || return 0
  mkdir -p "$(cni_conf_dir)" "$DIR/cni/ipam"
  jq -n --arg name "$CNI_NETWORK" --arg bridge "$(cni_bridge)" --arg subnet "$CONTAINERD_CNI_SUBNET" \
    --arg data "$DIR/cni/ipam" '{
    cniVersion: "1.0.0",
    name: $name,
    plugins: [
      {
        type: "bridge", bridge: $bridge, isGateway: true, ipMasq: false,
        ipam: {type: "host-local", ranges: [[{subnet: $subnet}]], routes: [{dst: "0.0.0.0/0"}], dataDir: $data}
      }
    ]
  }' >"$(cni_conf_dir)/10-$CNI_NETWORK.conflist"
}

# containerd_running PID: succeeds when PID is a containerd started with DIR/config.toml.
containerd_running() {
  local pid=$1
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "$DIR/config.toml"
}

write_config() {
  mkdir -p "$DIR"/{conf.d,cni/bin,cni/net.d,cdi,certs.d,reaper-bin}
  if [[ $CONTAINERD_VERSION == v1.* ]]; then
    write_config_v2
  else
    write_config_v3
  fi
  write_crictl_config
  write_cni_network
}

# write_config_v2 writes the schema version 2 config that containerd 1.x reads. The installer
# then appends its handler tables to this file, because containerd 1.x would let a drop-in's CRI
# table replace this one whole.
write_config_v2() {
  cat >"$DIR/config.toml" <<EOF
version = 2
root = "$DIR/root"
state = "$DIR/state"

[grpc]
  address = "$DIR/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/opt"

[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = ["$DIR/cdi"]

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$(cni_bin_dir)"
    conf_dir = "$(cni_conf_dir)"

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${CONTAINERD_CERTS_DIR:-$DIR/certs.d}"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"

  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"

  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    BinaryName = "$(runc_bin)/runc"
    Root = "$DIR/runc"
    SystemdCgroup = false
EOF
}

write_config_v3() {
  cat >"$DIR/config.toml" <<EOF
version = 3
root = "$DIR/root"
state = "$DIR/state"
imports = ["$DIR/conf.d/*.toml"]

[grpc]
  address = "$DIR/containerd.sock"

[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "$DIR/s"

[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/opt"

[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "$PAUSE_IMAGE"

[plugins."io.containerd.cri.v1.images".registry]
  config_path = "${CONTAINERD_CERTS_DIR:-$DIR/certs.d}"

[plugins."io.containerd.cri.v1.runtime"]
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which root inside a container often lacks
  # (Docker drops it by default).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = ["$DIR/cdi"]

[plugins."io.containerd.cri.v1.runtime".cni]
  $(cni_bin_setting)
  conf_dir = "$(cni_conf_dir)"

[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  BinaryName = "$(runc_bin)/runc"
  Root = "$DIR/runc"
  # The systemd cgroup driver needs systemd as PID 1, which containers and CI machines often lack.
  SystemdCgroup = false
EOF

}

write_crictl_config() {
  cat >"$DIR/crictl.yaml" <<EOF
runtime-endpoint: unix://$DIR/containerd.sock
image-endpoint: unix://$DIR/containerd.sock
timeout: 30
pull-image-on-create: false
EOF
}

install_reaper() {
  "$(reaper_bin)/reaper-installer" install --containerd-config "$DIR/config.toml" \
    --install-dir "$DIR/reaper-bin" --source-dir "$(reaper_bin)" --link-dir "$DIR/path" \
    --lock-file "$DIR/installer.lock" --restart none
}

# reaper_mode prints CONTAINERD_REAPER, install by default, and fails on another value.
reaper_mode() {
  local mode=${CONTAINERD_REAPER:-install}
  [[ $mode == install || $mode == none ]] ||
    die "CONTAINERD_REAPER=$mode is not valid; use install (register the Reaper handlers) or none"
  echo "$mode"
}

start_containerd() {
  local pid
  local -a command=("$(containerd_bin)/containerd" --config "$DIR/config.toml" --log-level "${CONTAINERD_LOG_LEVEL:-info}")
  if [[ ${CONTAINERD_SUPERVISE:-0} == 1 ]]; then
    start_supervised "${command[@]}"
    return
  fi
  # setsid keeps a Ctrl-C in the caller's terminal away from containerd, so a teardown can still
  # remove the pods. Its output goes to a file, because a detached process that keeps the
  # caller's stdout pipe open makes the caller hang.
  # containerd finds a shim by runtime_path only when it starts it. After a restart it
  # reconnects to the containers of a pod by resolving containerd-shim-reaper-v2 on PATH,
  # where the installer linked it (DIR/path stands for /usr/local/bin).
  PATH="$DIR/path:$(containerd_bin):$(runc_bin):$PATH" setsid "${command[@]}" \
    </dev/null >>"$DIR/containerd.log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/containerd.pid"
  wait_ready "$pid"
  CONTAINERD_PID=$pid
}

# start_supervised COMMAND...: starts containerd under hack/supervise.sh and waits until the first
# containerd serves its socket.
start_supervised() {
  local attempt
  rm -f "$DIR/containerd.pid" "$DIR/supervisor.stop"
  PATH="$DIR/path:$(containerd_bin):$(runc_bin):$PATH" setsid "$REPO_ROOT/hack/supervise.sh" \
    "$DIR/containerd.pid" "$DIR/supervisor.stop" "$@" </dev/null >>"$DIR/containerd.log" 2>&1 &
  echo "$!" >"$DIR/supervisor.pid"
  for ((attempt = 0; attempt < 50; attempt++)); do
    [[ -s $DIR/containerd.pid ]] && break
    sleep 0.1
  done
  [[ -s $DIR/containerd.pid ]] || fail_start "hack/supervise.sh (PID $(<"$DIR/supervisor.pid")) did not start containerd"
  wait_ready "$(<"$DIR/containerd.pid")"
  CONTAINERD_PID=$(<"$DIR/containerd.pid")
  log "hack/supervise.sh (PID $(<"$DIR/supervisor.pid")) restarts containerd whenever it exits"
}

wait_ready() {
  local pid=$1 attempt
  for ((attempt = 0; attempt < READY_TIMEOUT_SECONDS * 5; attempt++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      fail_start "containerd (PID $pid) exited during start-up"
    fi
    if ctr_cmd version >/dev/null 2>&1; then
      containerd_running "$pid" || fail_start "PID $pid serves $DIR/containerd.sock but is not containerd with $DIR/config.toml"
      log "containerd $CONTAINERD_VERSION ready at $DIR/containerd.sock (PID $pid)"
      return
    fi
    sleep 0.2
  done
  kill "$pid" 2>/dev/null || true
  fail_start "containerd (PID $pid) was not ready after ${READY_TIMEOUT_SECONDS}s"
}

fail_start() {
  log "last lines of $DIR/containerd.log:"
  tail -n 40 "$DIR/containerd.log" >&2 || true
  die "$1; stop and clean up with hack/containerd-down.sh $DIR"
}

ctr_cmd() { "$(containerd_bin)/ctr" --address "$DIR/containerd.sock" "$@"; }
crictl_cmd() { "$(crictl_bin)/crictl" --config "$DIR/crictl.yaml" "$@"; }

import_images() {
  local tar output
  for tar in "$(pause_image_tar)" "$(placeholder_image_tar)"; do
    # ctr prints a cgroup v1 deprecation warning on every call, so show its output only on failure.
    if ! output=$(ctr_cmd -n k8s.io images import "$tar" 2>&1); then
      echo "$output" >&2
      die "ctr images import $tar failed; see also $DIR/containerd.log"
    fi
  done
}

# check_status fails unless `reaper-installer status` finds its files and reports that containerd
# serves the reaper handler.
check_status() {
  local status
  status=$("$(reaper_bin)/reaper-installer" status -o json --containerd-config "$DIR/config.toml" \
    --install-dir "$DIR/reaper-bin" --link-dir "$DIR/path" --containerd-socket "$DIR/containerd.sock") ||
    die "reaper-installer status failed"
  jq -e '.installed and (.servedHandlers | index("reaper")) and (.link | length > 0)' <<<"$status" >/dev/null ||
    die "reaper-installer status does not report an install that containerd serves: $status"
}

# check_handlers HANDLER...: fails unless CRI lists each runtime handler.
check_handlers() {
  local handlers handler
  # containerd 2.x lists runtimeHandlers (the default one without a name); containerd 1.7 lists
  # only its config, whose runtimes are the handlers.
  handlers=$(crictl_cmd info -o json | jq -r '
    [(.runtimeHandlers // [])[].name // empty] + ((.config.containerd.runtimes // {}) | keys) | .[]') ||
    die "crictl info failed; see $DIR/containerd.log"
  for handler in "$@"; do
    grep -qxF "$handler" <<<"$handlers" || die "CRI does not list the runtime handler $handler (it lists: ${handlers//$'\n'/ }); check $DIR/conf.d and $DIR/containerd.log"
  done
}

write_env() {
  cat >"$DIR/env.tmp" <<EOF
CONTAINERD_DIR=$DIR
CONTAINERD_ADDRESS=$DIR/containerd.sock
CONTAINERD_TTRPC_ADDRESS=$DIR/containerd.sock.ttrpc
CONTAINERD_NAMESPACE=k8s.io
CONTAINERD_PID=$CONTAINERD_PID
CONTAINERD_CONFIG=$DIR/config.toml
CONTAINERD_LOG=$DIR/containerd.log
CONTAINERD_STATE=$DIR/state
CONTAINERD_ROOT=$DIR/root
CONTAINERD_SHIM_SOCKET_DIR=$DIR/s
CONTAINER_RUNTIME_ENDPOINT=unix://$DIR/containerd.sock
CRI_CONFIG_FILE=$DIR/crictl.yaml
CRICTL=$(crictl_bin)/crictl
CTR=$(containerd_bin)/ctr
RUNC_ROOT=$DIR/runc
REAPER_INSTALL_DIR=$DIR/reaper-bin
REAPER_DROPIN=$DIR/conf.d/reaper.toml
PAUSE_IMAGE=$PAUSE_IMAGE
PLACEHOLDER_IMAGE=$PLACEHOLDER_IMAGE
EOF
  if [[ -n ${CONTAINERD_CNI_SUBNET:-} ]]; then
    cat >>"$DIR/env.tmp" <<EOF
CNI_NETWORK=$CNI_NETWORK
CNI_SUBNET=$CONTAINERD_CNI_SUBNET
CNI_BRIDGE=$(cni_bridge)
CNI_IPAM_DIR=$DIR/cni/ipam
EOF
  fi
  mv "$DIR/env.tmp" "$DIR/env"
}

main() {
  [[ $# -eq 1 ]] || usage
  DIR=${1%/}
  check_dir
  REAPER_MODE=$(reaper_mode)
  require_root
  check_inputs
  mkdir -p "$DIR"
  touch "$DIR/.containerd-up"
  # runc shims older than containerd 2.3 put their sockets in /run/containerd/s, whatever the
  # config sets. containerd-down.sh removes that folder again if it is new.
  [[ -e /run/containerd || -f $DIR/containerd.pid ]] || touch "$DIR/.default-state-created"
  # Pods without a cgroup parent get cgroups under /k8s.io, which neither runtime removes.
  compgen -G "/sys/fs/cgroup/*/k8s.io" >/dev/null || [[ -e /sys/fs/cgroup/k8s.io || -f $DIR/containerd.pid ]] ||
    touch "$DIR/.k8s-cgroup-created"

  local pid=""
  [[ -f $DIR/containerd.pid ]] && pid=$(<"$DIR/containerd.pid")
  if containerd_running "$pid"; then
    log "containerd already runs for $DIR (PID $pid)"
    CONTAINERD_PID=$pid
  else
    check_cni_network
    write_config
    [[ $REAPER_MODE == none ]] || install_reaper
    start_containerd
  fi

  import_images
  if [[ $REAPER_MODE == install ]]; then
    check_handlers runc reaper reaper-protected
    check_status
  else
    check_handlers runc
  fi
  write_env
  log "ready: run $(crictl_bin)/crictl --config $DIR/crictl.yaml, or load the settings with 'set -a; . $DIR/env; set +a' and run \$CRICTL"
}

main "$@"
