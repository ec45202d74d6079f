"""SD "scaled_linear" schedule and a DDIM (eta=0) text-to-image sampler with CFG (docs/methods.md, "Shared pieces")."""
import numpy as np
import torch


def alphas_cumprod(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012):
    """float64 numpy [1000]: beta_i = (sqrt(b0) + (sqrt(b1)-sqrt(b0)) * i/999)^2, ab = cumprod(1-beta)."""
    betas = np.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps, dtype=np.float64) ** 2
    return np.cumprod(1.0 - betas)


def ddim_timesteps(n, steps_offset=1, num_train_timesteps=1000):
    """diffusers DDIM 'leading' grid: step = 1000//n; [(n-1)*step, ..., step, 0] + offset."""
    step = num_train_timesteps // n
    return [int(i * step + steps_offset) for i in reversed(range(n))]


@torch.no_grad()
def ddim_sample(pipe, prompts, steps=50, guidance=5.0, seed=0, negative="", latents=None):
    """Text-to-image with DDIM eta=0, CFG eps = eps_u + g (eps_c - eps_u), negative = encoding of "".
    Returns images in [0,1], [B,3,H,W] float32."""
    unet, vae = pipe.unet, pipe.vae
    ab = alphas_cumprod()
    cfg = pipe.scheduler_config
    offset = cfg.get("steps_offset", 1)
    final_ab = 1.0 if cfg.get("set_alpha_to_one", False) else ab[0]
    B = len(prompts)
    cond = pipe.encode_prompt(list(prompts))
    unc = pipe.encode_prompt([negative] * B)
    ctx = torch.cat([unc, cond])
    s = unet.config["sample_size"]
    if latents is None:
        g = torch.Generator().manual_seed(seed)
        latents = torch.randn((B, unet.config["in_channels"], s, s), generator=g)
    x = latents.clone()
    step = 1000 // steps
    for t in ddim_timesteps(steps, offset):
        e = unet(torch.cat([x, x]), torch.full((2 * B,), float(t)), ctx)
        eu, ec = e.chunk(2)
        eps = eu + guidance * (ec - eu)
        a_t = ab[t]
        a_p = ab[t - step] if t - step >= 0 else final_ab
        x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
        x = a_p ** 0.5 * x0 + (1 - a_p) ** 0.5 * eps
    img = vae.decode(x / vae.config["scaling_factor"])
    return ((img + 1) / 2).clamp(0, 1)
