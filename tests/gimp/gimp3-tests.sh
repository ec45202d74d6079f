#!/bin/bash
# GIMP 3 tests of the invedit plug-in. Runs INSIDE the trixie chroot
# (make-chroot.sh), started by run.sh with the repository bind-mounted
# read-only at /src and tests/gimp/out at /out:
#   1. builds the project into a chroot-local folder (the repo stays untouched);
#   2. for each library build (IMPL: fake, real or both; real needs models/demo):
#      installs the plug-in as a user plug-in and runs ONE gimp-console-3.0
#      session with every case of cases.py (Python and Script-Fu v3 calls),
#      then a short session whose progress callback cancels;
#   3. the UI test: gimp-console-3.0 under Xvfb calls the plug-in
#      interactively; the dialog screenshots itself to /out/dialog-gimp3.png,
#      checks that every argument has a widget, and presses OK;
#   4. check.py checks pixels and logs. Prints "gimp3: N passed, N failed".
set -u
SRC=${SRC:-/src}
OUT=${OUT:-/out}
IMPL=${IMPL:-both}
B=${BUILD:-/root/build-invedit}            # chroot-local build folder
W=${WORK:-/root/invedit-gimp3-test}
MODEL=${MODEL:-$SRC/models/demo}
FAKE_MODEL=$W/fake-model                   # the fake library only checks that it exists
PLUGDIR=$HOME/.config/GIMP/3.0/plug-ins/invedit
T=$SRC/tests/gimp
passed=0; failed=0

HOST=gimp3
. "$T/common.sh"

mkdir -p "$HOME"
rm -rf "$W"; mkdir -p "$W/out-fake" "$W/out-real" "$OUT" "$FAKE_MODEL"
say "gimp $(gimp-console-3.0 --version | tail -1), libgimp $(pkg-config --modversion gimp-3.0)"

# --- build ---------------------------------------------------------------------------------
build_plugins

conf() { # impl extra-json
  python3 - "$@" <<PY
import json, sys
c = {"tests": "$T", "work": "$W", "impl": sys.argv[1], "only": None,
     "model": "$FAKE_MODEL" if sys.argv[1] == "fake" else "$MODEL",
     "table": open("$W/table.tsv").read(), "results": "$W/results-%s%s.json" % (sys.argv[1], sys.argv[3])}
c.update(json.loads(sys.argv[2]))
print("CONF = " + repr(c))
PY
}

session() { # impl suffix extra-json -- extra env...: one gimp-console-3.0 run of batch3.py
  local impl=$1 suffix=$2 extra=$3; shift 4
  { conf "$impl" "$extra" "$suffix"; cat "$T/batch3.py"; } >"$W/driver-$impl$suffix.py"
  local t0=$SECONDS
  env "$@" timeout 900 gimp-console-3.0 -i --quit --batch-interpreter=python-fu-eval -b - \
    <"$W/driver-$impl$suffix.py" >"$W/log-$impl$suffix.txt" 2>&1
  local rc=$?
  say "session $impl$suffix: rc=$rc, $((SECONDS-t0)) s, log $W/log-$impl$suffix.txt"
  count "gimp-console session $impl$suffix exits cleanly" $rc "rc=$rc: $(tail -5 "$W/log-$impl$suffix.txt")"
}

install_plugin() { # binary
  install -Dm755 "$1" "$PLUGDIR/invedit"
  rm -f "$HOME"/.config/GIMP/3.0/plug-in-settings/*plug-in-invedit*  # no last values from earlier runs
}

for impl in "${impls[@]}"; do
  [ -n "$impl" ] || continue
  if [ "$impl" = real ]; then  # the way users install it: meson install, into the user's plug-in folder
    rm -rf "$PLUGDIR"
    meson install -C "$B" --no-rebuild --tags gimp-plugin >"$W/install.log" 2>&1
    [ -x "$PLUGDIR/invedit" ]; count "meson install puts the plug-in in ~/.config/GIMP/3.0/plug-ins/invedit/" $? \
      "$(tail -5 "$W/install.log")"
  fi
  bin=$B/plugin/gimp3/invedit; [ "$impl" = fake ] && bin=$B/tests/gimp/invedit-fake-gimp3
  install_plugin "$bin"
  say "== $impl library: batch cases"
  session "$impl" "" '{}' -- INVEDIT_FAKE_STEP_MS=5
  if [ "$impl" = real ]; then  # cases cache-first-try / cache-second-try: a second try skips the inversion
    # the log of the second try (the only call with its target) says it, before the next call starts
    awk '/invedit: run-mode=/ { on = /yellow circle on the left on a blue gradient/ }
         on && /inversion from the cache/ { hit = 1 } END { exit !hit }' "$W/log-$impl.txt"
    count "a second try in GIMP takes the inversion from the disk cache" $? "no 'inversion from the cache' in $W/log-$impl.txt"
  fi
  add_results < <(python3 "$T/check.py" --work "$W" --impl "$impl" --results "$W/results-$impl.json" \
    --log "$W/log-$impl.txt" --label gimp3)
  say "== $impl library: cancel from the progress callback"
  session "$impl" "-cancel" '{"cancel": true}' -- INVEDIT_TEST_CANCEL_AFTER=1
  add_results < <(python3 "$T/check.py" --work "$W" --impl "$impl" --results "$W/results-$impl-cancel.json" \
    --log "$W/log-$impl-cancel.txt" --label gimp3 --cancel)
  cp "$W"/log-"$impl"*.txt "$OUT/" 2>/dev/null
  mkdir -p "$OUT/gimp3-$impl"; cp "$W/out-$impl"/*.png "$OUT/gimp3-$impl/" 2>/dev/null
done

# --- the batch examples in plugin/examples (fake library: exact results) -----------------------
if [[ " ${impls[*]} " == *" fake "* ]]; then
  say "== plugin/examples: edit-folder.scm and edit_folder.py"
  install_plugin "$B/tests/gimp/invedit-fake-gimp3"
  mkdir -p "$W/ex/in" "$W/ex/scm" "$W/ex/py"; cp "$W/rgb.png" "$W/ex/in/a.png"; cp "$W/gray.png" "$W/ex/in/b.png"
  timeout 300 gimp-console-3.0 -i --quit --batch-interpreter=plug-in-script-fu-eval -b "(begin
    (load \"$SRC/plugin/examples/edit-folder.scm\")
    (invedit-edit-folder \"$W/ex/in\" \"$W/ex/scm\" \"$FAKE_MODEL\" \"a\" \"b\"))" >"$W/log-ex-scm.txt" 2>&1
  count "example edit-folder.scm runs" $? "$(tail -3 "$W/log-ex-scm.txt")"
  INVEDIT_IN=$W/ex/in INVEDIT_OUT=$W/ex/py INVEDIT_MODEL=$FAKE_MODEL INVEDIT_SOURCE=a INVEDIT_TARGET=b INVEDIT_STEPS=3 \
    timeout 300 gimp-console-3.0 -i --quit --batch-interpreter=python-fu-eval -b - \
    <"$SRC/plugin/examples/edit_folder.py" >"$W/log-ex-py.txt" 2>&1
  count "example edit_folder.py runs" $? "$(tail -3 "$W/log-ex-py.txt")"
  for d in scm py; do
    python3 - "$W/ex/in" "$W/ex/$d" "$T" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
import pngtool
for name in ("a.png", "b.png"):
    a, b = pngtool.read_png(sys.argv[1] + "/" + name), pngtool.read_png(sys.argv[2] + "/" + name)
    assert all(abs(x + y - 255) <= 1 for ra, rb in zip(a.rows, b.rows) for x, y in zip(ra, rb)), name
PY
    count "example ($d): every image edited (fake: inverted)" $?
  done
fi

# --- UI: the real dialog under Xvfb ----------------------------------------------------------
ui_impl=fake; for i in "${impls[@]}"; do [ "$i" = real ] && ui_impl=real; done
say "== dialog under Xvfb ($ui_impl library)"
bin=$B/plugin/gimp3/invedit; [ "$ui_impl" = fake ] && bin=$B/tests/gimp/invedit-fake-gimp3
install_plugin "$bin"
shot=$OUT/dialog-gimp3.png; rm -f "$shot"
nargs=$(wc -l <"$W/table.tsv")
{ conf "$ui_impl" '{"interactive": true}' "-ui"; cat "$T/batch3.py"; } >"$W/driver-ui.py"
t0=$SECONDS
ui_model=$MODEL; [ "$ui_impl" = fake ] && ui_model=$FAKE_MODEL
INVEDIT_UI_TEST=$shot INVEDIT_MODEL=$ui_model timeout 300 xvfb-run -a -s "-screen 0 1280x1400x24" \
  gimp-console-3.0 -i --quit --batch-interpreter=python-fu-eval -b - <"$W/driver-ui.py" >"$W/log-ui.txt" 2>&1
rc=$?
say "dialog session: rc=$rc, $((SECONDS-t0)) s"
count "gimp-console session with the dialog exits cleanly" $rc "$(tail -5 "$W/log-ui.txt")"
cp "$W/log-ui.txt" "$OUT/log-gimp3-ui.txt"
add_results < <(python3 "$T/check.py" --work "$W" --impl "$ui_impl" --results "$W/results-$ui_impl-ui.json" \
  --log "$W/log-ui.txt" --label gimp3-ui --ui "$nargs" --shot "$shot")
grep '^ui-test' "$W/log-ui.txt" | grep -v 'ui-test: argument' | sed 's/^/  /'
# GIMP 3 keeps the last-used values of interactive runs itself (plug-in-settings/*.last).
last=$HOME/.config/GIMP/3.0/plug-in-settings/GimpProcedureConfigRun-plug-in-invedit.last
grep -q "(model-path \"$ui_model\")" "$last" 2>/dev/null
count "GIMP stored the dialog's values for the next run" $? "$last"

echo "gimp3: $passed passed, $failed failed"
[ "$failed" = 0 ]
