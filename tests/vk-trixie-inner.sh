#!/bin/bash
# Runs inside the trixie chroot (tests/vk-trixie.sh): builds /src in $BUILD
# and runs the Vulkan checks on Mesa 25's lavapipe; meson's logs are copied
# to /out as testlog-trixie*.json.
set -u
B=${BUILD:-/root/build-invedit-vk}
echo "== $(grep -h PRETTY_NAME /etc/os-release | cut -d= -f2); Vulkan: $(vulkaninfo --summary 2>/dev/null | grep -m1 driverInfo | sed 's/.*= //')"
t0=$SECONDS
# (re)configure: tests are listed when their source exists (tests/meson.build)
if [ -f "$B/build.ninja" ]; then reconf=--reconfigure; else reconf=; fi
nice meson setup $reconf "$B" /src >/out/meson-setup.log 2>&1 || { tail -30 /out/meson-setup.log; exit 1; }
targets="tests/test_vk_runtime tests/test_vk_gemm tests/test_vk_attn tests/test_vk_basic
  tests/test_vk_fp16 tests/test_vk_validation tests/vk-subgroup-sizes tests/test_pipeline bench/bench-ops"
# only the targets that exist in this tree
have=$(ninja -C "$B" -t targets all 2>/dev/null | cut -d: -f1)
want=""
for t in $targets; do echo "$have" | grep -qx "$t" && want="$want $t"; done
nice ninja -C "$B" $want >/out/build.log 2>&1 || { grep -m20 -E 'error|FAILED' /out/build.log; exit 1; }
echo "build took $((SECONDS - t0)) s"
rc=0
rm -f "$B"/meson-logs/testlog*.json
# the suite 'vulkan' (small shapes) under trixie's validation layer with
# synchronization validation: the tests pass on Mesa 25 and raise no message
# there. GPU-assisted validation (minutes per test on Mesa 25's lavapipe) and
# the subgroup runs stay on the host (scripts/setup.sh).
bash /src/tests/vk-checks.sh "$B" validation vksync || rc=1
echo "== pipeline exactness on Mesa 25 (demo model, the Vulkan backend)"
INVEDIT_TEST_BACKENDS=vulkan meson test -C "$B" --no-rebuild --print-errorlogs --logbase testlog-pipeline \
  test_pipeline || rc=1
for f in "$B"/meson-logs/testlog*.json; do
  n=$(basename "$f" .json); n=${n#testlog}; n=${n#-}
  cp "$f" "/out/testlog-trixie${n:+-$n}.json"
done
if [ "${BENCH:-0}" = 1 ]; then
  echo "== bench-ops --backend vulkan --quick on Mesa 25"
  "$B/bench/bench-ops" --backend vulkan --quick | tee /out/bench-ops-trixie.txt
fi
exit $rc
