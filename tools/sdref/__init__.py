"""sdref — PyTorch reference implementation of the SD 1.x networks with diffusers/transformers tensor names.

API (put tools/ on sys.path, then):
    from sdref import (UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer,
                       save_diffusers, load_diffusers, save_safetensors, load_safetensors,
                       alphas_cumprod, ddim_timesteps, ddim_sample, get_timestep_embedding)

    unet = UNet2DConditionModel(json.load(open("models/demo/unet/config.json")))   # config-driven
    eps  = unet(latents [B,4,h,w], t [B], context [B,77,D])                         # optional timestep_cond=
    vae  = AutoencoderKL(cfg);  mean, logvar = vae.encode(x_in_-1_1);  x = vae.decode(z / scaling_factor)
    te   = CLIPTextModel(cfg);  hidden = te(ids [B,77])                             # after final_layer_norm
    tok  = CLIPTokenizer.from_folder("models/demo/tokenizer"); ids = tok("a red circle")  # 77 ids
    pipe = load_diffusers("models/demo")  # .unet .vae .text_encoder .tokenizer .scheduler_config .encode_prompt()
    imgs = ddim_sample(pipe, ["a red circle ..."], steps=50, guidance=5.0, seed=0)  # [B,3,H,W] in [0,1]

Attention probabilities can be intercepted via `module.probs_hook = fn(probs, is_cross) -> probs` on any
sdref.unet.Attention (attn1/attn2) for attention-control experiments.
"""
from .unet import UNet2DConditionModel, get_timestep_embedding
from .vae import AutoencoderKL
from .clip import CLIPTextModel, CLIPTokenizer, bytes_to_unicode, base_vocab, clean_text, pretokenize
from .storage import save_safetensors, load_safetensors, save_diffusers, load_diffusers, Pipeline, SCHEDULER_CONFIG
from .schedule import alphas_cumprod, ddim_timesteps, ddim_sample
