/* The SD 1.x UNet (diffusers UNet2DConditionModel), LCM's timestep_cond
 * included, on the engine's op API.
 *
 *     unet *u;
 *     unet_load(be, weights, &cfg.unet, SD_WTYPE_AUTO, &u, err, sizeof err);
 *     float t[2] = {981, 981};                        // per-row timesteps
 *     unet_forward(u, eps, latents, t, context, NULL); // eps, latents [2, 4, 64, 64]
 *                                                      // context [2, 77, 768]
 *     unet_free(u);
 *
 * Shapes: B = batch (CFG runs uncond + cond as one batch of 2, each row with
 * its own timestep and text context), H x W latent (divisible by
 * 2^(levels-1)), C_i = block_out_channels[i], T = 4·C_0 (time embedding),
 * Lc x D = context (77 x cross_attention_dim).
 *
 * Forward (diffusers' UNet2DConditionModel.forward; docs/engine.md):
 *   emb  = linear_2(silu(linear_1(sinusoid(t) [+ cond_proj(guidance(w))])))
 *   h    = conv_in(x); skips = [h]
 *   down: per level, layers_per_block x (ResNet [+ Transformer2D]), push each;
 *         Downsample (3x3 stride 2 pad 1) on all but the last level, push
 *   mid:  ResNet, Transformer2D, ResNet
 *   up:   per level, (layers_per_block + 1) x (h = cat([h, skips.pop()]);
 *         ResNet [+ Transformer2D]); Upsample (nearest x2 + conv) but last
 *   out  = conv_out(silu(conv_norm_out(h)))
 *
 * Memory: weights are uploaded once; activations live in slabs sized by a
 * dry run for the largest (B, H, W, Lc) seen and reused by every call
 * (nn.h). Skip connections are written in place by the down path.
 *
 * Attention hook (attention control: prompt-to-prompt, MasaCtrl, ...).
 * Every attention of the UNet goes through one function. Without a hook it
 * is the fused ie_attention (no cost). With u->hook set, the hook is called
 * for each attention, in execution order, first with stage UNET_HOOK_QKV:
 *     call->q [B, Lq, C], call->k, call->v [B, Lk, C]   (C = heads · head size;
 *     self-attention: Lk = Lq = h·w; cross-attention: Lk = Lc)
 * The hook may overwrite rows of q/k/v (e.g. copy row 0's k/v onto row 1:
 * ie_copy(be, &row1, &row0) with row = nn_row(call->k, b)), and may set
 * call->want_probs. Then, if it did, the probabilities are computed
 * explicitly and the hook is called again with stage UNET_HOOK_PROBS and
 * call->probs [B, heads, Lq, Lk] (softmax(q·kᵀ/√d)), which it may read or
 * rewrite in place; out = probs · v follows. A hook returning non-IE_OK
 * stops the forward pass with that status. The tensors are views into the
 * UNet's buffers, valid only during the call (ops on them are recorded in
 * order on the same backend; no sync is needed). The probabilities buffer is
 * allocated on first use and kept (self-attention at 64x64 latents is
 * B·heads·4096² floats: ask for it only where needed).
 */
#ifndef INVEDIT_UNET_H
#define INVEDIT_UNET_H

#include <stdbool.h>
#include <stdint.h>

#include "model/config.h"
#include "model/nn.h"
#include "model/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Transformer2DModel with one BasicTransformerBlock (SD 1.x), C channels. */
typedef struct unet_transformer {
    int channels, heads;
    nn_norm norm;     /* GroupNorm [C], eps 1e-6 */
    nn_conv proj_in;  /* [C, C, 1, 1]; Linear [C, C] in .w when use_linear_projection */
    nn_norm norm1;    /* LayerNorm [C] */
    nn_lin attn1_q;   /* [C, C], no bias */
    nn_lin attn1_k;   /* [C, C] */
    nn_lin attn1_v;   /* [C, C] */
    nn_lin attn1_out; /* [C, C] + [C] */
    nn_norm norm2;    /* [C] */
    nn_lin attn2_q;   /* [C, C] */
    nn_lin attn2_k;   /* [C, D] (D = cross_attention_dim) */
    nn_lin attn2_v;   /* [C, D] */
    nn_lin attn2_out; /* [C, C] + [C] */
    nn_norm norm3;    /* [C] */
    nn_lin ff_proj;   /* ff.net.0.proj [8C, C] + [8C] (GEGLU) */
    nn_lin ff_out;    /* ff.net.2 [C, 4C] + [C] */
    nn_conv proj_out; /* [C, C, 1, 1] (or Linear [C, C]) */
} unet_transformer;

typedef struct unet_down_block {
    nn_resnet resnets[SD_MAX_LAYERS_PER_BLOCK];           /* C_{i-1} -> C_i, then C_i -> C_i */
    unet_transformer attentions[SD_MAX_LAYERS_PER_BLOCK]; /* when down_cross_attn[i] */
    nn_conv downsampler;                                  /* [C_i, C_i, 3, 3]; .w NULL on the last level */
} unet_down_block;

typedef struct unet_up_block {
    nn_resnet resnets[SD_MAX_LAYERS_PER_BLOCK + 1];           /* (C_h + C_skip) -> C, 1x1 shortcut */
    unet_transformer attentions[SD_MAX_LAYERS_PER_BLOCK + 1]; /* when up_cross_attn[i] */
    nn_conv upsampler;                                        /* [C, C, 3, 3]; .w NULL on the last level */
} unet_up_block;

typedef struct unet_weights {
    nn_conv conv_in;       /* [C0, Cin, 3, 3] */
    nn_lin time_cond_proj; /* [C0, P] no bias (LCM: P = time_cond_proj_dim), else .w NULL */
    nn_lin time_linear_1;  /* [T, C0] */
    nn_lin time_linear_2;  /* [T, T] */
    unet_down_block down[SD_MAX_LEVELS];
    nn_resnet mid_resnets[2]; /* [C_last] */
    unet_transformer mid_attention;
    unet_up_block up[SD_MAX_LEVELS]; /* up[i] works at level n-1-i */
    nn_norm conv_norm_out;           /* [C0] */
    nn_conv conv_out;                /* [Cout, C0, 3, 3] */
} unet_weights;

#define UNET_MAX_SKIPS (1 + SD_MAX_LEVELS * (SD_MAX_LAYERS_PER_BLOCK + 1))

/* Activations (nn.h slabs). */
typedef struct unet_state {
    nn_arena arena;
    int B, H, W, Lc, P;           /* the shape last planned for */
    nn_slab t, w;                 /* [B] timesteps, [B] guidance inputs */
    nn_slab temb;                 /* [B, C0] sinusoid (+ cond_proj) */
    nn_slab tcond_sin;            /* [B, P] guidance embedding */
    nn_slab tcond;                /* [B, C0] cond_proj(...) */
    nn_slab thid;                 /* [B, T] linear_1 output */
    nn_slab emb;                  /* [B, T] time embedding */
    nn_slab emb_silu;             /* [B, T] silu(emb), what every ResNet reads */
    nn_slab tproj;                /* [B, C] time_emb_proj output */
    nn_slab skip[UNET_MAX_SKIPS]; /* the down path's outputs, [B, C_i, h_i, w_i] */
    nn_slab h[2];                 /* mid/up stream, ping-pong */
    nn_slab cat;                  /* [B, C_h + C_skip, h, w] */
    nn_slab ups;                  /* [B, C, 2h, 2w] upsampled, before its conv */
    nn_slab t1, t2;               /* block scratch, up to [B, C_cat, h, w] */
    nn_slab tok;                  /* [B, L, C] transformer tokens (L = h·w) */
    nn_slab nrm;                  /* [B, L, C] LayerNorm output */
    nn_slab q, k, v;              /* [B, L, C]; k, v also [B, Lc, C] */
    nn_slab att;                  /* [B, L, C] attention output */
    nn_slab prj;                  /* [B, L, C] to_out / ff output */
    nn_slab ff;                   /* [1, L, 8C] GEGLU input (one batch row at a time) */
    nn_slab ffg;                  /* [1, L, 4C] GEGLU output */
    nn_slab probs;                /* [B, heads, L, Lk], only for hooks that ask */
} unet_state;

typedef enum unet_place { UNET_DOWN = 0, UNET_MID = 1, UNET_UP = 2 } unet_place;
typedef enum unet_hook_stage { UNET_HOOK_QKV = 0, UNET_HOOK_PROBS = 1 } unet_hook_stage;

typedef struct unet_attn_call {
    /* where */
    unet_place place;
    int block;         /* down_blocks.i / up_blocks.i (0 for mid) */
    int layer;         /* attentions.j in that block */
    bool cross;        /* attn2 (keys/values from the text) or attn1 (self) */
    int index;         /* order of this attention within the forward pass: 0, 1, ... */
    int transformer;   /* order of its Transformer2D within the forward pass */
    int height, width; /* the layer's resolution; Lq = height·width */
    int heads;         /* head size = channels / heads */
    int channels;
    ie_backend *be;
    /* what */
    ie_tensor *q;     /* [B, Lq, C] */
    ie_tensor *k, *v; /* [B, Lk, C] */
    ie_tensor *probs; /* [B, heads, Lq, Lk] in the PROBS stage, else NULL */
    bool want_probs;  /* set by the hook in the QKV stage */
} unet_attn_call;

typedef ie_status (*unet_attn_hook)(void *user, unet_hook_stage stage, unet_attn_call *call);

typedef struct unet {
    sd_unet_config config;
    unet_weights weights;
    unet_state state;
    ie_backend *be;
    sd_tensor_list mem;  /* every weight tensor */
    int n_attn_layers;   /* Transformer2D count (attention calls per forward = 2x) */
    unet_attn_hook hook; /* NULL: fused attention */
    void *hook_user;
    sd_tap tap;     /* "time_embedding", "conv_in", "down_blocks.i", "mid_block",
                                "up_blocks.i", "out" */
    char err[1024]; /* the last forward error */
} unet;

/* Creates the UNet's weights on `be` from the loader's model source. Every
 * missing or misshapen tensor is named in err. */
ie_status unet_load(ie_backend *be, const sd_weights *w, const sd_unet_config *cfg, sd_wtype wt, unet **out, char *err,
                    size_t errlen);
void unet_free(unet *u);

/* eps prediction. x [B, Cin, H, W], t[B] timesteps (host floats), ctx
 * [B, Lc, D], w[B] (host, or NULL): LCM guidance inputs, i.e. the embedding
 * is sinusoid(w) (sin first, shift 1, dim time_cond_proj_dim); diffusers'
 * LCM pipeline uses w = (guidance_scale - 1) · 1000 (unet_lcm_w). Required
 * when the UNet has time_cond_proj, ignored otherwise.
 * -> out [B, Cout, H, W]. On error, u->err says where. */
ie_status unet_forward(unet *u, ie_tensor *out, const ie_tensor *x, const float *t, const ie_tensor *ctx,
                       const float *w);

/* diffusers' LCM convention: w = (guidance_scale - 1) · 1000. */
static inline float unet_lcm_w(float guidance_scale) { return (guidance_scale - 1.0f) * 1000.0f; }

/* Bytes of weights / of activation buffers currently allocated. */
uint64_t unet_weight_bytes(const unet *u);
uint64_t unet_activation_bytes(const unet *u);
/* Frees the activation buffers and the attention probabilities (planned and
 * allocated again by the next forward pass): an edit keeps them only while
 * its UNet loop runs. */
void unet_release_activations(unet *u);
/* The activation bytes a forward pass of batch B on [B, in, H, W] latents with
 * Lc context tokens would allocate (a dry run of the pass itself: nothing is
 * computed or allocated), and the largest single buffer among them. Attention
 * probabilities a hook asks for come on top (see the pipeline's plan). */
ie_status unet_plan_activations(unet *u, int B, int H, int W, int Lc, uint64_t *total, uint64_t *largest);

#ifdef __cplusplus
}
#endif
#endif
