#!/usr/bin/env bash
# Usage: hack/demo.sh
#
# Shows Reaper on a throwaway local cluster: starts the single-node cluster of
# hack/cluster-up.sh in CLUSTER_DIR without Reaper, imports the image of `make image`, installs
# the chart with helm, waits for the node's ReaperNode to be Ready, and runs
# examples/first-pod.yaml. It prints kubectl get reapernodes, the pod's logs and an exec in it,
# then tears the cluster down, also after a failure or Ctrl-C. With KEEP=1 the cluster stays and
# the script prints how to use and remove it.
#
# Environment: CLUSTER_DIR (default /tmp/reaper-cluster, at most 34 characters), VERSION (the
# image tag, as the Makefile's), KEEP=1. Needs root and what hack/cluster-up.sh needs, plus
# `make image`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cluster-lib.sh"

readonly RELEASE_NAMESPACE=reaper-system
readonly NODE_NAME=reaper-node
readonly EXAMPLE=$REPO_ROOT/examples/first-pod.yaml
readonly WAIT_TIMEOUT_SECONDS=180
# hack/cluster-up.sh takes a DIR of at most this many characters.
readonly MAX_DIR_LENGTH=34
# The image of examples/first-pod.yaml, which the cluster gets as a second name of its pause
# image, so the example applies unchanged on a machine that cannot pull it.
readonly EXAMPLE_IMAGE=registry.k8s.io/pause:3.10

VERSION=${VERSION:-$(git -C "$REPO_ROOT" describe --tags --always --dirty 2>/dev/null || echo dev)}
DIR=${CLUSTER_DIR:-/tmp/reaper-cluster}

kubectl_cmd() { "$DIR/kubectl" "$@"; }

# show prints a command as a user would type it, with kubectl and helm for their wrappers, then
# runs it.
show() {
  local display="$*"
  display=${display//kubectl_cmd/kubectl}
  display=${display//$DIR\/helm/helm}
  display=${display//$REPO_ROOT\//}
  printf '\n$ %s\n' "$display" >&2
  "$@"
}

cleanup() {
  local status=$?
  trap '' INT TERM
  # cluster-up.sh writes this marker first, so without it there is nothing to keep or remove.
  [[ -f $DIR/.cluster-up ]] || exit "$status"
  if [[ ${KEEP:-0} == 1 && -f $DIR/netns ]]; then
    print_usage
  else
    "$REPO_ROOT/hack/cluster-down.sh" "$DIR" || log "teardown of $DIR failed; run hack/cluster-down.sh $DIR"
  fi
  exit "$status"
}

print_usage() {
  cat >&2 <<USAGE

The cluster keeps running (KEEP=1). Its API server listens in the network namespace
$(<"$DIR/netns"), so use the wrappers that enter it:
  $DIR/kubectl get reapernodes
  $DIR/kubectl -n reaper-demo exec -it hello-host -- /bin/sh
  $DIR/helm -n $RELEASE_NAMESPACE status reaper
The cluster pulls no images. Its containerd has $EXAMPLE_IMAGE (the local pause image,
as in examples/first-pod.yaml), $PLACEHOLDER_IMAGE and reaper:$VERSION, so give pods one of
these with imagePullPolicy IfNotPresent; a reaper pod runs the node's binaries whatever its image.
Remove the cluster and everything it created on this machine with:
  make cluster-down CLUSTER_DIR=$DIR
USAGE
}

# write_helm_wrapper writes DIR/helm, which runs the cached helm with the cluster's kubeconfig in
# its network namespace, as DIR/kubectl does for kubectl.
write_helm_wrapper() {
  local helm
  helm=$("$REPO_ROOT/hack/helm.sh")
  cat >"$DIR/helm" <<WRAPPER
#!/bin/sh
# Runs helm against the cluster of $DIR inside its network namespace.
exec nsenter --net=/run/netns/$(<"$DIR/netns") -- $helm --kubeconfig $DIR/kubeconfig "\$@"
WRAPPER
  chmod +x "$DIR/helm"
}

install_reaper() {
  import_image "$DIR" "$(reaper_bin)/images/reaper-$VERSION.tar"
  write_reaper_values "$DIR" "$VERSION" "$DIR/reaper-values.yaml"
  write_helm_wrapper
  # The agent pods use hostPID and hostPath volumes: the privileged Pod Security level.
  show kubectl_cmd create namespace "$RELEASE_NAMESPACE"
  show kubectl_cmd label namespace "$RELEASE_NAMESPACE" pod-security.kubernetes.io/enforce=privileged
  show "$DIR/helm" install reaper "$REPO_ROOT/charts/reaper" --namespace "$RELEASE_NAMESPACE" \
    --values "$DIR/reaper-values.yaml" --wait --timeout 3m
  wait_reaper_node_ready
  show kubectl_cmd get reapernodes
  show kubectl_cmd get node "$NODE_NAME" --label-columns reaper.dev/ready
}

wait_reaper_node_ready() {
  local attempt phase=""
  log "waiting for the agent to install Reaper on $NODE_NAME"
  for ((attempt = 0; attempt < WAIT_TIMEOUT_SECONDS; attempt++)); do
    phase=$(kubectl_cmd get reapernode "$NODE_NAME" -o jsonpath='{.status.phase}' 2>/dev/null || true)
    [[ $phase == Ready ]] && return
    sleep 1
  done
  kubectl_cmd get reapernode "$NODE_NAME" -o yaml >&2 || true
  kubectl_cmd -n "$RELEASE_NAMESPACE" logs daemonset/reaper-agent --tail 30 >&2 || true
  die "ReaperNode $NODE_NAME is in phase '$phase', not Ready, after ${WAIT_TIMEOUT_SECONDS}s"
}

# tag_example_image gives the cluster's imported pause image the name EXAMPLE_IMAGE too.
tag_example_image() {
  local output
  output=$("$(containerd_bin)/ctr" --address "$DIR/c/containerd.sock" -n k8s.io images tag --force \
    "$PAUSE_IMAGE" "$EXAMPLE_IMAGE" 2>&1) || die "ctr images tag $PAUSE_IMAGE $EXAMPLE_IMAGE failed: $output"
  log "the cluster's containerd has the local pause image also as $EXAMPLE_IMAGE, the image of examples/first-pod.yaml"
}

run_example() {
  tag_example_image
  show kubectl_cmd apply -f "$EXAMPLE"
  kubectl_cmd -n reaper-demo wait --for=condition=Ready pod/hello-host --timeout "${WAIT_TIMEOUT_SECONDS}s" >/dev/null ||
    die "pod hello-host did not become Ready; see $DIR/kubectl -n reaper-demo describe pod hello-host"
  show kubectl_cmd -n reaper-demo get pod hello-host -o wide
  show kubectl_cmd -n reaper-demo logs hello-host
  show kubectl_cmd -n reaper-demo exec hello-host -- uptime
}

check_dir() {
  [[ $DIR == /* && ${#DIR} -le $MAX_DIR_LENGTH ]] ||
    die "CLUSTER_DIR=$DIR is not valid: use an absolute path of at most $MAX_DIR_LENGTH characters, such as /tmp/reaper-cluster"
  [[ ! -e $DIR ]] || die "CLUSTER_DIR $DIR exists: remove that cluster with make cluster-down CLUSTER_DIR=$DIR first"
}

main() {
  require_root
  check_dir
  [[ -f $(reaper_bin)/images/reaper-$VERSION.tar ]] ||
    die "$(reaper_bin)/images/reaper-$VERSION.tar is missing; run make image"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  CLUSTER_REAPER=none "$REPO_ROOT/hack/cluster-up.sh" "$DIR"
  install_reaper
  run_example
  log "demo done: helm installed Reaper and the pod hello-host ran the node's /bin/sh and uptime"
}

main "$@"
