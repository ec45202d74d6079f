"""The exact SD 1.5 configuration check, reference side (slow; not part of the default tests):

    nice /usr/bin/python3 tools/refdump/make_sd15_ref.py [--out ~/.cache/invedit/sd15-ref]

Builds the SD 1.5 UNet (diffusers defaults = SD 1.5: [320, 640, 1280, 1280], 8 heads, context 768),
the CLIP-L text encoder and the SD VAE in tools/sdref with random weights (PyTorch's default
initialisation, random GroupNorm/LayerNorm affine parameters, fixed seeds), saves them as an fp32
diffusers folder (~4.2 GB: the UNet alone is 3.4 GB) and dumps, per block:
    ref/unet/        a CFG-style batch-2 UNet evaluation on an 8x8 latent (two timesteps, two contexts)
    ref/clip/        CLIP-L on two token sequences (BOS ... EOS, EOS padding)
    ref/vae_encode/  VAE encode of a 1x3x64x64 image (moments, mean, logvar)
    ref/vae_decode/  VAE decode of a 1x4x8x8 latent
tests/test_sd15.c (registered with -Dslow_tests=true) loads the folder through the real loader and
compares every block (max relative error <= 1e-3). Needs about 12 GB of RAM while saving.
"""
import argparse
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, HERE)
from sdref import UNet2DConditionModel, AutoencoderKL, CLIPTextModel  # noqa: E402
from make_refs import Dumper, hook_output, perturb_norms, save_component, unet_case  # noqa: E402


def default_out():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "invedit", "sd15-ref")


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=default_out())
    args = ap.parse_args()
    out = args.out
    torch.set_num_threads(1)
    t0 = time.time()

    # ---- UNet
    torch.manual_seed(15)
    gen = torch.Generator().manual_seed(15)
    unet = UNet2DConditionModel().eval()
    perturb_norms(unet, gen)
    cfg = dict(unet.config)
    cfg["_diffusers_version"] = "0.25.0"
    save_component(out, "unet", "diffusion_pytorch_model.safetensors", unet, cfg)
    print("unet saved (%.0f s)" % (time.time() - t0), flush=True)
    x = torch.randn(2, 4, 8, 8, generator=gen)
    ctx = torch.randn(2, 77, 768, generator=gen)
    t = torch.tensor([981.0, 41.0])
    unet_case(unet, os.path.join(out, "ref", "unet"), x, t, ctx)
    print("unet dumped (%.0f s)" % (time.time() - t0), flush=True)
    del unet

    # ---- CLIP-L
    te = CLIPTextModel().eval()
    perturb_norms(te, gen)
    tcfg = dict(te.config)
    save_component(out, "text_encoder", "model.safetensors", te, tcfg)
    ids = torch.full((2, 77), 49407, dtype=torch.long)
    ids[:, 0] = 49406
    ids[0, 1:8] = torch.tensor([320, 1929, 3545, 593, 320, 2368, 49407])
    ids[1, 1:40] = torch.randint(0, 49406, (39,), generator=gen)
    dump = Dumper(os.path.join(out, "ref", "clip"))
    dump("ids", ids)
    tm = te.text_model
    dump("embeddings", tm.embeddings.token_embedding(ids) + tm.embeddings.position_embedding(torch.arange(77))[None])
    hooks = [hook_output(l, "layers.%d" % i, dump) for i, l in enumerate(tm.encoder.layers)]
    dump("final_layer_norm", te(ids))
    for h in hooks:
        h.remove()
    print("clip done (%.0f s)" % (time.time() - t0), flush=True)
    del te

    # ---- VAE
    vae = AutoencoderKL().eval()
    perturb_norms(vae, gen)
    vcfg = dict(vae.config)
    vcfg["_diffusers_version"] = "0.25.0"
    save_component(out, "vae", "diffusion_pytorch_model.safetensors", vae, vcfg)
    dump = Dumper(os.path.join(out, "ref", "vae_encode"))
    img = torch.rand(1, 3, 64, 64, generator=gen) * 2 - 1
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
    dump = Dumper(os.path.join(out, "ref", "vae_decode"))
    lat = torch.randn(1, 4, 8, 8, generator=gen)
    dump("latent", lat)
    dec = vae.decoder
    hooks = [hook_output(dec.conv_in, "decoder.conv_in", dump), hook_output(dec.mid_block, "decoder.mid_block", dump)]
    hooks += [hook_output(b, "decoder.up_blocks.%d" % i, dump) for i, b in enumerate(dec.up_blocks)]
    dump("decoder.out", vae.decode(lat / vae.scaling_factor))
    for h in hooks:
        h.remove()
    print("vae done; %s complete (%.0f s)" % (out, time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
