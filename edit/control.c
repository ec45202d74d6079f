/* Attention controllers on the UNet hook: Prompt-to-Prompt (EF-DDPM, BDIA) and
 * InfEdit's unified attention control. See control.h. */
#include "edit/control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTOK 77

enum { CTRL_P2P = 1, CTRL_INFEDIT = 2 };

struct ie_controller {
    int kind;
    ie_backend *be;
    /* the current step (from step_begin) */
    bool have_step;
    ie_step_info info;
    ie_row_role rows[16];
    ie_infedit_plan plan;
    bool have_plan;
    /* token maps */
    ie_tensor *M;               /* [77, 77]: replacement or refine matrix */
    ie_tensor *one_minus_alpha; /* [77] (refine), NULL for replace */
    /* P2P */
    double cross, self;
    int num_steps;
    /* InfEdit map accumulation */
    int map_h, map_w;
    ie_tensor *acc_s, *acc_m; /* [map_h * map_w, 77] */
    int layers_this_call, count;
    float *host_s, *host_m;
    /* scratch */
    ie_tensor *ones; /* [1, heads] */
    int ones_heads;
    ie_tensor *r_s, *r_m, *tmp; /* grown as needed */
    int64_t scratch_elems;
    char err[512];
};

const char *ie_controller_errmsg(const ie_controller *c) { return c->err; }

static ie_status fail(ie_controller *c, ie_status s, const char *what) {
    snprintf(c->err, sizeof c->err, "attention control: %s: %s", what, ie_backend_errmsg(c->be));
    return s;
}

static ie_tensor *upload_new(ie_backend *be, int ndim, const int64_t *shape, const float *data) {
    ie_tensor *t = ie_tensor_new(be, IE_F32, ndim, shape);
    if (t && ie_tensor_upload(t, data) != IE_OK) {
        ie_tensor_free(t);
        return NULL;
    }
    return t;
}

/* M[mapper[n], n] = alpha_n; 1 - alpha. */
static bool set_refine(ie_controller *c, const int *mapper, const float *alphas) {
    float *M = calloc(NTOK * NTOK, sizeof *M), oma[NTOK];
    if (!M) return false;
    for (int n = 0; n < NTOK; n++) {
        if (mapper[n] >= 0 && mapper[n] < NTOK) M[mapper[n] * NTOK + n] = alphas[n];
        oma[n] = 1.0f - alphas[n];
    }
    int64_t ms[2] = {NTOK, NTOK}, vs[1] = {NTOK};
    c->M = upload_new(c->be, 2, ms, M);
    c->one_minus_alpha = upload_new(c->be, 1, vs, oma);
    free(M);
    return c->M && c->one_minus_alpha;
}

ie_controller *ie_controller_p2p(ie_backend *be, const float *replace_M, const ie_refine_map *refine, double cross,
                                 double self, int num_steps, char *err, size_t errlen) {
    ie_controller *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->kind = CTRL_P2P;
    c->be = be;
    c->cross = cross;
    c->self = self;
    c->num_steps = num_steps;
    bool ok;
    if (replace_M) {
        int64_t ms[2] = {NTOK, NTOK};
        c->M = upload_new(be, 2, ms, replace_M);
        ok = c->M != NULL;
    } else {
        ok = set_refine(c, refine->mapper, refine->alphas);
    }
    if (!ok) {
        snprintf(err, errlen, "attention control: %s", ie_backend_errmsg(be));
        ie_controller_free(c);
        return NULL;
    }
    return c;
}

ie_controller *ie_controller_infedit(ie_backend *be, const int *mapper, const float *alphas, int map_h, int map_w,
                                     char *err, size_t errlen) {
    ie_controller *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->kind = CTRL_INFEDIT;
    c->be = be;
    c->map_h = map_h;
    c->map_w = map_w;
    bool ok = set_refine(c, mapper, alphas);
    if (ok && map_h > 0) {
        int64_t s[2] = {(int64_t)map_h * map_w, NTOK};
        size_t n = (size_t)map_h * map_w * NTOK;
        float *zero = calloc(n, sizeof *zero);
        c->host_s = malloc(n * sizeof(float));
        c->host_m = malloc(n * sizeof(float));
        ok = zero && c->host_s && c->host_m;
        if (ok) {
            c->acc_s = upload_new(be, 2, s, zero);
            c->acc_m = upload_new(be, 2, s, zero);
            ok = c->acc_s && c->acc_m;
        }
        free(zero);
    }
    if (!ok) {
        snprintf(err, errlen, "attention control: %s", ie_backend_errmsg(be));
        ie_controller_free(c);
        return NULL;
    }
    return c;
}

void ie_controller_free(ie_controller *c) {
    if (!c) return;
    ie_tensor *ts[] = {c->M, c->one_minus_alpha, c->acc_s, c->acc_m, c->ones, c->r_s, c->r_m, c->tmp};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) ie_tensor_free(ts[i]);
    free(c->host_s);
    free(c->host_m);
    free(c);
}

ie_status ie_controller_step_begin(ie_controller *c, const ie_step_info *info) {
    if (info->batch > 16) {
        snprintf(c->err, sizeof c->err, "attention control: batch %d is too large", info->batch);
        return IE_ERR_ARG;
    }
    c->info = *info;
    memcpy(c->rows, info->rows, sizeof(ie_row_role) * (size_t)info->batch);
    c->info.rows = c->rows;
    c->have_plan = info->plan != NULL && c->kind == CTRL_INFEDIT;
    if (c->have_plan) c->plan = *(const ie_infedit_plan *)info->plan;
    c->have_step = true;
    c->layers_this_call = 0;
    return IE_OK;
}

static int row_of(const ie_controller *c, int branch, int uncond) {
    for (int b = 0; b < c->info.batch; b++)
        if (c->rows[b].branch == branch && c->rows[b].uncond == uncond) return b;
    return -1;
}

/* A view of batch row b of t, as [rows_of_row, last dim]. */
static ie_tensor *row_view(ie_tensor *t, int b) {
    int64_t per = ie_tensor_numel(t) / t->shape[0];
    int64_t last = t->shape[t->ndim - 1];
    int64_t s[2] = {per / last, last};
    return ie_tensor_view(t, b * per, 2, s);
}

static ie_status copy_row(ie_controller *c, ie_tensor *t, int dst, int src) {
    if (dst < 0 || src < 0 || dst == src) return IE_OK;
    ie_tensor *d = row_view(t, dst), *s = row_view(t, src);
    ie_status st = d && s ? ie_copy(c->be, d, s) : IE_ERR_NOMEM;
    ie_tensor_free(d);
    ie_tensor_free(s);
    return st ? fail(c, st, "copying a row") : IE_OK;
}

static ie_status ensure_scratch(ie_controller *c, int64_t elems) {
    if (c->scratch_elems >= elems) return IE_OK;
    ie_tensor_free(c->r_s);
    ie_tensor_free(c->r_m);
    ie_tensor_free(c->tmp);
    c->r_s = ie_tensor_new(c->be, IE_F32, 1, &elems);
    c->r_m = ie_tensor_new(c->be, IE_F32, 1, &elems);
    c->tmp = ie_tensor_new(c->be, IE_F32, 1, &elems);
    if (!c->r_s || !c->r_m || !c->tmp) {
        c->scratch_elems = 0;
        return fail(c, IE_ERR_NOMEM, "scratch");
    }
    c->scratch_elems = elems;
    return IE_OK;
}

static ie_tensor *view2(ie_tensor *t, int64_t rows, int64_t cols) {
    int64_t s[2] = {rows, cols};
    return ie_tensor_view(t, 0, 2, s);
}

/* out [R, 77] = Refine(P_b, P_t) = P_b · M (+ P_t ⊙ (1 − α) when refining). */
static ie_status refine(ie_controller *c, ie_tensor *out_buf, ie_tensor *probs, int b, int t, int64_t R) {
    ie_tensor *pb = row_view(probs, b), *pt = row_view(probs, t);
    ie_tensor *out = view2(out_buf, R, NTOK), *tmp = view2(c->tmp, R, NTOK);
    ie_status s = pb && pt && out && tmp ? IE_OK : IE_ERR_NOMEM;
    if (!s) s = ie_matmul(c->be, out, pb, c->M, NULL, false, false);
    if (!s && c->one_minus_alpha) {
        s = ie_mul(c->be, tmp, pt, c->one_minus_alpha);
        if (!s) s = ie_add(c->be, out, out, tmp);
    }
    ie_tensor_free(pb);
    ie_tensor_free(pt);
    ie_tensor_free(out);
    ie_tensor_free(tmp);
    return s ? fail(c, s, "refine") : IE_OK;
}

/* acc [Lq, 77] += sum over heads of r [heads, Lq, 77]. */
static ie_status accumulate(ie_controller *c, ie_tensor *acc, ie_tensor *r, int heads, int64_t Lq) {
    if (c->ones_heads != heads) {
        ie_tensor_free(c->ones);
        float one[64];
        for (int i = 0; i < 64; i++) one[i] = 1.0f;
        int64_t s[2] = {1, heads};
        c->ones = heads <= 64 ? upload_new(c->be, 2, s, one) : NULL;
        if (!c->ones) return fail(c, IE_ERR_NOMEM, "head sum");
        c->ones_heads = heads;
    }
    ie_tensor *rv = view2(r, heads, Lq * NTOK), *sum = view2(c->tmp, 1, Lq * NTOK);
    ie_tensor *accv = view2(acc, 1, Lq * NTOK);
    ie_status s = rv && sum && accv ? IE_OK : IE_ERR_NOMEM;
    if (!s) s = ie_matmul(c->be, sum, c->ones, rv, NULL, false, false);
    if (!s) s = ie_add(c->be, accv, accv, sum);
    ie_tensor_free(rv);
    ie_tensor_free(sum);
    ie_tensor_free(accv);
    return s ? fail(c, s, "accumulate") : IE_OK;
}

static bool accumulate_here(const ie_controller *c, const unet_attn_call *call) {
    return c->acc_s && call->cross && call->place != UNET_MID && call->height == c->map_h && call->width == c->map_w;
}

/* InfEdit, before attention: self-attention rows; decide whether cross
 * probabilities are needed. */
static ie_status infedit_qkv(ie_controller *c, unet_attn_call *call) {
    if (call->cross) {
        call->want_probs = c->plan.cross_replace || accumulate_here(c, call);
        return IE_OK;
    }
    for (int uncond = 1; uncond >= 0; uncond--) {
        int s = row_of(c, IE_BRANCH_SOURCE, uncond), t = row_of(c, IE_BRANCH_TARGET, uncond),
            m = row_of(c, IE_BRANCH_LAYOUT, uncond);
        /* the sampler leaves out rows nothing reads (infedit.h, keep_unused_rows): the layout's
         * unconditional row, and the source's one outside the early steps */
        if (s < 0 || t < 0) continue;
        ie_status st;
        if (c->plan.self_early) { /* t <- (Q_s, K_s, V_t); m <- (Q_s, K_s, V_s) */
            if ((st = copy_row(c, call->q, t, s)) || (st = copy_row(c, call->k, t, s))) return st;
            if (m >= 0 && ((st = copy_row(c, call->q, m, s)) || (st = copy_row(c, call->k, m, s)) ||
                           (st = copy_row(c, call->v, m, s))))
                return st;
        } else if (m >= 0) { /* m <- (Q_t, K_s, V_s) */
            if ((st = copy_row(c, call->q, m, t)) || (st = copy_row(c, call->k, m, s)) ||
                (st = copy_row(c, call->v, m, s)))
                return st;
        }
    }
    return IE_OK;
}

static ie_status infedit_probs(ie_controller *c, unet_attn_call *call) {
    int s = row_of(c, IE_BRANCH_SOURCE, 0), t = row_of(c, IE_BRANCH_TARGET, 0), m = row_of(c, IE_BRANCH_LAYOUT, 0);
    if (s < 0 || t < 0 || m < 0) return IE_OK;
    int64_t Lq = (int64_t)call->height * call->width, R = (int64_t)call->heads * Lq;
    ie_status st = ensure_scratch(c, R * NTOK);
    if (st) return st;
    bool acc = accumulate_here(c, call);
    bool from_layout = c->plan.cross_source == IE_CROSS_FROM_LAYOUT;
    bool need_s = acc || (c->plan.cross_replace && !from_layout);
    bool need_m = acc || (c->plan.cross_replace && from_layout);
    if (need_s && (st = refine(c, c->r_s, call->probs, s, t, R))) return st;
    if (need_m && (st = refine(c, c->r_m, call->probs, m, t, R))) return st;
    if (acc) {
        if ((st = accumulate(c, c->acc_s, c->r_s, call->heads, Lq))) return st;
        if ((st = accumulate(c, c->acc_m, c->r_m, call->heads, Lq))) return st;
        c->layers_this_call++;
        if (c->layers_this_call * call->heads > c->count) c->count = c->layers_this_call * call->heads;
    }
    if (c->plan.cross_replace) {
        ie_tensor *pt = row_view(call->probs, t), *src = view2(from_layout ? c->r_m : c->r_s, R, NTOK);
        st = pt && src ? ie_copy(c->be, pt, src) : IE_ERR_NOMEM;
        ie_tensor_free(pt);
        ie_tensor_free(src);
        if (st) return fail(c, st, "cross replace");
    }
    return IE_OK;
}

static bool p2p_cross_active(const ie_controller *c) { return c->info.step < (int)(c->cross * (c->num_steps + 1)); }

static bool p2p_self_active(const ie_controller *c, const unet_attn_call *call) {
    return c->info.step < (int)(c->self * c->num_steps) && call->height * call->width <= 256;
}

static ie_status p2p_probs(ie_controller *c, unet_attn_call *call) {
    int s = row_of(c, IE_BRANCH_SOURCE, 0), t = row_of(c, IE_BRANCH_TARGET, 0);
    if (s < 0 || t < 0) return IE_OK;
    if (!call->cross) return copy_row(c, call->probs, t, s);
    int64_t R = (int64_t)call->heads * call->height * call->width;
    ie_status st = ensure_scratch(c, R * NTOK);
    if (!st) st = refine(c, c->r_s, call->probs, s, t, R);
    if (st) return st;
    ie_tensor *pt = row_view(call->probs, t), *src = view2(c->r_s, R, NTOK);
    st = pt && src ? ie_copy(c->be, pt, src) : IE_ERR_NOMEM;
    ie_tensor_free(pt);
    ie_tensor_free(src);
    return st ? fail(c, st, "p2p replace") : IE_OK;
}

ie_status ie_controller_hook(void *user, unet_hook_stage stage, unet_attn_call *call) {
    ie_controller *c = user;
    if (!c->have_step) return IE_OK;
    if (call->cross && call->k->shape[1] != NTOK) {
        snprintf(c->err, sizeof c->err, "attention control: expected %d text tokens, got %lld", NTOK,
                 (long long)call->k->shape[1]);
        return IE_ERR_SHAPE;
    }
    if (c->kind == CTRL_INFEDIT) {
        if (!c->have_plan) return IE_OK;
        return stage == UNET_HOOK_QKV ? infedit_qkv(c, call) : infedit_probs(c, call);
    }
    if (stage == UNET_HOOK_QKV) {
        call->want_probs = call->cross ? p2p_cross_active(c) : p2p_self_active(c, call);
        return IE_OK;
    }
    return p2p_probs(c, call);
}

ie_status ie_controller_get_maps(void *user, ie_cross_maps *out) {
    ie_controller *c = user;
    if (!c->acc_s) {
        snprintf(c->err, sizeof c->err, "attention control: no maps are accumulated");
        return IE_ERR_ARG;
    }
    if (ie_tensor_download(c->acc_s, c->host_s) || ie_tensor_download(c->acc_m, c->host_m))
        return fail(c, IE_ERR_DEVICE, "reading maps");
    out->h = c->map_h;
    out->w = c->map_w;
    out->n_tok = NTOK;
    out->count = c->count > 0 ? c->count : 1;
    out->src = c->host_s;
    out->lay = c->host_m;
    return IE_OK;
}
