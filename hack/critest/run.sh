#!/usr/bin/env bash
# Usage: hack/critest/run.sh WORK RESULTS, started by hack/critest.sh as PID 1 of new network,
# IPC, UTS, mount and PID namespaces.
#
# Runs critest against a private containerd, once per runtime handler (reaper, then the default
# runc), one spec at a time, and writes each run's ginkgo JSON report and log to RESULTS. WORK is
# an empty folder for the registry, the CNI config and containerd, and the script removes it.
#
# The namespaces keep critest's changes off the machine. A reaper container is a process of
# these namespaces, not of a sandbox, so what critest expects a runtime to deny happens here:
# specs set the hostname, add mounts, create network devices and shared memory segments. The
# CNI bridge plugin adds a bridge and iptables rules and sets net.ipv4.ip_forward. All of that
# ends with the namespaces. Files are shared with the machine, so specs that write outside
# critest's temporary folders do not run under reaper (hack/critest/skipped-specs.txt).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

readonly HANDLERS=(reaper runc)
readonly REGISTRY_TIMEOUT_SECONDS=60
# A serial run of each handler took 40 to 90 seconds on a 2-core VM, so the limit only stops a
# run that hangs.
readonly CRITEST_TIMEOUT=30m
readonly CRITEST_STOP_SECONDS=60
# The network of non-hostNetwork pods. It exists only inside the private network namespace, so
# its subnet cannot clash with the machine's networks.
readonly CNI_NETWORK=reaper-critest
readonly CNI_SUBNET=10.88.0.0/16
# Programs of critest's busybox image that its specs call and that a reaper container finds
# missing or different on a Debian host, where the host's programs run. Most specs keep their
# container running with top, and Debian's procps top exits at once without a terminal ("top:
# failed tty get"). The capability specs call brctl and ping, which a Debian host without
# bridge-utils and iputils-ping lacks. run.sh adds busybox's applets of these names to TOOLS_DIR, the first folder of the
# images' PATH, in its own mount namespace only.
readonly BUSYBOX_TOOLS=(top brctl ping)
readonly TOOLS_DIR=/usr/local/sbin
# Programs that the test images start, and the PATH of those images. Under reaper a host program
# of the same name would run instead, as root and with the host's configuration, so none may
# exist on the host.
readonly IMAGE_PROGRAMS=(nginx httpd-foreground /usr/local/bin/nnp /pause)
readonly IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# A folder that a volume spec writes into when the volume is not mounted, as under reaper.
readonly VOLUME_ONLY_PATH=/mnt/tmpfs

usage() { die "usage: $0 WORK RESULTS; hack/critest.sh starts it in the namespaces it needs"; }

# check_namespaces fails unless this is PID 1 of a new PID namespace and each namespace differs
# from the one hack/critest.sh recorded in CRITEST_HOST_NAMESPACES.
check_namespaces() {
  local ns host
  local -a hosts
  [[ $$ -eq 1 && -n ${CRITEST_HOST_NAMESPACES:-} ]] ||
    die "$0 must run as PID 1 of the namespaces that hack/critest.sh creates; run hack/critest.sh"
  read -r -a hosts <<<"$CRITEST_HOST_NAMESPACES"
  for host in "${hosts[@]}"; do
    ns=${host%%:*}
    if [[ $(readlink "/proc/self/ns/$ns") == "$host" ]]; then
      die "$0 runs in the machine's $ns namespace $host; run hack/critest.sh, which creates new ones"
    fi
  done
}

check_image_only_paths() {
  local program found
  for program in "${IMAGE_PROGRAMS[@]}"; do
    if found=$(PATH=$IMAGE_PATH command -v "$program"); then
      die "$found exists on this host; under reaper critest would run it as root in place of the test image's $program, so run critest on a host without it"
    fi
  done
  if [[ -e $VOLUME_ONLY_PATH ]]; then
    die "$VOLUME_ONLY_PATH exists on this host; under reaper a critest volume spec would write into it, so run critest on a host without it"
  fi
}

# provide_busybox_tools mounts a read-only overlay on TOOLS_DIR that adds links named
# BUSYBOX_TOOLS to Debian's busybox, which runs the applet its link is named after, and keeps
# what the host has in TOOLS_DIR.
provide_busybox_tools() {
  local dir=$WORK/busybox-tools tool
  mkdir -p "$dir"
  cp "$(critest_busybox)" "$dir/busybox"
  for tool in "${BUSYBOX_TOOLS[@]}"; do
    ln -s busybox "$dir/$tool"
  done
  mount -t overlay critest-tools -o "lowerdir=$dir:$TOOLS_DIR" "$TOOLS_DIR"
  TOOLS_MOUNTED=yes
}

start_registry() {
  local attempt
  "$(critest_tools_bin)/registry" -layout "$(critest_images_layout)" -address 127.0.0.1:0 \
    -address-file "$WORK/registry.address" >"$RESULTS/registry.log" 2>&1 &
  REGISTRY_PID=$!
  for ((attempt = 0; attempt < REGISTRY_TIMEOUT_SECONDS * 10; attempt++)); do
    if [[ -s $WORK/registry.address ]]; then
      REGISTRY_ADDRESS=$(<"$WORK/registry.address")
      log "registry serves the critest images on $REGISTRY_ADDRESS (PID $REGISTRY_PID)"
      return
    fi
    kill -0 "$REGISTRY_PID" 2>/dev/null || die "the registry exited during start-up; see $RESULTS/registry.log"
    sleep 0.1
  done
  die "the registry wrote no address within ${REGISTRY_TIMEOUT_SECONDS}s; see $RESULTS/registry.log"
}

# write_registry_hosts sends every registry host to the local registry. server makes it the
# upstream of each host too, so containerd never falls back to the real one.
write_registry_hosts() {
  mkdir -p "$WORK/certs.d/_default"
  cat >"$WORK/certs.d/_default/hosts.toml" <<EOF
server = "http://$REGISTRY_ADDRESS"

[host."http://$REGISTRY_ADDRESS"]
  capabilities = ["pull", "resolve"]
EOF
}

write_cni_config() {
  mkdir -p "$WORK/net.d"
  jq -n --arg name "$CNI_NETWORK" --arg subnet "$CNI_SUBNET" --arg data "$WORK/cni-ipam" '{
    cniVersion: "1.0.0",
    name: $name,
    plugins: [
      {
        type: "bridge", bridge: "critest0", isGateway: true, ipMasq: false, hairpinMode: true,
        ipam: {type: "host-local", ranges: [[{subnet: $subnet}]], routes: [{dst: "0.0.0.0/0"}], dataDir: $data}
      },
      {type: "portmap", capabilities: {portMappings: true}}
    ]
  }' >"$WORK/net.d/10-$CNI_NETWORK.conflist"
}

start_containerd() {
  CONTAINERD_CERTS_DIR=$WORK/certs.d CONTAINERD_CNI_BIN_DIR=$(cni_plugins_bin) \
    CONTAINERD_CNI_CONF_DIR=$WORK/net.d "$REPO_ROOT/hack/containerd-up.sh" "$CONTAINERD_DIR"
}

# skip_args HANDLER prints one -ginkgo.skip flag and value per line for each spec that
# SKIPPED_SPECS lists for HANDLER. ginkgo matches the value against the suite description, a
# space and the spec's full name, so each value matches exactly one spec.
skip_args() {
  local handler=$1 spec
  while read -r spec; do
    printf '%s\n' -ginkgo.skip "^CRI validation $(regex_quote "$spec")\$"
  done < <(listed_specs "$SKIPPED_SPECS" "$handler")
}

# listed_specs FILE HANDLER prints the specs that FILE lists for HANDLER. Each line of FILE
# contains the handlers, such as reaper or reaper,runc, a space and the spec's full name.
listed_specs() {
  local file=$1 handler=$2 handlers spec
  while read -r handlers spec; do
    [[ -z $handlers || $handlers == \#* ]] && continue
    [[ ",$handlers," == *",$handler,"* ]] && echo "$spec"
  done <"$file"
}

# regex_quote prints its argument with every regular expression metacharacter escaped.
regex_quote() { sed 's/[][\.|$(){}?+*^]/\\&/g' <<<"$1"; }

# critest_args HANDLER REPORT prints the critest flags, one per line, for a run with HANDLER, or
# with containerd's default handler for runc, that writes its JSON report to REPORT.
critest_args() {
  local handler=$1 report=$2
  printf '%s\n' \
    -runtime-endpoint "unix://$CONTAINERD_DIR/containerd.sock" \
    -image-endpoint "unix://$CONTAINERD_DIR/containerd.sock" \
    -config "$CONTAINERD_DIR/crictl.yaml" \
    -ginkgo.no-color \
    -ginkgo.timeout "$CRITEST_TIMEOUT" \
    -ginkgo.json-report "$report"
  [[ $handler == runc ]] || printf '%s\n' -runtime-handler "$handler"
  local -a extra
  read -r -a extra <<<"${CRITEST_FLAGS:-}"
  [[ ${#extra[@]} -eq 0 ]] || printf '%s\n' "${extra[@]}"
  skip_args "$handler"
}

# critest_cmd ARGS...: runs critest in WORK. Temporary folders that specs leave behind land in
# WORK, which the teardown removes.
critest_cmd() { (cd "$WORK" && TMPDIR=$WORK/tmp "$(critest_bin)/critest" "$@"); }

# check_skips HANDLER runs critest with -ginkgo.dry-run and fails unless it would skip every spec
# that SKIPPED_SPECS lists for HANDLER: those specs change the machine, so a name that no longer
# matches must stop the run.
check_skips() {
  local handler=$1 spec state report=$WORK/dry-run-$1.json
  local -a args
  mapfile -t args < <(critest_args "$handler" "$report")
  critest_cmd "${args[@]}" -ginkgo.dry-run >"$RESULTS/dry-run-$handler.log" 2>&1 ||
    die "critest -ginkgo.dry-run with handler $handler failed; see $RESULTS/dry-run-$handler.log"
  while read -r spec; do
    state=$(jq -r --arg spec "$spec" '.[].SpecReports[]
      | select(.LeafNodeType == "It" and ((.ContainerHierarchyTexts // []) + [.LeafNodeText] | join(" ")) == $spec)
      | .State' "$report")
    case $state in
      skipped) ;;
      "") die "$SKIPPED_SPECS names a spec that critest $CRITEST_VERSION does not have: $spec" ;;
      *) die "critest would run the spec \"$spec\" under $handler although $SKIPPED_SPECS lists it (dry run state: $state)" ;;
    esac
  done < <(listed_specs "$SKIPPED_SPECS" "$handler")
}

# run_critest HANDLER runs every spec that is not skipped, one at a time. critest exits non-zero
# when a spec fails, and report.sh judges the results. critest runs in the background so that the
# INT and TERM traps fire while the script waits for it.
run_critest() {
  local handler=$1 status=0 start=$SECONDS
  local -a args
  check_skips "$handler"
  mapfile -t args < <(critest_args "$handler" "$RESULTS/$handler.json")
  log "running critest $CRITEST_VERSION with runtime handler $handler; log: $RESULTS/$handler.log"
  critest_cmd "${args[@]}" >"$RESULTS/$handler.log" 2>&1 &
  CRITEST_PID=$!
  wait "$CRITEST_PID" || status=$?
  CRITEST_PID=
  log "critest with handler $handler exited with status $status after $((SECONDS - start))s"
  remove_new_shm_segments
}

# stop_critest interrupts a critest run that is still going, as Ctrl-C would, and gives it time
# to remove its pods and unmount its temporary folders before it is killed.
stop_critest() {
  local attempt
  [[ -n ${CRITEST_PID:-} ]] || return 0
  kill -INT "$CRITEST_PID" 2>/dev/null || return 0
  for ((attempt = 0; attempt < CRITEST_STOP_SECONDS * 10; attempt++)); do
    kill -0 "$CRITEST_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$CRITEST_PID" 2>/dev/null; then
    log "critest (PID $CRITEST_PID) still runs ${CRITEST_STOP_SECONDS}s after SIGINT; sending SIGKILL"
    kill -KILL "$CRITEST_PID" 2>/dev/null || true
  fi
  wait "$CRITEST_PID" 2>/dev/null || true
}

# shm_segments prints the IDs of the shared memory segments of this IPC namespace.
shm_segments() { ipcs -m | awk '$2 ~ /^[0-9]+$/ { print $2 }'; }

# remove_new_shm_segments removes, by ID, the segments created since the script started: critest's
# host IPC spec makes one with ipcmk and never removes it.
remove_new_shm_segments() {
  local id
  for id in $(shm_segments); do
    grep -qxF "$id" <<<"$SHM_BEFORE" && continue
    log "removing shared memory segment $id that critest left"
    ipcrm -m "$id" || log "warning: ipcrm -m $id failed"
  done
}

# mounts_under DIR prints the mount points at or under DIR, in /proc/self/mountinfo order.
mounts_under() {
  local dir=$1 mount_point
  while read -r _ _ _ _ mount_point _; do
    # mountinfo escapes space, tab, newline and backslash as octal.
    mount_point=$(printf '%b' "$mount_point")
    if [[ $mount_point == "$dir" || $mount_point == "$dir"/* ]]; then
      echo "$mount_point"
    fi
  done </proc/self/mountinfo
}

# remove_work unmounts what specs left mounted under WORK, then removes WORK. The mount
# propagation specs bind /etc below WORK/tmp, and rm --one-file-system would still descend into
# a bind mount of the same file system, so WORK is removed only once nothing is mounted there.
remove_work() {
  local i
  local -a mounts
  mapfile -t mounts < <(mounts_under "$WORK")
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount -l "${mounts[i]}" || true
  done
  mapfile -t mounts < <(mounts_under "$WORK")
  if [[ ${#mounts[@]} -gt 0 ]]; then
    log "warning: still mounted under $WORK, so it stays: ${mounts[*]}"
    return
  fi
  rm -rf --one-file-system "$WORK"
}

# remove_cni_cache removes /var/lib/cni when this run created it and left it empty. libcni keeps
# its result cache there, and containerd offers no setting to move it.
remove_cni_cache() {
  [[ $CNI_CACHE_EXISTED == no ]] || return 0
  rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true
}

stop_registry() {
  [[ -n ${REGISTRY_PID:-} ]] || return 0
  kill -TERM "$REGISTRY_PID" 2>/dev/null || return 0
  wait "$REGISTRY_PID" 2>/dev/null || true
}

cleanup() {
  local status=$?
  trap '' INT TERM
  stop_critest
  if [[ -f $CONTAINERD_DIR/containerd.log ]]; then
    cp "$CONTAINERD_DIR/containerd.log" "$RESULTS/containerd.log"
  fi
  "$REPO_ROOT/hack/containerd-down.sh" "$CONTAINERD_DIR" || log "teardown of $CONTAINERD_DIR failed; run hack/containerd-down.sh $CONTAINERD_DIR"
  stop_registry
  remove_new_shm_segments
  [[ ${TOOLS_MOUNTED:-} != yes ]] || umount "$TOOLS_DIR" || log "warning: cannot unmount the busybox tools from $TOOLS_DIR"
  remove_work
  remove_cni_cache
  exit "$status"
}

main() {
  [[ $# -eq 2 && $1 == /* && $2 == /* ]] || usage
  WORK=$1 RESULTS=$2
  CONTAINERD_DIR=$WORK/c
  require_root
  check_namespaces
  check_image_only_paths
  [[ -d $WORK && -z $(ls -A "$WORK") ]] || die "WORK $WORK is not an empty folder; start the run through hack/critest.sh, which creates one"
  mkdir -p "$RESULTS" "$WORK/tmp"
  SHM_BEFORE=$(shm_segments)
  CNI_CACHE_EXISTED=no
  [[ -e /var/lib/cni ]] && CNI_CACHE_EXISTED=yes
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  ip link set lo up
  provide_busybox_tools
  start_registry
  write_registry_hosts
  write_cni_config
  start_containerd

  local handler
  for handler in "${HANDLERS[@]}"; do
    run_critest "$handler"
  done
}

main "$@"
