#!/bin/sh
# invedit-tensor (tools/tensor/, the developer harness that was `invedit tensor`) against the PyTorch dumps of tests/data/ref (make_refs.py):
# every command on the small reference models, outputs compared with numpy
# (max |got - want| / max |want| <= 1e-3, the networks test's metric), then the
# usage and error exit codes.
#
#   test_cli_tensor.sh path/to/invedit-tensor [path/to/invedit]
#
# With the CLI given, also checks that the shipped CLI no longer has the command.
#
# Needs /usr/bin/python3 with numpy (skips, exit 77, without it). Runs on the
# CPU backend; INVEDIT_TEST_BACKENDS=cpu,vulkan (or vulkan) adds / selects
# Vulkan (with --fp32: fp16 weights of the fp32 models come close to 1e-3).
set -u
TENSOR=${1:?usage: test_cli_tensor.sh path/to/invedit-tensor [path/to/invedit]}
INVEDIT=${2:-}
ROOT=${INVEDIT_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
REF=$ROOT/tests/data/ref
PY=/usr/bin/python3
if ! $PY -c 'import numpy' 2>/dev/null; then
    echo "skip: $PY with numpy is needed"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
checks=0
failures=0

ok() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }

# compare GOT.npy WANT.npy LABEL: shapes equal, max relative error <= 1e-3
compare() {
    if msg=$($PY - "$1" "$2" <<'EOF'
import sys
import numpy as np
got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
if got.shape != want.shape:
    print("shape %s, want %s" % (got.shape, want.shape)); sys.exit(1)
rel = float(np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-30))
print("max_rel_err=%.3e shape %s" % (rel, list(got.shape)))
sys.exit(0 if rel <= 1e-3 else 1)
EOF
    ); then ok "$3 $msg"; else fail "$3 $msg"; fi
}

# expect CODE LABEL COMMAND...: the command exits with CODE
expect() {
    want=$1 label=$2
    shift 2
    "$@" >"$TMP/out.txt" 2>"$TMP/err.txt"
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        ok "$label: exit $rc ($(head -c 150 "$TMP/err.txt" | head -n 1))"
    else
        fail "$label: exit $rc, want $want"
        cat "$TMP/err.txt"
    fi
}

# run LABEL COMMAND...: the command succeeds
run() {
    label=$1
    shift
    if "$@" -q >"$TMP/out.txt" 2>"$TMP/err.txt"; then return 0; fi
    fail "$label: exit $?"
    cat "$TMP/err.txt"
    return 1
}

networks() { # DEVICE
    dev=$1
    o=$TMP/$dev
    extra=
    [ "$dev" = vulkan ] && extra=--fp32
    mkdir -p "$o"
    # text encoder: ids -> final_layer_norm; clip_skip 2
    d=$REF/clip/ref/full
    run "$dev text-encode" $TENSOR text-encode --device "$dev" $extra --model "$REF/clip" --ids "$d/ids.npy" \
        -o "$o/clip.npy" && compare "$o/clip.npy" "$d/final_layer_norm.npy" "$dev text-encode clip/full"
    d=$REF/clip/ref/skip2
    run "$dev text-encode skip2" $TENSOR text-encode --device "$dev" $extra --model "$REF/clip" --ids "$d/ids.npy" \
        --clip-skip 2 -o "$o/clip2.npy" && compare "$o/clip2.npy" "$d/final_layer_norm.npy" "$dev text-encode clip/skip2"
    # UNets: CFG batch, batch 1, a second configuration, LCM with w
    for c in unet_a/cfg unet_a/b1 unet_b/cfg; do
        d=$REF/${c%/*}/ref/${c#*/}
        run "$dev unet $c" $TENSOR unet --device "$dev" $extra --model "$REF/${c%/*}" --sample "$d/x.npy" \
            --timestep "$d/t.npy" --context "$d/ctx.npy" -o "$o/eps.npy" &&
            compare "$o/eps.npy" "$d/out.npy" "$dev unet $c"
    done
    d=$REF/unet_lcm/ref/lcm
    run "$dev unet lcm" $TENSOR unet --device "$dev" $extra --model "$REF/unet_lcm" --sample "$d/x.npy" \
        --timestep "$d/t.npy" --context "$d/ctx.npy" --timestep-cond "$d/w.npy" -o "$o/eps.npy" &&
        compare "$o/eps.npy" "$d/out.npy" "$dev unet unet_lcm/lcm (--timestep-cond)"
    # VAE: mean, sampled with given noise, decode
    d=$REF/vae/ref/encode
    run "$dev vae-encode" $TENSOR vae-encode --device "$dev" $extra --model "$REF/vae" --image "$d/image.npy" \
        -o "$o/lat.npy" && compare "$o/lat.npy" "$d/latent.npy" "$dev vae-encode (mean)"
    run "$dev vae-encode --noise" $TENSOR vae-encode --device "$dev" $extra --model "$REF/vae" \
        --image "$d/image.npy" --noise "$d/noise.npy" -o "$o/lats.npy" &&
        compare "$o/lats.npy" "$d/latent_sampled.npy" "$dev vae-encode --noise (sampled)"
    d=$REF/vae/ref/decode
    run "$dev vae-decode" $TENSOR vae-decode --device "$dev" $extra --model "$REF/vae" --latent "$d/latent.npy" \
        -o "$o/img.npy" && compare "$o/img.npy" "$d/decoder.out.npy" "$dev vae-decode"
}

# --- tokenize: a model folder whose tokenizer/ is tests/data/tok; ids as tokenizer cases ------
mkdir -p "$TMP/tokmodel"
ln -s "$ROOT/tests/data/tok" "$TMP/tokmodel/tokenizer"
$PY - "$ROOT/tests/data/tok/cases.json" "$TMP" <<'EOF'
import json, sys
cases = json.load(open(sys.argv[1]))["cases"]
with open(sys.argv[2] + "/tok_cases.txt", "w") as f:
    for c in cases[:6]:
        if "\n" not in c["text"] and c["text"].strip():
            f.write(c["text"] + "\n" + " ".join(str(i) for i in c["encoded"][:77]) + "\n")
EOF
n=0
while IFS= read -r text && IFS= read -r want; do
    n=$((n + 1))
    if got=$($TENSOR tokenize --model "$TMP/tokmodel" --text "$text" -o "$TMP/ids.npy" 2>"$TMP/err.txt") &&
        [ "$got" = "$want" ] &&
        $PY -c "import numpy as np, sys; a = np.load(sys.argv[1]); sys.exit(not (a.dtype == np.int32 and a.shape == (1, 77) and ' '.join(map(str, a[0])) == sys.argv[2]))" \
            "$TMP/ids.npy" "$want"; then
        ok "tokenize case $n: printed ids and int32 [1, 77] .npy as the Python reference"
    else
        fail "tokenize case $n ('$text'): got '$got', want '$want'"
        cat "$TMP/err.txt"
    fi
done <"$TMP/tok_cases.txt"
[ "$n" -gt 0 ] || fail "tokenize: no cases read"

# --- the networks on each backend ------------------------------------------------------------
only=${INVEDIT_TEST_BACKENDS:-cpu}
case $only in *cpu*) networks cpu ;; esac
case $only in *vulkan*)
    if $TENSOR vae-decode --device vulkan --model "$REF/vae" --latent "$REF/vae/ref/decode/latent.npy" \
        -o "$TMP/probe.npy" -q >/dev/null 2>"$TMP/err.txt"; then
        networks vulkan
    else
        echo "skip vulkan: $(cat "$TMP/err.txt")"
    fi ;;
esac

# --- determinism of the CPU backend: the same bits whether its loops run on one thread or are
#     split into the most chunks (INVEDIT_CPU_PAR_MIN=1), and with its AVX-512, AVX2 or baseline
#     kernels (the variants this CPU has; the others run the same code as the default)
case $only in *cpu*)
    d=$REF/unet_b/ref/cfg
    for v in "default" "INVEDIT_CPU_PAR_MIN=1" "INVEDIT_CPU_PAR_MIN=1 INVEDIT_CPU_NO_AVX512=1" \
        "INVEDIT_CPU_PAR_MIN=1 INVEDIT_CPU_NO_AVX2=1" "again"; do
        case $v in default | again) e= ;; *) e=$v ;; esac
        env $e $TENSOR unet --device cpu --model "$REF/unet_b" --sample "$d/x.npy" \
            --timestep "$d/t.npy" --context "$d/ctx.npy" -q -o "$TMP/det_$(echo "$v" | tr -c 'A-Za-z0-9' _).npy" ||
            fail "determinism run ($v)"
    done
    for v in INVEDIT_CPU_PAR_MIN_1_ INVEDIT_CPU_PAR_MIN_1_INVEDIT_CPU_NO_AVX512_1_ INVEDIT_CPU_PAR_MIN_1_INVEDIT_CPU_NO_AVX2_1_ \
        again_; do
        if cmp -s "$TMP/det_default_.npy" "$TMP/det_$v.npy"; then
            ok "cpu unet unet_b/cfg bit-identical: default vs $v"
        else
            fail "cpu unet unet_b/cfg differs: default vs $v"
        fi
    done ;;
esac

# --- usage and errors: exit codes --------------------------------------------------------------
d=$REF/unet_a/ref/cfg
expect 0 "--help" $TENSOR --help
for c in tokenize text-encode unet vae-encode vae-decode; do
    expect 0 "$c --help" $TENSOR $c --help
done
expect 2 "no command" $TENSOR
expect 2 "unknown command" $TENSOR frobnicate --model "$REF/unet_a"
expect 2 "unknown option" $TENSOR unet --model "$REF/unet_a" --bogus 1
expect 2 "option of another command (--latent to unet)" $TENSOR unet --model "$REF/unet_a" --latent x.npy
expect 2 "no --model" env -u INVEDIT_MODEL $TENSOR vae-decode --latent x.npy -o y.npy
expect 2 "--t and --timestep both" $TENSOR unet --model "$REF/unet_a" --sample "$d/x.npy" --t 1 \
    --timestep "$d/t.npy" --context "$d/ctx.npy" -o "$TMP/e.npy"
expect 2 "--t not a number" $TENSOR unet --model "$REF/unet_a" --sample "$d/x.npy" --t abc \
    --context "$d/ctx.npy" -o "$TMP/e.npy"
expect 2 "--clip-skip 0" $TENSOR text-encode --model "$REF/clip" --ids x.npy --clip-skip 0 -o y.npy
expect 3 "missing model folder" $TENSOR unet --device cpu --model "$TMP/nowhere" --sample "$d/x.npy" \
    --t 1 --context "$d/ctx.npy" -o "$TMP/e.npy"
expect 3 "model without a UNet (the VAE folder)" $TENSOR unet --device cpu --model "$REF/vae" \
    --sample "$d/x.npy" --t 1 --context "$d/ctx.npy" -o "$TMP/e.npy"
expect 3 "missing input file" $TENSOR unet --device cpu --model "$REF/unet_a" --sample "$TMP/none.npy" \
    --t 1 --context "$d/ctx.npy" -o "$TMP/e.npy"
printf 'not a numpy file' >"$TMP/bad.npy"
expect 3 "malformed .npy" $TENSOR vae-decode --device cpu --model "$REF/vae" --latent "$TMP/bad.npy" \
    -o "$TMP/e.npy"
expect 3 "latent with the wrong channel count" \
    $TENSOR vae-decode --device cpu --model "$REF/vae" --latent "$REF/vae/ref/encode/image.npy" -o "$TMP/e.npy"
expect 3 "context of the wrong width" $TENSOR unet --device cpu --model "$REF/unet_a" --sample "$d/x.npy" \
    --t 1 --context "$REF/clip/ref/full/ids.npy" -o "$TMP/e.npy"
expect 3 "timesteps of the wrong length" $TENSOR unet --device cpu --model "$REF/unet_a" \
    --sample "$d/x.npy" --timestep "$d/ctx.npy" --context "$d/ctx.npy" -o "$TMP/e.npy"
expect 3 "image with 4 channels" $TENSOR vae-encode --device cpu --model "$REF/vae" \
    --image "$d/x.npy" -o "$TMP/e.npy"
$PY -c "import numpy as np, sys; np.save(sys.argv[1], np.zeros((1, 3, 10, 12), np.float32))" "$TMP/odd.npy"
expect 3 "image not divisible by the VAE factor" $TENSOR vae-encode --device cpu --model "$REF/vae" \
    --image "$TMP/odd.npy" -o "$TMP/e.npy"
expect 3 "tokenizer missing" $TENSOR tokenize --model "$REF/vae" --text "a cat"
expect 3 "unwritable output" $TENSOR vae-decode --device cpu --model "$REF/vae" \
    --latent "$REF/vae/ref/decode/latent.npy" -o "$TMP/no/such/dir/out.npy"
# the shipped CLI has no tensor command any more: it says where the harness went
if [ -n "$INVEDIT" ]; then
    expect 2 "invedit tensor refused" "$INVEDIT" tensor unet --help
    grep -q "invedit-tensor" "$TMP/err.txt" && ok "invedit tensor names invedit-tensor" ||
        fail "invedit tensor: $(cat "$TMP/err.txt")"
fi

echo "test_cli_tensor: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
