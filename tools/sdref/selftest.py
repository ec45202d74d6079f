"""Self-checks of sdref against published SD-1.5 facts (parameter counts, schedule values).

    /usr/bin/python3 tools/sdref/selftest.py [models/demo]

Checks: SD-1.5 parameter/tensor counts of UNet, VAE, CLIP; schedule constants; timestep
embedding layout; DDIM grid; tokenizer behaviour; safetensors round trip; (optional) a demo folder loads
and runs one UNet/VAE/CLIP forward.
"""
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sdref import (UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer,  # noqa
                   alphas_cumprod, ddim_timesteps, get_timestep_embedding, save_safetensors, load_safetensors,
                   load_diffusers, pretokenize)


def npar(m):
    return sum(p.numel() for p in m.parameters())


def check(name, cond):
    print(("ok   " if cond else "FAIL ") + name)
    return bool(cond)


def main():
    torch.set_num_threads(1)
    ok = True
    u = UNet2DConditionModel()
    ok &= check("SD1.5 UNet 859520964 params / 686 tensors", npar(u) == 859520964 and len(u.state_dict()) == 686)
    del u
    v = AutoencoderKL()
    ok &= check("SD1.5 VAE 83653863 params / 248 tensors", npar(v) == 83653863 and len(v.state_dict()) == 248)
    del v
    c = CLIPTextModel()
    ok &= check("CLIP-L text 123060480 params / 196 tensors", npar(c) == 123060480 and len(c.state_dict()) == 196)
    del c
    lcm = UNet2DConditionModel(time_cond_proj_dim=256)
    ok &= check("LCM cond_proj [320,256] no bias", tuple(lcm.state_dict()["time_embedding.cond_proj.weight"].shape) == (320, 256)
                and "time_embedding.cond_proj.bias" not in lcm.state_dict())
    del lcm
    ab = alphas_cumprod()
    ok &= check("alphas_cumprod refs", abs(ab[0] - 0.99915) < 1e-5 and abs(ab[999] - 0.00466) < 1e-5
                and abs(ab[499] - 0.277670) < 1e-5)
    ok &= check("DDIM grid 50 = 981..1", ddim_timesteps(50)[0] == 981 and ddim_timesteps(50)[-1] == 1)
    e = get_timestep_embedding(torch.tensor([3.0]), 320)
    ok &= check("timestep emb [cos, sin], f_0 = 1", abs(e[0, 0] - np.cos(3.0)) < 1e-6 and abs(e[0, 160] - np.sin(3.0)) < 1e-6)
    ok &= check("pretokenize regex", pretokenize("a cat's 12 toys!! <|endoftext|>") ==
                ["a", "cat", "'s", "1", "2", "toys", "!!", "<|endoftext|>"])
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.safetensors")
        ts = {"a": torch.randn(3, 4), "b": torch.randn(5).half(), "c": torch.arange(6).reshape(2, 3)}
        save_safetensors(ts, p, {"format": "pt"})
        back, meta = load_safetensors(p)
        ok &= check("safetensors round trip", all(torch.equal(ts[k], back[k]) for k in ts) and meta["format"] == "pt")
    if len(sys.argv) > 1:
        pipe = load_diffusers(sys.argv[1])
        tok = pipe.tokenizer
        ids = tok("")
        ok &= check("tokenizer: '' = BOS, EOS, EOS-pad; BOS/EOS are the last two ids",
                    ids[0] == tok.bos_token_id and all(i == tok.eos_token_id for i in ids[1:]) and len(ids) == 77
                    and tok.eos_token_id == len(tok.encoder) - 1 and tok.bos_token_id == len(tok.encoder) - 2)
        with torch.no_grad():
            ctx = pipe.encode_prompt(["a red circle on the left on a blue background"])
            s = pipe.unet.config["sample_size"]
            eps = pipe.unet(torch.randn(1, 4, s, s), torch.tensor([500.0]), ctx)
            img = pipe.vae.decode(torch.randn(1, 4, s, s) / pipe.vae.config["scaling_factor"])
        ok &= check(f"demo folder runs: ctx {tuple(ctx.shape)} eps {tuple(eps.shape)} img {tuple(img.shape)}",
                    torch.isfinite(eps).all() and torch.isfinite(img).all())
    print("ALL OK" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
