#!/usr/bin/env bash
# Installs the Debian packages the builds and tests need, skipping those already present.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

packages=(libseccomp-dev pkg-config iptables iproute2 util-linux procps jq python3 systemd openssl curl)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

require_root
log "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
