"""SD 1.x UNet2DConditionModel, written to match diffusers' forward and tensor names exactly.

Only the SD-1.x feature set is implemented (use_linear_projection=False, one transformer block per
Transformer2DModel, GEGLU feed-forward, resnet_time_scale_shift="default", no class embeddings).
Config keys are diffusers' `unet/config.json` keys; NB `attention_head_dim` is the NUMBER OF HEADS
(diffusers naming bug), head_dim = channels // heads.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

UNET_DEFAULTS = dict(
    _class_name="UNet2DConditionModel",
    sample_size=64, in_channels=4, out_channels=4, center_input_sample=False,
    flip_sin_to_cos=True, freq_shift=0,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    mid_block_type="UNetMidBlock2DCrossAttn",
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    only_cross_attention=False, block_out_channels=[320, 640, 1280, 1280], layers_per_block=2,
    downsample_padding=1, mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32, norm_eps=1e-5,
    cross_attention_dim=768, attention_head_dim=8, use_linear_projection=False, upcast_attention=False,
    resnet_time_scale_shift="default", time_cond_proj_dim=None,
)


def get_timestep_embedding(t, dim, flip_sin_to_cos=True, downscale_freq_shift=0.0, max_period=10000):
    """diffusers.models.embeddings.get_timestep_embedding (scale 1). t: [B] float/int, returns [B, dim] fp32.
    f_j = exp(-ln(max_period) * j / (half - shift)); emb = [sin, cos] -> [cos, sin] if flipped."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float32, device=t.device)
    exponent = exponent / (half - downscale_freq_shift)
    emb = t[:, None].float() * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


class TimestepEmbedding(nn.Module):
    """time_embedding.{linear_1, linear_2[, cond_proj]}: emb = linear_2(silu(linear_1(t_emb [+ cond_proj(c)])))"""

    def __init__(self, in_channels, time_embed_dim, cond_proj_dim=None):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, time_embed_dim)
        if cond_proj_dim is not None:
            self.cond_proj = nn.Linear(cond_proj_dim, in_channels, bias=False)
        else:
            self.cond_proj = None
        self.linear_2 = nn.Linear(time_embed_dim, time_embed_dim)

    def forward(self, sample, condition=None):
        if condition is not None:
            sample = sample + self.cond_proj(condition)
        return self.linear_2(F.silu(self.linear_1(sample)))


class ResnetBlock2D(nn.Module):
    """diffusers ResnetBlock2D (used by UNet with temb and by the VAE without).
    h = conv1(silu(norm1(x))); h += time_emb_proj(silu(temb))[:, :, None, None];
    h = conv2(silu(norm2(h))); out = conv_shortcut(x) + h  (conv_shortcut 1x1 only if Cin != Cout)."""

    def __init__(self, in_channels, out_channels, temb_channels, groups, eps):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps, affine=True)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels) if temb_channels is not None else None
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps, affine=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1, 1, 0) if in_channels != out_channels else None

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None and temb is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return x + h


class Attention(nn.Module):
    """Transformer attention (attn1 / attn2): to_q/to_k/to_v without bias, to_out.0 with bias.
    Multi-head softmax(q k^T / sqrt(head_dim)) v, no mask."""

    def __init__(self, query_dim, heads, dim_head, cross_attention_dim=None):
        super().__init__()
        inner = heads * dim_head
        kv_dim = cross_attention_dim if cross_attention_dim is not None else query_dim
        self.heads = heads
        self.dim_head = dim_head
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(kv_dim, inner, bias=False)
        self.to_v = nn.Linear(kv_dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim, bias=True), nn.Dropout(0.0)])
        # optional hook for attention-control experiments: fn(probs, is_cross) -> probs
        self.probs_hook = None

    def forward(self, x, context=None):
        is_cross = context is not None
        ctx = x if context is None else context
        B, N, _ = x.shape
        M = ctx.shape[1]
        q = self.to_q(x).view(B, N, self.heads, self.dim_head).transpose(1, 2)
        k = self.to_k(ctx).view(B, M, self.heads, self.dim_head).transpose(1, 2)
        v = self.to_v(ctx).view(B, M, self.heads, self.dim_head).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.dim_head))
        probs = scores.softmax(dim=-1)
        if self.probs_hook is not None:
            probs = self.probs_hook(probs, is_cross)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(B, N, self.heads * self.dim_head)
        return self.to_out[1](self.to_out[0](out))


class GEGLU(nn.Module):
    """ff.net.0: proj Linear(dim, 2*inner); a, gate = chunk(2) (a = first half); a * gelu_erf(gate)."""

    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4):
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class BasicTransformerBlock(nn.Module):
    """x = attn1(norm1(x)) + x; x = attn2(norm2(x), ctx) + x; x = ff(norm3(x)) + x  (LayerNorm eps 1e-5)."""

    def __init__(self, dim, heads, dim_head, cross_attention_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5, elementwise_affine=True)
        self.attn1 = Attention(dim, heads, dim_head, None)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5, elementwise_affine=True)
        self.attn2 = Attention(dim, heads, dim_head, cross_attention_dim)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5, elementwise_affine=True)
        self.ff = FeedForward(dim)

    def forward(self, x, context):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        x = self.ff(self.norm3(x)) + x
        return x


class Transformer2DModel(nn.Module):
    """SD1 spatial transformer: GN(eps 1e-6) -> proj_in conv1x1 -> tokens -> block -> proj_out conv1x1 -> + x."""

    def __init__(self, heads, dim_head, in_channels, groups, cross_attention_dim):
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(groups, in_channels, eps=1e-6, affine=True)
        self.proj_in = nn.Conv2d(in_channels, inner, 1, 1, 0)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(inner, heads, dim_head, cross_attention_dim)])
        self.proj_out = nn.Conv2d(inner, in_channels, 1, 1, 0)

    def forward(self, x, context):
        B, C, H, W = x.shape
        res = x
        h = self.proj_in(self.norm(x))
        inner = h.shape[1]
        h = h.permute(0, 2, 3, 1).reshape(B, H * W, inner)
        for blk in self.transformer_blocks:
            h = blk(h, context)
        h = h.reshape(B, H, W, inner).permute(0, 3, 1, 2).contiguous()
        return self.proj_out(h) + res


class Downsample2D(nn.Module):
    """downsamplers.0.conv: 3x3 stride 2. padding=1 (UNet) or padding=0 with asymmetric F.pad (0,1,0,1) (VAE)."""

    def __init__(self, channels, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x):
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0)
        return self.conv(x)


class Upsample2D(nn.Module):
    """upsamplers.0.conv: nearest x2 then 3x3 conv pad 1."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    """CrossAttnDownBlock2D (with_attn) or DownBlock2D. Returns (h, tuple of skip states)."""

    def __init__(self, in_ch, out_ch, temb_ch, num_layers, add_downsample, with_attn, heads, cross_dim, groups, eps,
                 downsample_padding):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(in_ch if i == 0 else out_ch, out_ch, temb_ch, groups, eps) for i in range(num_layers)])
        if with_attn:
            self.attentions = nn.ModuleList(
                [Transformer2DModel(heads, out_ch // heads, out_ch, groups, cross_dim) for _ in range(num_layers)])
        else:
            self.attentions = None
        self.downsamplers = nn.ModuleList([Downsample2D(out_ch, downsample_padding)]) if add_downsample else None

    def forward(self, h, temb, context):
        states = []
        for i, res in enumerate(self.resnets):
            h = res(h, temb)
            if self.attentions is not None:
                h = self.attentions[i](h, context)
            states.append(h)
        if self.downsamplers is not None:
            h = self.downsamplers[0](h)
            states.append(h)
        return h, states


class UpBlock(nn.Module):
    """CrossAttnUpBlock2D (with_attn) or UpBlock2D. num_layers = layers_per_block + 1.
    Resnet i input = (prev_output_channel if i == 0 else out) + (in_channels if i == last else out)."""

    def __init__(self, in_ch, prev_out_ch, out_ch, temb_ch, num_layers, add_upsample, with_attn, heads, cross_dim,
                 groups, eps):
        super().__init__()
        resnets = []
        for i in range(num_layers):
            skip_ch = in_ch if i == num_layers - 1 else out_ch
            res_in = prev_out_ch if i == 0 else out_ch
            resnets.append(ResnetBlock2D(res_in + skip_ch, out_ch, temb_ch, groups, eps))
        self.resnets = nn.ModuleList(resnets)
        if with_attn:
            self.attentions = nn.ModuleList(
                [Transformer2DModel(heads, out_ch // heads, out_ch, groups, cross_dim) for _ in range(num_layers)])
        else:
            self.attentions = None
        self.upsamplers = nn.ModuleList([Upsample2D(out_ch)]) if add_upsample else None

    def forward(self, h, skips, temb, context):
        # skips: list; pops from the END; concat order [h, skip]
        for i, res in enumerate(self.resnets):
            s = skips.pop()
            h = torch.cat([h, s], dim=1)
            h = res(h, temb)
            if self.attentions is not None:
                h = self.attentions[i](h, context)
        if self.upsamplers is not None:
            h = self.upsamplers[0](h)
        return h


class UNetMidBlock2DCrossAttn(nn.Module):
    """mid_block: resnets.0 -> attentions.0 -> resnets.1"""

    def __init__(self, ch, temb_ch, heads, cross_dim, groups, eps):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, temb_ch, groups, eps), ResnetBlock2D(ch, ch, temb_ch, groups, eps)])
        self.attentions = nn.ModuleList([Transformer2DModel(heads, ch // heads, ch, groups, cross_dim)])

    def forward(self, h, temb, context):
        h = self.resnets[0](h, temb)
        h = self.attentions[0](h, context)
        h = self.resnets[1](h, temb)
        return h


class UNet2DConditionModel(nn.Module):
    """eps = unet(sample [B,4,h,w], timestep [B] or scalar, encoder_hidden_states [B,77,D][, timestep_cond [B,P]])."""

    def __init__(self, config=None, **kw):
        super().__init__()
        cfg = dict(UNET_DEFAULTS)
        cfg.update(config or {})
        cfg.update(kw)
        self.config = cfg
        assert not cfg["use_linear_projection"], "only SD1-style conv1x1 proj_in/out supported"
        assert cfg["mid_block_type"] == "UNetMidBlock2DCrossAttn"
        boc = list(cfg["block_out_channels"])
        n = len(boc)
        heads = cfg["attention_head_dim"]
        heads = list(heads) if isinstance(heads, (list, tuple)) else [heads] * n
        groups, eps, cross = cfg["norm_num_groups"], cfg["norm_eps"], cfg["cross_attention_dim"]
        lpb = cfg["layers_per_block"]
        temb_ch = boc[0] * 4

        self.conv_in = nn.Conv2d(cfg["in_channels"], boc[0], 3, 1, 1)
        self.time_embedding = TimestepEmbedding(boc[0], temb_ch, cfg.get("time_cond_proj_dim"))

        self.down_blocks = nn.ModuleList()
        out_ch = boc[0]
        for i, t in enumerate(cfg["down_block_types"]):
            in_ch, out_ch = out_ch, boc[i]
            assert t in ("CrossAttnDownBlock2D", "DownBlock2D"), t
            self.down_blocks.append(DownBlock(in_ch, out_ch, temb_ch, lpb, i != n - 1, t == "CrossAttnDownBlock2D",
                                              heads[i], cross, groups, eps, cfg["downsample_padding"]))
        self.mid_block = UNetMidBlock2DCrossAttn(boc[-1], temb_ch, heads[-1], cross, groups, eps)

        self.up_blocks = nn.ModuleList()
        rboc = list(reversed(boc))
        rheads = list(reversed(heads))
        out_ch = rboc[0]
        for i, t in enumerate(cfg["up_block_types"]):
            prev_out, out_ch = out_ch, rboc[i]
            in_ch = rboc[min(i + 1, n - 1)]
            assert t in ("CrossAttnUpBlock2D", "UpBlock2D"), t
            self.up_blocks.append(UpBlock(in_ch, prev_out, out_ch, temb_ch, lpb + 1, i != n - 1,
                                          t == "CrossAttnUpBlock2D", rheads[i], cross, groups, eps))
        self.conv_norm_out = nn.GroupNorm(groups, boc[0], eps=eps)
        self.conv_out = nn.Conv2d(boc[0], cfg["out_channels"], 3, 1, 1)

    def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None):
        B = sample.shape[0]
        if not torch.is_tensor(timestep):
            timestep = torch.tensor([timestep], dtype=torch.float32, device=sample.device)
        if timestep.dim() == 0:
            timestep = timestep[None]
        timestep = timestep.to(sample.device).expand(B)
        t_emb = get_timestep_embedding(timestep, self.config["block_out_channels"][0],
                                       self.config["flip_sin_to_cos"], self.config["freq_shift"])
        t_emb = t_emb.to(sample.dtype)
        emb = self.time_embedding(t_emb, timestep_cond)

        h = self.conv_in(sample)
        skips = [h]
        for blk in self.down_blocks:
            h, st = blk(h, emb, encoder_hidden_states)
            skips.extend(st)
        h = self.mid_block(h, emb, encoder_hidden_states)
        for blk in self.up_blocks:
            h = blk(h, skips, emb, encoder_hidden_states)
        assert not skips
        h = self.conv_out(F.silu(self.conv_norm_out(h)))
        return h
