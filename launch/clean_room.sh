#!/usr/bin/env bash
# Why this file exists: what a developer installed by hand never shows in CI, so this runs the
# README's commands as a new user would, in a bare Debian 12 root that holds nothing but apt.
# It builds that root once with mmdebstrap (--variant=apt, from the host's apt sources) and
# caches it as a tarball; every run unpacks a fresh copy, puts HEAD of this checkout (git
# archive: committed files only) at /ladder, mounts what Open MPI needs (/proc, /sys, a devpts
# /dev/pts, a tmpfs /dev/shm) in a private mount namespace, and runs COMMAND there as root. The
# mounts end with the namespace and the root is deleted on every exit path.
#
# Usage: bash launch/clean_room.sh [COMMAND ...]
#   default COMMAND: bash launch/quickstart.sh && bash launch/test.sh   (the README's two commands)
#   e.g.   bash launch/clean_room.sh bash launch/quickstart.sh          (what .ci/run runs)
# Environment:
#   CLEAN_ROOM_CACHE  where the base tarball is kept (default /var/tmp/ladder-clean-room)
#   CLEAN_ROOM_KEEP=1 keep the root after the run (its path is printed)
# Needs root (chroot, mounts). The host's apt sources, Acquire options and CA bundle are copied
# in, so that apt and pip inside reach the same registries as the host. Exit status: COMMAND's.
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "clean_room.sh: needs root (chroot and mounts)" >&2
  exit 2
fi
if [ $# -eq 0 ]; then
  set -- bash -c 'bash launch/quickstart.sh && bash launch/test.sh'
fi

cache=${CLEAN_ROOM_CACHE:-/var/tmp/ladder-clean-room}
base="$cache/bookworm-apt.tar"
mkdir -p "$cache"

# The host's apt sources (deb822 or one-line) and its Acquire options (proxies, snapshot
# mirrors' validity): the root fetches from where the host does.
host_sources=()
for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$file" ] && grep -qE '^[[:space:]]*(deb|URIs:)' "$file" && host_sources+=("$file")
done
acquire_options=()
for file in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
  [ -f "$file" ] && grep -q '^[[:space:]]*Acquire' "$file" && acquire_options+=("$file")
done

if [ ! -f "$base" ]; then
  start=$(date +%s)
  if ! command -v mmdebstrap >/dev/null; then
    echo "clean_room: installing mmdebstrap on the host"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
  fi
  aptopts=()
  for file in "${acquire_options[@]}"; do aptopts+=(--aptopt="$file"); done
  mirrors=("${host_sources[@]}")
  [ ${#mirrors[@]} -gt 0 ] || mirrors=(http://deb.debian.org/debian)
  echo "clean_room: building a bare Debian 12 root (mmdebstrap --variant=apt bookworm) into $base"
  partial="$cache/bookworm-apt.partial.tar"  # mmdebstrap picks the format from the extension
  mmdebstrap --quiet --variant=apt --mode=root "${aptopts[@]}" bookworm "$partial" "${mirrors[@]}"
  mv "$partial" "$base"
  echo "clean_room: base root built in $(( $(date +%s) - start )) s"
fi

root=$(mktemp -d "$cache/root.XXXXXX")
cleanup() {
  # The mounts live in the namespace below and are gone with it; this is for a namespace that
  # somehow outlived us. Never descend into a mount while deleting.
  local mount_point
  for mount_point in dev/shm dev/pts sys proc; do
    mountpoint -q "$root/$mount_point" 2>/dev/null && umount -l "$root/$mount_point" || true
  done
  if [ "${CLEAN_ROOM_KEEP:-0}" = 1 ]; then
    echo "clean_room: kept $root"
  else
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tar -xpf "$base" -C "$root" --numeric-owner
for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read -r name major minor <<<"$node"
  [ -e "$root/dev/$name" ] || { mknod -m 666 "$root/dev/$name" c "$major" "$minor"; }
done
mkdir -p "$root/dev/pts" "$root/dev/shm" "$root/proc" "$root/sys" "$root/ladder" "$root/etc/clean-room"
[ -e "$root/dev/ptmx" ] || ln -s pts/ptmx "$root/dev/ptmx"
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
cp -L /etc/hosts "$root/etc/hosts" 2>/dev/null || true
# The CA bundle lives apart from /etc/ssl (which Debian's ca-certificates rewrites when pip's
# dependencies install it), and pip is pointed at it.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/clean-room/ca-certificates.crt"
  printf '[global]\ncert = /etc/clean-room/ca-certificates.crt\n' >"$root/etc/pip.conf"
fi
git -C "$checkout" archive --format=tar HEAD | tar -x -C "$root/ladder"
echo "clean_room: root $root, checkout $(git -C "$checkout" rev-parse --short HEAD); running: $*"

# A clean environment: nothing of the host's but the proxy and package-index settings.
environment=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
             TERM="${TERM:-dumb}" SSL_CERT_FILE=/etc/clean-room/ca-certificates.crt
             REQUESTS_CA_BUNDLE=/etc/clean-room/ca-certificates.crt PIP_CERT=/etc/clean-room/ca-certificates.crt)
for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
  [ -n "${!name:-}" ] && environment+=("$name=${!name}")
done

start=$(date +%s)
status=0
unshare --mount --propagation private -- bash -euc '
  root=$1; shift
  mount -t proc proc "$root/proc"
  mount -t sysfs -o ro sysfs "$root/sys" 2>/dev/null || mount --rbind -o ro /sys "$root/sys"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
  mount -t tmpfs -o mode=1777,size=50% tmpfs "$root/dev/shm"
  exec chroot "$root" /usr/bin/env -i "$@"
' clean-room "$root" "${environment[@]}" /bin/bash -c 'cd /ladder && exec "$@"' command "$@" || status=$?
echo "clean_room: exit $status after $(( $(date +%s) - start )) s"
exit "$status"
