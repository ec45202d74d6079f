#!/bin/sh
# No file is ever lost: invedit's outputs are written to a temporary file in
# the target's folder and renamed only when complete (util/atomic_file.h).
#   - a PNG or JPEG write over the file-size limit (ulimit -f) fails with exit 3
#     and leaves the previous file byte for byte, also when -o is the input;
#   - the same for invert's .npy;
#   - SIGTERM and SIGINT while a large output is written: exit 130, previous
#     file intact, no temporary left;
#   - a symlink given as -o stays a symlink (its target is replaced);
#   - /dev/null, a FIFO and '-' (standard output) are written directly.
#
#   test_cli_outputs.sh path/to/invedit path/to/image_probe
set -u
INVEDIT=${1:?usage: test_cli_outputs.sh invedit image_probe}
INVEDIT=$(realpath "$INVEDIT")
. "$(cd "$(dirname "$0")" && pwd)/common.sh"
no_temporaries() { # no .NAME.XXXXXX.part left in the folder
    if ls -A | grep -q '\.part$'; then fail "$1: temporary left: $(ls -A | grep '\.part$')"; else ok "$1: no temporary left"; fi
}

M="$ROOT/models/demo"
EDIT="edit --device cpu --model $M --source a --target b --steps 4 -q"

$PY - <<'EOF' || exit 1
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save('noise.png')
Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save('noise.jpg', quality=95)
# large enough that writing the output takes a while (the edit itself is 64x64)
a = np.zeros((3000, 4000, 3), np.uint8)
a[:, :, 0] = np.arange(4000, dtype=np.uint32)[None, :] * 255 // 4000
a[:, :, 2] = 120
Image.fromarray(a).save('large.png', compress_level=1)
EOF

# 1. file-size limit: -o is the input image itself
for f in noise.png noise.jpg; do
    cp $f keep
    (ulimit -f 4; exec "$INVEDIT" $EDIT --image $f -o $f) 2>err.txt
    rc=$?
    if [ $rc = 3 ] && cmp -s $f keep; then ok "$f: write over ulimit -f fails (exit 3) and the input at -o is unchanged: $(cat err.txt)"
    else fail "$f: exit $rc, $(cat err.txt); file $(cmp -s $f keep && echo unchanged || echo CHANGED or gone)"; fi
    no_temporaries "$f after the failed write"
done
# a fresh target that fails: nothing appears
(ulimit -f 4; exec "$INVEDIT" $EDIT --image noise.png -o fresh.png) 2>/dev/null
[ ! -e fresh.png ] && ok "a failed write of a new file leaves no file" || fail "fresh.png exists after a failed write"

# 2. invert's .npy
"$INVEDIT" invert --device cpu --model "$M" --image noise.png --source a --method ef-ddpm --steps 10 -q -o lat.npy &&
    cp lat.npy keep.npy || fail "invert"
(ulimit -f 4; exec "$INVEDIT" invert --device cpu --model "$M" --image noise.png --source a --method ef-ddpm --steps 40 -q -o lat.npy) 2>err.txt
rc=$?
if [ $rc = 3 ] && cmp -s lat.npy keep.npy; then ok ".npy write over the limit fails (exit 3), old file kept: $(cat err.txt)"
else fail ".npy: exit $rc, $(cat err.txt)"; fi
no_temporaries ".npy after the failed write"

# 3. signals while the large output is being written
for sig in TERM INT; do
    cp noise.png big_out.png
    cp big_out.png keep
    "$INVEDIT" $EDIT --image large.png -o big_out.png 2>err.txt &
    pid=$!
    n=0 # wait for the temporary file to appear, then signal
    while ! ls -A | grep -q '^\.big_out\.png\..*\.part$' && [ $n -lt 1200 ] && kill -0 $pid 2>/dev/null; do
        sleep 0.05
        n=$((n + 1))
    done
    kill -$sig $pid 2>/dev/null
    wait $pid
    rc=$?
    if [ $rc = 130 ] && cmp -s big_out.png keep; then ok "SIG$sig during the write: exit 130, previous file intact"
    else fail "SIG$sig: exit $rc, file $(cmp -s big_out.png keep && echo intact || echo CHANGED); $(cat err.txt)"; fi
    no_temporaries "after SIG$sig"
done

# 4. symlink as -o: the link stays, its target gets the image
cp noise.png target.png
ln -s target.png link.png
if "$INVEDIT" $EDIT --image noise.png -o link.png && [ -L link.png ] && ! cmp -s target.png noise.png &&
    $PY -c "from PIL import Image; Image.open('target.png').load()"; then
    ok "symlink -o: still a symlink, its target replaced by a valid PNG"
else fail "symlink -o: $(ls -l link.png target.png)"; fi

# 5. special targets written directly
if "$INVEDIT" $EDIT --image noise.png -o /dev/null && [ -c /dev/null ]; then ok "-o /dev/null: written, still a device"
else fail "-o /dev/null"; fi
"$INVEDIT" $EDIT --image noise.png -o - >stdout.png
$PY -c "from PIL import Image; im = Image.open('stdout.png'); im.load(); assert im.size == (256, 256)" 2>/dev/null &&
    ok "-o -: a PNG on standard output" || fail "-o -: standard output is not a 256x256 PNG"
mkfifo fifo
(timeout 60 cat fifo >from_fifo.png 2>/dev/null &) # a reader that cannot hang the test
if timeout 60 "$INVEDIT" $EDIT --image noise.png -o fifo && sleep 0.2 &&
    $PY -c "from PIL import Image; Image.open('from_fifo.png').load()" 2>/dev/null && [ -p fifo ]; then
    ok "-o FIFO: a PNG through the FIFO, which stays a FIFO"
else fail "-o FIFO"; fi

echo "$checks checks, $failures failures"
[ $failures -eq 0 ]
