/* Shared neural-net pieces: slabs, the forward context, op wrappers, the
 * ResNet block. See nn.h. */
#include "model/nn.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the arena ------------------------------------------------------------------- */

ie_status nn_arena_reserve(nn_arena *a, ie_backend *be, char *err, size_t errlen) {
    for (int i = 0; i < a->n; i++) {
        nn_slab *s = a->slabs[i];
        if (s->t && s->need <= s->cap) continue;
        ie_tensor_free(s->t);
        s->t = NULL;
        s->cap = 0;
        int64_t n = s->need > 0 ? s->need : 1;
        s->t = ie_tensor_new(be, s->dtype, 1, &n);
        if (!s->t) {
            if (err && errlen)
                snprintf(err, errlen, "activation buffer of %lld elements: %s", (long long)n, ie_backend_errmsg(be));
            return IE_ERR_NOMEM;
        }
        s->cap = n;
    }
    return IE_OK;
}

void nn_arena_free(nn_arena *a) {
    for (int i = 0; i < a->n; i++) {
        ie_tensor_free(a->slabs[i]->t);
        a->slabs[i]->t = NULL;
        a->slabs[i]->cap = 0;
        a->slabs[i]->need = 0;
    }
    a->n = 0;
}

void nn_arena_plan_bytes(const nn_arena *a, uint64_t *total, uint64_t *largest) {
    uint64_t sum = 0, big = 0;
    for (int i = 0; i < a->n; i++) {
        uint64_t b = (uint64_t)(a->slabs[i]->need > 0 ? a->slabs[i]->need : 1) * ie_dtype_size(a->slabs[i]->dtype);
        sum += b;
        if (b > big) big = b;
    }
    if (total) *total = sum;
    if (largest) *largest = big;
}

ie_tensor nn_plan_tensor(ie_backend *be, int ndim, const int64_t *shape) {
    ie_tensor t;
    memset(&t, 0, sizeof t);
    t.be = be;
    t.dtype = IE_F32;
    t.ndim = ndim;
    for (int i = 0; i < IE_MAX_DIMS; i++) t.shape[i] = i < ndim ? shape[i] : 1;
    t.is_view = true;
    return t;
}

uint64_t nn_arena_bytes(const nn_arena *a) {
    uint64_t n = 0;
    for (int i = 0; i < a->n; i++)
        if (a->slabs[i]->t) n += ie_tensor_nbytes(a->slabs[i]->t);
    return n;
}

/* --- the context ------------------------------------------------------------------ */

nn_ctx nn_ctx_make(ie_backend *be, nn_arena *arena, bool plan, const char *model, sd_tap tap, char *err,
                   size_t errlen) {
    nn_ctx c;
    memset(&c, 0, sizeof c);
    c.be = be;
    c.arena = arena;
    c.plan = plan;
    c.err = err;
    c.errlen = errlen;
    c.model = model;
    c.tap = tap;
    if (plan)
        for (int i = 0; i < arena->n; i++) arena->slabs[i]->need = 0;
    return c;
}

void nn_scope(nn_ctx *c, const char *fmt, ...) {
    if (c->status) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->scope, sizeof c->scope, fmt, ap);
    va_end(ap);
}

ie_status nn_fail(nn_ctx *c, ie_status s, const char *fmt, ...) {
    if (c->status || s == IE_OK) return c->status;
    c->status = s;
    if (c->err && c->errlen) {
        int off = snprintf(c->err, c->errlen, "%s%s%s: ", c->model ? c->model : "", c->scope[0] ? " " : "", c->scope);
        if (off < 0) off = 0;
        if ((size_t)off < c->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + off, c->errlen - (size_t)off, fmt, ap);
            va_end(ap);
        }
    }
    return s;
}

void nn_check(nn_ctx *c, ie_status s, const char *op) {
    if (s != IE_OK) nn_fail(c, s, "%s", ie_backend_errmsg(c->be));
}

void nn_tap(nn_ctx *c, const ie_tensor *t, const char *fmt, ...) {
    if (!c->tap.fn || !nn_live(c)) return;
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    c->tap.fn(c->tap.user, name, t);
}

/* --- views ------------------------------------------------------------------------ */

static ie_tensor view_of(const ie_tensor *t, int64_t offset, int ndim, const int64_t *shape) {
    ie_tensor v = *t;
    v.ndim = ndim;
    for (int i = 0; i < IE_MAX_DIMS; i++) v.shape[i] = i < ndim ? shape[i] : 1;
    size_t byte_off = (size_t)offset * ie_dtype_size(t->dtype);
    v.offset = t->offset + byte_off;
    if (t->host) v.host = (char *)t->host + byte_off;
    v.is_view = true;
    return v;
}

static int64_t numel_of(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

ie_tensor nn_buf(nn_ctx *c, nn_slab *s, int ndim, const int64_t *shape) {
    int64_t n = numel_of(ndim, shape);
    if (c->plan) {
        bool known = false;
        for (int i = 0; i < c->arena->n; i++) known |= c->arena->slabs[i] == s;
        if (!known) {
            if (c->arena->n == NN_MAX_SLABS) {
                nn_fail(c, IE_ERR_ARG, "more than %d activation slabs", NN_MAX_SLABS);
            } else {
                c->arena->slabs[c->arena->n++] = s;
                s->need = 0;
            }
        }
        if (n > s->need) s->need = n;
        ie_tensor v;
        memset(&v, 0, sizeof v);
        v.be = c->be;
        v.dtype = s->dtype;
        v.ndim = ndim;
        for (int i = 0; i < IE_MAX_DIMS; i++) v.shape[i] = i < ndim ? shape[i] : 1;
        v.is_view = true;
        return v;
    }
    if (!s->t || n > s->cap) {
        nn_fail(c, IE_ERR_ARG, "activation slab too small (%lld < %lld elements): not planned", (long long)s->cap,
                (long long)n);
        ie_tensor v;
        memset(&v, 0, sizeof v);
        v.be = c->be;
        v.ndim = ndim;
        for (int i = 0; i < IE_MAX_DIMS; i++) v.shape[i] = i < ndim ? shape[i] : 1;
        return v;
    }
    return view_of(s->t, 0, ndim, shape);
}

ie_tensor nn_buf1(nn_ctx *c, nn_slab *s, int64_t d0) {
    int64_t sh[1] = {d0};
    return nn_buf(c, s, 1, sh);
}
ie_tensor nn_buf2(nn_ctx *c, nn_slab *s, int64_t d0, int64_t d1) {
    int64_t sh[2] = {d0, d1};
    return nn_buf(c, s, 2, sh);
}
ie_tensor nn_buf3(nn_ctx *c, nn_slab *s, int64_t d0, int64_t d1, int64_t d2) {
    int64_t sh[3] = {d0, d1, d2};
    return nn_buf(c, s, 3, sh);
}
ie_tensor nn_buf4(nn_ctx *c, nn_slab *s, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int64_t sh[4] = {d0, d1, d2, d3};
    return nn_buf(c, s, 4, sh);
}

ie_tensor nn_reshape(const ie_tensor *t, int ndim, const int64_t *shape) { return view_of(t, 0, ndim, shape); }
ie_tensor nn_as3(const ie_tensor *t, int64_t d0, int64_t d1, int64_t d2) {
    int64_t sh[3] = {d0, d1, d2};
    return view_of(t, 0, 3, sh);
}
ie_tensor nn_as4(const ie_tensor *t, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int64_t sh[4] = {d0, d1, d2, d3};
    return view_of(t, 0, 4, sh);
}
ie_tensor nn_slice(const ie_tensor *t, int64_t offset, int ndim, const int64_t *shape) {
    return view_of(t, offset, ndim, shape);
}
ie_tensor nn_row(const ie_tensor *t, int64_t b) {
    int64_t sh[IE_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) sh[i] = t->shape[i];
    sh[0] = 1;
    return view_of(t, b * (ie_tensor_numel(t) / t->shape[0]), t->ndim, sh);
}

/* --- ops ------------------------------------------------------------------------ */

#define NN_RUN(op, call)                                                                                               \
    do {                                                                                                               \
        if (!nn_live(c)) return;                                                                                       \
        nn_check(c, (call), op);                                                                                       \
    } while (0)

void nn_conv2d(nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_conv *w, int stride, int pad) {
    ie_conv2d_params p = ie_conv2d_params_sym(stride, pad);
    NN_RUN("conv2d", ie_conv2d(c->be, out, x, w->w, w->b, &p));
}
void nn_conv2d_p(nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_conv *w, const ie_conv2d_params *p) {
    NN_RUN("conv2d", ie_conv2d(c->be, out, x, w->w, w->b, p));
}
void nn_linear(nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_lin *w) {
    NN_RUN("linear", ie_linear(c->be, out, x, w->w, w->b));
}
void nn_group_norm(nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_norm *w, int groups, float eps, bool silu) {
    NN_RUN("group_norm", ie_group_norm(c->be, out, x, groups, eps, w->w, w->b, silu));
}
void nn_layer_norm(nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_norm *w, float eps) {
    NN_RUN("layer_norm", ie_layer_norm(c->be, out, x, eps, w->w, w->b));
}
void nn_attention(nn_ctx *c, ie_tensor *out, const ie_tensor *q, const ie_tensor *k, const ie_tensor *v, int heads,
                  bool causal) {
    float scale = 1.0f / sqrtf((float)(q->shape[q->ndim - 1] / heads));
    NN_RUN("attention", ie_attention(c->be, out, q, k, v, heads, scale, causal));
}
void nn_unary(nn_ctx *c, ie_tensor *out, const ie_tensor *x, ie_unary_op op) {
    NN_RUN("unary", ie_unary(c->be, out, x, op));
}
void nn_scale(nn_ctx *c, ie_tensor *out, const ie_tensor *x, float scale, float bias) {
    NN_RUN("scale", ie_scale(c->be, out, x, scale, bias));
}
void nn_geglu(nn_ctx *c, ie_tensor *out, const ie_tensor *x) { NN_RUN("geglu", ie_geglu(c->be, out, x)); }
void nn_add(nn_ctx *c, ie_tensor *out, const ie_tensor *a, const ie_tensor *b) {
    NN_RUN("add", ie_add(c->be, out, a, b));
}
void nn_concat(nn_ctx *c, ie_tensor *out, const ie_tensor *a, const ie_tensor *b) {
    NN_RUN("concat_channels", ie_concat_channels(c->be, out, a, b));
}
void nn_upsample(nn_ctx *c, ie_tensor *out, const ie_tensor *x) {
    NN_RUN("upsample_nearest2x", ie_upsample_nearest2x(c->be, out, x));
}
void nn_transpose(nn_ctx *c, ie_tensor *out, const ie_tensor *x) { NN_RUN("transpose", ie_transpose(c->be, out, x)); }
void nn_timestep_embedding(nn_ctx *c, ie_tensor *out, const ie_tensor *t, int dim, bool flip_sin_to_cos, float shift) {
    NN_RUN("timestep_embedding", ie_timestep_embedding(c->be, out, t, dim, flip_sin_to_cos, shift, 10000.0f));
}
void nn_upload(nn_ctx *c, ie_tensor *t, const void *src) { NN_RUN("upload", ie_tensor_upload(t, src)); }

/* --- blocks ----------------------------------------------------------------------- */

void nn_resnet_forward(nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_resnet *r, const ie_tensor *emb_silu,
                       int groups, float eps, nn_slab *t1, nn_slab *t2, nn_slab *tp) {
    int64_t B = x->shape[0], H = x->shape[2], W = x->shape[3];
    ie_tensor a = nn_buf4(c, t1, B, r->cin, H, W);  /* [B, Cin, H, W] */
    ie_tensor h = nn_buf4(c, t2, B, r->cout, H, W); /* [B, Cout, H, W] */
    // h = self.conv1(self.nonlinearity(self.norm1(input_tensor)))
    nn_group_norm(c, &a, x, &r->norm1, groups, eps, true);
    nn_conv2d(c, &h, &a, &r->conv1, 1, 1);
    if (emb_silu && r->time_emb_proj.w) {
        // temb = self.time_emb_proj(self.nonlinearity(temb))[:, :, None, None]; h = h + temb
        ie_tensor p = nn_buf2(c, tp, B, r->cout); /* [B, Cout] */
        nn_linear(c, &p, emb_silu, &r->time_emb_proj);
        ie_tensor p4 = nn_as4(&p, B, r->cout, 1, 1);
        nn_add(c, &h, &h, &p4);
    }
    // h = self.conv2(self.dropout(self.nonlinearity(self.norm2(h))))
    ie_tensor a2 = nn_buf4(c, t1, B, r->cout, H, W); /* [B, Cout, H, W] */
    nn_group_norm(c, &a2, &h, &r->norm2, groups, eps, true);
    nn_conv2d(c, out, &a2, &r->conv2, 1, 1);
    // output_tensor = (self.conv_shortcut(input_tensor) + h) / output_scale_factor (= 1)
    if (r->conv_shortcut.w) {
        nn_conv2d(c, &h, x, &r->conv_shortcut, 1, 0);
        nn_add(c, out, out, &h);
    } else {
        nn_add(c, out, out, x);
    }
}
