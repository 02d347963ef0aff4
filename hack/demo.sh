#!/usr/bin/env bash
# Runs one host command as a CRI pod through the reaper runtime handler on a private containerd:
# a hostNetwork pod whose container runs the host's /bin/sh and prints the host name, the kernel
# release and its PID. Prints the container's CRI log, then tears everything down, also after a
# failure or Ctrl-C. Needs root, `make components` and `make build`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

readonly HANDLER=reaper
readonly EXIT_TIMEOUT_SECONDS=30

crictl_cmd() { "$(crictl_bin)/crictl" --config "$DIR/crictl.yaml" "$@"; }

cleanup() {
  local status=$?
  # A second Ctrl-C must not interrupt the teardown. Every wait in containerd-down.sh has a
  # timeout, so ignoring the signal cannot hang the demo.
  trap '' INT TERM
  if [[ $status -ne 0 && -f $DIR/containerd.log ]]; then
    log "demo failed; last lines of $DIR/containerd.log:"
    tail -n 20 "$DIR/containerd.log" >&2 || true
  fi
  "$REPO_ROOT/hack/containerd-down.sh" "$DIR" || log "teardown of $DIR failed; run hack/containerd-down.sh $DIR"
  exit "$status"
}

write_configs() {
  # network 2 is the CRI namespace mode NODE, which the kubelet sets for hostNetwork: true.
  jq -n --arg logs "$DIR/logs/demo" '{
    metadata: {name: "reaper-demo", namespace: "default", uid: "reaper-demo-uid", attempt: 0},
    log_directory: $logs,
    linux: {security_context: {namespace_options: {network: 2}}}
  }' >"$DIR/pod.json"

  jq -n --arg image "$PLACEHOLDER_IMAGE" '{
    metadata: {name: "host-shell"},
    image: {image: $image},
    command: ["/bin/sh", "-c", "echo hostname=$(hostname) kernel=$(uname -r) pid=$$"],
    log_path: "host-shell.log"
  }' >"$DIR/container.json"
}

# wait_exited ID: waits until the container has exited and prints its exit code.
wait_exited() {
  local id=$1 attempt state
  for ((attempt = 0; attempt < EXIT_TIMEOUT_SECONDS * 5; attempt++)); do
    state=$(crictl_cmd inspect -o go-template --template '{{.status.state}}' "$id")
    if [[ $state == CONTAINER_EXITED ]]; then
      crictl_cmd inspect -o go-template --template '{{.status.exitCode}}' "$id"
      return
    fi
    sleep 0.2
  done
  die "container $id is still $state after ${EXIT_TIMEOUT_SECONDS}s"
}

main() {
  require_root
  DIR=$(mktemp -d /tmp/rpr.XXXX)
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  "$REPO_ROOT/hack/containerd-up.sh" "$DIR"
  write_configs

  local pod container exit_code
  pod=$(crictl_cmd runp --runtime "$HANDLER" "$DIR/pod.json")
  log "pod $pod runs with runtime handler $HANDLER"
  container=$(crictl_cmd create "$pod" "$DIR/container.json" "$DIR/pod.json")
  crictl_cmd start "$container" >/dev/null
  exit_code=$(wait_exited "$container")
  log "container $container exited with code $exit_code; its CRI log $DIR/logs/demo/host-shell.log:"
  cat "$DIR/logs/demo/host-shell.log"
  [[ $exit_code -eq 0 ]] || die "the container's command failed"
}

main "$@"
