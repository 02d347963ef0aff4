#!/usr/bin/env bash
# Usage: hack/cluster-up.sh DIR
#
# Starts a throwaway single-node Kubernetes cluster: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kube-proxy and a kubelet on a private containerd (hack/containerd-up.sh DIR/c).
# Every process runs in a new network namespace and a private mount namespace that the script
# creates. Stop it and remove DIR with hack/cluster-down.sh DIR.
#
# containerd runs under hack/supervise.sh, which starts it again whenever it exits, as systemd
# would on a real node. DIR/c/containerd.pid contains its PID, for the signal restart method
# of reaper-installer. CLUSTER_REAPER chooses how Reaper gets onto the node:
#   installer (default)  reaper-installer registers the handlers reaper and reaper-protected
#                        before containerd starts, so reaper pods run at once
#   none                 containerd starts without them, for a Helm install of Reaper, whose
#                        agent then installs into DIR/c (see hack/e2e-cluster.sh)
#
# The network namespace contains the node address NODE_IP (on its lo) and containerd's CNI bridge
# network on POD_SUBNET, so the iptables rules of the kubelet and kube-proxy, the bridge and the
# API server's ports stay in it. kube-proxy masquerades all Service traffic, because a reply
# from a pod to a client on the same bridge would otherwise skip the reverse translation.
#
# The mount namespace contains files bind-mounted over the /proc/sys entries that the kubelet
# would otherwise rewrite machine-wide, and the kubelet's volume mounts.
#
# Files in DIR:
#   kubeconfig        admin kubeconfig for https://127.0.0.1:6443, reachable inside the namespace
#   kubectl           runs the cached kubectl with that kubeconfig inside the namespace
#   netns             name of the network namespace (ip netns list shows it)
#   pki/              CA, serving and client certificates and the service-account key
#   etcd/ kubelet/    etcd data and the kubelet's root dir
#   pod-logs/         container logs (the kubelet's podLogsDir)
#   logs/NAME.log     stdout and stderr of each component
#   pids/NAME.pid     PID of each component and of the process that keeps the mount namespace alive
#   c/                the private containerd (see hack/containerd-up.sh)
#   created           host paths and cgroups that did not exist before, which cluster-down.sh removes
#
# Outside DIR the run creates the netns file /run/netns/NAME. The kubelet creates /var/lib/kubelet
# and /var/log/containers and the kubepods cgroups even with its root dir moved. The CNI plugins
# may create /var/lib/cni. With their plugin folders moved under DIR, the kubelet and the
# controller-manager no longer created /usr/libexec/kubernetes in a v1.37.2 run, but the script
# still lists it. The file DIR/created lists those of these paths that are new.
#
# Needs root, nsenter, unshare, ip, openssl and jq, the binaries of hack/cluster-bins.sh and
# everything hack/containerd-up.sh needs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# containerd-up.sh allows at most 36 characters for its DIR, which is DIR/c here.
readonly MAX_DIR_LENGTH=34
# The namespace is new, so these cannot clash with the machine's networks or ports.
readonly NODE_IP=10.88.76.1
readonly POD_SUBNET=10.88.79.0/24
readonly POD_BRIDGE=reaper-cl0
readonly SERVICE_SUBNET=10.96.0.0/24
readonly SERVICE_IP=10.96.0.1
readonly NODE_NAME=reaper-node
readonly API_PORT=6443
readonly READY_TIMEOUT_SECONDS=60

# Values the kubelet checks and would otherwise write to the machine's /proc/sys.
declare -rA KUBELET_SYSCTLS=(
  [vm/overcommit_memory]=1
  [kernel/panic]=10
  [kernel/panic_on_oops]=1
)

usage() { die "usage: $0 DIR (an absolute path of at most $MAX_DIR_LENGTH characters that does not exist yet, such as /tmp/rcl.XXXX)"; }

check_inputs() {
  local tool dir
  for tool in nsenter unshare ip openssl jq; do
    command -v "$tool" >/dev/null || die "$tool is missing; run hack/install-deps.sh"
  done
  mapfile -t BIN_DIRS < <("$REPO_ROOT/hack/cluster-bins.sh")
  [[ ${#BIN_DIRS[@]} -eq 7 ]] || die "hack/cluster-bins.sh printed ${#BIN_DIRS[@]} folders, expected 7"
  for dir in "${BIN_DIRS[@]}"; do
    [[ -d $dir ]] || die "$dir is missing; run hack/cluster-bins.sh"
  done
}

# bin NAME prints the path of the cached Kubernetes command or etcd called NAME.
bin() {
  local dir
  for dir in "${BIN_DIRS[@]}"; do
    if [[ -x $dir/$1 ]]; then
      echo "$dir/$1"
      return
    fi
  done
  die "$1 not found in ${BIN_DIRS[*]}"
}

# cluster_dirs prints the DIR of every cluster of this script whose kubelet runs, from the
# kubelet's --config DIR/kubelet-config.yaml.
cluster_dirs() {
  local cmdline config
  local -a args
  for cmdline in /proc/[0-9]*/cmdline; do
    mapfile -d '' -t args 2>/dev/null <"$cmdline" || continue
    [[ ${#args[@]} -gt 2 && ${args[0]##*/} == kubelet && ${args[1]} == --config ]] || continue
    config=${args[2]}
    if [[ $config == */kubelet-config.yaml && -f ${config%/*}/.cluster-up ]]; then
      echo "${config%/*}"
    fi
  done
}

# check_no_other_cluster fails when another cluster of this script exists. Two clusters would
# share the host's kubepods cgroups and /var/lib/kubelet, and the first teardown would remove
# them from under the second.
check_no_other_cluster() {
  local namespaces dirs
  namespaces=$(ip netns list | grep -o '^reaper-cluster-[0-9a-f]*' | paste -sd ' ' || true)
  dirs=$(cluster_dirs | paste -sd ' ')
  [[ -z $namespaces && -z $dirs ]] && return
  die "another local cluster exists (network namespace ${namespaces:-none}, folder ${dirs:-unknown}): only one can run on a machine, because clusters share the kubepods cgroups and /var/lib/kubelet; remove it with hack/cluster-down.sh FOLDER (make cluster-down CLUSTER_DIR=FOLDER) first"
}

# record_if_new PATH: lists PATH in DIR/created unless it exists, so cluster-down.sh removes it.
record_if_new() {
  [[ -e $1 ]] || echo "$1" >>"$DIR/created"
}

record_host_paths() {
  local path
  : >"$DIR/created"
  for path in /var/lib/kubelet /var/log/containers /usr/libexec/kubernetes /var/lib/cni /run/xtables.lock; do
    record_if_new "$path"
  done
  for path in /sys/fs/cgroup/*/; do
    record_if_new "${path}kubepods"
  done
}

create_namespaces() {
  NETNS=reaper-cluster-$(sha256sum <<<"$DIR" | cut -c1-8)
  ! ip netns list | grep -qw "$NETNS" || die "network namespace $NETNS exists already; run hack/cluster-down.sh $DIR"
  ip netns add "$NETNS"
  echo "$NETNS" >"$DIR/netns"
  ip -n "$NETNS" link set lo up
  # The node address sits on lo, so the namespace keeps lo as its sole interface, which
  # containerd-up.sh requires before it lets the CNI bridge plugin change the namespace.
  ip -n "$NETNS" addr add "$NODE_IP/32" dev lo

  # The holder process keeps the private mount namespace alive. unshare and nsenter exec, so the
  # PID recorded is that of sleep.
  setsid nsenter --net="/run/netns/$NETNS" unshare --mount --propagation private -- \
    sleep infinity </dev/null >"$DIR/logs/mount-namespace.log" 2>&1 &
  echo "$!" >"$DIR/pids/mount-namespace.pid"
  MOUNT_NS=/proc/$!/ns/mnt
  local attempt
  for ((attempt = 0; attempt < 50; attempt++)); do
    [[ $(readlink "$MOUNT_NS" 2>/dev/null) != "$(readlink /proc/self/ns/mnt)" ]] && break
    sleep 0.1
  done
  [[ $(readlink "$MOUNT_NS") != "$(readlink /proc/self/ns/mnt)" ]] || die "the mount namespace holder did not unshare its mount namespace"

  local key
  mkdir -p "$DIR/sysctl"
  for key in "${!KUBELET_SYSCTLS[@]}"; do
    echo "${KUBELET_SYSCTLS[$key]}" >"$DIR/sysctl/${key//\//.}"
    in_namespaces mount --bind "$DIR/sysctl/${key//\//.}" "/proc/sys/$key"
  done
}

in_namespaces() { nsenter --net="/run/netns/$NETNS" --mount="$MOUNT_NS" -- "$@"; }

# generate_cert NAME SUBJECT [SANS]: writes pki/NAME.key and pki/NAME.crt signed by pki/ca.
generate_cert() {
  local name=$1 subject=$2 sans=${3:-}
  openssl genrsa -out "$DIR/pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$DIR/pki/$name.key" -subj "$subject" -out "$DIR/pki/$name.csr" 2>/dev/null
  local -a extension=()
  if [[ -n $sans ]]; then
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$sans" >"$DIR/pki/$name.ext"
    extension=(-extfile "$DIR/pki/$name.ext")
  fi
  openssl x509 -req -in "$DIR/pki/$name.csr" -CA "$DIR/pki/ca.crt" -CAkey "$DIR/pki/ca.key" \
    -CAcreateserial -days 2 -out "$DIR/pki/$name.crt" "${extension[@]}" 2>/dev/null
}

generate_pki() {
  mkdir -p "$DIR/pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=reaper-cluster-ca" \
    -keyout "$DIR/pki/ca.key" -out "$DIR/pki/ca.crt" 2>/dev/null
  generate_cert apiserver "/CN=kube-apiserver" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$SERVICE_IP"
  generate_cert admin "/O=system:masters/CN=reaper-cluster-admin"
  generate_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  generate_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  openssl genrsa -out "$DIR/pki/service-account.key" 2048 2>/dev/null
  openssl rsa -in "$DIR/pki/service-account.key" -pubout -out "$DIR/pki/service-account.pub" 2>/dev/null
}

# write_kubeconfig FILE CERT_NAME: writes a kubeconfig that authenticates with pki/CERT_NAME.
write_kubeconfig() {
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: reaper
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $DIR/pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $DIR/pki/$2.crt
    client-key: $DIR/pki/$2.key
contexts:
- name: reaper
  context: {cluster: reaper, user: $2}
current-context: reaper
EOF
}

write_kubectl_wrapper() {
  cat >"$DIR/kubectl" <<EOF
#!/bin/sh
# Runs kubectl against the cluster of $DIR inside its network namespace $NETNS.
exec nsenter --net=/run/netns/$NETNS -- $(bin kubectl) --kubeconfig $DIR/kubeconfig "\$@"
EOF
  chmod +x "$DIR/kubectl"
}

write_kubelet_config() {
  cat >"$DIR/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Lets kubelet 1.37 start on a cgroup v1 host. cgroupfs, because systemd need not be PID 1.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$DIR/c/containerd.sock
podLogsDir: $DIR/pod-logs
# The default, /usr/libexec/kubernetes/kubelet-plugins/volume/exec, is created on the host.
volumePluginDir: $DIR/volume-plugins
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $DIR/pki/ca.crt}
authorization: {mode: AlwaysAllow}
failSwapOn: false
# A throwaway node on a shared disk should not taint itself for disk pressure.
evictionHard: {memory.available: 1Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
}

# start NAME COMMAND...: starts COMMAND in the namespaces with its output in logs/NAME.log.
start() {
  local name=$1
  shift
  # setsid keeps a Ctrl-C in the caller's terminal away from the component. The output goes to a
  # file, because a detached process that keeps the caller's stdout pipe open makes it hang.
  setsid nsenter --net="/run/netns/$NETNS" --mount="$MOUNT_NS" -- "$@" \
    </dev/null >>"$DIR/logs/$name.log" 2>&1 &
  echo "$!" >"$DIR/pids/$name.pid"
  log "started $name (PID $!), log $DIR/logs/$name.log"
}

# wait_for NAME COMMAND...: waits until COMMAND, a program and not a shell function, succeeds
# inside the namespaces while NAME runs.
wait_for() {
  local name=$1 attempt pid
  shift
  pid=$(<"$DIR/pids/$name.pid")
  for ((attempt = 0; attempt < READY_TIMEOUT_SECONDS * 5; attempt++)); do
    kill -0 "$pid" 2>/dev/null || fail "$name (PID $pid) exited" "$name"
    in_namespaces "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  fail "$name was not ready after ${READY_TIMEOUT_SECONDS}s" "$name"
}

fail() {
  log "last lines of $DIR/logs/$2.log:"
  tail -n 30 "$DIR/logs/$2.log" >&2 || true
  die "$1; stop and clean up with hack/cluster-down.sh $DIR"
}

start_control_plane() {
  start etcd "$(bin etcd)" --name reaper --data-dir "$DIR/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster reaper=http://127.0.0.1:2380 --unsafe-no-fsync
  wait_for etcd curl -sf http://127.0.0.1:2379/health

  # NODE_IP is not a loopback address, so kube-apiserver accepts it as its advertise address.
  start kube-apiserver "$(bin kube-apiserver)" --etcd-servers http://127.0.0.1:2379 \
    --bind-address 0.0.0.0 --secure-port "$API_PORT" --advertise-address "$NODE_IP" \
    --tls-cert-file "$DIR/pki/apiserver.crt" --tls-private-key-file "$DIR/pki/apiserver.key" \
    --client-ca-file "$DIR/pki/ca.crt" \
    --service-account-key-file "$DIR/pki/service-account.pub" \
    --service-account-signing-key-file "$DIR/pki/service-account.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range "$SERVICE_SUBNET" --authorization-mode Node,RBAC \
    --kubelet-client-certificate "$DIR/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$DIR/pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP --cert-dir "$DIR/pki/apiserver-generated"
  wait_for kube-apiserver curl -sf --cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/admin.crt" \
    --key "$DIR/pki/admin.key" "https://127.0.0.1:$API_PORT/readyz"

  start kube-controller-manager "$(bin kube-controller-manager)" \
    --kubeconfig "$DIR/kubeconfig" --authentication-kubeconfig "$DIR/kubeconfig" \
    --authorization-kubeconfig "$DIR/kubeconfig" --leader-elect=false \
    --service-account-private-key-file "$DIR/pki/service-account.key" \
    --root-ca-file "$DIR/pki/ca.crt" --flex-volume-plugin-dir "$DIR/flexvolume" \
    --bind-address 127.0.0.1 --cert-dir "$DIR/pki/controller-manager-generated" \
    --use-service-account-credentials=false
  start kube-scheduler "$(bin kube-scheduler)" --kubeconfig "$DIR/kubeconfig" \
    --authentication-kubeconfig "$DIR/kubeconfig" --authorization-kubeconfig "$DIR/kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1
}

start_containerd() {
  log "starting the private containerd in $DIR/c"
  CONTAINERD_CNI_SUBNET=$POD_SUBNET CONTAINERD_CNI_BRIDGE=$POD_BRIDGE CONTAINERD_SUPERVISE=1 \
    CONTAINERD_REAPER=$REAPER_MODE in_namespaces "$REPO_ROOT/hack/containerd-up.sh" "$DIR/c" >>"$DIR/logs/containerd-up.log" 2>&1 ||
    fail "hack/containerd-up.sh $DIR/c failed" containerd-up
}

start_kubelet() {
  start kubelet "$(bin kubelet)" --config "$DIR/kubelet-config.yaml" \
    --kubeconfig "$DIR/kubelet.kubeconfig" --root-dir "$DIR/kubelet" --cert-dir "$DIR/kubelet/pki" \
    --node-ip "$NODE_IP" --hostname-override "$NODE_NAME" --v 2
  wait_for kubelet "$(bin kubectl)" --kubeconfig "$DIR/kubeconfig" get node "$NODE_NAME"
}

write_kube_proxy_config() {
  cat >"$DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $DIR/kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_SUBNET
iptables: {masqueradeAll: true}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Zero leaves the conntrack sysctls as they are; nf_conntrack_max is machine-wide.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s, udpTimeout: 0s, udpStreamTimeout: 0s}
EOF
}

start_kube_proxy() {
  start kube-proxy "$(bin kube-proxy)" --config "$DIR/kube-proxy.yaml"
  wait_for kube-proxy curl -sf http://127.0.0.1:10256/healthz
}

# reaper_mode prints the CONTAINERD_REAPER value for CLUSTER_REAPER, and fails on another value.
reaper_mode() {
  case ${CLUSTER_REAPER:-installer} in
    installer) echo install ;;
    none) echo none ;;
    *) die "CLUSTER_REAPER=$CLUSTER_REAPER is not valid; use installer (register the Reaper handlers at start) or none (for a Helm install)" ;;
  esac
}

main() {
  [[ $# -eq 1 ]] || usage
  DIR=${1%/}
  [[ $DIR == /* && ${#DIR} -le $MAX_DIR_LENGTH ]] || usage
  [[ ! -e $DIR ]] || die "$DIR exists; choose a new path, or run hack/cluster-down.sh $DIR first"
  REAPER_MODE=$(reaper_mode)
  require_root
  check_inputs
  check_no_other_cluster

  mkdir -p "$DIR"/{logs,pids,pod-logs,flexvolume}
  touch "$DIR/.cluster-up"
  record_host_paths
  create_namespaces
  generate_pki
  write_kubeconfig "$DIR/kubeconfig" admin
  write_kubeconfig "$DIR/kubelet.kubeconfig" kubelet
  write_kubectl_wrapper
  write_kubelet_config
  write_kube_proxy_config

  start_control_plane
  start_containerd
  start_kubelet
  start_kube_proxy
  log "ready: node $NODE_NAME registered; kubeconfig $DIR/kubeconfig (server https://127.0.0.1:$API_PORT inside network namespace $NETNS)"
  log "run kubectl as $DIR/kubectl ARGS, or nsenter --net=/run/netns/$NETNS $(bin kubectl) --kubeconfig $DIR/kubeconfig ARGS"
}

main "$@"
