#!/usr/bin/env bash
# One-command set-up for a fresh Debian 12 machine.
#
#   scripts/setup.sh demo   install packages, build, run the demo
#   scripts/setup.sh test   install packages, build, run every test
#                           (plain build, then again under ASan+UBSan)
#
# Packages are installed with apt-get (as root, or through sudo).
# BUILD_DIR (default: build) and ASAN_BUILD_DIR (default: build-asan) name
# the build folders.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
case "$mode" in
  demo|test) ;;
  *) echo "usage: scripts/setup.sh demo|test" >&2; exit 2 ;;
esac

packages=(
  build-essential pkg-config meson ninja-build python3
  glslc libvulkan-dev mesa-vulkan-drivers
  libopenblas-dev libglib2.0-dev libjson-glib-dev libpng-dev libjpeg-dev
  python3-numpy python3-pil
)
if [ "$mode" = test ]; then
  packages+=(clang libclang-rt-14-dev vulkan-validationlayers)
  packages+=(parallel)  # the batch test runs shards with GNU parallel
  packages+=(python3-torch)  # test_checkpoints: the PyTorch reference converter and LoRA merge
  packages+=(clang-format)   # scripts/check-format.sh
fi

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@"
  fi
  meson compile -C "$dir"
}

install_packages
build_dir=${BUILD_DIR:-build}

if [ "$mode" = demo ]; then
  build "$build_dir"
  inv="$build_dir/cli/invedit"
  echo "== Vulkan devices"
  "$inv" devices
  echo "== self-check: a convolution on every backend"
  "$inv" selfcheck
  if [ ! -f models/demo/unet/config.json ]; then
    echo "(models/demo is missing: no edit to run)"
    exit 0
  fi
  out=${DEMO_OUT:-out/demo}
  mkdir -p "$out"
  src="a red circle on the left on a blue background"
  tgt="a yellow circle on the left on a blue background"
  cp tests/data/images/red-blue-circle-left.png "$out/input.png"
  echo "== reconstruction (BDIA exact inversion): $out/reconstruction.png"
  "$inv" reconstruct --model models/demo --method bdia --image "$out/input.png" \
      --source "$src" -o "$out/reconstruction.png"
  for m in infedit ef-ddpm bdia; do
    echo "== edit with $m: \"$src\" -> \"$tgt\": $out/edit-$m.png"
    extra=()
    [ "$m" = infedit ] && extra=(--blend-words yellow)
    # the demo model over-saturates at the authors' guidance (tuned for SD at 512x512)
    [ "$m" = ef-ddpm ] && extra=(--cfg-target 5)
    [ "$m" = bdia ] && extra=(--cfg-source 2 --cfg-target 2)
    "$inv" edit --model models/demo --method "$m" --image "$out/input.png" \
        --source "$src" --target "$tgt" "${extra[@]}" -o "$out/edit-$m.png"
  done
  # full resolution: a 1024x1024 photo-like scene (fine texture the 64-pixel model cannot render);
  # unchanged pixels stay the input's, the edited disc keeps the texture (composite keep-detail)
  echo "== full resolution: 1024x1024 textured scene, infedit, composite keep-detail vs off: $out/fullres-*"
  /usr/bin/python3 tools/demo/fullres_demo.py scene 1024 "$out/fullres-input.png"
  for c in keep-detail off; do
    "$inv" edit --model models/demo --method infedit --blend-words yellow --image "$out/fullres-input.png" \
        --source "$src" --target "$tgt" --composite "$c" -o "$out/fullres-edit-$c.png" --save-mask "$out/fullres-mask-$c.png"
  done
  /usr/bin/python3 tools/demo/fullres_demo.py crops "$out/fullres-input.png" "$out/fullres-edit-off.png" \
      "$out/fullres-edit-keep-detail.png" "$out/fullres-mask-keep-detail.png" "$out/fullres-crops.jpg"
  echo "== wrote $out: input.png reconstruction.png edit-infedit.png edit-ef-ddpm.png edit-bdia.png fullres-*.png fullres-crops.jpg"
  exit 0
fi

# test: the code style, plain build, then ASan+UBSan; fail on the first failing suite.
bash scripts/check-format.sh
build "$build_dir"
rm -f "$build_dir"/meson-logs/testlog-*.json "$build_dir"/vk-trixie/testlog-*.json  # .ci/run counts them all
meson test -C "$build_dir" --print-errorlogs --num-processes 1 --no-suite install
# libinvedit as an outside program uses it: installed into a staging folder,
# examples/edit_png.c built through pkg-config and run (suite 'install').
bash scripts/test-installed-example.sh "$build_dir"
# Vulkan (docs/vulkan.md), plain build only: the suite under the Khronos
# validation layer (sync + GPU-assisted) with shader coverage, at each
# subgroup size, and scripts/gpu-check.sh --dry so the GPU check does not rot.
bash tests/vk-checks.sh "$build_dir" all
bash scripts/gpu-check.sh --dry --build "$build_dir" --report "$build_dir/gpu-report.md"

asan_dir=${ASAN_BUILD_DIR:-build-asan}
build "$asan_dir" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
rm -f "$asan_dir"/meson-logs/testlog-*.json
# The Vulkan driver (Mesa/LLVM) keeps allocations until exit: leaks are
# checked by the CPU-only tests' own runs, not in the driver.
# The semantic edits (minutes of plain CPU work, same code paths) run in the plain build only.
# The pipeline exactness test runs its CPU half here: its Vulkan half (lavapipe, minutes) runs
# in the plain build and on Mesa 25 (tests/vk-trixie.sh); this keeps CI under 30 minutes.
asan_env=(ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
env "${asan_env[@]}" meson test -C "$asan_dir" --print-errorlogs --num-processes 1 --no-suite semantic --no-suite pipeline
env "${asan_env[@]}" INVEDIT_TEST_BACKENDS=cpu \
  meson test -C "$asan_dir" --print-errorlogs --num-processes 1 --suite pipeline --logbase testlog-pipeline-cpu

# libFuzzer targets (clang): replay the seed corpora, then fuzz each briefly.
fuzz_dir=${FUZZ_BUILD_DIR:-build-fuzz}
fuzzers="fuzz_safetensors fuzz_tokenizer fuzz_json_config fuzz_cli_args fuzz_lora fuzz_image_png fuzz_image_jpeg fuzz_npy fuzz_manifest"
if [ ! -f "$fuzz_dir/build.ninja" ]; then
  CC=clang meson setup "$fuzz_dir" -Dfuzzing=true
fi
meson compile -C "$fuzz_dir" $(for f in $fuzzers; do echo "tests/fuzz/$f"; done)
meson test -C "$fuzz_dir" --suite fuzz --no-rebuild --print-errorlogs
for f in $fuzzers; do
  corpus=$(mktemp -d)
  cp tests/fuzz/corpus/$f/* "$corpus/"
  "$fuzz_dir/tests/fuzz/$f" -max_total_time=${FUZZ_SECONDS:-10} -close_fd_mask=2 "$corpus" 2>&1 | tail -n 1
  rm -rf "$corpus"
done

# GIMP: real gimp-console batch runs of the plug-ins (GIMP 3.0 in a Debian
# trixie chroot, GIMP 2.10 natively), plus the dialog screenshots.
bash tests/gimp/run.sh all 2>&1 | tee "$build_dir/gimp-tests.log"
test "${PIPESTATUS[0]}" -eq 0

# The Vulkan suite and the pipeline exactness test on a second Vulkan
# implementation: Mesa 25's lavapipe in the same trixie chroot.
OUT_DIR="$build_dir/vk-trixie" bash tests/vk-trixie.sh
