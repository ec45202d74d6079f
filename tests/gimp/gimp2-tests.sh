#!/bin/bash
# GIMP 2.10 tests of the invedit plug-in, natively on the Debian 12 host
# (gimp and libgimp2.0-dev from apt; run.sh installs them):
#   1. builds the plug-in in build-gimp2/ (the project's meson build);
#   2. for each library build (IMPL: fake, real or both; real needs models/demo):
#      one gimp-console-2.10 session runs every case of cases.py in Script-Fu
#      (GIMP 2.10 on Debian 12 has no Python-Fu), then a short session whose
#      progress callback cancels;
#   3. the UI test: gimp-console-2.10 under Xvfb calls the plug-in
#      interactively; the dialog starts from the last-used values that the
#      batch session stored in invedit.ini (a GIMP restart in between), saves
#      tests/gimp/out/dialog-gimp2.png, checks every argument's widget, presses OK;
#   4. check.py checks pixels and logs (gimp-console-2.10 always exits 0, so
#      the log is what counts). Prints "gimp2: N passed, N failed".
set -u
ROOTDIR=$(cd "$(dirname "$0")/../.." && pwd)
T=$ROOTDIR/tests/gimp
OUT=${OUT:-$T/out}
IMPL=${IMPL:-both}
B=${BUILD_GIMP2:-$ROOTDIR/build-gimp2}
W=${WORK2:-/tmp/invedit-gimp2-test-$(printf %s "$ROOTDIR" | md5sum | cut -c1-8)}  # one per checkout
MODEL=${MODEL:-$ROOTDIR/models/demo}
FAKE_MODEL=$W/fake-model
export GIMP2_DIRECTORY=$W/profile
passed=0; failed=0

HOST=gimp2
SRC=$ROOTDIR
. "$T/common.sh"

rm -rf "$W"; mkdir -p "$W/out-fake" "$W/out-real" "$OUT" "$FAKE_MODEL"
say "$(gimp-console-2.10 --version)"
say "Python-Fu: not in Debian 12's GIMP 2.10 (no python2), so every 2.10 case runs in Script-Fu"

# --- build -----------------------------------------------------------------------------------
build_plugins

fresh_profile() { # binary: a throw-away GIMP profile with the plug-in installed
  rm -rf "$GIMP2_DIRECTORY"
  for d in plug-ins/invedit brushes dynamics fonts gradients palettes patterns tool-presets mypaint-brushes \
           scripts templates; do mkdir -p "$GIMP2_DIRECTORY/$d"; done
  install -m755 "$1" "$GIMP2_DIRECTORY/plug-ins/invedit/invedit"
}

session() { # impl suffix gen-flags -- env...: one gimp-console-2.10 run of the generated commands
  local impl=$1 suffix=$2 flags=$3; shift 4
  local model=$MODEL; [ "$impl" = fake ] && model=$FAKE_MODEL
  python3 "$T/gimp2_driver.py" gen --work "$W" --model "$model" --impl "$impl" --table "$W/table.tsv" $flags \
    >"$W/cmds-$impl$suffix.scm"
  local args=() c
  while IFS= read -r c; do args+=(-b "$c"); done <"$W/cmds-$impl$suffix.scm"
  local t0=$SECONDS
  env "$@" timeout 900 gimp-console-2.10 -i -d -f -s --console-messages \
    --batch-interpreter=plug-in-script-fu-eval "${args[@]}" -b '(gimp-quit 0)' >"$W/log2-$impl$suffix.txt" 2>&1
  local rc=$?
  say "session $impl$suffix: rc=$rc, $((SECONDS-t0)) s, log $W/log2-$impl$suffix.txt"
  count "gimp-console-2.10 session $impl$suffix finishes" $rc "rc=$rc"
  python3 "$T/gimp2_driver.py" parse --log "$W/log2-$impl$suffix.txt" --impl "$impl" $flags \
    >"$W/results2-$impl$suffix.json"
}

for impl in "${impls[@]}"; do
  [ -n "$impl" ] || continue
  bin=$B/plugin/gimp2/invedit; [ "$impl" = fake ] && bin=$B/tests/gimp/invedit-fake-gimp2
  if [ "$impl" = real ]; then  # meson install, staged: the plug-in lands in the user's 2.10 plug-in folder
    rm -rf "$W/stage"
    DESTDIR=$W/stage meson install -C "$B" --no-rebuild --tags gimp-plugin >"$W/install.log" 2>&1
    staged=$W/stage$(python3 -c 'import os; print(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"))')
    [ -x "$staged/GIMP/2.10/plug-ins/invedit/invedit" ]
    count "meson install puts the plug-in in ~/.config/GIMP/2.10/plug-ins/invedit/" $? "$(tail -5 "$W/install.log")"
    [ -x "$staged/GIMP/2.10/plug-ins/invedit/invedit" ] && bin=$staged/GIMP/2.10/plug-ins/invedit/invedit
  fi
  fresh_profile "$bin"
  say "== $impl library: batch cases (Script-Fu)"
  session "$impl" "" "" -- INVEDIT_FAKE_STEP_MS=5
  add_results < <(python3 "$T/check.py" --work "$W" --impl "$impl" --results "$W/results2-$impl.json" \
    --log "$W/log2-$impl.txt" --label gimp2)
  if [ "$impl" = real ]; then  # cases cache-first-try / cache-second-try: a second try skips the inversion
    # the log of the second try (the only call with its target) says it, before the next call starts
    awk '/invedit: run-mode=/ { on = /yellow circle on the left on a blue gradient/ }
         on && /inversion from the cache/ { hit = 1 } END { exit !hit }' "$W/log2-$impl.txt"
    count "a second try in GIMP takes the inversion from the disk cache" $? "no 'inversion from the cache' in $W/log2-$impl.txt"
  fi
  # the settings of the last successful call: what invedit.ini must hold now
  last_batch=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))
print([v["settings"] for v in r.values() if v["status"] == "success" and "settings" in v][-1])' \
    "$W/results2-$impl.json" 2>/dev/null)
  say "== $impl library: cancel from the progress callback"
  cp "$GIMP2_DIRECTORY/invedit.ini" "$W/invedit.ini.saved" 2>/dev/null
  session "$impl" "-cancel" "--cancel" -- INVEDIT_TEST_CANCEL_AFTER=1
  cp "$W/invedit.ini.saved" "$GIMP2_DIRECTORY/invedit.ini" 2>/dev/null
  add_results < <(python3 "$T/check.py" --work "$W" --impl "$impl" --results "$W/results2-$impl-cancel.json" \
    --log "$W/log2-$impl-cancel.txt" --label gimp2 --cancel)
  cp "$W"/log2-"$impl"*.txt "$OUT/" 2>/dev/null
  mkdir -p "$OUT/gimp2-$impl"; cp "$W/out-$impl"/*.png "$OUT/gimp2-$impl/" 2>/dev/null
  ui_impl=$impl; ui_last=$last_batch
done

# --- UI: the dialog under Xvfb, started from the values the batch session stored -------------------
if [ -n "${ui_impl:-}" ]; then
  say "== dialog under Xvfb ($ui_impl library, last-used values from invedit.ini)"
  shot=$OUT/dialog-gimp2.png; rm -f "$shot"
  session "$ui_impl" "-ui" "--ui" -- INVEDIT_UI_TEST="$shot" GTK2_RC_FILES=/usr/share/gimp/2.0/themes/Light/gtkrc \
    xvfb-run -a -s "-screen 0 1280x1400x24"
  cp "$W/log2-$ui_impl-ui.txt" "$OUT/log2-gimp2-ui.txt"
  add_results < <(python3 "$T/check.py" --work "$W" --impl "$ui_impl" --results "$W/results2-$ui_impl-ui.json" \
    --log "$W/log2-$ui_impl-ui.txt" --label gimp2-ui --ui "$(wc -l <"$W/table.tsv")" --shot "$shot")
  grep '^ui-test' "$W/log2-$ui_impl-ui.txt" | grep -v 'ui-test: argument' | sed 's/^/  /'
  # Last-used values survive a GIMP restart: the dialog ran with what the batch session used last.
  ui_used=$(grep '^invedit: run-mode=0' "$W/log2-$ui_impl-ui.txt" | tail -1 | sed 's/^invedit: run-mode=0 //')
  [ -n "$ui_last" ] && [ "$ui_used" = "$ui_last" ]
  count "last-used values survive a restart (invedit.ini)" $? "batch: $ui_last | dialog: $ui_used"
fi

# --- Cancel in the real GIMP 2.10 GUI: the Progress window's Cancel ------------------------------
# GIMP's Cancel ends the plug-in process (GIMP closes it; no callback is asked),
# so what must hold is that nothing was written: the image equals the input.
if command -v xdotool >/dev/null && command -v gimp-2.10 >/dev/null; then
  say "== GIMP 2.10 GUI: Cancel in the Progress window"
  fresh_profile "$B/tests/gimp/invedit-fake-gimp2"
  in=$W/rgb.png; out=$W/out-fake/gui-cancel.png
  export DISPLAY=:$((90 + RANDOM % 100))
  Xvfb "$DISPLAY" -screen 0 1280x1024x24 -nolisten tcp >"$W/xvfb.log" 2>&1 & xpid=$!
  sleep 1
  INVEDIT_UI_TEST=$W/dialog-before-cancel.png INVEDIT_MODEL=$FAKE_MODEL INVEDIT_FAKE_STEP_MS=1000 \
    timeout 180 gimp-2.10 -n -s -d -f --console-messages --batch-interpreter=plug-in-script-fu-eval -b "
(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE \"$in\" \"$in\")))
       (drw (car (gimp-image-get-active-layer img))))
  (gimp-display-new img)
  (plug-in-invedit RUN-INTERACTIVE img drw $(python3 "$T/gimp2_driver.py" args --table "$W/table.tsv"))
  (gimp-message (string-append \"CASE-LAYERS \" (number->string (car (gimp-image-get-layers img)))))
  (gimp-file-save RUN-NONINTERACTIVE img drw \"$out\" \"$out\"))" -b "(gimp-quit 1)" >"$W/log2-gui-cancel.txt" 2>&1 & gpid=$!
  # Press Escape in the Progress window once it has been up for ~2 s (the edit is then a few
  # steps in; earlier Progress windows, e.g. the file load's, come and go), until GIMP is done.
  seen=0; shot_done=""
  for i in $(seq 1 300); do
    kill -0 "$gpid" 2>/dev/null || break
    wid=$(xdotool search --name '^Progress$' 2>/dev/null | head -1)
    if [ -n "$wid" ]; then
      seen=$((seen + 1))
      if [ $seen -ge 10 ]; then
        [ -n "$shot_done" ] || { import -window root "$OUT/gui-progress-gimp2.png" 2>/dev/null; shot_done=1; }
        xdotool key --window "$wid" Escape 2>/dev/null
      fi
    else
      seen=0
    fi
    sleep 0.2
  done
  wid=$shot_done
  wait $gpid; rc=$?
  kill "$xpid" 2>/dev/null; wait "$xpid" 2>/dev/null; unset DISPLAY
  cp "$W/log2-gui-cancel.txt" "$OUT/"
  [ -n "$wid" ]; count "GUI: the Progress window appeared" $?
  python3 - "$in" "$out" "$T" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
import pngtool
a, b = pngtool.read_png(sys.argv[1]), pngtool.read_png(sys.argv[2])
sys.exit(0 if a.rows == b.rows else 1)
PY
  count "GUI: after Cancel the image is unchanged" $? "rc=$rc, $(tail -3 "$W/log2-gui-cancel.txt")"
  grep -q "CASE-LAYERS 1" "$W/log2-gui-cancel.txt"; count "GUI: after Cancel no layer was added" $?
else
  say "SKIP GUI cancel test: xdotool or gimp-2.10 missing"
fi

echo "gimp2: $passed passed, $failed failed"
[ "$failed" = 0 ]
