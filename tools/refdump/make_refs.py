"""Reference models and dumps for tests/test_networks.c (one command regenerates everything):

    /usr/bin/python3 tools/refdump/make_refs.py [--out tests/data/ref]

Builds small random models of every network kind with tools/sdref (PyTorch, fp32, fixed seeds), saves
each in the diffusers layout, runs fixed inputs through it and dumps, as .npy, the inputs, the outputs
and the output of every block (the names are the C taps' names: model/unet.h, vae.h, clip.h),
so that a mismatch can be located.

    <out>/<model>/<component>/config.json + *.safetensors     the model, loaded by the C test through
                                                              the real loader (sd_weights_open)
    <out>/<model>/ref/<case>/*.npy                            inputs + expected tensors of one call

Models (chosen to cover the architecture's options while staying tiny):
    unet_a    2 levels [32, 48], CrossAttnDown + Down / Up + CrossAttnUp, layers_per_block 2,
              heads 2, cross_attention_dim 32, groups 8, weights stored as fp16; cases: cfg (batch 2:
              two timesteps, two contexts, 8x16 latent), b1 (batch 1, 8x24 latent: re-planned buffers),
              hook (batch 2 with attention control: up-block self-attention takes row 1's k/v
              from row 0, cross-attention probabilities of row 1 replaced by row 0's)
    unet_b    3 levels [16, 32, 32], groups 4, attention on levels 0-1 down / 1-2 up,
              layers_per_block 1, per-level heads [2, 4, 4], norm_eps 1e-6, fp16; case cfg (12x8)
    unet_lcm  2 levels [16, 32], layers_per_block 1, time_cond_proj_dim 16 (LCM guidance embedding,
              computed as diffusers' LatentConsistencyModelPipeline.get_guidance_scale_embedding
              does) and use_linear_projection (Linear proj_in/proj_out), fp32; case lcm (batch 2,
              timesteps 999, 259, guidance_scale 8.5, 4.0)
    clip      2 layers, width 32, 2 heads, vocab 600, fp32; cases: full (batch 2, causal mask),
              skip2 (clip_skip 2: hidden state -2 through final_layer_norm)
    vae       [16, 32, 32], layers_per_block 2, groups 8, scaling_factor 0.5, fp16; cases: encode
              (batch 2, 16x24 image: moments, mean, logvar, latent, sampled latent), decode
"""
import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from sdref import UNet2DConditionModel, AutoencoderKL, CLIPTextModel  # noqa: E402
from sdref import save_safetensors, get_timestep_embedding  # noqa: E402,F401
from sdref.unet import Transformer2DModel  # noqa: E402


# ------------------------------------------------------------------------------------- helpers

def perturb_norms(model, gen):
    """Random affine GroupNorm/LayerNorm parameters (the defaults 1/0 would hide a swapped or
    missing gamma/beta)."""
    for m in model.modules():
        if isinstance(m, (nn.GroupNorm, nn.LayerNorm)) and m.weight is not None:
            with torch.no_grad():
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))


def round_to_fp16(model):
    """Weights exactly representable in fp16 (the file stores F16; the reference runs in fp32)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def save_component(folder, sub, fname, model, config, dtype=torch.float32):
    d = os.path.join(folder, sub) if sub else folder
    os.makedirs(d, exist_ok=True)
    if config is not None:
        write_json(os.path.join(d, "config.json"), config)
    sd = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_safetensors(sd, os.path.join(d, fname), {"format": "pt"})


class Dumper:
    """Collects named tensors and writes them as <dir>/<name>.npy."""

    def __init__(self, folder):
        self.dir = folder
        os.makedirs(folder, exist_ok=True)
        self.n = 0
        self.bytes = 0

    def __call__(self, name, t):
        a = t.detach().cpu().numpy() if torch.is_tensor(t) else np.asarray(t)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        if a.dtype == np.int64:
            a = a.astype(np.int32)
        np.save(os.path.join(self.dir, name + ".npy"), np.ascontiguousarray(a))
        self.n += 1
        self.bytes += a.nbytes


def hook_output(module, name, dump, pick=lambda o: o):
    return module.register_forward_hook(lambda m, i, o: dump(name, pick(o)))


# ------------------------------------------------------------------------------------- UNet

def unet_config(**kw):
    cfg = dict(
        _class_name="UNet2DConditionModel", _diffusers_version="0.25.0",
        sample_size=16, in_channels=4, out_channels=4, center_input_sample=False,
        flip_sin_to_cos=True, freq_shift=0,
        down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
        mid_block_type="UNetMidBlock2DCrossAttn",
        up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
        only_cross_attention=False, block_out_channels=[32, 48], layers_per_block=2,
        downsample_padding=1, mid_block_scale_factor=1, act_fn="silu", norm_num_groups=8, norm_eps=1e-5,
        cross_attention_dim=32, attention_head_dim=2, use_linear_projection=False, upcast_attention=False,
        resnet_time_scale_shift="default", time_cond_proj_dim=None,
    )
    cfg.update(kw)
    return cfg


def use_linear_projection(unet, gen):
    """Turn every Transformer2DModel into the use_linear_projection=True form of diffusers:
    norm -> tokens -> proj_in (Linear) -> block -> proj_out (Linear) -> NCHW -> + residual."""
    for m in unet.modules():
        if isinstance(m, Transformer2DModel):
            C = m.proj_in.in_channels
            m.proj_in = nn.Linear(C, C)
            m.proj_out = nn.Linear(C, C)

            def forward(x, context, m=m):
                B, C, H, W = x.shape
                res = x
                h = m.norm(x).permute(0, 2, 3, 1).reshape(B, H * W, C)
                h = m.proj_in(h)
                for blk in m.transformer_blocks:
                    h = blk(h, context)
                h = m.proj_out(h)
                h = h.reshape(B, H, W, C).permute(0, 3, 1, 2).contiguous()
                return h + res
            m.forward = forward


def guidance_scale_embedding(w, embedding_dim, dtype=torch.float32):
    """diffusers LatentConsistencyModelPipeline.get_guidance_scale_embedding (the pipeline passes
    w = guidance_scale - 1; this takes that w and multiplies by 1000 as the pipeline does)."""
    assert len(w.shape) == 1
    w = w * 1000.0
    half_dim = embedding_dim // 2
    emb = torch.log(torch.tensor(10000.0)) / (half_dim - 1)
    emb = torch.exp(torch.arange(half_dim, dtype=dtype) * -emb)
    emb = w.to(dtype)[:, None] * emb[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1)
    if embedding_dim % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


@torch.no_grad()
def unet_case(unet, folder, x, t, ctx, w=None):
    dump = Dumper(folder)
    dump("x", x)
    dump("t", t)
    dump("ctx", ctx)
    cond = None
    if w is not None:
        dump("w", w * 1000.0)  # the C API takes w·1000 (= (guidance_scale - 1) · 1000)
        cond = guidance_scale_embedding(w, unet.config["time_cond_proj_dim"])
    hooks = [hook_output(unet.time_embedding, "time_embedding", dump),
             hook_output(unet.conv_in, "conv_in", dump),
             hook_output(unet.mid_block, "mid_block", dump)]
    for i, b in enumerate(unet.down_blocks):
        hooks.append(hook_output(b, "down_blocks.%d" % i, dump, lambda o: o[0]))
    for i, b in enumerate(unet.up_blocks):
        hooks.append(hook_output(b, "up_blocks.%d" % i, dump))
    out = unet(x, t, ctx, timestep_cond=cond)
    for h in hooks:
        h.remove()
    dump("out", out)
    return dump


def install_edit_hooks(unet):
    """The 'hook' case: what an attention-control hook does in the C test (model/unet.h):
    self-attention in the up blocks takes row 1's keys/values from row 0 (MasaCtrl-style mutual
    self-attention), and every cross-attention's probabilities of row 1 are replaced by row 0's
    (prompt-to-prompt-style replacement)."""
    from sdref.unet import Attention

    def kv_from_row0(x, context=None, m=None):
        ctx = x if context is None else context
        B, N, _ = x.shape
        M = ctx.shape[1]
        k, v = m.to_k(ctx).clone(), m.to_v(ctx).clone()
        k[1], v[1] = k[0], v[0]
        q = m.to_q(x).view(B, N, m.heads, m.dim_head).transpose(1, 2)
        k = k.view(B, M, m.heads, m.dim_head).transpose(1, 2)
        v = v.view(B, M, m.heads, m.dim_head).transpose(1, 2)
        probs = (torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(m.dim_head))).softmax(dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(B, N, m.heads * m.dim_head)
        return m.to_out[0](out)

    def probs_from_row0(p, is_cross):
        p = p.clone()
        p[1] = p[0]
        return p

    for blk in unet.up_blocks:
        for t in blk.modules():
            if hasattr(t, "attn1"):
                t.attn1.forward = lambda x, context=None, m=t.attn1: kv_from_row0(x, context, m)
    for m in unet.modules():
        if hasattr(m, "attn2"):
            m.attn2.probs_hook = probs_from_row0


def remove_edit_hooks(unet):
    from sdref.unet import Attention
    for m in unet.modules():
        if isinstance(m, Attention):
            m.probs_hook = None
            m.__dict__.pop("forward", None)


def make_unet(out, name, cfg, seed, cases, fp16=False, linear_proj=False):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    build_cfg = dict(cfg)
    build_cfg["use_linear_projection"] = False  # sdref builds the conv form; patched below
    unet = UNet2DConditionModel(build_cfg).eval()
    if linear_proj:
        use_linear_projection(unet, gen)
    perturb_norms(unet, gen)
    if fp16:
        round_to_fp16(unet)
    folder = os.path.join(out, name)
    save_component(folder, "unet", "diffusion_pytorch_model.safetensors", unet, cfg,
                   torch.float16 if fp16 else torch.float32)
    stats = []
    for case, (B, H, W, t, w) in cases.items():
        g = torch.Generator().manual_seed(seed * 100 + len(stats))
        x = torch.randn(B, cfg["in_channels"], H, W, generator=g)
        ctx = torch.randn(B, 77, cfg["cross_attention_dim"], generator=g)
        tt = torch.tensor(t, dtype=torch.float32)
        ww = torch.tensor(w, dtype=torch.float32) if w is not None else None
        if case == "hook":
            install_edit_hooks(unet)
        stats.append(unet_case(unet, os.path.join(folder, "ref", case), x, tt, ctx, ww))
        if case == "hook":
            remove_edit_hooks(unet)
    return stats


# ------------------------------------------------------------------------------------- CLIP

def make_clip(out, seed):
    cfg = dict(architectures=["CLIPTextModel"], model_type="clip_text_model", vocab_size=600, hidden_size=32,
               intermediate_size=64, num_attention_heads=2, num_hidden_layers=2, max_position_embeddings=77,
               hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=32, bos_token_id=0,
               eos_token_id=2, pad_token_id=1, torch_dtype="float32")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    te = CLIPTextModel(cfg).eval()
    perturb_norms(te, gen)
    folder = os.path.join(out, "clip")
    save_component(folder, "text_encoder", "model.safetensors", te, cfg)
    bos, eos = 598, 599
    ids = torch.full((2, 77), eos, dtype=torch.long)
    ids[:, 0] = bos
    ids[0, 1:6] = torch.tensor([5, 17, 300, 42, 511])
    ids[1, 1:21] = torch.randint(0, 598, (20,), generator=gen)
    ids[0, 6] = eos
    ids[1, 21] = eos
    stats = []
    with torch.no_grad():
        tm = te.text_model
        for case, skip in (("full", 1), ("skip2", 2)):
            dump = Dumper(os.path.join(folder, "ref", case))
            dump("ids", ids)
            emb = tm.embeddings.token_embedding(ids) + tm.embeddings.position_embedding(torch.arange(77))[None]
            dump("embeddings", emb)
            hooks = [hook_output(l, "layers.%d" % i, dump) for i, l in enumerate(tm.encoder.layers)]
            o = te(ids, clip_skip=skip)
            for h in hooks:
                h.remove()
            dump("final_layer_norm", o)
            stats.append(dump)
    return stats


# ------------------------------------------------------------------------------------- VAE

def make_vae(out, seed):
    cfg = dict(_class_name="AutoencoderKL", _diffusers_version="0.25.0", in_channels=3, out_channels=3,
               down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
               block_out_channels=[16, 32, 32], layers_per_block=2, act_fn="silu", latent_channels=4,
               norm_num_groups=8, sample_size=32, scaling_factor=0.5, force_upcast=True,
               mid_block_add_attention=True)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    vae = AutoencoderKL(cfg).eval()
    perturb_norms(vae, gen)
    folder = os.path.join(out, "vae")
    round_to_fp16(vae)
    save_component(folder, "vae", "diffusion_pytorch_model.safetensors", vae, cfg, torch.float16)
    sf = cfg["scaling_factor"]
    stats = []
    with torch.no_grad():
        dump = Dumper(os.path.join(folder, "ref", "encode"))
        img = torch.rand(2, 3, 16, 24, generator=gen) * 2 - 1
        dump("image", img)
        enc = vae.encoder
        hooks = [hook_output(enc.conv_in, "encoder.conv_in", dump), hook_output(enc.mid_block, "encoder.mid_block", dump),
                 hook_output(vae.quant_conv, "moments", dump)]
        hooks += [hook_output(b, "encoder.down_blocks.%d" % i, dump) for i, b in enumerate(enc.down_blocks)]
        mean, logvar = vae.encode(img)
        for h in hooks:
            h.remove()
        dump("mean", mean)
        dump("logvar", logvar)
        dump("latent", mean * sf)
        noise = torch.randn(mean.shape, generator=gen)
        dump("noise", noise)
        dump("latent_sampled", (mean + torch.exp(0.5 * logvar) * noise) * sf)
        stats.append(dump)

        dump = Dumper(os.path.join(folder, "ref", "decode"))
        lat = torch.randn(2, 4, 4, 6, generator=gen) * 0.8
        dump("latent", lat)
        dec = vae.decoder
        # C tap "decoder.conv_in" = conv_in(post_quant_conv(latent / sf))
        hooks = [hook_output(dec.conv_in, "decoder.conv_in", dump), hook_output(dec.mid_block, "decoder.mid_block", dump)]
        hooks += [hook_output(b, "decoder.up_blocks.%d" % i, dump) for i, b in enumerate(dec.up_blocks)]
        img = vae.decode(lat / sf)
        for h in hooks:
            h.remove()
        dump("decoder.out", img)
        stats.append(dump)
    return stats


# ------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "ref"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = args.out
    for d in ("unet_a", "unet_b", "unet_lcm", "clip", "vae"):
        shutil.rmtree(os.path.join(out, d), ignore_errors=True)
    os.makedirs(out, exist_ok=True)

    stats = []
    stats += make_unet(out, "unet_a", unet_config(), 1, {
        "cfg": (2, 8, 16, [999.0, 17.0], None),
        "b1": (1, 8, 24, [500.0], None),
        "hook": (2, 8, 8, [601.0, 601.0], None)}, fp16=True)
    stats += make_unet(out, "unet_b", unet_config(
        block_out_channels=[16, 32, 32], norm_num_groups=4, layers_per_block=1, attention_head_dim=[2, 4, 4],
        norm_eps=1e-6, down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]), 2, {
        "cfg": (2, 12, 8, [981.0, 1.0], None)}, fp16=True)
    stats += make_unet(out, "unet_lcm", unet_config(
        block_out_channels=[16, 32], norm_num_groups=4, layers_per_block=1, time_cond_proj_dim=16,
        use_linear_projection=True), 3, {
        "lcm": (2, 8, 8, [999.0, 259.0], [7.5, 3.0])}, linear_proj=True)
    stats += make_clip(out, 4)
    stats += make_vae(out, 5)

    total = 0
    for root, _, files in os.walk(out):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print("%d dumps, %d tensors; %s holds %.2f MB" % (len(stats), sum(s.n for s in stats), out, total / 1e6))


if __name__ == "__main__":
    main()
