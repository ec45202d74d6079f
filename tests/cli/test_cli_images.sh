#!/bin/sh
# The CLI's image loader (cli/image_io.c) against PIL, an independent decoder:
#   - PNG (RGB, RGBA, gray, palette, 16-bit) and JPEG (baseline, progressive)
#     decode to the same pixels as PIL;
#   - truncated JPEGs (baseline, progressive) and PNGs, and corrupt PNG data,
#     are refused with exit 3 naming the file;
#   - a header over the pixel bound is refused before decoding, with the
#     memory it would need;
#   - EXIF orientation 1..8 (JPEG APP1, PNG eXIf) gives PIL's exif_transpose;
#   - CMYK JPEGs (Adobe, inverted) give PIL's CMYK -> RGB;
#   - standard input, a FIFO, /dev/stdin and a pipe given as a path are read.
#
#   test_cli_images.sh path/to/invedit path/to/image_probe
set -u
INVEDIT=${1:?usage: test_cli_images.sh invedit image_probe}
INVEDIT=$(realpath "$INVEDIT")
PROBE=${2:?usage: test_cli_images.sh invedit image_probe}
PROBE=$(realpath "$PROBE")
. "$(cd "$(dirname "$0")" && pwd)/common.sh"
check() { # check LABEL command...: the command must succeed
    label=$1
    shift
    if "$@" >cmd.out 2>&1; then ok "$label"; else fail "$label: $(tail -3 cmd.out)"; fi
}

# expect_error LABEL CODE PATTERN FILE: image_probe refuses FILE with exit CODE
# and a message matching PATTERN (grep -E) that names the file.
expect_error() {
    "$PROBE" "$4" out.png >probe.out 2>probe.err
    rc=$?
    if [ "$rc" = "$2" ] && grep -qE "$3" probe.err && grep -qF "$4" probe.err; then
        ok "$1 (exit $rc: $(head -c 160 probe.err))"
    else
        fail "$1: exit $rc, want $2 and /$3/; stderr: $(cat probe.err)"
    fi
}

$PY - <<'EOF' || exit 1
import io, struct, zlib
import numpy as np
from PIL import Image

# 48x32, four flat quadrants and a gradient stripe: any flip or turn shows
a = np.zeros((32, 48, 3), np.uint8)
a[:16, :24] = (230, 30, 30); a[:16, 24:] = (30, 200, 40)
a[16:, :24] = (30, 40, 220); a[16:, 24:] = (240, 220, 20)
a[14:18, :, :] = np.linspace(0, 255, 48, dtype=np.uint8)[None, :, None]
img = Image.fromarray(a)
img.save('rgb.png')
rgba = img.convert('RGBA'); al = np.array(rgba); al[:, :, 3] = np.linspace(0, 255, 48, dtype=np.uint8)[None, :]
Image.fromarray(al).save('rgba.png')
img.convert('L').save('gray.png')
img.convert('P', palette=Image.ADAPTIVE, colors=16).save('palette.png')
Image.fromarray((np.array(img.convert('L')).astype(np.uint16) * 257)).save('gray16.png')
img.save('base.jpg', quality=95)
img.save('prog.jpg', quality=95, progressive=True)

def cut_in_scan(src, dst, frac):
    d = open(src, 'rb').read()
    sos = d.index(b'\xff\xda')
    n = sos + int((len(d) - sos) * frac)
    open(dst, 'wb').write(d[:n])
cut_in_scan('base.jpg', 'trunc_base.jpg', 0.5)
cut_in_scan('prog.jpg', 'trunc_prog.jpg', 0.5)

# PNG: cut inside IDAT; one IDAT byte flipped (bad CRC); bad zlib data, good CRC
d = open('rgb.png', 'rb').read()
i = d.index(b'IDAT')
ln = struct.unpack('>I', d[i - 4:i])[0]
open('trunc.png', 'wb').write(d[:i + 4 + ln // 2])
b = bytearray(d); b[i + 4 + ln // 2] ^= 0xff
open('badcrc.png', 'wb').write(bytes(b))
data = bytearray(d[i + 4:i + 4 + ln]); data[2:10] = b'\xff' * 8
crc = zlib.crc32(b'IDAT' + bytes(data)) & 0xffffffff
open('badzlib.png', 'wb').write(d[:i + 4] + bytes(data) + struct.pack('>I', crc) + d[i + 8 + ln:])
# a PNG with no IEND (truncated after the image data)
j = d.index(b'IEND')
open('noiend.png', 'wb').write(d[:j - 4])

# headers that promise huge images: a 643-byte JPEG saying 8000x8000, a PNG 10000x10000
big = Image.new('RGB', (8000, 8000), (200, 100, 50))
buf = io.BytesIO(); big.save(buf, 'JPEG', quality=50)
open('huge.jpg', 'wb').write(buf.getvalue()[:643])
ihdr = struct.pack('>IIBBBBB', 10000, 10000, 8, 2, 0, 0, 0)
chunk = lambda t, p: struct.pack('>I', len(p)) + t + p + struct.pack('>I', zlib.crc32(t + p) & 0xffffffff)
open('huge.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b'\0' * 100)) + chunk(b'IEND', b''))

# EXIF orientation 1..8
for o in range(1, 9):
    ex = Image.Exif(); ex[0x0112] = o
    img.save('orient%d.jpg' % o, quality=95, exif=ex.tobytes())
ex = Image.Exif(); ex[0x0112] = 6
img.save('orient6.png', exif=ex.tobytes())

# CMYK (PIL writes Adobe-style inverted CMYK)
cm = np.zeros((32, 48, 4), np.uint8)
cm[:, :, 0] = np.linspace(0, 255, 48, dtype=np.uint8)[None, :]
cm[:, :, 1] = np.linspace(0, 255, 32, dtype=np.uint8)[:, None]
cm[:16, :, 2] = 200; cm[:, 24:, 3] = 80
Image.fromarray(cm, 'CMYK').save('cmyk.jpg', quality=95)
EOF

# compare GOT WANT TOL LABEL: same size, max |difference| <= TOL (0..255),
# WANT decoded by PIL (with exif_transpose when TRANSPOSE=1)
compare() {
    $PY - "$1" "$2" "$3" "${TRANSPOSE:-0}" >cmp.out 2>&1 <<'EOF'
import sys
import numpy as np
from PIL import Image, ImageOps
got, want, tol, tr = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == '1'
g = Image.open(got); w = Image.open(want)
if tr: w = ImageOps.exif_transpose(w)
mode = 'RGBA' if g.mode == 'RGBA' else 'RGB'
g = np.asarray(g.convert(mode), np.int32); w = np.asarray(w.convert(mode), np.int32)
if g.shape != w.shape:
    print('shape %s, want %s' % (g.shape, w.shape)); sys.exit(1)
d = np.abs(g - w).max()
print('max diff %d' % d)
sys.exit(0 if d <= tol else 1)
EOF
    if [ $? -eq 0 ]; then ok "$4: $(cat cmp.out)"; else fail "$4: $(cat cmp.out)"; fi
}

for f in rgb.png rgba.png gray.png palette.png; do
    if "$PROBE" $f got.png >/dev/null 2>probe.err; then compare got.png $f 0 "$f decodes like PIL"
    else fail "$f: $(cat probe.err)"; fi
done
# gray16.png holds gray.png's values x 257: scaled to 8 bits they come back exactly
if "$PROBE" gray16.png got.png >/dev/null 2>probe.err; then compare got.png gray.png 0 "gray16.png scales to its 8-bit values"
else fail "gray16.png: $(cat probe.err)"; fi
for f in base.jpg prog.jpg; do
    if "$PROBE" $f got.png >/dev/null 2>probe.err; then compare got.png $f 2 "$f decodes like PIL"
    else fail "$f: $(cat probe.err)"; fi
done

expect_error "JPEG cut inside its scan data (baseline) is refused" 3 "corrupt JPEG" trunc_base.jpg
expect_error "JPEG cut inside its scan data (progressive) is refused" 3 "corrupt JPEG" trunc_prog.jpg
expect_error "PNG cut inside IDAT is refused" 3 "corrupt PNG" trunc.png
expect_error "PNG with a bad IDAT CRC is refused" 3 "corrupt PNG" badcrc.png
expect_error "PNG with corrupt compressed data is refused" 3 "corrupt PNG" badzlib.png
expect_error "PNG without IEND is refused" 3 "corrupt PNG" noiend.png
expect_error "8000x8000 JPEG header over the pixel bound, with the memory needed" 3 "8000x8000.*megapixels.*MiB" huge.jpg
expect_error "10000x10000 PNG header over the pixel bound" 3 "10000x10000.*megapixels.*MiB" huge.png
: >empty.png
expect_error "an empty file is refused" 3 "empty" empty.png
expect_error "a directory is refused" 3 "directory" "$TMP"
# raising the bound lets the header pass; the truncated data is still refused
INVEDIT_MAX_MEGAPIXELS=100 "$PROBE" huge.jpg out.png >/dev/null 2>probe.err
rc=$?
if [ $rc = 3 ] && grep -q "corrupt JPEG" probe.err; then ok "INVEDIT_MAX_MEGAPIXELS raises the bound (then: $(cat probe.err))"
else fail "INVEDIT_MAX_MEGAPIXELS=100: exit $rc, $(cat probe.err)"; fi

for o in 1 2 3 4 5 6 7 8; do
    if "$PROBE" orient$o.jpg got.png >/dev/null 2>probe.err; then
        TRANSPOSE=1 compare got.png orient$o.jpg 2 "EXIF orientation $o (JPEG) as PIL's exif_transpose"
    else fail "orient$o.jpg: $(cat probe.err)"; fi
done
if "$PROBE" orient6.png got.png >/dev/null 2>probe.err; then
    TRANSPOSE=1 compare got.png orient6.png 0 "EXIF orientation 6 (PNG eXIf) as PIL's exif_transpose"
else fail "orient6.png: $(cat probe.err)"; fi

if "$PROBE" cmyk.jpg got.png >/dev/null 2>probe.err; then compare got.png cmyk.jpg 3 "CMYK JPEG converts like PIL"
else fail "cmyk.jpg: $(cat probe.err)"; fi

# one open, read from memory: standard input, FIFOs, /dev/stdin, process substitution
check "--image - style: standard input" sh -c "\"$PROBE\" - got.png < base.jpg"
compare got.png base.jpg 2 "standard input decodes like the file"
mkfifo fifo
(timeout 60 sh -c "cat rgb.png >fifo" >/dev/null 2>&1 &) # a writer that cannot hang the test
check "a FIFO is read once" timeout 20 "$PROBE" fifo got.png
compare got.png rgb.png 0 "the FIFO's image"
check "/dev/stdin from a pipe" sh -c "cat rgba.png | \"$PROBE\" /dev/stdin got.png"
compare got.png rgba.png 0 "/dev/stdin's image"

# the same through invedit itself: a FIFO and '-' as --image (demo model, CPU)
M="$ROOT/models/demo"
(timeout 60 sh -c "cat rgb.png >fifo" >/dev/null 2>&1 &) # a writer that cannot hang the test
check "invedit edit --image FIFO" timeout 60 "$INVEDIT" edit --device cpu --model "$M" --image fifo \
    --source "a red square" --target "a blue square" --steps 4 -q -o fifo_out.png
check "invedit edit --image - (standard input)" sh -c "timeout 60 \"$INVEDIT\" edit --device cpu --model \"$M\" \
    --image - --source 'a red square' --target 'a blue square' --steps 4 -q -o stdin_out.png < base.jpg"
$PY -c "from PIL import Image; assert Image.open('stdin_out.png').size == (48, 32)" 2>/dev/null &&
    ok "the edit of standard input has the input's size" || fail "stdin_out.png is not 48x32"
"$INVEDIT" edit --device cpu --model "$M" --image trunc_base.jpg --source a --target b -q -o never.png 2>edit.err
rc=$?
if [ $rc = 3 ] && grep -q "trunc_base.jpg: corrupt JPEG" edit.err && [ ! -e never.png ]; then
    ok "invedit edit refuses the truncated JPEG (exit 3, nothing written)"
else fail "invedit edit on a truncated JPEG: exit $rc, $(cat edit.err)"; fi

echo "$checks checks, $failures failures"
[ $failures -eq 0 ]
