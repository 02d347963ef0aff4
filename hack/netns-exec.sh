#!/usr/bin/env bash
# Usage: hack/netns-exec.sh PROGRAM [ARG...]
#
# Runs PROGRAM in a new network namespace whose only interface, lo, is up. Interfaces, addresses,
# routes and network sysctls that PROGRAM and its children change there never reach the caller's
# network namespace. They end with the new namespace, which the kernel frees once no process or
# mount refers to it. hack/e2e.sh passes this script to go test -exec. unshare and the shell both
# exec, so PROGRAM keeps the PID, stdio and signals of this script.
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 PROGRAM [ARG...]" >&2
  exit 2
fi
exec unshare --net -- /bin/sh -c 'ip link set lo up && exec "$@"' netns-exec "$@"
