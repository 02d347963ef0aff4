#!/usr/bin/env bash
# Usage: hack/supervise.sh PID_FILE STOP_FILE COMMAND [ARG...]
#
# Runs COMMAND and starts it again whenever it exits, as a service manager with Restart=always
# would, until STOP_FILE exists. Each start writes the command's PID to PID_FILE, so a caller
# such as `reaper-installer --restart signal --containerd-pid-file PID_FILE` can stop the
# command and find the new one. A SIGTERM to the loop itself stops the command and the loop.
set -euo pipefail

# A command that keeps failing at once is started again after this many seconds.
readonly RESTART_DELAY_SECONDS=1

usage() {
  echo "usage: $0 PID_FILE STOP_FILE COMMAND [ARG...]" >&2
  exit 2
}

stop() {
  touch "$STOP_FILE"
  [[ -n ${child:-} ]] && kill -TERM "$child" 2>/dev/null
  exit 0
}

main() {
  [[ $# -ge 3 ]] || usage
  PID_FILE=$1 STOP_FILE=$2
  shift 2
  trap stop TERM INT

  local status
  while [[ ! -e $STOP_FILE ]]; do
    "$@" &
    child=$!
    echo "$child" >"$PID_FILE.tmp"
    mv "$PID_FILE.tmp" "$PID_FILE"
    status=0
    wait "$child" || status=$?
    [[ -e $STOP_FILE ]] && break
    echo "supervise: $1 (PID $child) exited with status $status; starting it again in ${RESTART_DELAY_SECONDS}s" >&2
    sleep "$RESTART_DELAY_SECONDS"
  done
}

main "$@"
