#!/usr/bin/env bash
# A local Debian 12 base image for the CPU variant of the Containerfile, where no registry is
# reachable (only a Debian mirror and PyPI): debootstrap a minbase rootfs with python3 and
# ca-certificates, then import it as an image. Used by `nox -s container -- --podman --cpu`.
#
#   container/debian-base.sh [--tool podman|buildah|docker] [--tag localhost/sweepax-base:bookworm]
#                            [--rootfs DIR]
#
# Idempotent: an existing image with that tag is kept. Needs root, debootstrap and podman (or
# buildah; docker untested): `apt-get install debootstrap podman buildah runc`.
# Traps (see the project's HPC notes): the mirror comes from apt's own config, never hard-coded;
# the rootfs is imported from a tar WITHOUT ./dev/* (device nodes); ca-certificates is in the
# base so that apt inside the build never rewrites /etc/ssl/certs/ca-certificates.crt, over which
# the build binds the host's bundle (a TLS-intercepting site CA).
set -euo pipefail

tool=podman tag=localhost/sweepax-base:bookworm rootfs=""
while [ $# -gt 0 ]; do
  case $1 in
    --tool) tool=$2; shift ;;
    --tag) tag=$2; shift ;;
    --rootfs) rootfs=$2; shift ;;
    *) echo "debian-base.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "debian-base.sh: $*" >&2; }

exists() {
  if [ "$tool" = buildah ]; then buildah inspect --type image "$tag"; else "$tool" image inspect "$tag"; fi
}
if exists >/dev/null 2>&1; then
  log "$tag exists; kept"
  exit 0
fi
command -v debootstrap >/dev/null || { log "debootstrap: not found (apt-get install debootstrap)"; exit 2; }
[ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 2; }

mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || { log "no Debian mirror in apt's sources"; exit 2; }

tmp=""
if [ -z "$rootfs" ]; then
  tmp=$(mktemp -d /tmp/sweepax-rootfs.XXXXXX)
  rootfs=$tmp/rootfs
fi
trap '[ -n "$tmp" ] && rm -rf "$tmp"' EXIT
if [ ! -x "$rootfs/usr/bin/python3" ]; then
  log "debootstrap bookworm (minbase + python3, python3-venv, ca-certificates) from $mirror"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >&2
fi
log "importing $rootfs as $tag"
if [ "$tool" = buildah ]; then
  tar -C "$rootfs" --exclude='./dev/*' -c . > "$rootfs.tar"
  ctr=$(buildah from scratch)
  buildah add "$ctr" "$rootfs.tar" / >/dev/null
  buildah commit --rm "$ctr" "$tag" >/dev/null
  rm -f "$rootfs.tar"
else
  tar -C "$rootfs" --exclude='./dev/*' -c . | "$tool" import - "$tag" >/dev/null
fi
log "made $tag"
