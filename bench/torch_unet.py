"""PyTorch CPU timing of the UNet that bench-networks (bench/networks.c) times, on the same model and inputs.

    /usr/bin/python3 bench/torch_unet.py --config DIR/config.json [--weights FILE.safetensors]
        --inputs DIR --sizes 256,512 --threads 2 --reps 2 [--out DIR]

The model is tools/sdref's UNet2DConditionModel (the project's PyTorch reference, diffusers names)
built from --config; --weights loads a diffusers-named safetensors file (F16/F32, converted to fp32),
else the weights are random (torch.manual_seed(0), PyTorch's default initialisation) and the output
is not comparable with the C side. Inputs per size S (pixels; latent S/8): DIR/x_S.npy [B,4,S/8,S/8],
DIR/t.npy [B], DIR/ctx.npy [B,77,D], written by bench-networks. Each size: one warm-up evaluation,
then the best of --reps under torch.no_grad() in fp32 with torch.set_num_threads(--threads).
Prints one machine-readable line per size, read by bench-networks:
    RESULT size=256 best=1.234567 first=1.456789 reps=2 threads=2
and with --out writes the output eps as DIR/torch_out_S.npy.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from sdref import UNet2DConditionModel  # noqa: E402

_DT = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def load_weights(model, path):
    """diffusers-named tensors from a safetensors file (memory-mapped, one tensor at a time)."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    n = int(np.frombuffer(raw[:8].tobytes(), dtype="<u8")[0])
    header = json.loads(raw[8:8 + n].tobytes().decode("utf-8"))
    header.pop("__metadata__", None)
    own = model.state_dict()
    base = 8 + n
    loaded = 0
    with torch.no_grad():
        for name, info in header.items():
            if name not in own:
                continue
            b, e = info["data_offsets"]
            a = np.frombuffer(raw[base + b:base + e], dtype=np.dtype(_DT[info["dtype"]]).newbyteorder("<"))
            t = torch.from_numpy(a.astype(np.float32).reshape(info["shape"]))
            if tuple(t.shape) != tuple(own[name].shape):
                sys.exit("torch_unet.py: %s: shape %s in the file, %s in the model" % (name, list(t.shape),
                                                                                      list(own[name].shape)))
            own[name].copy_(t)
            loaded += 1
    if loaded != len(own):
        missing = sorted(set(own) - set(header))
        sys.exit("torch_unet.py: %d of %d tensors missing from %s (first: %s)" % (len(own) - loaded, len(own), path,
                                                                                 missing[:3]))


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights")
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with open(args.config) as f:
        cfg = json.load(f)
    t0 = time.time()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(cfg).eval()
    if args.weights:
        load_weights(unet, args.weights)
    print("torch %s, %d threads, model ready in %.1f s (%s)" % (torch.__version__, torch.get_num_threads(),
                                                               time.time() - t0,
                                                               "weights from the file" if args.weights else
                                                               "random weights"), flush=True)
    t = torch.from_numpy(np.load(os.path.join(args.inputs, "t.npy")))
    ctx = torch.from_numpy(np.load(os.path.join(args.inputs, "ctx.npy")))
    for size in [int(s) for s in args.sizes.split(",") if s]:
        x = torch.from_numpy(np.load(os.path.join(args.inputs, "x_%d.npy" % size)))
        t0 = time.perf_counter()
        out = unet(x, t, ctx)
        first = time.perf_counter() - t0
        best = first if args.reps < 1 else float("inf")
        for _ in range(args.reps):
            t0 = time.perf_counter()
            out = unet(x, t, ctx)
            best = min(best, time.perf_counter() - t0)
        if args.out:
            np.save(os.path.join(args.out, "torch_out_%d.npy" % size), out.numpy())
        print("RESULT size=%d best=%.6f first=%.6f reps=%d threads=%d" % (size, best, first, args.reps,
                                                                         torch.get_num_threads()), flush=True)


if __name__ == "__main__":
    main()
