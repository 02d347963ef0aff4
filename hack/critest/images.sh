#!/usr/bin/env bash
# Builds every image that critest pulls, under the names critest uses, into one OCI image layout
# for hack/tools/registry to serve. The images are made from Debian packages and from commands in
# hack/tools, never pulled. The layout is rebuilt only when a Debian package version, the Go
# version or the sources (this script, hack/tools/{dirimage,pause,printeuid}) change.
#
# The images stand in for the upstream ones and keep what critest checks: the names, the
# entrypoints, the users and groups, the web servers' ports and start-up logs. Upstream's
# gcr.io/k8s-staging-cri-tools/test-image-digest is pinned by a digest of upstream content, so no
# local build can match it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

readonly E2E=registry.k8s.io/e2e-test-images
readonly CRI_TOOLS=gcr.io/k8s-staging-cri-tools

# The busybox-based images hold Debian's busybox, which is linked dynamically, plus pgrep (procps)
# and ipcs (util-linux), which critest runs and Debian's busybox lacks, with their libraries.
readonly BASE_PACKAGES=(busybox libc6 procps libproc2-0 libsystemd0 libcap2 libgcrypt20 libgpg-error0
  liblz4-1 liblzma5 libzstd1 util-linux)
# Only these files are taken from packages that hold many more programs.
declare -A PICKED_FILES=([procps]=usr/bin/pgrep [util-linux]=usr/bin/ipcs)
readonly NGINX_PACKAGES=(nginx nginx-common libcrypt1 libpcre2-8-0 libssl3 zlib1g)

# Package content that no image needs.
readonly PRUNED_PATHS=(usr/share/doc usr/share/man usr/share/info usr/share/lintian usr/share/locale
  usr/share/bug usr/share/apport etc/init.d etc/logrotate.d etc/ufw etc/default lib/systemd)

ensure_apt_lists() {
  apt-cache show busybox >/dev/null 2>&1 && return
  log "the Debian package lists are missing; running apt-get update"
  apt-get update -qq
}

# package_versions prints PACKAGE=VERSION for each package, with the version apt would install now.
package_versions() {
  local -a packages=("${BASE_PACKAGES[@]}" "${NGINX_PACKAGES[@]}")
  local -a versions
  # One apt-cache call for all packages: each call reads the whole package cache.
  mapfile -t versions < <(apt-cache policy "${packages[@]}" |
    awk '/^[^ ]/ { package = $1; sub(/:$/, "", package) } /^ +Candidate:/ { print package "=" $2 }')
  [[ ${#versions[@]} -eq ${#packages[@]} ]] ||
    die "apt-cache policy gave versions for ${#versions[@]} of ${#packages[@]} packages (${versions[*]}); check the Debian sources in /etc/apt"
  if printf '%s\n' "${versions[@]}" | grep -q '=(none)$'; then
    die "apt has no candidate version for some packages (${versions[*]}); run apt-get update"
  fi
  printf '%s\n' "${versions[@]}"
}

# sources_digest prints one digest over the package versions and the sources the images come from.
sources_digest() {
  {
    printf '%s\n' "${VERSIONS[@]}"
    go version
    go env GOARCH
    cd "$REPO_ROOT"
    find hack/critest/images.sh hack/tools/dirimage hack/tools/pause hack/tools/printeuid -type f -print0 |
      sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}

download_packages() {
  rm -rf "$WORK/debs"
  mkdir -p "$WORK/debs"
  log "downloading ${#VERSIONS[@]} Debian packages"
  # APT::Sandbox::User=root: the _apt user cannot write into the cache folder, and apt would
  # otherwise warn that it downloads as root.
  (cd "$WORK/debs" && apt-get download -qq -o APT::Sandbox::User=root "${VERSIONS[@]}")
}

# extract PACKAGE DEST: unpacks the downloaded PACKAGE into DEST, without its documentation.
extract() {
  local package=$1 dest=$2 deb path
  local -a debs=("$WORK/debs/${package}_"*.deb)
  [[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || die "expected one downloaded $package package in $WORK/debs, found ${debs[*]}"
  deb=${debs[0]}
  mkdir -p "$dest"
  dpkg-deb -x "$deb" "$dest"
  for path in "${PRUNED_PATHS[@]}"; do
    rm -rf "${dest:?}/$path"
  done
}

# add_packages ROOT PACKAGE...: adds the packages' files to ROOT, or only their PICKED_FILES.
add_packages() {
  local root=$1 package file
  shift
  for package in "$@"; do
    if [[ -z ${PICKED_FILES[$package]:-} ]]; then
      extract "$package" "$root"
      continue
    fi
    extract "$package" "$WORK/unpacked/$package"
    for file in ${PICKED_FILES[$package]}; do
      mkdir -p "$root/$(dirname "$file")"
      cp -a "$WORK/unpacked/$package/$file" "$root/$file"
    done
  done
}

write_accounts() {
  local root=$1
  mkdir -p "$root/etc"
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
www-data:x:33:
nogroup:x:65534:
EOF
}

# build_base writes the busybox root that every busybox-based image starts from.
build_base() {
  local root=$WORK/base applet
  add_packages "$root" "${BASE_PACKAGES[@]}"
  # Each busybox applet gets a hard link at its usual path, as in the upstream busybox image,
  # unless a package already put a program there. Symbolic links would not do: masking /bin/ls
  # (critest's masked paths spec) would then mask busybox itself.
  for applet in $(chroot "$root" /bin/busybox --list-full); do
    [[ -e $root/$applet || -L $root/$applet ]] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln "$root/bin/busybox" "$root/$applet"
  done
  cp "$root/bin/busybox" "$(critest_busybox)"
  write_accounts "$root"
  mkdir -p "$root"/{proc,sys,dev,home,root,var/www}
  install -d -m 1777 "$root/tmp"

  chroot "$root" /bin/sh -c 'pgrep --version && ipcs --version && id -G' >/dev/null ||
    die "the busybox image root $root cannot run sh, pgrep, ipcs or id; a library may be missing"
}

# nginx_config PORT prints an nginx.conf that serves a static page on PORT. The pid file path is
# the one critest's host PID spec reads. Errors go to the container log. Access logs are off,
# because critest reads none and nginx -t would need /dev/stdout to exist.
nginx_config() {
  cat <<EOF
user www-data;
worker_processes 1;
pid /var/run/nginx.pid;
error_log stderr;

events {
  worker_connections 64;
}

http {
  include /etc/nginx/mime.types;
  access_log off;
  server {
    listen $1;
    root /usr/share/nginx/html;
  }
}
EOF
}

build_nginx() {
  local root=$WORK/nginx check=$WORK/nginx-check
  add_packages "$root" "${NGINX_PACKAGES[@]}"
  rm -rf "$root/etc/nginx/sites-available" "$root/etc/nginx/sites-enabled"
  nginx_config 80 >"$root/etc/nginx/nginx.conf"
  mkdir -p "$root"/{var/log/nginx,var/lib/nginx,var/run}
  mkdir -p "$WORK/nginx-hostnet/etc/nginx"
  nginx_config 12003 >"$WORK/nginx-hostnet/etc/nginx/nginx.conf"

  # nginx -t reads the config, its includes and the user in /etc/passwd, so it shows the layers
  # work together.
  rm -rf "$check"
  cp -a "$WORK/base" "$check"
  cp -a "$root/." "$check/"
  chroot "$check" /usr/sbin/nginx -t -q || die "nginx in $check rejects its config or cannot start"
  rm -rf "$check"
}

# build_httpd writes the stand-in for the Apache httpd image: busybox httpd, started by an
# httpd-foreground script as in that image, which logs a line naming httpd first.
build_httpd() {
  local root=$WORK/httpd
  mkdir -p "$root/usr/local/bin" "$root/usr/local/apache2/htdocs"
  cat >"$root/usr/local/bin/httpd-foreground" <<'EOF'
#!/bin/sh
echo "httpd: serving /usr/local/apache2/htdocs on port 80"
exec httpd -f -p 80 -h /usr/local/apache2/htdocs
EOF
  chmod 0755 "$root/usr/local/bin/httpd-foreground"
  echo '<html><body>It works!</body></html>' >"$root/usr/local/apache2/htdocs/index.html"
}

# build_static OUT PKG: builds a static binary without cgo or debug information.
build_static() {
  (cd "$REPO_ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$1" "$2")
}

build_programs() {
  mkdir -p "$WORK/nonewprivs/usr/local/bin" "$WORK/pause"
  # Setuid root: it prints 0 unless no_new_privs is set.
  build_static "$WORK/nonewprivs/usr/local/bin/nnp" ./hack/tools/printeuid
  chmod 4755 "$WORK/nonewprivs/usr/local/bin/nnp"
  build_static "$WORK/pause/pause" ./hack/tools/pause
}

# build_predefined_group writes the accounts of the predefined-group image: default-user (UID
# 1000) is also a member of group-defined-in-image (GID 50000), in /etc/group only.
build_predefined_group() {
  local root=$WORK/predefined-group
  write_accounts "$root"
  echo 'default-user:x:1000:1000::/home/default-user:/bin/sh' >>"$root/etc/passwd"
  printf '%s\n' 'default-user:x:1000:' 'group-defined-in-image:x:50000:default-user' >>"$root/etc/group"
  mkdir -p "$root/home/default-user"
}

# marker NAME prints a folder that contains only the empty file /NAME: the layer that makes
# otherwise equal test images differ.
marker() {
  local dir=$WORK/markers/$1
  mkdir -p "$dir"
  touch "$dir/$1"
  echo "$dir"
}

# image ARGS...: adds one image to the layout. ARGS are dirimage flags.
image() {
  "$(critest_tools_bin)/dirimage" -layout "$LAYOUT.tmp" "$@"
}

build_images() {
  local base=$WORK/base name user
  local -a busybox_layers=(-layer "$base" -cmd '["sh"]')
  rm -rf "$LAYOUT.tmp"

  image -name "$E2E/busybox:1.29-2" "${busybox_layers[@]}"
  image -name "$E2E/nginx:1.14-2" -layer "$base" -layer "$WORK/nginx" -cmd '["nginx", "-g", "daemon off;"]'
  image -name "$CRI_TOOLS/hostnet-nginx-$(go env GOARCH):latest" -layer "$base" -layer "$WORK/nginx" \
    -layer "$WORK/nginx-hostnet" -cmd '["nginx", "-g", "daemon off;"]'
  image -name "$E2E/httpd:2.4.39-4" -layer "$base" -layer "$WORK/httpd" -cmd '["httpd-foreground"]'
  image -name "$E2E/nonewprivs:1.3" -layer "$base" -layer "$WORK/nonewprivs" -entrypoint '["/usr/local/bin/nnp"]'
  image -name registry.k8s.io/pause:3.9 -name k8s.gcr.io/pause:3.9 -layer "$WORK/pause" \
    -entrypoint '["/pause"]' -user 65535:65535

  for name in test-image-latest:latest test-image-tag:test test-image-tag:all \
    test-image-1:latest test-image-2:latest test-image-3:latest; do
    image -name "$CRI_TOOLS/$name" "${busybox_layers[@]}" -layer "$(marker "${name%%:*}-${name#*:}")"
  done
  image -name "$CRI_TOOLS/test-image-tags:1" -name "$CRI_TOOLS/test-image-tags:2" -name "$CRI_TOOLS/test-image-tags:3" \
    "${busybox_layers[@]}" -layer "$(marker test-image-tags)"

  for name in user-uid=1002 user-username=www-data user-uid-group=1003:1004 user-username-group=www-data:1004; do
    user=${name#*=}
    image -name "$CRI_TOOLS/test-image-${name%%=*}:latest" "${busybox_layers[@]}" -user "$user"
  done
  image -name "$CRI_TOOLS/test-image-predefined-group:latest" "${busybox_layers[@]}" \
    -layer "$WORK/predefined-group" -user 1000

  rm -rf "$LAYOUT"
  mv "$LAYOUT.tmp" "$LAYOUT"
}

main() {
  require_root
  LAYOUT=$(critest_images_layout)
  WORK=$(dirname "$LAYOUT")/build
  local stamp digest
  stamp=$(dirname "$LAYOUT")/sources.sha256

  ensure_apt_lists
  mapfile -t VERSIONS < <(package_versions)
  digest=$(sources_digest)
  if [[ -f $LAYOUT/index.json && -x $(critest_busybox) && -f $stamp && $(<"$stamp") == "$digest" ]]; then
    log "critest images up to date in $LAYOUT"
    return
  fi

  log "building the critest images into $LAYOUT"
  [[ -x $(critest_tools_bin)/dirimage ]] || die "$(critest_tools_bin)/dirimage is missing; run hack/critest/build.sh"
  rm -rf "$WORK"
  mkdir -p "$WORK"
  download_packages
  build_base
  build_nginx
  build_httpd
  build_programs
  build_predefined_group
  build_images

  echo "$digest" >"$stamp"
  rm -rf "$WORK"
  log "wrote the critest images to $LAYOUT"
}

main "$@"
