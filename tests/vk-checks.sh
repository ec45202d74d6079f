#!/bin/bash
# The Vulkan checks beyond the plain test suite (docs/vulkan.md), on a built
# tree:
#
#   tests/vk-checks.sh BUILD_DIR validation [SETUP]   the suite 'vulkan' under the
#       Khronos validation layer (meson test --setup vkvalidation: synchronization
#       and GPU-assisted validation, any message fails; SETUP vksync: without
#       GPU-assisted validation), then checks that every shader of
#       shaders/meson.build ran under it
#   tests/vk-checks.sh BUILD_DIR subgroups    the suite 'vulkan' (small shapes) at
#       each subgroup size the device lets us require, where it offers a choice
#       (VK_EXT_subgroup_size_control, INVEDIT_VK_SUBGROUP_SIZE; lavapipe offers
#       one size); on llvmpipe also with 128-bit vectors (LP_NATIVE_VECTOR_WIDTH=128:
#       subgroups of 4 instead of 8)
#   tests/vk-checks.sh BUILD_DIR all          both
#
# Meson's logs land in BUILD_DIR/meson-logs as testlog-<name>.json (.ci/run
# counts them); the shader coverage adds testlog-SETUP-coverage.json. Exit status 0
# when everything passed.
set -u
B=${1:?usage: tests/vk-checks.sh BUILD_DIR validation|subgroups|all}
what=${2:-all}
setup=${3:-vkvalidation}
SRC=$(cd "$(dirname "$0")/.." && pwd)
rc=0
quick=(INVEDIT_TEST_QUICK=1 TEST_VK_GEMM_QUICK=1)
mtest() { meson test -C "$B" --no-rebuild --num-processes 1 --print-errorlogs "$@"; }

if [ "$what" = validation ] || [ "$what" = all ]; then
  echo "== Vulkan suite under the validation layer (meson test --setup $setup)"
  t0=$SECONDS
  mtest --setup "$setup" --suite vulkan || rc=1
  # every embedded shader must have been built (and so run) under validation
  python3 - "$SRC/shaders/meson.build" "$B/meson-logs/testlog-$setup.json" \
      "$B/meson-logs/testlog-$setup-coverage.json" <<'PY' || rc=1
import json, re, sys
names = re.findall(r"^\s*\['([a-z0-9_]+)',\s*'[a-z0-9_]+\.comp'", open(sys.argv[1]).read(), re.M)
seen = set()
ran = 0
try:
    for line in open(sys.argv[2]):
        d = json.loads(line)
        ran += d.get('result') == 'OK'
        for t in (d.get('stdout') or '', d.get('stderr') or ''):
            seen.update(re.findall(r'invedit: shader under validation: (\S+)', t))
except OSError:
    pass
if ran == 0:  # no Vulkan device: every test skipped
    print("shader coverage under validation: skipped (no test ran)")
    with open(sys.argv[3], 'w') as f:
        f.write(json.dumps({'name': 'vulkan shader coverage under validation', 'result': 'SKIP'}) + '\n')
    sys.exit(0)
missing = [n for n in names if n not in seen]
ok = bool(names) and not missing
print(f"shader coverage under validation: {len(names) - len(missing)}/{len(names)}"
      + (f"; never ran: {' '.join(missing)}" if missing else ""))
with open(sys.argv[3], 'w') as f:
    f.write(json.dumps({'name': 'vulkan shader coverage under validation',
                        'result': 'OK' if ok else 'FAIL'}) + '\n')
sys.exit(0 if ok else 1)
PY
  echo "validation run took $((SECONDS - t0)) s"
fi

if [ "$what" = subgroups ] || [ "$what" = all ]; then
  t0=$SECONDS
  sizes=$("$B/tests/vk-subgroup-sizes")
  src=$?
  if [ $src = 77 ]; then
    echo "== subgroup sizes: no Vulkan device, skipped"
  else
    for s in $sizes; do
      echo "== Vulkan suite (small shapes) at required subgroup size $s"
      env "${quick[@]}" INVEDIT_VK_SUBGROUP_SIZE="$s" meson test -C "$B" --no-rebuild --num-processes 1 \
        --print-errorlogs --suite vulkan --logbase "testlog-sg$s" || rc=1
    done
    if vulkaninfo --summary 2>/dev/null | grep -q llvmpipe ||
       "$B/tests/vk-subgroup-sizes" 2>&1 >/dev/null | grep -q llvmpipe; then
      echo "== Vulkan suite (small shapes) on llvmpipe with 128-bit vectors (subgroups of 4)"
      env "${quick[@]}" LP_NATIVE_VECTOR_WIDTH=128 meson test -C "$B" --no-rebuild --num-processes 1 \
        --print-errorlogs --suite vulkan --logbase testlog-lp128 || rc=1
    fi
  fi
  echo "subgroup runs took $((SECONDS - t0)) s"
fi
exit $rc
