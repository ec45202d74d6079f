# Shared by gimp2-tests.sh and gimp3-tests.sh (sourced). The caller sets
# HOST (gimp2 | gimp3), SRC (the repository), B (build folder), W (work
# folder), IMPL, MODEL and T, and passed=0 failed=0.

say() { echo "[$HOST $(date +%H:%M:%S)] $*"; }
count() { # name ok [detail]
  if [ "$2" = 0 ]; then passed=$((passed+1)); echo "PASS $HOST $1"; else failed=$((failed+1)); echo "FAIL $HOST $1 ${3:-}"; fi; }
add_results() { # check.py's output on stdin (use: add_results < <(check.py ...), not a pipe)
  local line p f; line=$(tee -a /dev/stderr | grep '^RESULT' | tail -1)
  p=$(echo "$line" | sed -n 's/.*passed=\([0-9]*\).*/\1/p'); f=$(echo "$line" | sed -n 's/.*failed=\([0-9]*\).*/\1/p')
  if [ -z "$p" ]; then failed=$((failed+1)); echo "FAIL $HOST checker did not finish"; else passed=$((passed+p)); failed=$((failed+f)); fi; }

# Builds the plug-in with the test-only fake library (always) and with the
# invedit library (IMPL real or both, when the demo model exists); sets
# impls=(fake [real]) to the builds that worked, writes $W/table.tsv (the
# parameter table) and the test images.
build_plugins() {
  if [ ! -f "$B/build.ninja" ]; then
    nice meson setup "$B" "$SRC" >"$W/meson-setup.log" 2>&1 || tail -30 "$W/meson-setup.log"
  fi
  nice ninja -C "$B" "tests/gimp/invedit-fake-$HOST" tests/gimp/invedit-param-table >"$W/build-fake.log" 2>&1
  count "build (plug-in with the test-only fake library)" $? "$(tail -20 "$W/build-fake.log")"
  "$B/tests/gimp/invedit-param-table" >"$W/table.tsv"
  impls=()
  case "$IMPL" in fake) impls=(fake) ;; real) impls=(real) ;; *) impls=(fake real) ;; esac
  if [[ " ${impls[*]} " == *" real "* ]]; then
    if [ ! -f "$MODEL/model_index.json" ] && [ ! -f "$MODEL" ]; then
      say "SKIP real: no demo model at $MODEL (build it first; the fake-library tests still run)"
      impls=("${impls[@]/real}")
    else
      nice ninja -C "$B" "plugin/$HOST/invedit" >"$W/build-real.log" 2>&1
      local rc=$?
      count "build (plug-in with the invedit library)" $rc "$(grep -m5 -E 'error|undefined' "$W/build-real.log")"
      [ $rc = 0 ] || impls=("${impls[@]/real}")
    fi
  fi
  python3 "$T/pngtool.py" make "$W" >/dev/null
}
