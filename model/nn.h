/* Neural-net pieces shared by the SD networks (clip.c, unet.c, vae.c).
 *
 * Weights. A layer's weights are plain structs of ie_tensor pointers
 * (nn_lin, nn_conv, nn_norm); a NULL bias means "no bias".
 *
 * Activations come from slabs: a slab is one device buffer that is
 * allocated once and then viewed with whatever shape a layer needs
 * (nn_buf4 / nn_buf3 / ...: views are ie_tensor values on the stack, so
 * they cost nothing and are never freed). Each network's run state names its
 * slabs (llama2.c's RunState); how big each must be is found by a dry run of
 * the forward pass itself: with nn_ctx.plan set, every op is skipped and
 * nn_buf only records the largest size asked of each slab. nn_arena_reserve
 * then (re)allocates the slabs that are too small. So buffers are sized for
 * the largest (batch, height, width) seen, reused by every later call, and
 * the size computation can never disagree with the forward pass.
 *
 * Errors. The op wrappers (nn_conv2d, nn_linear, ...) take an nn_ctx and do
 * nothing once an op has failed: the forward passes read as straight lines of
 * calls, and the first error is kept with the block it happened in
 * ("unet down_blocks.1.attentions.0: linear: x's last dim must equal w's K; ...").
 *
 * Taps. Every network calls its sd_tap (when set) with named intermediate
 * tensors ("down_blocks.0", "mid_block", ...). The reference tests compare
 * them with PyTorch; a debugging tool can dump them.
 */
#ifndef INVEDIT_NN_H
#define INVEDIT_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vkcompute/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- weights ---------------------------------------------------------------- */

typedef struct nn_lin {
    ie_tensor *w; /* [N, K] */
    ie_tensor *b; /* [N] or NULL */
} nn_lin;

typedef struct nn_conv {
    ie_tensor *w; /* [Cout, Cin, KH, KW]; NULL = layer absent */
    ie_tensor *b; /* [Cout] or NULL */
} nn_conv;

typedef struct nn_norm {
    ie_tensor *w; /* gamma [C] */
    ie_tensor *b; /* beta [C] */
} nn_norm;

/* diffusers ResnetBlock2D, shared by the UNet (with a time embedding) and
 * the VAE (without). */
typedef struct nn_resnet {
    int cin, cout;
    nn_norm norm1;         /* [Cin] */
    nn_conv conv1;         /* [Cout, Cin, 3, 3] */
    nn_lin time_emb_proj;  /* [Cout, T]; .w NULL in the VAE */
    nn_norm norm2;         /* [Cout] */
    nn_conv conv2;         /* [Cout, Cout, 3, 3] */
    nn_conv conv_shortcut; /* [Cout, Cin, 1, 1] when Cin != Cout, else .w NULL */
} nn_resnet;

/* --- taps ------------------------------------------------------------------- */

/* Called with an intermediate tensor (valid only during the call; on Vulkan
 * ie_tensor_download waits for it). */
typedef void (*sd_tap_fn)(void *user, const char *name, const ie_tensor *t);
typedef struct sd_tap {
    sd_tap_fn fn; /* NULL: no tap */
    void *user;
} sd_tap;

/* --- slabs and the arena ------------------------------------------------------ */

typedef struct nn_slab {
    ie_tensor *t;   /* the buffer, [cap] */
    int64_t cap;    /* elements allocated */
    int64_t need;   /* elements the last plan asked for */
    ie_dtype dtype; /* IE_F32 unless set before the first plan */
} nn_slab;

#define NN_MAX_SLABS 192 /* >= UNET_MAX_SKIPS + the named slabs */

typedef struct nn_arena {
    nn_slab *slabs[NN_MAX_SLABS]; /* every slab a plan touched */
    int n;
} nn_arena;

/* Bytes the last plan asked of the arena's slabs (the sum, and the largest
 * one): what nn_arena_reserve would hold after it (issue 10: memory plans). */
void nn_arena_plan_bytes(const nn_arena *a, uint64_t *total, uint64_t *largest);
/* A tensor header with a shape and no storage, for a plan (dry run) only. */
ie_tensor nn_plan_tensor(ie_backend *be, int ndim, const int64_t *shape);

/* Grows every registered slab whose need exceeds its capacity. */
ie_status nn_arena_reserve(nn_arena *a, ie_backend *be, char *err, size_t errlen);
/* Frees all slab buffers (the slabs themselves belong to the state). */
void nn_arena_free(nn_arena *a);
/* Bytes allocated for activations. */
uint64_t nn_arena_bytes(const nn_arena *a);

/* --- the forward context ----------------------------------------------------- */

typedef struct nn_ctx {
    ie_backend *be;
    nn_arena *arena;
    bool plan;        /* dry run: record slab sizes, run nothing */
    ie_status status; /* the first error; every later call is skipped */
    char *err;        /* where the first error's message goes */
    size_t errlen;
    const char *model; /* "unet", "vae", ... for messages */
    char scope[96];    /* the block being run, for messages */
    sd_tap tap;
} nn_ctx;

nn_ctx nn_ctx_make(ie_backend *be, nn_arena *arena, bool plan, const char *model, sd_tap tap, char *err, size_t errlen);
/* Names the block being run ("down_blocks.%d.attentions.%d"). */
void nn_scope(nn_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records an error (unless one is already recorded); returns c->status. */
ie_status nn_fail(nn_ctx *c, ie_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Calls the tap with "prefix<name>" (skipped in plans and after errors). */
void nn_tap(nn_ctx *c, const ie_tensor *t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* True when ops really run (not a plan, no error so far). */
static inline bool nn_live(const nn_ctx *c) { return !c->plan && c->status == IE_OK; }

/* --- views --------------------------------------------------------------------- */

/* A view of the slab's first prod(shape) elements (registers the slab and
 * records its need in a plan). */
ie_tensor nn_buf(nn_ctx *c, nn_slab *s, int ndim, const int64_t *shape);
ie_tensor nn_buf1(nn_ctx *c, nn_slab *s, int64_t d0);
ie_tensor nn_buf2(nn_ctx *c, nn_slab *s, int64_t d0, int64_t d1);
ie_tensor nn_buf3(nn_ctx *c, nn_slab *s, int64_t d0, int64_t d1, int64_t d2);
ie_tensor nn_buf4(nn_ctx *c, nn_slab *s, int64_t d0, int64_t d1, int64_t d2, int64_t d3);

/* The same elements with another shape (numel must agree). */
ie_tensor nn_reshape(const ie_tensor *t, int ndim, const int64_t *shape);
ie_tensor nn_as3(const ie_tensor *t, int64_t d0, int64_t d1, int64_t d2);
ie_tensor nn_as4(const ie_tensor *t, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
/* Elements [offset, offset + prod(shape)) of t, with that shape. */
ie_tensor nn_slice(const ie_tensor *t, int64_t offset, int ndim, const int64_t *shape);
/* Batch row b of t [B, ...] as a [1, ...] tensor. */
ie_tensor nn_row(const ie_tensor *t, int64_t b);

/* --- ops (skipped in plans and after an error) ---------------------------------- */

/* out = conv(x) with symmetric padding. */
void nn_conv2d(nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_conv *w, int stride, int pad);
void nn_conv2d_p(nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_conv *w, const ie_conv2d_params *p);
void nn_linear(nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_lin *w);
void nn_group_norm(nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_norm *w, int groups, float eps, bool silu);
void nn_layer_norm(nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_norm *w, float eps);
void nn_attention(nn_ctx *c, ie_tensor *out, const ie_tensor *q, const ie_tensor *k, const ie_tensor *v, int heads,
                  bool causal);
void nn_unary(nn_ctx *c, ie_tensor *out, const ie_tensor *x, ie_unary_op op);
void nn_scale(nn_ctx *c, ie_tensor *out, const ie_tensor *x, float scale, float bias);
void nn_geglu(nn_ctx *c, ie_tensor *out, const ie_tensor *x);
void nn_add(nn_ctx *c, ie_tensor *out, const ie_tensor *a, const ie_tensor *b);
void nn_concat(nn_ctx *c, ie_tensor *out, const ie_tensor *a, const ie_tensor *b);
void nn_upsample(nn_ctx *c, ie_tensor *out, const ie_tensor *x);
void nn_transpose(nn_ctx *c, ie_tensor *out, const ie_tensor *x);
void nn_timestep_embedding(nn_ctx *c, ie_tensor *out, const ie_tensor *t, int dim, bool flip_sin_to_cos, float shift);
void nn_upload(nn_ctx *c, ie_tensor *t, const void *src);
/* Records a failed op's status with the backend's message. */
void nn_check(nn_ctx *c, ie_status s, const char *op);

/* --- blocks ------------------------------------------------------------------------ */

/* ResnetBlock2D: x [B, Cin, H, W] -> out [B, Cout, H, W] (out must not alias x).
 *   h = conv1(silu(norm1(x)))
 *   h += time_emb_proj(silu(temb))[:, :, None, None]     (UNet; emb_silu = silu(temb) [B, T])
 *   h = conv2(silu(norm2(h)))
 *   out = conv_shortcut(x) + h                            (or x + h)
 * Scratch: t1 >= max(Cin, Cout)·HW·B, t2 >= Cout·HW·B, tp >= B·Cout. */
void nn_resnet_forward(nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_resnet *r, const ie_tensor *emb_silu,
                       int groups, float eps, nn_slab *t1, nn_slab *t2, nn_slab *tp);

#ifdef __cplusplus
}
#endif
#endif
