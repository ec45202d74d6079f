#!/bin/sh
# The CLI says what it does: each of these used to be silent or misleading.
#   generate --gamma 0 (its default) is accepted; unknown output extensions,
#   a missing output folder and bad --device / INVEDIT_DEVICE strings are usage
#   errors (exit 2) before the model loads; RGBA to JPEG, prompts over the
#   model's 75 tokens, --blend-words absent from the target prompt and options
#   of other methods give warnings; the help's --steps / --eta ranges match
#   what each method accepts; EXIF orientation and CMYK JPEGs reach the edit;
#   NaN weights stop the edit with exit 1 instead of a black image.
#
#   test_cli_untruths.sh path/to/invedit [path/to/image_probe]
set -u
INVEDIT=${1:?usage: test_cli_untruths.sh invedit}
INVEDIT=$(realpath "$INVEDIT")
. "$(cd "$(dirname "$0")" && pwd)/common.sh"

M="$ROOT/models/demo"
SRC="a red circle on the left on a blue background"
TGT="a green circle on the left on a blue background"

# run CODE PATTERN LABEL -- args...: exit CODE, stderr matches PATTERN (grep -E)
run() {
    want=$1 pat=$2 label=$3
    shift 4
    "$INVEDIT" "$@" >out.txt 2>err.txt
    rc=$?
    if [ "$rc" = "$want" ] && { [ -z "$pat" ] || grep -qE -- "$pat" err.txt; }; then ok "$label (exit $rc: $(grep -E -- "$pat" err.txt | head -1 | cut -c1-150))"
    else fail "$label: exit $rc (want $want), stderr /$pat/: $(head -c 400 err.txt)"; fi
}
# runs that must succeed without a given warning
run_clean() {
    pat=$1 label=$2
    shift 3
    "$INVEDIT" "$@" >out.txt 2>err.txt
    rc=$?
    if [ "$rc" = 0 ] && ! grep -qE -- "$pat" err.txt; then ok "$label"
    else fail "$label: exit $rc, stderr: $(head -c 400 err.txt)"; fi
}

$PY - <<'EOF' || exit 1
import numpy as np
from PIL import Image
a = np.zeros((64, 64, 3), np.uint8); a[:] = (30, 40, 220); a[24:40, 4:20] = (230, 30, 30)
Image.fromarray(a).save('in.png')
rgba = np.dstack([a, np.full((64, 64), 255, np.uint8)]); rgba[:8, :8, 3] = 0
Image.fromarray(rgba, 'RGBA').save('rgba.png')
b = np.zeros((32, 48, 3), np.uint8); b[:] = (30, 40, 220); b[8:24, 4:20] = (230, 30, 30)
ex = Image.Exif(); ex[0x0112] = 6
Image.fromarray(b).save('portrait.jpg', quality=95, exif=ex.tobytes())
Image.fromarray(a).convert('CMYK').save('cmyk.jpg', quality=95)
EOF
E="edit --device cpu --model $M --image in.png --source"
NOMODEL="$TMP/no-such-model"

# generate --gamma 0
run 0 "" "generate --gamma 0 (plain DDIM, the default) is accepted" -- generate --device cpu --model "$M" \
    --prompt "$TGT" --gamma 0 --steps 4 -q -o gen.png
run 2 "gamma.*0 \(plain DDIM\) or 0.05" "generate --gamma 0.01 names both valid forms" -- generate --device cpu \
    --model "$M" --prompt x --gamma 0.01 -o gen.png

# output checked before the model loads (the model path does not exist: its error would come later)
for o in out.gif out.xyz out; do
    run 2 "unknown output format" "-o $o is a usage error before the model loads" -- edit --model "$NOMODEL" \
        --image in.png --source a --target b -o $o
done
run 2 "output folder does not exist" "a missing output folder is reported before the model loads" -- \
    edit --model "$NOMODEL" --image in.png --source a --target b -o "$TMP/missing/dir/out.png"
run 2 "output folder does not exist" "generate: missing output folder, before the model loads" -- \
    generate --model "$NOMODEL" --prompt a -o "$TMP/missing/out.png"
run 2 "output folder does not exist" "invert: missing output folder, before the model loads" -- \
    invert --model "$NOMODEL" --image in.png --source a --method bdia -o "$TMP/missing/out.npy"

# devices
for d in gpu vulkan:-1 vulkan:0abc vulkan: ""; do
    run 2 "expected auto, cpu, vulkan or vulkan:N" "--device '$d' is a usage error listing the valid forms" -- \
        --device "$d" edit --model "$NOMODEL" --image in.png --source a --target b -o out.png
done
run 2 "expected auto, cpu, vulkan or vulkan:N" "edit --device gpu (the option after the command) too" -- \
    edit --device gpu --model "$NOMODEL" --image in.png --source a --target b -o out.png
INVEDIT_DEVICE=garbage run 2 "INVEDIT_DEVICE.*expected auto, cpu, vulkan or vulkan:N" \
    "INVEDIT_DEVICE=garbage is a usage error" -- devices

# per-method limits: help and errors agree
"$INVEDIT" edit --help >help.txt
grep -qE -- "--steps N .*infedit at most 50" help.txt && ok "help: --steps shows infedit's limit of 50" ||
    fail "help: --steps line: $(grep -- --steps help.txt)"
grep -qE -- "--eta X .*ef-ddpm above 0" help.txt && ok "help: --eta shows that ef-ddpm needs eta > 0" ||
    fail "help: --eta line: $(grep -- --eta help.txt)"
run 2 "infedit takes at most 50 steps" "infedit --steps 60: a usage error before the model loads" -- \
    edit --model "$NOMODEL" --image in.png --source a --target b --steps 60 -o out.png
run 2 "ef-ddpm needs eta above 0" "ef-ddpm --eta 0: a usage error before the model loads" -- \
    edit --model "$NOMODEL" --image in.png --source a --target b --method ef-ddpm --eta 0 -o out.png

# warnings
run 0 "--gamma does not apply to infedit" "an option of another method warns (infedit --gamma)" -- \
    $E "$SRC" --target "$TGT" --gamma 0.9 --steps 4 -q -o out.png
run 0 "--blend-words does not apply to ef-ddpm" "ef-ddpm --blend-words warns" -- \
    $E "$SRC" --target "$TGT" --method ef-ddpm --steps 10 --blend-words green -q -o out.png
run 0 "word 'zebra' is not in the target prompt" "--blend-words absent from the target prompt warn" -- \
    $E "$SRC" --target "$TGT" --blend-words "zebra green" --steps 4 -q -o out.png
run_clean "not in the target prompt|does not apply" "--blend-words of the target prompt: no warning" -- \
    $E "$SRC" --target "$TGT" --blend-words "Green," --steps 4 -q -o out.png
LONG=$(printf 'a red circle on the left %.0s' 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
run 0 "target prompt has [0-9]+ tokens; the model reads the first 75" "a prompt over 75 tokens warns" -- \
    $E "$SRC" --target "$LONG" --steps 4 -q -o out.png
run 0 "transparency.*JPEG" "RGBA with transparency to JPEG warns that alpha is dropped" -- \
    edit --device cpu --model "$M" --image rgba.png --source "$SRC" --target "$TGT" --steps 4 -q -o out.jpg
run_clean "transparency" "RGBA to PNG: no warning" -- \
    edit --device cpu --model "$M" --image rgba.png --source "$SRC" --target "$TGT" --steps 4 -q -o out.png

# EXIF orientation and CMYK reach the edit
"$INVEDIT" edit --device cpu --model "$M" --image portrait.jpg --source "$SRC" --target "$TGT" --steps 4 -q \
    -o portrait_out.png 2>err.txt &&
    $PY -c "from PIL import Image; assert Image.open('portrait_out.png').size == (32, 48)" 2>/dev/null &&
    ok "EXIF orientation 6: a 48x32 JPEG is edited upright (32x48)" ||
    fail "EXIF orientation: $(cat err.txt) $($PY -c "from PIL import Image; print(Image.open('portrait_out.png').size)" 2>&1)"
run 0 "" "a CMYK JPEG is edited (converted to RGB)" -- \
    edit --device cpu --model "$M" --image cmyk.jpg --source "$SRC" --target "$TGT" --steps 4 -q -o cmyk_out.png

# NaN weights: a copy of the demo model with one UNet tensor set to NaN
$PY - "$M" nanmodel <<'EOF' || exit 1
import json, os, shutil, struct, sys
src, dst = sys.argv[1], sys.argv[2]
shutil.copytree(src, dst)
p = os.path.join(dst, 'unet', 'diffusion_pytorch_model.safetensors')
b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
e = json.loads(b[8:8 + n])['conv_out.bias']
nan = {'F16': b'\x00\x7e', 'F32': b'\x00\x00\xc0\x7f', 'BF16': b'\xc0\x7f'}[e['dtype']]
a, z = e['data_offsets']
for i in range(8 + n + a, 8 + n + z, len(nan)):
    b[i:i + len(nan)] = nan
open(p, 'wb').write(bytes(b))
EOF
for m in infedit ef-ddpm bdia; do
    run 1 "step 0.*NaN or Inf in the UNet output.*another checkpoint" "NaN weights stop $m with exit 1, naming the step" -- \
        edit --device cpu --model nanmodel --image in.png --source "$SRC" --target "$TGT" --method $m -q -o nan_$m.png
    [ ! -e nan_$m.png ] && ok "no image written for $m" || fail "$m wrote nan_$m.png"
done
run 1 "NaN or Inf" "NaN weights stop generate with exit 1" -- generate --device cpu --model nanmodel --prompt "$TGT" \
    --steps 4 -q -o nan_gen.png

echo "$checks checks, $failures failures"
[ $failures -eq 0 ]
