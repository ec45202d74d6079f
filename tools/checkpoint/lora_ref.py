#!/usr/bin/env python3
"""Random LoRA files for the tests, and the PyTorch reference merge.

    lora_ref.py make FOLDER OUTDIR [--seed N]
        Writes LoRAs for the diffusers model in FOLDER (its unet/ and text_encoder/ shapes):
          kohya.safetensors      kohya-ss names (lora_unet_*, lora_te_*; lora_down/lora_up/alpha),
                                 rank 4, alpha 2: attention to_q/k/v/to_out.0 and ff (Linear),
                                 proj_in (1x1 conv), a resnet conv1 (3x3 conv), time_emb_proj,
                                 text encoder q_proj / mlp.fc1; plus 2 keys that match no layer
          peft.safetensors       diffusers/PEFT names (unet.<module>.lora_A/lora_B.weight, no alpha)
                                 rank 2, and one old attention-processor pair (processor.to_k_lora)
          bad_truncated.safetensors   kohya.safetensors cut in the middle of its data
          bad_rank.safetensors        one pair with up rank 4 and down rank 3
          bad_sdxl.safetensors        kohya SDXL names (lora_te1_, input_blocks_ modules)
          bad_context.safetensors     a cross-attention to_k LoRA with a 2048-wide input (SDXL-shaped)
          bad_loha.safetensors        LyCORIS LoHa tensors (hada_w1_a ...)
          bad_nomatch.safetensors     LoRA keys that name no layer of the model
    lora_ref.py make-small FOLDER OUT.safetensors
        One small kohya LoRA (rank 2, one layer of each kind, alpha 1) for committed test data
        (tests/data/lora/demo_kohya.safetensors: the exactness tests run with it loaded).
    lora_ref.py merge FOLDER OUT.safetensors LORA[:SCALE]...
        The merged weights W + scale * (alpha / rank) * up @ down, computed in float64 with
        PyTorch, of every adapted tensor, under canonical names (unet.<name>, text_encoder.<name>), F32.
    lora_ref.py unet FOLDER SAMPLE.npy T CONTEXT.npy OUT.npy LORA[:SCALE]...
        The sdref UNet (tools/sdref, PyTorch, float64) with the merged weights -> eps .npy.

Written from the LoRA definition (not from any implementation): the kohya module name is the
diffusers module path with '.' -> '_', prefixed lora_unet_ / lora_te_.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checkpoint.diffusers_to_single import load_st, save_st  # noqa: E402


def model_weights(folder):
    w = {}
    for comp, f in (("unet", "diffusion_pytorch_model.safetensors"), ("text_encoder", "model.safetensors")):
        p = os.path.join(folder, comp, f)
        for k, v in load_st(p).items():
            w[f"{comp}.{k}"] = v
    return w


def pick_targets(w):
    """Module names (without .weight) of the kinds the tests cover."""
    unet = [k[:-7] for k in w if k.startswith("unet.") and k.endswith(".weight")]
    te = [k[:-7] for k in w if k.startswith("text_encoder.") and k.endswith(".weight")]
    want = []
    for pat in ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_k", "attn2.to_v",
                "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out", "resnets.0.conv1", "time_emb_proj"):
        hits = [m for m in unet if m.endswith(pat)]
        want += hits[:2]
    for pat in ("self_attn.q_proj", "self_attn.out_proj", "mlp.fc1"):
        hits = [m for m in te if m.endswith(pat)]
        want += hits[:2]
    return want


def factors(shape, rank, rng):
    out = shape[0]
    if len(shape) == 4:
        down = rng.standard_normal((rank, shape[1], shape[2], shape[3])) * 0.1
        up = rng.standard_normal((out, rank, 1, 1)) * 0.1
    else:
        down = rng.standard_normal((rank, shape[1])) * 0.1
        up = rng.standard_normal((out, rank)) * 0.1
    return down.astype(np.float32), up.astype(np.float32)


def kohya_name(module):
    comp, rest = module.split(".", 1)
    return ("lora_unet_" if comp == "unet" else "lora_te_") + rest.replace(".", "_")


def make(folder, outdir, seed=0):
    rng = np.random.default_rng(seed)
    w = model_weights(folder)
    targets = pick_targets(w)
    os.makedirs(outdir, exist_ok=True)
    k = {}
    for m in targets:
        d, u = factors(w[m + ".weight"].shape, 4, rng)
        n = kohya_name(m)
        k[n + ".lora_down.weight"] = ("F32", d)
        k[n + ".lora_up.weight"] = ("F16", u.astype(np.float16).astype(np.float32))
        k[n + ".alpha"] = ("F32", np.array(2.0, dtype=np.float32))
    k["lora_unet_not_a_layer_to_q.lora_down.weight"] = ("F32", np.zeros((4, 8), np.float32))
    k["lora_unet_not_a_layer_to_q.lora_up.weight"] = ("F32", np.zeros((8, 4), np.float32))
    save_st(k, os.path.join(outdir, "kohya.safetensors"))
    p = {}
    ut = [m for m in targets if m.startswith("unet.")]
    for m in ut[::2]:
        d, u = factors(w[m + ".weight"].shape, 2, rng)
        p[m + ".lora_A.weight"] = ("F32", d)
        p[m + ".lora_B.weight"] = ("F32", u)
    attn = [m for m in ut if m.endswith("attn1.to_k")][1]  # one that lora_A/lora_B above leave alone
    d, u = factors(w[attn + ".weight"].shape, 2, rng)
    base = attn[:-len(".to_k")]
    p[base + ".processor.to_k_lora.down.weight"] = ("F32", d)
    p[base + ".processor.to_k_lora.up.weight"] = ("F32", u)
    save_st(p, os.path.join(outdir, "peft.safetensors"))
    # bad files
    data = open(os.path.join(outdir, "kohya.safetensors"), "rb").read()
    with open(os.path.join(outdir, "bad_truncated.safetensors"), "wb") as f:
        f.write(data[:len(data) * 2 // 3])
    m = targets[0]
    d, u = factors(w[m + ".weight"].shape, 4, rng)
    save_st({kohya_name(m) + ".lora_down.weight": ("F32", d[:3]), kohya_name(m) + ".lora_up.weight": ("F32", u)},
            os.path.join(outdir, "bad_rank.safetensors"))
    save_st({"lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": ("F32", np.zeros((4, 768), np.float32)),
             "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": ("F32", np.zeros((768, 4), np.float32)),
             "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight": ("F32", np.zeros((4, 640), np.float32)),
             "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight": ("F32", np.zeros((640, 4), np.float32))},
            os.path.join(outdir, "bad_sdxl.safetensors"))
    tk = next(m for m in ut if m.endswith("attn2.to_k"))
    out = w[tk + ".weight"].shape[0]
    save_st({kohya_name(tk) + ".lora_down.weight": ("F32", np.zeros((4, 2048), np.float32)),
             kohya_name(tk) + ".lora_up.weight": ("F32", np.zeros((out, 4), np.float32))},
            os.path.join(outdir, "bad_context.safetensors"))
    save_st({kohya_name(m) + ".hada_w1_a": ("F32", np.zeros((4, 4), np.float32)),
             kohya_name(m) + ".hada_w1_b": ("F32", np.zeros((4, 4), np.float32))},
            os.path.join(outdir, "bad_loha.safetensors"))
    save_st({"lora_unet_nothing_here.lora_down.weight": ("F32", np.zeros((4, 8), np.float32)),
             "lora_unet_nothing_here.lora_up.weight": ("F32", np.zeros((8, 4), np.float32))},
            os.path.join(outdir, "bad_nomatch.safetensors"))


def make_small(folder, out, seed=1):
    rng = np.random.default_rng(seed)
    w = model_weights(folder)
    seen, k = set(), {}
    for m in pick_targets(w):
        kind = m.rsplit(".", 1)[-1] if not m.endswith("to_out.0") else "to_out"
        if kind in seen:
            continue
        seen.add(kind)
        d, u = factors(w[m + ".weight"].shape, 2, rng)
        n = kohya_name(m)
        k[n + ".lora_down.weight"] = ("F16", d.astype(np.float16).astype(np.float32))
        k[n + ".lora_up.weight"] = ("F16", u.astype(np.float16).astype(np.float32))
        k[n + ".alpha"] = ("F16", np.array(1.0, dtype=np.float32))
    save_st(k, out)


def parse_key(key):
    """-> (module canonical name, part) for the formats make() writes."""
    if key.startswith("lora_"):
        return None  # kohya: resolved against the model below
    for suf, part in ((".lora_A.weight", "down"), (".lora_B.weight", "up")):
        if key.endswith(suf):
            return key[:-len(suf)], part
    for old, new in (("to_k_lora", "to_k"), ("to_q_lora", "to_q"), ("to_v_lora", "to_v"), ("to_out_lora", "to_out.0")):
        for suf, part in ((f".processor.{old}.down.weight", "down"), (f".processor.{old}.up.weight", "up")):
            if key.endswith(suf):
                return key[:-len(suf)] + "." + new, part
    return None


def merged(folder, specs):
    w = model_weights(folder)
    kohya = {kohya_name(k[:-7]): k[:-7] for k in w if k.endswith(".weight")}
    acc = {}
    for spec in specs:
        path, scale = spec, 1.0
        if ":" in spec:
            path, s = spec.rsplit(":", 1)
            scale = float(s)
        t = load_st(path)
        pairs = {}
        for key, v in t.items():
            if key.startswith("lora_"):
                mod, suf = key.split(".", 1)
                if mod not in kohya:
                    continue
                part = {"lora_down.weight": "down", "lora_up.weight": "up", "alpha": "alpha"}[suf]
                pairs.setdefault(kohya[mod], {})[part] = v
            else:
                r = parse_key(key)
                if r:
                    pairs.setdefault(r[0], {})[r[1]] = v
        for mod, p in pairs.items():
            W = acc.get(mod)
            if W is None:
                W = torch.from_numpy(w[mod + ".weight"].astype(np.float64))
            down = torch.from_numpy(p["down"].astype(np.float64))
            up = torch.from_numpy(p["up"].astype(np.float64))
            rank = down.shape[0]
            alpha = float(p["alpha"]) if "alpha" in p else float(rank)
            delta = up.reshape(up.shape[0], rank) @ down.reshape(rank, -1)
            W = W + scale * (alpha / rank) * delta.reshape(W.shape)
            acc[mod] = W
    return w, acc


def cmd_merge(folder, out, specs):
    _, acc = merged(folder, specs)
    save_st({m + ".weight": ("F32", W.numpy().astype(np.float32)) for m, W in acc.items()}, out)


def cmd_unet(folder, sample, t, context, out, specs):
    from sdref.unet import UNet2DConditionModel
    import json
    w, acc = merged(folder, specs)
    unet = UNet2DConditionModel(json.load(open(os.path.join(folder, "unet", "config.json"))))
    sd = {k[len("unet."):]: torch.from_numpy(v.astype(np.float64)) for k, v in w.items() if k.startswith("unet.")}
    for m, W in acc.items():
        if m.startswith("unet."):
            sd[m[len("unet."):] + ".weight"] = W
    unet.load_state_dict(sd)
    unet.double().eval()
    with torch.no_grad():
        x = torch.from_numpy(np.load(sample).astype(np.float64))
        c = torch.from_numpy(np.load(context).astype(np.float64))
        if c.shape[0] == 1 and x.shape[0] > 1:  # one context for every row, as invedit-tensor unet (tools/tensor)
            c = c.expand(x.shape[0], *c.shape[1:])
        eps = unet(x, torch.tensor([float(t)] * x.shape[0], dtype=torch.float64), c)
    np.save(out, eps.numpy().astype(np.float32))


if __name__ == "__main__":
    c = sys.argv[1] if len(sys.argv) > 1 else ""
    if c == "make":
        make(sys.argv[2], sys.argv[3], int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--seed" else 0)
    elif c == "make-small":
        make_small(sys.argv[2], sys.argv[3])
    elif c == "merge":
        cmd_merge(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif c == "unet":
        cmd_unet(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7:])
    else:
        print(__doc__)
        sys.exit(2)
