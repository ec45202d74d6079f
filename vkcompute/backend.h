/* Backend interface behind ops.h. Private to vkcompute/.
 *
 * ops.c checks every argument and shape, then calls the backend's function
 * table. A backend function may assume its arguments are valid: shapes agree,
 * dtypes are supported, tensors belong to this backend. Each returns IE_OK or
 * an error with the message set through ie_backend_set_error().
 */
#ifndef INVEDIT_BACKEND_H
#define INVEDIT_BACKEND_H

#include "vkcompute/ops.h"

#include <stdarg.h>

typedef struct ie_backend_ops {
    const char *name;
    void (*destroy)(ie_backend *be);
    ie_status (*sync)(ie_backend *be);

    /* Storage for a tensor of `nbytes`; sets t->storage, t->offset, t->host. */
    ie_status (*alloc)(ie_backend *be, ie_tensor *t, size_t nbytes);
    void (*release)(ie_backend *be, ie_tensor *t);
    ie_status (*upload)(ie_backend *be, ie_tensor *t, const void *src, size_t nbytes);
    ie_status (*download)(ie_backend *be, ie_tensor *t, void *dst, size_t nbytes);

    void (*timer_begin)(ie_backend *be);
    double (*timer_end)(ie_backend *be);

    ie_status (*conv2d)(ie_backend *be, ie_tensor *out, const ie_tensor *x, const ie_tensor *w, const ie_tensor *b,
                        const ie_conv2d_params *p);
    /* a: [batch_a, M, K] (or [batch_a, K, M] if trans_a) with batch_a in {1, B};
     * b likewise [batch_b, K, N] / [batch_b, N, K]; out [B, M, N]. */
    ie_status (*matmul)(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, const ie_tensor *bias,
                        bool trans_a, bool trans_b, int64_t B, int64_t M, int64_t N, int64_t K, bool a_batched,
                        bool b_batched);
    /* x viewed as [N, C, S] with S = prod(spatial). */
    ie_status (*group_norm)(ie_backend *be, ie_tensor *out, const ie_tensor *x, int groups, float eps,
                            const ie_tensor *gamma, const ie_tensor *beta, bool silu, int64_t N, int64_t C, int64_t S);
    /* x viewed as [rows, C]. */
    ie_status (*layer_norm)(ie_backend *be, ie_tensor *out, const ie_tensor *x, float eps, const ie_tensor *gamma,
                            const ie_tensor *beta, int64_t rows, int64_t C);
    /* q [B, Lq, H*D], k [B, Lk, H*D], v [B, Lk, H*Dv]. */
    ie_status (*attention)(ie_backend *be, ie_tensor *out, const ie_tensor *q, const ie_tensor *k, const ie_tensor *v,
                           int heads, float scale, bool causal);
    ie_status (*attention_probs)(ie_backend *be, ie_tensor *probs, const ie_tensor *q, const ie_tensor *k, int heads,
                                 float scale, bool causal);
    ie_status (*attention_apply)(ie_backend *be, ie_tensor *out, const ie_tensor *probs, const ie_tensor *v);
    ie_status (*unary)(ie_backend *be, ie_tensor *out, const ie_tensor *x, ie_unary_op op);
    ie_status (*scale)(ie_backend *be, ie_tensor *out, const ie_tensor *x, float scale, float bias);
    /* x viewed as [rows, 2D]. */
    ie_status (*geglu)(ie_backend *be, ie_tensor *out, const ie_tensor *x, int64_t rows, int64_t D);
    /* a and out have 4-D shape ashape (padded with leading 1s); b's 4-D shape
     * bshape has each dim equal to ashape's or 1. op: 0 add, 1 mul. */
    ie_status (*binary)(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, int op,
                        const int64_t ashape[4], const int64_t bshape[4]);
    /* a viewed as [N, Ca, S], b as [N, Cb, S]. */
    ie_status (*concat_channels)(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, int64_t N,
                                 int64_t Ca, int64_t Cb, int64_t S);
    ie_status (*upsample_nearest2x)(ie_backend *be, ie_tensor *out, const ie_tensor *x);
    /* x viewed as [B, R, C]. */
    ie_status (*transpose)(ie_backend *be, ie_tensor *out, const ie_tensor *x, int64_t B, int64_t R, int64_t C);
    ie_status (*copy)(ie_backend *be, ie_tensor *out, const ie_tensor *x);
    ie_status (*timestep_embedding)(ie_backend *be, ie_tensor *out, const ie_tensor *t, int dim, bool flip_sin_to_cos,
                                    float shift, float max_period);
    ie_status (*embedding)(ie_backend *be, ie_tensor *out, const ie_tensor *ids, const ie_tensor *table);
    /* Frees grow-only working memory (the CPU backend's scratch); NULL when
     * there is none. Issue 10: between the phases of an edit. */
    void (*trim)(ie_backend *be);
    /* Starts the backend's own high-water mark again at what is in use; NULL
     * when mem_peak below is the only count (the CPU backend). */
    void (*reset_peak)(ie_backend *be);
} ie_backend_ops;

struct ie_backend {
    const ie_backend_ops *ops;
    ie_backend_kind kind;
    char description[320];
    char errmsg[1024];
    uint64_t mem_in_use, mem_peak;
    void *impl;     /* backend-private state */
    bool profiling; /* ie_backend_profile_begin: ops.c times every op into profile */
    ie_op_stats profile[IE_OP_KINDS];
};

/* Formats the backend's error message; returns `code` for tail calls. */
ie_status ie_backend_set_error(ie_backend *be, ie_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Constructors used by ie_backend_open and friends. */
ie_backend *ie_cpu_backend_create(int n_threads);
ie_backend *ie_vk_backend_create(int device_index, char *err, size_t errlen);

/* fp16 <-> fp32 (round to nearest even), shared by both backends and tests. */
uint16_t ie_fp32_to_fp16(float f);
float ie_fp16_to_fp32(uint16_t h);

#endif
