#!/bin/bash
# The GIMP plug-in tests, both hosts, for CI and by hand:
#
#   tests/gimp/run.sh [all|gimp3|gimp2]
#
#   gimp3  GIMP 3.0 in a Debian trixie chroot (tests/gimp/make-chroot.sh; built
#          once, ~2 min, 1.4 GB under /var/tmp/invedit-trixie), project built
#          inside it, batch cases + cancel + dialog (tests/gimp/gimp3-tests.sh)
#   gimp2  GIMP 2.10 natively on Debian 12 (apt: gimp, libgimp2.0-dev, xvfb),
#          batch cases + cancel + dialog + last values across a restart
#          (tests/gimp/gimp2-tests.sh)
#
# Environment:
#   IMPL=both|fake|real  library builds to test (default both: the test-only
#                        fake library for exact pixel checks, and the real
#                        library on the model; real is skipped with a message
#                        when there is no model)
#   MODEL=path           model for the real library (default models/demo)
#   ROOT=dir             where the chroot lives (default /var/tmp/invedit-trixie)
# Needs root (apt-get, mmdebstrap, chroot), or sudo. Outputs, logs and the
# dialog screenshots go to tests/gimp/out/. The last line is "N passed, N failed".
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOTDIR=$(cd "$HERE/../.." && pwd)
what=${1:-all}
export IMPL=${IMPL:-both}
MODEL=${MODEL:-$ROOTDIR/models/demo}
MODEL=$(readlink -f "$MODEL" 2>/dev/null || echo "$MODEL")
OUT=$HERE/out
mkdir -p "$OUT"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
passed=0; failed=0; t0=$SECONDS

total() { # "gimpN: X passed, Y failed" lines on stdin
  local p f
  read -r p f < <(sed -n 's/^gimp[23]: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' | tail -1)
  if [ -z "${p:-}" ]; then failed=$((failed+1)); echo "FAIL $1: the test script did not finish"; return; fi
  passed=$((passed+p)); failed=$((failed+f))
}

if [ "$what" = all ] || [ "$what" = gimp3 ]; then
  echo "== GIMP 3 (Debian trixie chroot)"
  # The model: inside the repository it is seen through /src, elsewhere it gets its own mount.
  bind="$ROOTDIR:/src:ro $OUT:/out"
  case "$MODEL" in
    "$ROOTDIR"/*) model_in=/src/${MODEL#"$ROOTDIR"/} ;;
    *) model_in=/model; [ -e "$MODEL" ] && bind="$bind $MODEL:/model:ro" ;;
  esac
  if ! nice $SUDO env ROOT="${ROOT:-/var/tmp/invedit-trixie}" bash "$HERE/make-chroot.sh" create; then
    echo "FAIL gimp3: the chroot could not be built"; failed=$((failed+1))
  else
  # Build, work and home folders of their own per checkout: the chroot is shared by every
  # checkout on the machine, and concurrent runs must not mix builds or installed plug-ins.
  tag=$(printf %s "$ROOTDIR" | md5sum | cut -c1-8)
  $SUDO env ROOT="${ROOT:-/var/tmp/invedit-trixie}" BIND="$bind" \
    PASSENV="IMPL=$IMPL MODEL=$model_in HOME=/root/home-$tag BUILD=/root/build-invedit-$tag WORK=/root/invedit-gimp3-test-$tag" \
    bash "$HERE/make-chroot.sh" run bash /src/tests/gimp/gimp3-tests.sh 2>&1 | tee "$OUT/run-gimp3.log" |
    grep -v '^PASS'
  total gimp3 <"$OUT/run-gimp3.log"
  fi
fi

if [ "$what" = all ] || [ "$what" = gimp2 ]; then
  echo "== GIMP 2.10 (host)"
  pkgs=(gimp libgimp2.0-dev xvfb xauth xdotool imagemagick gtk2-engines-pixbuf meson ninja-build pkg-config)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    $SUDO apt-get -q -o DPkg::Lock::Timeout=900 update >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -y -q -o DPkg::Lock::Timeout=900 install \
      --no-install-recommends "${missing[@]}" >/dev/null
  fi
  MODEL=$MODEL bash "$HERE/gimp2-tests.sh" 2>&1 | tee "$OUT/run-gimp2.log" | grep -v '^PASS'
  total gimp2 <"$OUT/run-gimp2.log"
fi

echo "GIMP plug-in tests ($what, IMPL=$IMPL) took $((SECONDS-t0)) s; details in $OUT"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
