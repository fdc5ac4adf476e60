#!/usr/bin/env bash
# Make the Debian base every accuracy pair builds FROM, without a registry:
# a minimal bookworm root file system made by debootstrap, imported into the
# engine with `docker import`.
#   bench/accuracy/make-base.sh [IMAGE]      (default acc-base:bookworm)
# The mirror is the one this machine's apt uses (deb822 sources first, then
# sources.list, else deb.debian.org). The downloaded .debs and the apt lists
# are removed before the import, as official images ship them.
set -euo pipefail
image=${1:-acc-base:bookworm}
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base $image: present"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
fi
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror=$(awk '$1 == "URIs:" { print $2; exit }' "$f")
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}
rootfs=$(mktemp -d "${TMPDIR:-/tmp}/acc-rootfs.XXXXXX")
log=$(mktemp "${TMPDIR:-/tmp}/acc-debootstrap.XXXXXX.log")
trap 'rm -rf "$rootfs"' EXIT
echo "base $image: debootstrap bookworm from $mirror (log $log)"
if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "make-base: debootstrap failed (log $log)" >&2
  exit 1
fi
find "$rootfs/var/cache/apt/archives" -name '*.deb' -delete
find "$rootfs/var/lib/apt/lists" -mindepth 1 -delete
tar --numeric-owner -C "$rootfs" -cf - . | docker import -c 'CMD ["bash"]' - "$image" >/dev/null
echo "base $image: $(docker image inspect -f '{{.Size}}' "$image") bytes"
