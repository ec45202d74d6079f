#!/usr/bin/env python3
"""Diffusers folder -> one original-layout (LDM / CompVis) .safetensors checkpoint, as users have them.

Writes the key and shape layout of diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py
(v0.25.1, --use_safetensors), written here from that layout (not copied):
  UNet   model.diffusion_model.*  input_blocks.(1 + i*(L+1) + j).{0 resnet,1 attention},
         input_blocks.((i+1)*(L+1)).0.op (downsampler), middle_block.{0,1,2},
         output_blocks.(i*(L+1) + j).{0,1}, the upsampler at output_blocks.(i*(L+1) + L).{1|2}.conv
         (.2 when that up level has attention), time_embed.{0,2}, out.{0,2}; resnet fields
         in_layers.{0,2} emb_layers.1 out_layers.{0,3} skip_connection.
  VAE    first_stage_model.*  encoder.down.i.block.j / .downsample, decoder.up.(levels-1-i) (reversed),
         mid.block_{1,2}, mid.attn_1.{norm,q,k,v,proj_out}, norm_out, nin_shortcut; the attention
         q/k/v/proj_out weights as 1x1 convolutions [C, C, 1, 1].
  CLIP   cond_stage_model.transformer.<the transformers names> (text_model.*).
diffusers' script hard-codes SD 1.5's 4 levels and 2 layers per block; here L and the levels come
from the folder's config.json files, so the small test models convert the same way.

Options that make the files that circulate:
  --bias-c11        also the VAE attention biases as [C, 1, 1] (files in the wild carry these)
  --ema             add an EMA copy of the UNet under LitEma's names (model_ema.<name without dots>,
                    model_ema.decay, model_ema.num_updates); its values are the weights + EMA_DELTA
  --ema-swap        the same, but the perturbed weights go to model.diffusion_model.* and the exact
                    ones to model_ema.* (so ema=yes gives back the folder's UNet)
  --mixed           UNet as stored, VAE in F32, text encoder in BF16 (rounded to nearest even)
  --extra           extra keys: ...embeddings.position_ids (I64), optimizer leftovers, betas
  --clip-vocab GZ   re-index the text encoder's token embedding to the full 49,408-id CLIP vocabulary
                    built from GZ (bpe_simple_vocab_16e6.txt.gz): each token of the model's own
                    tokenizer/ vocab.json goes to the row of the same string; other rows are 0 (tokens CLIP lacks are dropped). A
                    model with a small vocabulary (the demo model) then works with the built-in
                    vocabulary and no tokenizer folder.
  --components unet,vae,text_encoder   which networks to write (default all that exist)
  --write-configs   copy the folder's unet/, vae/, text_encoder/ config.json beside OUT (the loader reads
                    them there: head counts and scaling factors that shapes do not tell), with
                    vocab_size 49408 under --clip-vocab

    diffusers_to_single.py FOLDER OUT.safetensors [options]
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ------------------------------------------------------------------ safetensors (F32/F16/BF16/I64)

_NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def load_st(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = data[8 + n + b:8 + n + e]
        if info["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            a = u.view(np.float32)
        else:
            a = np.frombuffer(raw, dtype=np.dtype(_NP[info["dtype"]]).newbyteorder("<"))
        out[name] = a.reshape(info["shape"]).copy()
    return out


def to_bf16_bits(a):
    """float32 -> bf16 bits, round to nearest even."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u >> 16) & 1) + 0x7FFF
    return ((u + r) >> 16).astype(np.uint16)


def save_st(tensors, path):
    """tensors: {name: (dtype_name, ndarray)}; written in sorted order, atomically."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        dt, a = tensors[name]
        if dt == "BF16":
            b = to_bf16_bits(a).astype("<u2").tobytes()
        else:
            b = np.ascontiguousarray(a, dtype=np.dtype(_NP[dt]).newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt", "converted_by": "tools/checkpoint/diffusers_to_single.py"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def dtype_name(a):
    return {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int64): "I64"}[a.dtype]


# ------------------------------------------------------------------ name maps

def unet_map(cfg):
    """diffusers prefix -> LDM prefix, longest first."""
    L = cfg.get("layers_per_block", 2)
    L1 = L + 1
    downs, ups = cfg["down_block_types"], cfg["up_block_types"]
    m = [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
         ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2."),
         ("mid_block.attentions.0.", "middle_block.1."),
         ("mid_block.resnets.0.", "middle_block.0."), ("mid_block.resnets.1.", "middle_block.2.")]
    for i in range(len(downs)):
        for j in range(L):
            m.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{1 + i * L1 + j}.0."))
            if "CrossAttn" in downs[i]:
                m.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{1 + i * L1 + j}.1."))
        if i < len(downs) - 1:
            m.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(i + 1) * L1}.0.op."))
    for i in range(len(ups)):
        for j in range(L1):
            m.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{i * L1 + j}.0."))
            if "CrossAttn" in ups[i]:
                m.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{i * L1 + j}.1."))
        if i < len(ups) - 1:
            m.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{i * L1 + L}.{2 if 'CrossAttn' in ups[i] else 1}."))
    return sorted(m, key=lambda p: -len(p[0]))


UNET_RESNET = [("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."), ("time_emb_proj.", "emb_layers.1."),
               ("norm2.", "out_layers.0."), ("conv2.", "out_layers.3."), ("conv_shortcut.", "skip_connection.")]


def convert_unet(sd, cfg):
    m = unet_map(cfg)
    out = {}
    for k, v in sd.items():
        for hf, ldm in m:
            if k.startswith(hf):
                rest = k[len(hf):]
                if ".resnets." in hf or hf.startswith("mid_block.resnets"):
                    for a, b in UNET_RESNET:
                        if rest.startswith(a):
                            rest = b + rest[len(a):]
                            break
                out["model.diffusion_model." + ldm + rest] = v
                break
        else:
            raise SystemExit(f"unet: no LDM name for {k}")
    return out


VAE_ATTN = [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."), ("to_out.0.", "proj_out."),
            ("query.", "q."), ("key.", "k."), ("value.", "v."), ("proj_attn.", "proj_out.")]


def convert_vae(sd, cfg, bias_c11):
    levels = len(cfg["block_out_channels"])
    L = cfg.get("layers_per_block", 2)
    m = [("encoder.conv_norm_out.", "encoder.norm_out."), ("decoder.conv_norm_out.", "decoder.norm_out.")]
    for i in range(levels):
        for j in range(L):
            m.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}."))
        m.append((f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."))
        for j in range(L + 1):
            m.append((f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{levels - 1 - i}.block.{j}."))
        m.append((f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{levels - 1 - i}.upsample."))
    for side in ("encoder", "decoder"):
        for j in range(2):
            m.append((f"{side}.mid_block.resnets.{j}.", f"{side}.mid.block_{j + 1}."))
        m.append((f"{side}.mid_block.attentions.0.", f"{side}.mid.attn_1."))
    m.sort(key=lambda p: -len(p[0]))
    out = {}
    for k, v in sd.items():
        name = k
        for hf, ldm in m:
            if k.startswith(hf):
                rest = k[len(hf):]
                if ".attentions." in hf:
                    for a, b in VAE_ATTN:
                        if rest.startswith(a):
                            rest = b + rest[len(a):]
                            break
                    if rest.split(".")[0] in ("q", "k", "v", "proj_out"):
                        if rest.endswith(".weight"):
                            v = v.reshape(*v.shape, 1, 1)
                        elif bias_c11:
                            v = v.reshape(v.shape[0], 1, 1)
                else:
                    rest = rest.replace("conv_shortcut.", "nin_shortcut.")
                name = ldm + rest
                break
        out["first_stage_model." + name] = v
    return out


# ------------------------------------------------------------------ CLIP vocabulary re-indexing

def clip_vocab(gz):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
    import gzip
    from clip_vocab_to_hf import bytes_to_unicode  # noqa: E402
    lines = gzip.open(gz).read().decode("utf-8").split("\n")
    merges = [tuple(x.split()) for x in lines[1:49152 - 256 - 2 + 1]]
    v = bytes_to_unicode()
    v = v + [x + "</w>" for x in v] + ["".join(x) for x in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(v)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("out")
    ap.add_argument("--bias-c11", action="store_true")
    ap.add_argument("--ema", action="store_true")
    ap.add_argument("--ema-swap", action="store_true")
    ap.add_argument("--ema-delta", type=float, default=0.01)
    ap.add_argument("--mixed", action="store_true")
    ap.add_argument("--extra", action="store_true")
    ap.add_argument("--clip-vocab")
    ap.add_argument("--components", default="unet,vae,text_encoder")
    ap.add_argument("--write-configs", action="store_true")
    a = ap.parse_args()
    want = a.components.split(",")
    out = {}

    def find(sub, names):
        for n in names:
            p = os.path.join(a.folder, sub, n)
            if os.path.exists(p):
                return p
        return None

    up = find("unet", ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"])
    if "unet" in want and up:
        cfg = json.load(open(os.path.join(a.folder, "unet", "config.json")))
        u = convert_unet(load_st(up), cfg)
        if a.ema or a.ema_swap:
            rng = np.random.default_rng(7)
            for k in list(u):
                v = u[k]
                pert = (v.astype(np.float32) + a.ema_delta * rng.standard_normal(v.shape).astype(np.float32)).astype(v.dtype)
                ema_key = "model_ema." + k[len("model."):].replace(".", "")
                if a.ema_swap:
                    u[k], u[ema_key] = pert, v
                else:
                    u[ema_key] = pert
            u["model_ema.decay"] = np.array(0.9999, dtype=np.float32)
            u["model_ema.num_updates"] = np.array(1000, dtype=np.int64)
        for k, v in u.items():
            out[k] = (dtype_name(v), v)
    vp = find("vae", ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"])
    if "vae" in want and vp:
        cfg = json.load(open(os.path.join(a.folder, "vae", "config.json")))
        for k, v in convert_vae(load_st(vp), cfg, a.bias_c11).items():
            out[k] = ("F32" if a.mixed else dtype_name(v), v)
    tp = find("text_encoder", ["model.safetensors", "model.fp16.safetensors"])
    if "text_encoder" in want and tp:
        t = load_st(tp)
        if a.clip_vocab:
            own = json.load(open(os.path.join(a.folder, "tokenizer", "vocab.json"), encoding="utf-8"))
            full = clip_vocab(a.clip_vocab)
            key = "text_model.embeddings.token_embedding.weight"
            emb = t[key]
            new = np.zeros((len(full), emb.shape[1]), dtype=emb.dtype)
            # tokens of the model that CLIP does not have (intermediate merges of a small vocabulary)
            # are dropped: CLIP's own merges never produce them
            for s, i in own.items():
                if s in full:
                    new[full[s]] = emb[i]
            t[key] = new
        for k, v in t.items():
            if k.endswith("position_ids"):
                continue
            out["cond_stage_model.transformer." + k] = ("BF16" if a.mixed and v.dtype != np.int64 else dtype_name(v), v)
    if a.extra:
        n = 77
        out["cond_stage_model.transformer.text_model.embeddings.position_ids"] = ("I64", np.arange(n, dtype=np.int64)[None])
        out["optimizer.state.0.exp_avg"] = ("F32", np.zeros((4, 4), np.float32))
        out["betas"] = ("F32", np.linspace(0.00085, 0.012, 1000, dtype=np.float32))
        out["lr_scheduler.last_epoch"] = ("I64", np.array([3], dtype=np.int64))
    if not out:
        raise SystemExit(f"{a.folder}: nothing to convert")
    save_st(out, a.out)
    if a.write_configs:
        for c in want:
            src = os.path.join(a.folder, c, "config.json")
            if not os.path.exists(src):
                continue
            cfg = json.load(open(src))
            if c == "text_encoder" and a.clip_vocab:
                cfg["vocab_size"] = 49408
                cfg["bos_token_id"], cfg["eos_token_id"], cfg["pad_token_id"] = 49406, 49407, 49407
            d = os.path.join(os.path.dirname(os.path.abspath(a.out)), c)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json.tmp"), "w") as f:
                json.dump(cfg, f, indent=2)
            os.replace(os.path.join(d, "config.json.tmp"), os.path.join(d, "config.json"))
    print(f"{a.out}: {len(out)} tensors")


if __name__ == "__main__":
    main()
