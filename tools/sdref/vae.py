"""SD 1.x AutoencoderKL, diffusers tensor names and forward.

AutoencoderKL: every GroupNorm uses eps 1e-6; the mid-block attention is single-head with Linear
group_norm/to_q/to_k/to_v/to_out.0 (all with bias). encode() returns (mean, logvar) of the posterior
(logvar clamped to [-30, 20]); decode() takes UNSCALED latents (divide by scaling_factor first, as the
diffusers pipeline does) and returns images in [-1, 1] (not clamped).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .unet import ResnetBlock2D, Downsample2D, Upsample2D

VAE_DEFAULTS = dict(
    _class_name="AutoencoderKL",
    in_channels=3, out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[128, 256, 512, 512], layers_per_block=2, act_fn="silu", latent_channels=4,
    norm_num_groups=32, sample_size=512, scaling_factor=0.18215, force_upcast=True,
    mid_block_add_attention=True,
)

VAE_EPS = 1e-6


class VAEAttention(nn.Module):
    """Mid-block attention (diffusers Attention with residual_connection, 1 head of dim C)."""

    def __init__(self, ch, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, ch, eps=VAE_EPS, affine=True)
        self.to_q = nn.Linear(ch, ch)
        self.to_k = nn.Linear(ch, ch)
        self.to_v = nn.Linear(ch, ch)
        self.to_out = nn.ModuleList([nn.Linear(ch, ch), nn.Dropout(0.0)])

    def forward(self, x):
        B, C, H, W = x.shape
        res = x
        h = self.group_norm(x).view(B, C, H * W).transpose(1, 2)  # [B, HW, C]
        q, k, v = self.to_q(h), self.to_k(h), self.to_v(h)
        probs = (torch.matmul(q, k.transpose(1, 2)) * (1.0 / math.sqrt(C))).softmax(dim=-1)
        out = self.to_out[0](torch.matmul(probs, v))
        out = out.transpose(1, 2).reshape(B, C, H, W)
        return out + res


class UNetMidBlock2D(nn.Module):
    """resnets.0 -> attentions.0 -> resnets.1 (no time embedding)."""

    def __init__(self, ch, groups, add_attention=True):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, None, groups, VAE_EPS), ResnetBlock2D(ch, ch, None, groups, VAE_EPS)])
        self.attentions = nn.ModuleList([VAEAttention(ch, groups)]) if add_attention else None

    def forward(self, h):
        h = self.resnets[0](h)
        if self.attentions is not None:
            h = self.attentions[0](h)
        return self.resnets[1](h)


class EncoderBlock(nn.Module):
    """DownEncoderBlock2D: resnets, then downsamplers.0 (pad (0,1,0,1), 3x3 stride 2 pad 0)."""

    def __init__(self, in_ch, out_ch, num_layers, add_downsample, groups):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(in_ch if i == 0 else out_ch, out_ch, None, groups, VAE_EPS) for i in range(num_layers)])
        self.downsamplers = nn.ModuleList([Downsample2D(out_ch, 0)]) if add_downsample else None

    def forward(self, h):
        for r in self.resnets:
            h = r(h)
        if self.downsamplers is not None:
            h = self.downsamplers[0](h)
        return h


class DecoderBlock(nn.Module):
    """UpDecoderBlock2D: resnets (layers_per_block + 1), then upsamplers.0 (nearest x2 + conv)."""

    def __init__(self, in_ch, out_ch, num_layers, add_upsample, groups):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(in_ch if i == 0 else out_ch, out_ch, None, groups, VAE_EPS) for i in range(num_layers)])
        self.upsamplers = nn.ModuleList([Upsample2D(out_ch)]) if add_upsample else None

    def forward(self, h):
        for r in self.resnets:
            h = r(h)
        if self.upsamplers is not None:
            h = self.upsamplers[0](h)
        return h


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        boc, g, lpb = cfg["block_out_channels"], cfg["norm_num_groups"], cfg["layers_per_block"]
        self.conv_in = nn.Conv2d(cfg["in_channels"], boc[0], 3, 1, 1)
        self.down_blocks = nn.ModuleList()
        out_ch = boc[0]
        for i in range(len(boc)):
            in_ch, out_ch = out_ch, boc[i]
            self.down_blocks.append(EncoderBlock(in_ch, out_ch, lpb, i != len(boc) - 1, g))
        self.mid_block = UNetMidBlock2D(boc[-1], g, cfg["mid_block_add_attention"])
        self.conv_norm_out = nn.GroupNorm(g, boc[-1], eps=VAE_EPS)
        self.conv_out = nn.Conv2d(boc[-1], 2 * cfg["latent_channels"], 3, 1, 1)

    def forward(self, x):
        h = self.conv_in(x)
        for b in self.down_blocks:
            h = b(h)
        h = self.mid_block(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        boc, g, lpb = cfg["block_out_channels"], cfg["norm_num_groups"], cfg["layers_per_block"]
        rboc = list(reversed(boc))
        self.conv_in = nn.Conv2d(cfg["latent_channels"], boc[-1], 3, 1, 1)
        self.mid_block = UNetMidBlock2D(boc[-1], g, cfg["mid_block_add_attention"])
        self.up_blocks = nn.ModuleList()
        out_ch = rboc[0]
        for i in range(len(boc)):
            prev, out_ch = out_ch, rboc[i]
            self.up_blocks.append(DecoderBlock(prev, out_ch, lpb + 1, i != len(boc) - 1, g))
        self.conv_norm_out = nn.GroupNorm(g, boc[0], eps=VAE_EPS)
        self.conv_out = nn.Conv2d(boc[0], cfg["out_channels"], 3, 1, 1)

    def forward(self, z):
        h = self.conv_in(z)
        h = self.mid_block(h)
        for b in self.up_blocks:
            h = b(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class AutoencoderKL(nn.Module):
    """mean, logvar = vae.encode(x in [-1,1]); x = vae.decode(z_unscaled).
    Pipeline convention: latent = mean * scaling_factor; image = decode(latent / scaling_factor)."""

    def __init__(self, config=None, **kw):
        super().__init__()
        cfg = dict(VAE_DEFAULTS)
        cfg.update(config or {})
        cfg.update(kw)
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        lc = cfg["latent_channels"]
        self.quant_conv = nn.Conv2d(2 * lc, 2 * lc, 1)
        self.post_quant_conv = nn.Conv2d(lc, lc, 1)

    @property
    def scaling_factor(self):
        return self.config["scaling_factor"]

    def encode(self, x):
        moments = self.quant_conv(self.encoder(x))
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))

    def forward(self, x, sample=False, generator=None):
        mean, logvar = self.encode(x)
        z = mean
        if sample:
            z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=generator, device=mean.device)
        return self.decode(z), mean, logvar

