#!/bin/bash
# The Vulkan tests on a second Vulkan implementation: Mesa 25's lavapipe
# (LLVM 19) in the Debian trixie chroot of the GIMP 3 tests
# (tests/gimp/make-chroot.sh), for CI and by hand:
#
#   tests/vk-trixie.sh [--bench]
#
# The repository is bind-mounted read-only at /src and built inside the chroot
# in a folder outside it (BUILD, default /root/build-invedit-vk; only the
# targets the checks need are compiled). Then, on Mesa 25:
#   - meson test --setup vksync --suite vulkan (every Vulkan test, small
#     shapes) with trixie's own (newer) validation layer and synchronization
#     validation, any message fails; every shader must run (tests/vk-checks.sh).
#     GPU-assisted validation takes minutes per test on Mesa 25's lavapipe: CI
#     runs it on the host's Mesa 22.3.
#   - test_pipeline: the three methods' exactness on the demo model, on the
#     Vulkan backend (INVEDIT_TEST_BACKENDS=vulkan; the CPU half runs on the host)
#   - --bench: bench-ops --backend vulkan --quick as well
# Results: meson's test logs are copied to $OUT_DIR (default
# build/vk-trixie) as testlog-trixie*.json, which .ci/run counts; the
# last line is "vk-trixie: N passed, N failed".
#
# Environment: ROOT (the chroot, default /var/tmp/invedit-trixie), BUILD,
# OUT_DIR. Needs root (chroot, mounts) or sudo.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOTDIR=$(cd "$HERE/.." && pwd)
OUT_DIR=${OUT_DIR:-$ROOTDIR/build/vk-trixie}
bench=0
[ "${1:-}" = --bench ] && bench=1
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/testlog-trixie*.json "$OUT_DIR"/bench-ops-trixie.txt
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
t0=$SECONDS
export ROOT=${ROOT:-/var/tmp/invedit-trixie}

if ! nice $SUDO env ROOT="$ROOT" bash "$ROOTDIR/tests/gimp/make-chroot.sh" create; then
  echo "FAIL vk-trixie: the chroot could not be built"
  echo "vk-trixie: 0 passed, 1 failed"
  exit 1
fi

$SUDO env ROOT="$ROOT" BIND="$ROOTDIR:/src:ro $OUT_DIR:/out" \
  PASSENV="BUILD=${BUILD:-/root/build-invedit-vk} BENCH=$bench" \
  bash "$ROOTDIR/tests/gimp/make-chroot.sh" run bash /src/tests/vk-trixie-inner.sh
rc=$?

# the summary, from the copied meson logs
read -r p f < <(python3 - "$OUT_DIR" <<'PY'
import glob, json, sys
p = f = 0
for log in glob.glob(sys.argv[1] + '/testlog-trixie*.json'):
    for line in open(log):
        r = json.loads(line).get('result')
        if r == 'OK': p += 1
        elif r not in ('SKIP',): f += 1
print(p, f)
PY
)
if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
  echo "FAIL vk-trixie: the run inside the chroot stopped with status $rc"
  f=1
fi
echo "vk-trixie took $((SECONDS - t0)) s; logs in $OUT_DIR"
echo "vk-trixie: $p passed, $f failed"
[ "$f" = 0 ]
