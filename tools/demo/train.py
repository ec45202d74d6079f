"""Train the invedit demo model (tiny SD-1.x-architecture latent diffusion) from scratch, CPU, 1 thread.

    nice -n 5 /usr/bin/python3 tools/demo/train.py --work /tmp/invedit-train --out models/demo --seed 0

Phases (each resumable; rerunning the same command continues from the last checkpoint in --work):
  1. data     : procedural shapes dataset (tools/demo/dataset.py), cached in WORK/data.npz
  2. vocab    : CLIP-format BPE vocab from the captions (tools/demo/vocab.py) -> WORK/tokenizer/
  3. vae      : AutoencoderKL, L1 + MSE + 1e-6 KL, AdamW, cosine LR          -> WORK/vae.pt
  4. latents  : posterior means of all training images, scaling_factor = 1/std -> WORK/latents.pt
  5. unet     : UNet2DConditionModel + CLIPTextModel jointly, eps-prediction, SD scaled_linear
                schedule, offset noise 0.1, 10% caption dropout, AdamW with warm-up then constant LR,
                EMA 0.999                                                         -> WORK/unet.pt
                (--unet-minutes M: stop after M minutes of UNet training, cumulative over resumes)
  6. export   : EMA weights in fp16, diffusers folder layout                   -> OUT/
Everything is deterministic from --seed (per-step RNG streams are derived from (seed, step), so a
resumed run draws the same batches as an uninterrupted one).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from sdref import (UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer,  # noqa: E402
                   save_diffusers, alphas_cumprod)
import dataset as ds  # noqa: E402
from vocab import build_vocab  # noqa: E402

# ------------------------------------------------------------------ architecture (diffusers config keys)

VAE_CONFIG = dict(
    _class_name="AutoencoderKL", _diffusers_version="0.25.0",
    in_channels=3, out_channels=3, latent_channels=4,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[32, 32, 64, 64], layers_per_block=1, act_fn="silu", norm_num_groups=16,
    sample_size=ds.SIZE, scaling_factor=1.0, force_upcast=False, mid_block_add_attention=True,
)
UNET_CONFIG = dict(
    _class_name="UNet2DConditionModel", _diffusers_version="0.25.0",
    sample_size=ds.SIZE // 8, in_channels=4, out_channels=4, center_input_sample=False,
    flip_sin_to_cos=True, freq_shift=0,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    mid_block_type="UNetMidBlock2DCrossAttn",
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    only_cross_attention=False, block_out_channels=[64, 128], layers_per_block=1,
    downsample_padding=1, mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32, norm_eps=1e-5,
    cross_attention_dim=128, attention_head_dim=4, use_linear_projection=False, upcast_attention=False,
    resnet_time_scale_shift="default", time_cond_proj_dim=None,
)
CLIP_CONFIG = dict(
    architectures=["CLIPTextModel"], model_type="clip_text_model",
    vocab_size=None,  # filled from the vocab
    hidden_size=128, intermediate_size=512, num_attention_heads=4, num_hidden_layers=2,
    max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=128,
    attention_dropout=0.0, dropout=0.0, initializer_range=0.02, initializer_factor=1.0,
    bos_token_id=None, eos_token_id=None, pad_token_id=None, torch_dtype="float32",
)

PRESETS = {
    # steps are fixed numbers so the run is reproducible; sized for ~100 min on one CPU thread
    # VAE: the first vae_crop_steps use random 32x32 crops (8-px aligned, 4x cheaper), then full images.
    "full": dict(n_train=12000, vae_steps=2050, vae_crop_steps=1800, vae_batch=16, vae_lr=1e-3,
                 unet_steps=20000, unet_batch=32, unet_lr=4e-4, ckpt_every=250),
    "smoke": dict(n_train=600, vae_steps=30, vae_crop_steps=20, vae_batch=8, vae_lr=1e-3,
                  unet_steps=40, unet_batch=16, unet_lr=4e-4, ckpt_every=20),
}


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def atomic_save(obj, path):
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)


def cosine_lr(step, total, peak, warmup, floor=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def init_weights(model, seed):
    """PyTorch default init, made deterministic from seed; zero-init the final convs (diffusion practice)."""
    torch.manual_seed(seed)
    for m in model.modules():
        if hasattr(m, "reset_parameters") and m is not model:
            m.reset_parameters()


# ------------------------------------------------------------------ phases

def phase_data(a, P):
    path = os.path.join(a.work, "data.npz")
    if not os.path.exists(path):
        t0 = time.time()
        train_c, _ = ds.split_combos(a.seed)
        d = ds.generate(P["n_train"], a.seed + 1, train_c)
        np.savez(path + ".tmp.npz", images=d["images"], captions=np.array(d["captions"]))
        os.replace(path + ".tmp.npz", path)
        log(f"data: {P['n_train']} images in {time.time() - t0:.1f}s")
    z = np.load(path)
    return z["images"], [str(c) for c in z["captions"]]


def phase_vocab(a):
    tdir = os.path.join(a.work, "tokenizer")
    if not os.path.exists(os.path.join(tdir, "merges.txt")):
        vp, mp, n = build_vocab(tdir, [ds.caption(*c) for c in ds.all_combos()])
        log(f"vocab: {n} tokens")
    return CLIPTokenizer(os.path.join(tdir, "vocab.json"), os.path.join(tdir, "merges.txt"))


def phase_vae(a, P, images):
    path = os.path.join(a.work, "vae.pt")
    vae = AutoencoderKL(VAE_CONFIG)
    init_weights(vae, a.seed + 10)
    opt = torch.optim.AdamW(vae.parameters(), lr=P["vae_lr"], weight_decay=0.0, betas=(0.9, 0.99))
    step, total = 0, P["vae_steps"]
    if os.path.exists(path):
        ck = torch.load(path)
        vae.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        if step >= total:
            return vae
        log(f"vae: resuming at step {step}")
    x_all = torch.from_numpy(images)  # uint8 [N,H,W,3]
    N = x_all.shape[0]
    vae.train()
    t0, run = time.time(), []
    while step < total:
        g = torch.Generator().manual_seed(a.seed * 1000003 + step)
        idx = torch.randint(0, N, (P["vae_batch"],), generator=g)
        x = x_all[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if step < P["vae_crop_steps"]:  # random 32x32 crop, offsets multiple of 8 (latent-grid aligned)
            oy, ox = (torch.randint(0, (x.shape[-1] - 32) // 8 + 1, (2,), generator=g) * 8).tolist()
            x = x[:, :, oy:oy + 32, ox:ox + 32]
        for pg in opt.param_groups:
            pg["lr"] = cosine_lr(step, total, P["vae_lr"], 100)
        mean, logvar = vae.encode(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g)
        rec = vae.decode(z)
        l1 = (rec - x).abs().mean()
        mse = ((rec - x) ** 2).mean()
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum() / x.numel()  # SD's 1e-6 per-sum ratio
        loss = l1 + mse + 1e-6 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        run.append((l1.item(), mse.item()))
        if step % 50 == 0 or step == total:
            l1m, msem = np.mean(run, 0)
            psnr = 10 * math.log10(4.0 / max(msem, 1e-10))
            el = time.time() - t0
            log(f"vae step {step}/{total} l1 {l1m:.4f} mse {msem:.5f} psnr {psnr:.2f}dB "
                f"lr {opt.param_groups[0]['lr']:.2e} {el:.0f}s ({el / len(run) * (total - step) / 60:.1f} min left)")
            run = []
            t0 = time.time()
        if step % P["ckpt_every"] == 0 or step == total:
            atomic_save(dict(model=vae.state_dict(), opt=opt.state_dict(), step=step), path)
    return vae


@torch.no_grad()
def phase_latents(a, vae, images):
    path = os.path.join(a.work, "latents.pt")
    if os.path.exists(path):
        return torch.load(path)
    t0 = time.time()
    vae.eval()
    out, mse = [], []
    for i in range(0, len(images), 256):
        x = torch.from_numpy(images[i:i + 256]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        mean, _ = vae.encode(x)
        out.append(mean)
        if i < 512:
            mse.append(((vae.decode(mean).clamp(-1, 1) - x) ** 2).mean().item())
    lat = torch.cat(out)
    scale = float(1.0 / lat.std())
    psnr = 10 * math.log10(4.0 / np.mean(mse))
    d = dict(latents=lat * scale, scaling_factor=scale, recon_psnr=psnr,
             channel_mean=(lat * scale).mean((0, 2, 3)).tolist(), channel_std=(lat * scale).std((0, 2, 3)).tolist())
    atomic_save(d, path)
    log(f"latents: {tuple(lat.shape)} scaling_factor {scale:.5f} recon PSNR {psnr:.2f} dB "
        f"scaled channel mean {np.round(d['channel_mean'], 3).tolist()} std {np.round(d['channel_std'], 3).tolist()} "
        f"({time.time() - t0:.0f}s)")
    return d


def phase_unet(a, P, latents, captions, tok):
    path = os.path.join(a.work, "unet.pt")
    ccfg = dict(CLIP_CONFIG, vocab_size=len(tok.encoder), bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    unet = UNet2DConditionModel(UNET_CONFIG)
    te = CLIPTextModel(ccfg)
    init_weights(unet, a.seed + 20)
    init_weights(te, a.seed + 30)
    with torch.no_grad():  # small init for embeddings (CLIP uses std 0.02 / 0.01)
        te.text_model.embeddings.token_embedding.weight.normal_(0, 0.02, generator=torch.Generator().manual_seed(a.seed + 31))
        te.text_model.embeddings.position_embedding.weight.normal_(0, 0.01, generator=torch.Generator().manual_seed(a.seed + 32))
        unet.conv_out.weight.zero_()
        unet.conv_out.bias.zero_()
    params = list(unet.parameters()) + list(te.parameters())
    ema = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=P["unet_lr"], weight_decay=0.01, betas=(0.9, 0.999))
    step, total, elapsed = 0, P["unet_steps"], 0.0
    budget = None if P.get("unet_steps_fixed") else P.get("unet_minutes")
    if os.path.exists(path):
        ck = torch.load(path)
        unet.load_state_dict(ck["unet"])
        te.load_state_dict(ck["te"])
        opt.load_state_dict(ck["opt"])
        ema = ck["ema"]
        step, elapsed = ck["step"], ck.get("elapsed", 0.0)
        log(f"unet: resuming at step {step}/{total} ({elapsed / 60:.1f} min trained)")
    lat = latents["latents"]
    ids = tok.batch(captions)
    empty = torch.tensor(tok(""), dtype=torch.long)
    ab = torch.tensor(alphas_cumprod(), dtype=torch.float32)
    N = lat.shape[0]
    unet.train()
    te.train()
    t0, run = time.time(), []
    t_last = time.time()
    while step < total:
        if budget is not None and elapsed >= budget * 60:
            log(f"unet: time budget of {budget} min reached at step {step} "
                f"(reproduce exactly with --unet-steps {step})")
            atomic_save(dict(unet=unet.state_dict(), te=te.state_dict(), opt=opt.state_dict(), ema=ema, step=step,
                             elapsed=elapsed), path)
            break
        g = torch.Generator().manual_seed(a.seed * 7919 + 1000 + step)
        B = P["unet_batch"]
        idx = torch.randint(0, N, (B,), generator=g)
        x0 = lat[idx]
        cid = ids[idx].clone()
        drop = torch.rand(B, generator=g) < 0.1  # caption dropout -> "" (for CFG)
        cid[drop] = empty
        t = torch.randint(0, 1000, (B,), generator=g)
        noise = torch.randn(x0.shape, generator=g) + 0.1 * torch.randn((B, x0.shape[1], 1, 1), generator=g)
        a_t = ab[t][:, None, None, None]
        xt = a_t.sqrt() * x0 + (1 - a_t).sqrt() * noise
        for pg in opt.param_groups:
            # warm-up then CONSTANT lr (+ EMA): the weights at step N do not depend on the planned total, so
            # a time-budgeted run is reproduced exactly by --unet-steps N
            pg["lr"] = P["unet_lr"] * min(1.0, (step + 1) / 300)
        ctx = te(cid)
        pred = unet(xt, t.float(), ctx)
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        with torch.no_grad():
            d = min(0.999, (1 + step) / (10 + step))
            for e, p in zip(ema, params):
                e.mul_(d).add_(p.detach(), alpha=1 - d)
        run.append(loss.item())
        now = time.time()
        elapsed += now - t_last
        t_last = now
        if step % 50 == 0 or step == total:
            el = time.time() - t0
            left = el / len(run) * (total - step) / 60
            if budget is not None:
                left = min(left, budget - elapsed / 60)
            log(f"unet step {step}/{total} loss {np.mean(run):.4f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{el / len(run):.3f}s/step trained {elapsed / 60:.1f} min ({left:.1f} min left)")
            run, t0 = [], time.time()
        if step % P["ckpt_every"] == 0 or step == total:
            atomic_save(dict(unet=unet.state_dict(), te=te.state_dict(), opt=opt.state_dict(), ema=ema, step=step,
                             elapsed=elapsed), path)
    # load EMA weights for export
    with torch.no_grad():
        for e, p in zip(ema, params):
            p.copy_(e)
    return unet, te


def phase_export(a, vae, unet, te, latents):
    vae.config["scaling_factor"] = round(latents["scaling_factor"], 6)
    tdir = os.path.join(a.work, "tokenizer")
    dtype = torch.float16 if a.dtype == "fp16" else torch.float32
    save_diffusers(a.out, unet.eval(), vae.eval(), te.eval(), os.path.join(tdir, "vocab.json"),
                   os.path.join(tdir, "merges.txt"), dtype=dtype)
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(a.out) for f in fs)
    log(f"export: {a.out} ({size / 1e6:.2f} MB, {a.dtype})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/invedit-train")
    ap.add_argument("--out", default="models/demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="full", choices=list(PRESETS))
    ap.add_argument("--unet-steps", type=int, default=None, help="fixed UNet step count (overrides the time budget)")
    ap.add_argument("--unet-minutes", type=float, default=None,
                    help="time budget for the UNet phase (cumulative over resumes); stops early at a step N "
                         "that is logged; --unet-steps N then reproduces the run exactly")
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "fp32"])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    P = dict(PRESETS[a.preset])
    if a.unet_steps:
        P["unet_steps"], P["unet_steps_fixed"] = a.unet_steps, True
    elif a.unet_minutes:
        P["unet_minutes"] = a.unet_minutes
    os.makedirs(a.work, exist_ok=True)
    log(f"config: {json.dumps(P)} seed {a.seed}")
    T = {}
    t = time.time(); images, captions = phase_data(a, P); T["data"] = time.time() - t
    t = time.time(); tok = phase_vocab(a); T["vocab"] = time.time() - t
    t = time.time(); vae = phase_vae(a, P, images); T["vae"] = time.time() - t
    t = time.time(); lat = phase_latents(a, vae, images); T["latents"] = time.time() - t
    t = time.time(); unet, te = phase_unet(a, P, lat, captions, tok); T["unet"] = time.time() - t
    t = time.time(); phase_export(a, vae, unet, te, lat); T["export"] = time.time() - t
    npar = lambda m: sum(p.numel() for p in m.parameters())
    log(f"params: unet {npar(unet)} text_encoder {npar(te)} vae {npar(vae)}")
    log("phase wall times (this invocation, s): " + json.dumps({k: round(v, 1) for k, v in T.items()}))


if __name__ == "__main__":
    main()
