#!/usr/bin/env bash
# The library as an outside program sees it: installs a build into a staging
# folder (meson install --destdir, runtime and devel files only: no GIMP
# plug-ins), compiles examples/edit_png.c against the INSTALLED headers and
# library through pkg-config, runs it on models/demo with a 64x64 PNG, and
# checks the output PNG (its size, and that the edit changed it).
#
#   scripts/test-installed-example.sh [BUILD_DIR]     (default: build)
#
# Exit 0 pass, 1 fail, 77 skip (a sanitizer build: the example is compiled
# without the sanitizer runtime the library needs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case ${IE_SANITIZE:-none} in none | "") ;; *) echo "skip: sanitizer build ($IE_SANITIZE)"; exit 77 ;; esac
CC=${CC:-cc}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
fail() { echo "FAIL $*"; exit 1; }

if ! meson install -C "$BUILD" --no-rebuild --destdir "$STAGE" --tags runtime,devel >"$STAGE.log" 2>&1; then
    cat "$STAGE.log"; rm -f "$STAGE.log"
    fail "meson install --destdir $STAGE"
fi
rm -f "$STAGE.log"
pc=$(find "$STAGE" -name invedit.pc | head -n 1)
[ -n "$pc" ] || fail "no invedit.pc installed under $STAGE"
header=$(find "$STAGE" -path '*/include/invedit/invedit.h' | head -n 1)
[ -n "$header" ] || fail "no include/invedit/invedit.h installed"
[ -f "$(dirname "$header")/invedit_status.h" ] || fail "invedit_status.h not installed beside invedit.h"
if find "$STAGE" -ipath "*gimp*" | grep . >/dev/null; then fail "the install tags runtime,devel installed GIMP files"; fi
libdir=$(dirname "$(dirname "$pc")")
ls "$libdir"/libinvedit.so.0 >/dev/null 2>&1 || fail "no libinvedit.so.0 in $libdir"
ls "$libdir"/libinvedit.a >/dev/null 2>&1 || fail "no libinvedit.a in $libdir"

# The .pc file's prefix moved into the staging folder. (pkg-config --define-prefix
# guesses the prefix as two folders above the .pc file, which is wrong for a
# multiarch libdir such as lib/x86_64-linux-gnu: set it instead.)
prefix=$(sed -n 's/^prefix=//p' "$pc")
[ -n "$prefix" ] || fail "$pc has no prefix"
flags=$(PKG_CONFIG_PATH="$(dirname "$pc")" pkg-config --define-variable=prefix="$STAGE$prefix" --cflags --libs invedit) ||
    fail "pkg-config --cflags --libs invedit"
case $flags in *"$STAGE"*) ;; *) fail "pkg-config flags do not point into the staging folder: $flags" ;; esac
echo "pkg-config: $flags"
# shellcheck disable=SC2086
"$CC" -std=c17 -Wall -Wextra -Werror -o "$STAGE/edit_png" "$ROOT/examples/edit_png.c" $flags -lpng ||
    fail "compiling examples/edit_png.c against the installed library"

"$PY" - "$STAGE/in.png" <<'PYEOF'
import struct, sys, zlib
# a 64x64 RGB PNG: a red disc on the left on a blue background (the demo model's world)
w = h = 64
rows = b""
for y in range(h):
    row = b"\x00"
    for x in range(w):
        inside = (x - 20) ** 2 + (y - 32) ** 2 <= 12 ** 2
        row += bytes((220, 30, 30) if inside else (30, 60, 200))
    rows += row
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
      chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PYEOF

ldir=$(dirname "$(ls "$libdir"/libinvedit.so.0)")
if ! LD_LIBRARY_PATH="$ldir" INVEDIT_DEVICE=cpu INVEDIT_CACHE_DIR="$STAGE/cache" "$STAGE/edit_png" "$ROOT/models/demo" \
    "$STAGE/in.png" "a red circle on the left on a blue background" \
    "a yellow circle on the left on a blue background" "$STAGE/out.png"; then
    fail "edit_png on models/demo"
fi
# the example runs on the installed library, not on the build folder's
LD_LIBRARY_PATH="$ldir" ldd "$STAGE/edit_png" | grep "$STAGE.*libinvedit.so.0" >/dev/null ||
    fail "edit_png does not load the installed libinvedit.so.0: $(LD_LIBRARY_PATH="$ldir" ldd "$STAGE/edit_png" | grep invedit)"

"$PY" - "$STAGE/in.png" "$STAGE/out.png" <<'PYEOF' || fail "the output PNG"
import struct, sys
data = open(sys.argv[2], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
    sys.exit("the output is not a PNG")
w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
if (w, h, depth, ctype) != (64, 64, 8, 2):
    sys.exit(f"output {w}x{h} depth {depth} colour type {ctype}, want 64x64 8-bit RGB")
try:
    from PIL import Image, ImageChops
except ImportError:
    print("ok   edit_png wrote a 64x64 RGB PNG (no PIL: pixels not compared)")
    sys.exit(0)
a, b = Image.open(sys.argv[1]).convert("RGB"), Image.open(sys.argv[2]).convert("RGB")
if ImageChops.difference(a, b).getbbox() is None:
    sys.exit("the output's pixels are the input's: nothing was edited")
print("ok   edit_png wrote a 64x64 RGB PNG whose pixels differ from its input")
PYEOF
echo "test-installed-example: ok"
