#!/usr/bin/env bash
# One call on a machine with a real Vulkan GPU: build (or reuse a carried
# build), test, benchmark, and write one report (docs/vulkan.md).
#
#   scripts/gpu-check.sh [--dry] [--build DIR] [--report FILE] [--budget SECONDS]
#
# Steps, each under its own time limit (the whole run stays within --budget,
# default 450 s, so it finishes in under 8 minutes on an H100):
#   1. the device: invedit devices (+ vulkaninfo --summary, nvidia-smi)
#   2. the Vulkan test suite (meson test --suite vulkan, full shapes)
#   3. the network parity tests on Vulkan (test_networks: CLIP, UNet, VAE
#      vs the PyTorch dumps)
#   4. bench-ops --backend vulkan
#   5. bench-networks --backends vulkan --sizes 512 (SD 1.5 UNet, batch 2)
#   6. bench-methods --models sd15 --backends vulkan --steps 15: the three
#      methods at 512x512 with SD 1.5 shapes, and the peak device memory
#      (what bench-methods prints, plus nvidia-smi's peak when present)
#   7. the suite under the Khronos validation layer (sync + GPU-assisted; small
#      shapes), when vulkan-validationlayers is installed
#   8. the suite at each subgroup size the driver lets us require
# (7 and 8 come last: the measurements must not starve behind them.)
# --dry: the same steps on whatever Vulkan device there is (lavapipe in CI)
# with the tiny demo model and small shapes, skipping 7 and 8 (CI runs them
# through tests/vk-checks.sh): ~1-2 minutes, so the script does not rot.
#
# The report goes to --report, else $OUT/gpu-report.md when $OUT is set, else
# BUILD/gpu-report.md; each step's full log sits next to it in gpu-logs/.
# Exit status: 0 when every step passed, 1 otherwise (the report says which).
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)

dry=0
build=${BUILD_DIR:-}
report=""
budget=450
while [ $# -gt 0 ]; do
  case "$1" in
    --dry) dry=1 ;;
    --build) build=$2; shift ;;
    --report) report=$2; shift ;;
    --budget) budget=$2; shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$build" ] || build=$([ $dry = 1 ] && echo build || echo build-gpu)
if [ -z "$report" ]; then
  if [ -n "${OUT:-}" ]; then report=$OUT/gpu-report.md; else report=$build/gpu-report.md; fi
fi
mkdir -p "$(dirname "$report")"
logs=$(dirname "$report")/gpu-logs
mkdir -p "$logs"
body=$(mktemp)
trap 'rm -f "$body" "$body.steps"' EXIT
t_start=$SECONDS
failures=0

# run_step NAME CAP_SECONDS CMD...: runs CMD with a time limit of
# min(CAP, what is left of the budget), logs it, and adds a section.
run_step() {
  local name=$1 cap=$2; shift 2
  local left=$((budget - (SECONDS - t_start)))
  local limit=$cap; [ $left -lt $limit ] && limit=$left
  local log="$logs/$(echo "$name" | tr -c 'A-Za-z0-9\n' '-' | tr -s '-').log"
  local status
  if [ $limit -lt 5 ]; then
    status="NOT RUN (time budget of $budget s spent)"
    failures=$((failures + 1))
    echo "== $name: $status"
  else
    echo "== $name (limit ${limit} s)"
    local t0=$SECONDS
    # shell functions (exported below) run through bash
    if [ "$(type -t "$1")" = function ]; then
      timeout --kill-after=10 "$limit" bash -c '"$@"' _ "$@" >"$log" 2>&1
    else
      timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
    fi
    local rc=$?
    local took=$((SECONDS - t0))
    if [ $rc = 0 ]; then status="ok, ${took} s"
    elif [ $rc = 124 ] || [ $rc = 137 ]; then status="TIMED OUT after ${limit} s"; failures=$((failures + 1))
    else status="FAILED (exit $rc), ${took} s"; failures=$((failures + 1)); fi
    echo "   $status"
  fi
  printf '| %s | %s |\n' "$name" "$status" >>"$body.steps"
  {
    echo
    echo "## $name"
    echo
    echo "Status: $status. Command: \`$*\`"
    echo
    echo '```'
    if [ -f "$log" ]; then
      # the tail, without meson's per-test noise
      grep -v -E '^(ok |PASS )' "$log" | tail -n 60
    fi
    echo '```'
  } >>"$body"
}

# --- build ------------------------------------------------------------------
targets="cli/invedit tests/test_vk_runtime tests/test_vk_gemm tests/test_vk_attn tests/test_vk_basic
  tests/test_vk_fp16 tests/test_vk_validation tests/vk-subgroup-sizes tests/test_networks
  bench/bench-ops bench/bench-networks bench/bench-methods"
do_build() {
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dbuildtype=release || return 1
  fi
  local have want="" t
  have=$(ninja -C "$build" -t targets all 2>/dev/null | cut -d: -f1)
  for t in $targets; do echo "$have" | grep -qx "$t" && want="$want $t"; done
  ninja -C "$build" $want
}
export build targets
export -f do_build
run_step "build ($build)" 150 do_build
if [ ! -x "$build/cli/invedit" ]; then
  echo "gpu-check: the build failed; see $logs" >&2
fi

# --- device -----------------------------------------------------------------
device_info() {
  "$build/cli/invedit" devices
  command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>/dev/null | sed -n '/Devices:/,$p'
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  return 0
}
export -f device_info
run_step "device" 30 device_info

mtest() { meson test -C "$build" --no-rebuild --num-processes 1 --print-errorlogs "$@"; }
export -f mtest
quick_env=(INVEDIT_TEST_QUICK=1 TEST_VK_GEMM_QUICK=1)

# --- tests ------------------------------------------------------------------
if [ $dry = 1 ]; then
  # CI runs the whole suite already: two of its tests show the step works
  run_step "Vulkan test suite (two tests)" 60 env "${quick_env[@]}" meson test -C "$build" --no-rebuild \
    --num-processes 1 --print-errorlogs --suite vulkan --logbase testlog-gpucheck test_vk_fp16 test_vk_validation
else
  run_step "Vulkan test suite" 60 mtest --suite vulkan --logbase testlog-gpucheck
fi
run_step "network parity on Vulkan (test_networks)" 60 env INVEDIT_TEST_BACKENDS=vulkan \
  meson test -C "$build" --no-rebuild --print-errorlogs --logbase testlog-gpucheck-networks test_networks

# --- benchmarks ---------------------------------------------------------------
# peak GPU memory as nvidia-smi sees it, sampled while a step runs
with_smi_peak() {
  if ! command -v nvidia-smi >/dev/null; then "$@"; return; fi
  local f; f=$(mktemp)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$f" 2>/dev/null &
  local smi=$!
  "$@"
  local rc=$?
  kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null
  echo "nvidia-smi: peak device memory used during this step: $(sort -n "$f" | tail -1) MiB"
  rm -f "$f"
  return $rc
}
export -f with_smi_peak
if [ $dry = 1 ]; then
  run_step "bench-ops --backend vulkan --quick --tiny" 60 "$build/bench/bench-ops" --backend vulkan --quick --tiny --reps 1
  run_step "bench-networks (demo model, 64x64)" 90 "$build/bench/bench-networks" --backends vulkan \
    --model models/demo --sizes 64 --reps 1 --no-torch
  run_step "bench-methods (demo model, 2 steps)" 120 "$build/bench/bench-methods" --models demo --backends vulkan \
    --steps 2 --reps 0
else
  run_step "bench-ops --backend vulkan" 45 "$build/bench/bench-ops" --backend vulkan
  run_step "bench-networks --backends vulkan --sizes 512" 60 with_smi_peak "$build/bench/bench-networks" \
    --backends vulkan --sizes 512 --batch 2 --reps 3 --no-torch
  run_step "bench-methods: SD 1.5 shapes, 512x512, 15 steps" 150 with_smi_peak "$build/bench/bench-methods" \
    --models sd15 --backends vulkan --methods ef-ddpm,bdia,infedit --steps 15
fi

# --- extra checks, after the measurements (they may use what time is left) ------
if [ $dry = 0 ]; then
  if [ -f /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json ] ||
     ls /etc/vulkan/explicit_layer.d/*validation* >/dev/null 2>&1; then
    run_step "Vulkan suite under validation (sync + GPU-assisted)" 60 bash tests/vk-checks.sh "$build" validation
  else
    printf '| %s | %s |\n' "validation" "not run: vulkan-validationlayers is not installed" >>"$body.steps"
  fi
  run_step "Vulkan suite at each required subgroup size" 45 bash tests/vk-checks.sh "$build" subgroups
fi

# --- the report -----------------------------------------------------------------
total=$((SECONDS - t_start))
tmp="$report.tmp.$$"
{
  echo "# invedit GPU check$([ $dry = 1 ] && echo ' (--dry)')"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?'), host $(hostname), $total s in all (budget $budget s)."
  echo
  echo "| step | result |"
  echo "|---|---|"
  cat "$body.steps"
  cat "$body"
  echo
  if [ $failures = 0 ]; then echo "All steps passed."; else echo "$failures step(s) failed or did not finish."; fi
  echo "Full logs: $logs"
} >"$tmp" && mv "$tmp" "$report"
echo "gpu-check: $failures step(s) failed, $total s; report: $report"
[ $failures = 0 ]
