#!/usr/bin/env bash
# make-chroot.sh - a Debian trixie chroot with GIMP 3.0 and invedit's build
# dependencies, for the GIMP 3 plug-in tests on a Debian 12 (bookworm) host.
#
#   make-chroot.sh [create]           create the chroot, or top it up when the
#                                     package list changed (idempotent: a stamp
#                                     file records what was installed)
#   make-chroot.sh run CMD [ARG...]   run CMD inside it: /proc, /sys and /dev are
#                                     mounted in a private mount namespace, so
#                                     nothing stays mounted on the host
#   make-chroot.sh shell              an interactive shell inside it
#   make-chroot.sh destroy            delete it (refuses while anything is mounted)
#
# Environment:
#   ROOT=/var/tmp/invedit-trixie      where the chroot lives (never inside the repo)
#   MIRROR=http://deb.debian.org/debian  SUITE=trixie
#   EXTRA_PKGS="..."                  more packages
#   BIND="/host:/guest[:ro] ..."      (run/shell) bind mounts; ":ro" makes one read-only
#
# Must run as root. The host gains only the mmdebstrap package; its apt
# sources are not touched. Never rm -rf the chroot by hand while a `run` is
# active: use `destroy`, which deletes with --one-file-system after checking
# that nothing is mounted below it.
set -euo pipefail

ROOT=${ROOT:-/var/tmp/invedit-trixie}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-trixie}
# GIMP 3 and its headers; invedit's build dependencies; Xvfb for the dialog test;
# the Khronos validation layer and vulkaninfo for the Vulkan tests on Mesa 25.
PKGS="gimp libgimp-3.0-dev python3 \
meson ninja-build gcc libc6-dev pkgconf \
libglib2.0-dev libjson-glib-dev libopenblas-dev libpng-dev libjpeg-dev \
libvulkan-dev mesa-vulkan-drivers glslc \
xvfb xauth vulkan-validationlayers vulkan-tools ${EXTRA_PKGS:-}"
STAMP="$ROOT/.invedit-chroot-stamp"

log() { printf '[make-chroot %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap --mode=root, chroot, mount)"

pkg_hash() {
  printf '%s %s %s' "$SUITE" "$MIRROR" "$(printf '%s\n' $PKGS | sort -u | tr '\n' ' ')" | sha256sum | cut -c1-16
}

mounted_under() {  # mount points at or below $1
  local r; r=$(readlink -f "$1" 2>/dev/null || echo "$1")
  awk -v r="$r" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts
}

# Runs "$@" inside the chroot, in a private mount namespace (the mounts vanish
# with the namespace, even if the command is killed).
in_chroot() {
  unshare --mount --propagation private -- /bin/sh -c '
    set -e
    R="$1"; shift
    mount -t proc proc "$R/proc"
    mount --rbind /sys "$R/sys"
    mount --rbind /dev "$R/dev"        # /dev/shm: GIMP <-> plug-in shared memory
    for b in $BIND; do
      src=${b%%:*}; rest=${b#*:}; dst=${rest%%:*}; opt=${rest#"$dst"}
      mkdir -p "$R$dst"
      mount --bind "$src" "$R$dst"
      [ "$opt" = ":ro" ] && mount -o remount,bind,ro "$R$dst"
    done
    exec chroot "$R" /usr/bin/env -i HOME=/root USER=root LOGNAME=root \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 TERM="${TERM:-dumb}" DEBIAN_FRONTEND=noninteractive $PASSENV "$@"
  ' sh "$ROOT" "$@"
}
export BIND=${BIND:-}
# Variables passed into the chroot's environment ("NAME=value ..."), since
# env -i clears everything else (a host pyenv would break GIMP's Python).
export PASSENV=${PASSENV:-}

ensure_mmdebstrap() {
  command -v mmdebstrap >/dev/null && return 0
  log "installing mmdebstrap on the host"
  local apt=(apt-get -y -q -o DPkg::Lock::Timeout=900 install --no-install-recommends mmdebstrap)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" ||
    { apt-get -q -o DPkg::Lock::Timeout=900 update && DEBIAN_FRONTEND=noninteractive "${apt[@]}"; }
}

create() {
  local want; want=$(pkg_hash)
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    log "chroot $ROOT is up to date"; return 0
  fi
  if [ -f "$STAMP" ] && [ -x "$ROOT/usr/bin/apt-get" ]; then
    log "package list changed: topping up $ROOT"
    in_chroot apt-get update -qq
    in_chroot apt-get install -y -qq --no-install-recommends $PKGS
    in_chroot apt-get clean
    echo "$want" >"$STAMP"; return 0
  fi

  ensure_mmdebstrap
  local tmp="$ROOT.partial" d
  for d in "$tmp" "$ROOT"; do
    [ -z "$(mounted_under "$d")" ] || die "something is mounted under $d; refusing to delete it"
    rm -rf --one-file-system "$d"   # a half-built tree from an interrupted run
  done
  log "mmdebstrap $SUITE with $(echo $PKGS | wc -w) packages -> $ROOT (1.5-3 min)"
  mmdebstrap --variant=minbase --mode=root --format=directory \
    --aptopt='Acquire::Retries "5"' --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --include="$(echo $PKGS | tr ' ' ',')" \
    "$SUITE" "$tmp" "$MIRROR"
  mv "$tmp" "$ROOT"
  echo "$want" >"$STAMP"
  log "done: $(du -sxh "$ROOT" | cut -f1) in $ROOT"
}

destroy() {
  local m; m=$(mounted_under "$ROOT")
  [ -z "$m" ] || die "refusing to delete, still mounted: $m"
  rm -rf --one-file-system "$ROOT" "$ROOT.partial"
  log "removed $ROOT"
}

action=${1:-create}; [ $# -gt 0 ] && shift
case "$action" in
  create)  create ;;
  run)     [ -f "$STAMP" ] || create; in_chroot "$@" ;;
  shell)   [ -f "$STAMP" ] || create; in_chroot /bin/bash -l ;;
  destroy) destroy ;;
  *) die "unknown action '$action' (create|run|shell|destroy)" ;;
esac
