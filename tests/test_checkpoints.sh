#!/bin/sh
# Checkpoints as users have them (issue: single .safetensors files, a separate VAE, LoRAs).
#
#   test_checkpoints.sh path/to/invedit path/to/test_checkpoints path/to/invedit-tensor
#
# Makes its data in a temporary folder with tools/ (nothing large is committed):
#   - a Hugging Face tokenizer folder from model/data/bpe_simple_vocab_16e6.txt.gz
#     (tools/clip_vocab_to_hf.py) and the Python reference's ids (tools/clip_tokenizer_ref.py):
#     the built-in vocabulary must give the same ids (test_checkpoints tok);
#   - single-file LDM checkpoints of models/demo and of the reference test models
#     (tools/checkpoint/diffusers_to_single.py, diffusers' converter layout, VAE attention
#     [C,C,1,1] weights and [C,1,1] biases, extra keys, EMA copies, mixed F16/F32/BF16): every
#     network must match its folder, and edit / reconstruct / generate / invert must run on the
#     demo single file with no tokenizer folder beside it and give the folder's results;
#   - --vae as an LDM file, a diffusers vae/ folder and a whole folder; a UNet given as VAE;
#   - SDXL / SD 2.x-named checkpoints (refused, the family named);
#   - random LoRAs (tools/checkpoint/lora_ref.py): the merged weights vs PyTorch (test_checkpoints
#     lora), a UNet output vs the PyTorch UNet with merged weights (<= 1e-4), bad LoRA files.
# CPU backend. Needs /usr/bin/python3 with numpy and torch (skips, 77, without).
set -u
INVEDIT=${1:?usage: test_checkpoints.sh INVEDIT TEST_CHECKPOINTS INVEDIT_TENSOR}
TC=${2:?usage: test_checkpoints.sh INVEDIT TEST_CHECKPOINTS INVEDIT_TENSOR}
TENSOR=${3:?usage: test_checkpoints.sh INVEDIT TEST_CHECKPOINTS INVEDIT_TENSOR}
ROOT=${INVEDIT_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
PY=/usr/bin/python3
if ! $PY -c 'import numpy, torch' 2>/dev/null; then
    echo "skip: $PY with numpy and torch is needed"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
DEMO=$ROOT/models/demo
REF=$ROOT/tests/data/ref
CONV="$PY $ROOT/tools/checkpoint/diffusers_to_single.py"
GZ=$ROOT/model/data/bpe_simple_vocab_16e6.txt.gz
export INVEDIT_DEVICE=cpu
checks=0
failures=0
ok() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }

# compare GOT WANT LABEL TOL [MIN]: max |got-want| / max |want| <= TOL (and >= MIN when given)
compare() {
    if msg=$($PY - "$1" "$2" "$4" "${5:-0}" <<'PYEOF'
import sys
import numpy as np
got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
if got.shape != want.shape:
    print("shape %s, want %s" % (got.shape, want.shape)); sys.exit(1)
rel = float(np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-30))
lo = float(sys.argv[4])
print("max_rel_err=%.3e (tol %s%s)" % (rel, sys.argv[3], ", at least %s" % sys.argv[4] if lo else ""))
sys.exit(0 if lo <= rel <= float(sys.argv[3]) else 1)
PYEOF
    ); then ok "$3 $msg"; else fail "$3 $msg"; fi
}

# run LABEL COMMAND...: succeeds (quiet)
run() {
    label=$1
    shift
    if "$@" >"$TMP/out.txt" 2>"$TMP/err.txt"; then return 0; fi
    fail "$label: exit $?"
    tail -n 5 "$TMP/err.txt"
    return 1
}

# expect CODE TEXT LABEL COMMAND...: exits with CODE and says TEXT (stdout or stderr)
expect() {
    want=$1 text=$2 label=$3
    shift 3
    "$@" >"$TMP/out.txt" 2>"$TMP/err.txt"
    rc=$?
    if [ "$rc" -eq "$want" ] && grep -q -- "$text" "$TMP/out.txt" "$TMP/err.txt"; then
        ok "$label: exit $rc ($(grep -h -- "$text" "$TMP/out.txt" "$TMP/err.txt" | head -n 1 | cut -c 1-160))"
    else
        fail "$label: exit $rc, want $want and '$text'"
        cat "$TMP/out.txt" "$TMP/err.txt" | tail -n 5
    fi
}

same_file() { # A B LABEL
    if cmp -s "$1" "$2"; then ok "$3: identical"; else fail "$3: differ"; fi
}

# --- 1. the built-in CLIP vocabulary -------------------------------------------------------------
$PY "$ROOT/tools/clip_vocab_to_hf.py" "$GZ" "$TMP/hf" &&
    $PY "$ROOT/tools/clip_tokenizer_ref.py" cases "$TMP/hf/vocab.json" "$TMP/hf/merges.txt" "$TMP/cases.json" >/dev/null ||
    fail "making the tokenizer folder and reference ids"
if "$TC" tok "$TMP/hf" "$TMP/cases.json" >"$TMP/tok.txt" 2>&1; then
    ok "built-in vocabulary = folder = Python reference ($(grep -c '^ok' "$TMP/tok.txt") checks)"
else
    fail "built-in vocabulary:"
    grep -v '^ok' "$TMP/tok.txt"
fi

# --- 2. the demo model as one file, no tokenizer folder -------------------------------------------
S=$TMP/single
mkdir -p "$S"
$CONV "$DEMO" "$S/demo.safetensors" --bias-c11 --extra --clip-vocab "$GZ" --write-configs >/dev/null || fail "convert demo"
[ -e "$S/tokenizer" ] && fail "a tokenizer folder beside the single file"
expect 0 "tokenizer: built-in CLIP" "info single file" $INVEDIT info --model "$S/demo.safetensors"
grep -q "vae: .*LDM names, 180 tensors" "$TMP/out.txt" && grep -q "skipped: 2 tensors" "$TMP/out.txt" &&
    ok "info: LDM names, [C,1,1] biases accepted, 2 extra keys skipped" || { fail "info content"; cat "$TMP/out.txt"; }
$PY - "$TMP" <<'PYEOF'
import sys
import numpy as np
r = np.random.default_rng(0)
d = sys.argv[1]
np.save(d + "/x.npy", r.standard_normal((2, 4, 8, 8)).astype(np.float32))
np.save(d + "/z.npy", r.standard_normal((1, 4, 8, 8)).astype(np.float32))
np.save(d + "/img.npy", r.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32))
PYEOF
P1="a red circle on the left on a blue background"
P2="a green square on the right on a textured yellow background"
for m in folder single; do
    [ $m = folder ] && M=$DEMO || M=$S/demo.safetensors
    run "$m text-encode" $TENSOR text-encode -q --model "$M" --text "$P1" -o "$TMP/c_$m.npy"
    run "$m unet" $TENSOR unet -q --model "$M" --sample "$TMP/x.npy" --t 601 --context "$TMP/c_folder.npy" -o "$TMP/u_$m.npy"
    run "$m vae-encode" $TENSOR vae-encode -q --model "$M" --image "$TMP/img.npy" -o "$TMP/e_$m.npy"
    run "$m vae-decode" $TENSOR vae-decode -q --model "$M" --latent "$TMP/z.npy" -o "$TMP/d_$m.npy"
done
compare "$TMP/c_single.npy" "$TMP/c_folder.npy" "single file = folder: text-encode (built-in vocabulary)" 1e-6
compare "$TMP/u_single.npy" "$TMP/u_folder.npy" "single file = folder: unet" 1e-6
compare "$TMP/e_single.npy" "$TMP/e_folder.npy" "single file = folder: vae-encode" 1e-6
compare "$TMP/d_single.npy" "$TMP/d_folder.npy" "single file = folder: vae-decode (attention [C,C,1,1] / [C,1,1])" 1e-6
IMG=$ROOT/tests/data/images/red-blue-circle-left.png
for m in folder single; do
    [ $m = folder ] && M=$DEMO || M=$S/demo.safetensors
    run "$m edit" $INVEDIT edit -q --model "$M" --image "$IMG" --source "$P1" --target "$P2" -o "$TMP/edit_$m.png"
    run "$m reconstruct" $INVEDIT reconstruct -q --model "$M" --image "$IMG" --source "$P1" --method bdia -o "$TMP/rec_$m.png"
    run "$m generate" $INVEDIT generate -q --model "$M" --prompt "$P2" --steps 10 -o "$TMP/gen_$m.png"
    run "$m invert" $INVEDIT invert -q --model "$M" --image "$IMG" --source "$P1" --method ef-ddpm --steps 10 -o "$TMP/inv_$m.npy"
done
same_file "$TMP/edit_single.png" "$TMP/edit_folder.png" "edit on the single file (no tokenizer folder) = on the folder"
same_file "$TMP/rec_single.png" "$TMP/rec_folder.png" "reconstruct (BDIA) on the single file = on the folder"
same_file "$TMP/gen_single.png" "$TMP/gen_folder.png" "generate on the single file = on the folder"
compare "$TMP/inv_single.npy" "$TMP/inv_folder.npy" "invert on the single file = on the folder" 0

# --- 3. EMA copies and mixed dtypes ---------------------------------------------------------------
E=$TMP/ema
mkdir -p "$E"
$CONV "$DEMO" "$E/demo.safetensors" --ema-swap --mixed --clip-vocab "$GZ" --write-configs >/dev/null || fail "convert ema"
expect 0 "not used: the trained weights are" "info: EMA + trained weights, auto" $INVEDIT info --model "$E/demo.safetensors"
grep -q "text_encoder: .*(BF16 36)" "$TMP/out.txt" && grep -q "vae: .*(F32 180)" "$TMP/out.txt" &&
    grep -q "unet: .*(F16 286)" "$TMP/out.txt" && ok "info: BF16 / F32 / F16 in one file" || { fail "info dtypes"; cat "$TMP/out.txt"; }
expect 0 "EMA copy used for 286 UNet tensors" "info --ema yes" $INVEDIT info --model "$E/demo.safetensors" --ema yes
expect 0 "no EMA copy" "info --ema yes on a file without EMA" $INVEDIT info --model "$S/demo.safetensors" --ema yes
run "ema unet auto" $TENSOR unet -q --model "$E/demo.safetensors" --sample "$TMP/x.npy" --t 601 --context "$TMP/c_folder.npy" -o "$TMP/u_auto.npy"
run "ema unet yes" $TENSOR unet -q --model "$E/demo.safetensors" --ema yes --sample "$TMP/x.npy" --t 601 --context "$TMP/c_folder.npy" -o "$TMP/u_ema.npy"
compare "$TMP/u_ema.npy" "$TMP/u_folder.npy" "--ema yes takes model_ema.* (= the folder's UNet)" 1e-6
compare "$TMP/u_auto.npy" "$TMP/u_folder.npy" "ema auto takes model.diffusion_model.* (perturbed here)" 1 1e-3
run "mixed vae-decode" $TENSOR vae-decode -q --model "$E/demo.safetensors" --latent "$TMP/z.npy" -o "$TMP/d_mixed.npy"
compare "$TMP/d_mixed.npy" "$TMP/d_folder.npy" "F32 VAE in a mixed file = folder" 1e-6
run "mixed text-encode" $TENSOR text-encode -q --model "$E/demo.safetensors" --text "$P1" -o "$TMP/c_mixed.npy"
compare "$TMP/c_mixed.npy" "$TMP/c_folder.npy" "BF16 text encoder (rounded weights) close to the folder's" 3e-2
expect 2 "auto, yes or no" "--ema bogus" $INVEDIT info --model "$E/demo.safetensors" --ema bogus

# --- 4. the reference test models as single files -------------------------------------------------
for u in unet_a unet_b; do
    mkdir -p "$TMP/$u"
    $CONV "$REF/$u" "$TMP/$u/m.safetensors" --components unet --write-configs >/dev/null || fail "convert $u"
    for m in "$REF/$u" "$TMP/$u/m.safetensors"; do
        run "$u unet" $TENSOR unet -q --model "$m" --sample "$REF/$u/ref/cfg/x.npy" --timestep "$REF/$u/ref/cfg/t.npy" \
            --context "$REF/$u/ref/cfg/ctx.npy" -o "$TMP/$u/$(basename "$m").npy"
    done
    compare "$TMP/$u/m.safetensors.npy" "$TMP/$u/$u.npy" "$u: single file = folder" 1e-6
done
mkdir -p "$TMP/vae"
$CONV "$REF/vae" "$TMP/vae/m.safetensors" --components vae --bias-c11 --write-configs >/dev/null || fail "convert vae"
for m in "$REF/vae" "$TMP/vae/m.safetensors"; do
    run "ref vae-decode" $TENSOR vae-decode -q --model "$m" --latent "$REF/vae/ref/decode/latent.npy" -o "$TMP/vae/$(basename "$m").d.npy"
    run "ref vae-encode" $TENSOR vae-encode -q --model "$m" --image "$REF/vae/ref/encode/image.npy" -o "$TMP/vae/$(basename "$m").e.npy"
done
compare "$TMP/vae/m.safetensors.d.npy" "$TMP/vae/vae.d.npy" "ref vae decode: single file = folder" 1e-6
compare "$TMP/vae/m.safetensors.e.npy" "$TMP/vae/vae.e.npy" "ref vae encode: single file = folder" 1e-6
mkdir -p "$TMP/clip"
$CONV "$REF/clip" "$TMP/clip/m.safetensors" --components text_encoder --extra --write-configs >/dev/null || fail "convert clip"
for m in "$REF/clip" "$TMP/clip/m.safetensors"; do
    run "ref text-encode" $TENSOR text-encode -q --model "$m" --ids "$REF/clip/ref/full/ids.npy" -o "$TMP/clip/$(basename "$m").npy"
done
compare "$TMP/clip/m.safetensors.npy" "$TMP/clip/clip.npy" "ref clip: single file = folder" 1e-6

# --- 5. --vae ---------------------------------------------------------------------------------------
V=$TMP/vaefile
mkdir -p "$V"
$CONV "$DEMO" "$V/full.safetensors" --components vae --bias-c11 >/dev/null &&
    $PY - "$V/full.safetensors" "$V/vae-ldm.safetensors" <<'PYEOF' || fail "make a bare LDM VAE file"
import sys, os
sys.path.insert(0, os.environ.get("INVEDIT_SOURCE_ROOT", ".") + "/tools")
from checkpoint.diffusers_to_single import load_st, save_st, dtype_name
t = load_st(sys.argv[1])
save_st({k[len("first_stage_model."):]: (dtype_name(v), v) for k, v in t.items()}, sys.argv[2])
PYEOF
$CONV "$DEMO" "$V/unet.safetensors" --components unet >/dev/null
for vae in "$V/vae-ldm.safetensors" "$DEMO/vae" "$DEMO"; do
    run "--vae $vae" $TENSOR vae-decode -q --model "$DEMO" --vae "$vae" --latent "$TMP/z.npy" -o "$TMP/d_vae.npy" &&
        compare "$TMP/d_vae.npy" "$TMP/d_folder.npy" "--vae $(basename "$vae") = the model's own VAE" 1e-6
done
expect 0 "separate VAE" "info --vae (LDM names without prefix)" $INVEDIT info --model "$S/demo.safetensors" --vae "$V/vae-ldm.safetensors"
run "edit --vae" $INVEDIT edit -q --model "$S/demo.safetensors" --vae "$V/vae-ldm.safetensors" --image "$IMG" --source "$P1" \
    --target "$P2" -o "$TMP/edit_vae.png" && same_file "$TMP/edit_vae.png" "$TMP/edit_folder.png" "edit --vae FILE = the folder's edit"
expect 3 "not a VAE: it holds a UNet" "--vae with a UNet file" $INVEDIT edit -q --model "$DEMO" --vae "$V/unet.safetensors" \
    --image "$IMG" --source "$P1" --target "$P2" -o "$TMP/never.png"
expect 3 "no such file" "--vae missing" $INVEDIT info --model "$DEMO" --vae "$TMP/nope.safetensors"

# --- 6. other model families --------------------------------------------------------------------------
$PY - "$TMP" <<'PYEOF'
import sys, os
import numpy as np
sys.path.insert(0, os.environ.get("INVEDIT_SOURCE_ROOT", ".") + "/tools")
from checkpoint.diffusers_to_single import save_st
z = np.zeros((4, 4), np.float16)
save_st({"conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": ("F16", z),
         "conditioner.embedders.1.model.token_embedding.weight": ("F16", z),
         "model.diffusion_model.input_blocks.0.0.weight": ("F16", np.zeros((4, 4, 3, 3), np.float16))},
        sys.argv[1] + "/sdxl.safetensors")
save_st({"cond_stage_model.model.token_embedding.weight": ("F16", z),
         "model.diffusion_model.input_blocks.0.0.weight": ("F16", np.zeros((4, 4, 3, 3), np.float16))},
        sys.argv[1] + "/sd2.safetensors")
PYEOF
expect 3 "an SDXL checkpoint" "SDXL checkpoint refused" $INVEDIT edit -q --model "$TMP/sdxl.safetensors" --image "$IMG" \
    --source "$P1" --target "$P2" -o "$TMP/never.png"
expect 3 "SD 2.x" "SD 2.x checkpoint refused" $INVEDIT info --model "$TMP/sd2.safetensors"

# --- 7. LoRA ------------------------------------------------------------------------------------------
L=$TMP/lora
LREF="$PY $ROOT/tools/checkpoint/lora_ref.py"
$LREF make "$DEMO" "$L" && $LREF merge "$DEMO" "$TMP/merged.safetensors" "$L/kohya.safetensors:0.8" "$L/peft.safetensors" ||
    fail "making LoRAs"
if "$TC" lora "$DEMO" "$L" "$TMP/merged.safetensors" >"$TMP/lora.txt" 2>&1; then
    ok "LoRA merge = PyTorch, keys, bad files ($(grep -c '^ok' "$TMP/lora.txt") checks; $(grep 'merged weights' "$TMP/lora.txt" | cut -c 6-120))"
else
    fail "LoRA checks:"
    grep -v '^ok' "$TMP/lora.txt"
fi
$LREF unet "$DEMO" "$TMP/x.npy" 601 "$TMP/c_folder.npy" "$TMP/u_lora_ref.npy" "$L/kohya.safetensors:0.8" "$L/peft.safetensors" ||
    fail "PyTorch UNet with the merged LoRAs"
run "unet --lora" $TENSOR unet -q --model "$DEMO" --lora "$L/kohya.safetensors:0.8;$L/peft.safetensors" \
    --sample "$TMP/x.npy" --t 601 --context "$TMP/c_folder.npy" -o "$TMP/u_lora.npy"
compare "$TMP/u_lora.npy" "$TMP/u_lora_ref.npy" "UNet output with 2 LoRAs = PyTorch UNet with merged weights" 1e-4
compare "$TMP/u_folder.npy" "$TMP/u_lora_ref.npy" "... and the LoRAs change it" 1 1e-3
run "edit --lora x2" $INVEDIT edit -q --model "$S/demo.safetensors" --lora "$L/kohya.safetensors:0.8" --lora "$L/peft.safetensors" \
    --image "$IMG" --source "$P1" --target "$P2" -o "$TMP/edit_lora.png" &&
    { cmp -s "$TMP/edit_lora.png" "$TMP/edit_folder.png" && fail "edit with LoRAs = without" || ok "edit with two --lora runs and differs"; }
expect 0 "kohya.safetensors x0.8: kohya-ss, 30 layers" "info --lora" $INVEDIT info --model "$S/demo.safetensors" \
    --lora "$L/kohya.safetensors:0.8" --lora "$L/peft.safetensors"
expect 3 "truncated" "edit --lora truncated" $INVEDIT edit -q --model "$DEMO" --lora "$L/bad_truncated.safetensors" \
    --image "$IMG" --source "$P1" --target "$P2" -o "$TMP/never.png"
expect 3 "mismatched ranks" "edit --lora ranks" $INVEDIT edit -q --model "$DEMO" --lora "$L/bad_rank.safetensors" \
    --image "$IMG" --source "$P1" --target "$P2" -o "$TMP/never.png"
expect 3 "made for SDXL" "edit --lora SDXL" $INVEDIT edit -q --model "$DEMO" --lora "$L/bad_sdxl.safetensors" \
    --image "$IMG" --source "$P1" --target "$P2" -o "$TMP/never.png"
[ -e "$TMP/never.png" ] && fail "an output was written after a refused model"

echo "test_checkpoints: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
