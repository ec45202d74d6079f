/* InfEdit local blending; see blend.h. */
#include "edit/blend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ie_blend_params_default(ie_blend_params *p) {
    p->thresh_e = 0.6;
    p->thresh_m = 0.6;
    p->temperature = 0.15;
}

/* PyTorch nearest: src = min(floor(dst * scale), in - 1), scale = (float)in / out */
static int nearest_src(int dst, int in, int out) {
    float scale = (float)in / (float)out;
    int s = (int)floorf((float)dst * scale);
    return s < in - 1 ? s : in - 1;
}

int ie_blend_mask(const float *S, int h, int w, int n_tok, int count, const float *word, int len, double thresh,
                  int out_h, int out_w, uint8_t *mask) {
    if (!S || !word || !mask || h < 1 || w < 1 || n_tok < 1 || count < 1 || out_h < 1 || out_w < 1 || len > n_tok)
        return -1;
    memset(mask, 0, (size_t)out_h * out_w);
    if (len - 2 < 1) return 0; /* no word tokens between BOS and EOS */
    float *M = malloc((size_t)h * w * sizeof(float));
    if (!M) return -1;
    /* 1. max over tokens 1..len-2 of the head-layer mean of S * w */
    for (int p = 0; p < h * w; p++) {
        const float *s = S + (size_t)p * n_tok;
        float best = -INFINITY;
        for (int n = 1; n <= len - 2; n++) {
            float v = (s[n] * word[n]) / (float)count;
            if (v > best) best = v;
        }
        M[p] = best;
    }
    /* 2.-3. the spatial max of the upsampled map = max over the source cells it uses */
    float mx = -INFINITY;
    for (int Y = 0; Y < out_h; Y++) {
        int sy = nearest_src(Y, h, out_h);
        for (int X = 0; X < out_w; X++) {
            float v = M[sy * w + nearest_src(X, w, out_w)];
            if (v > mx) mx = v;
        }
    }
    int set = 0;
    if (mx > 0.0f) { /* all-zero (or NaN) map: empty mask, as 0/0 > theta is false */
        for (int Y = 0; Y < out_h; Y++) {
            int sy = nearest_src(Y, h, out_h);
            for (int X = 0; X < out_w; X++) {
                float v = M[sy * w + nearest_src(X, w, out_w)] / mx;
                uint8_t b = (double)v > thresh;
                mask[(size_t)Y * out_w + X] = b;
                set += b;
            }
        }
    }
    free(M);
    return set;
}

static bool any_nonzero(const float *v, int n) {
    for (int i = 0; i < n; i++)
        if (v[i] != 0.0f) return true;
    return false;
}

ie_status ie_local_blend_apply(const ie_cross_maps *maps, const ie_infedit_align *words, const ie_blend_params *bp,
                               double alpha_prod, bool use_xm, int C, int H, int W, const float *x_s, float *x_t,
                               const float *x_m, ie_blend_masks *masks, char *err, size_t errlen) {
    if (!maps || !words || !bp || !x_s || !x_t || !x_m || C < 1 || H < 1 || W < 1) {
        if (err && errlen) snprintf(err, errlen, "ie_local_blend_apply: NULL or empty argument");
        return IE_ERR_ARG;
    }
    if (!maps->src || !maps->lay || maps->n_tok < words->len || maps->n_tok > IE_MAX_TOKENS || maps->count < 1 ||
        maps->h < 1 || maps->w < 1) {
        if (err && errlen)
            snprintf(err, errlen,
                     "ie_local_blend_apply: cross maps %dx%dx%d (count %d) do not fit a %d-token target prompt",
                     maps->h, maps->w, maps->n_tok, maps->count, words->len);
        return IE_ERR_SHAPE;
    }
    const size_t hw = (size_t)H * W;
    uint8_t *me_buf = malloc(3 * hw);
    if (!me_buf) {
        if (err && errlen) snprintf(err, errlen, "ie_local_blend_apply: out of memory");
        return IE_ERR_NOMEM;
    }
    uint8_t *mask_e = me_buf, *mask_m = me_buf + hw, *mask_me = me_buf + 2 * hw;
    float w_m[IE_MAX_TOKENS];
    for (int k = 0; k < IE_MAX_TOKENS; k++) w_m[k] = words->alpha_m[k] - words->alpha_me[k];

    double theta_e = bp->temperature / sqrt(alpha_prod);
    if (theta_e < bp->thresh_e) theta_e = bp->thresh_e;
    const int nt = maps->n_tok;
    int rc = 0;
    rc |= ie_blend_mask(maps->lay, maps->h, maps->w, nt, maps->count, words->alpha_e, words->len, theta_e, H, W,
                        mask_e) < 0;
    rc |= ie_blend_mask(maps->src, maps->h, maps->w, nt, maps->count, w_m, words->len, bp->thresh_m, H, W, mask_m) < 0;
    rc |= ie_blend_mask(maps->lay, maps->h, maps->w, nt, maps->count, words->alpha_me, words->len, bp->thresh_e, H, W,
                        mask_me) < 0;
    if (rc) {
        free(me_buf);
        if (err && errlen) snprintf(err, errlen, "ie_local_blend_apply: mask computation failed");
        return IE_ERR_NOMEM;
    }
    const bool have_e = any_nonzero(words->alpha_e, IE_MAX_TOKENS);
    for (int c = 0; c < C; c++) {
        const float *s = x_s + c * hw, *m = x_m + c * hw;
        float *t = x_t + c * hw;
        for (size_t p = 0; p < hw; p++) {
            float v = t[p];
            if (have_e) v = mask_e[p] ? v : m[p];
            v = mask_m[p] ? s[p] : v;
            if (use_xm) v = mask_me[p] ? m[p] : v;
            t[p] = v;
        }
    }
    if (masks) {
        if (masks->e) memcpy(masks->e, mask_e, hw);
        if (masks->m) memcpy(masks->m, mask_m, hw);
        if (masks->me) memcpy(masks->me, mask_me, hw);
    }
    free(me_buf);
    return IE_OK;
}

ie_status ie_local_blend_step(void *user, const ie_infedit_blend_args *a) {
    ie_local_blend *lb = user;
    if (!lb || !lb->words) {
        if (a && a->err) snprintf(a->err, a->errlen, "ie_local_blend_step: no blend words");
        return IE_ERR_ARG;
    }
    const ie_infedit_align *wd = lb->words;
    if (!any_nonzero(wd->alpha_e, IE_MAX_TOKENS) && !any_nonzero(wd->alpha_m, IE_MAX_TOKENS)) {
        const size_t hw = (size_t)a->h * a->w;
        if (lb->masks.e) memset(lb->masks.e, 0, hw);
        if (lb->masks.m) memset(lb->masks.m, 0, hw);
        if (lb->masks.me) memset(lb->masks.me, 0, hw);
        return IE_OK; /* all masks empty: x_t unchanged */
    }
    if (!lb->get_maps) {
        if (a->err) snprintf(a->err, a->errlen, "ie_local_blend_step: blend words given but no get_maps callback");
        return IE_ERR_ARG;
    }
    ie_cross_maps maps;
    memset(&maps, 0, sizeof maps);
    ie_status st = lb->get_maps(lb->maps_user, &maps);
    if (st != IE_OK) {
        if (a->err && !a->err[0]) snprintf(a->err, a->errlen, "local blend: the attention store has no maps");
        return st;
    }
    st = ie_local_blend_apply(&maps, wd, &lb->params, a->alpha_prod, a->use_xm, a->c, a->h, a->w, a->x_s, a->x_t,
                              a->x_m, &lb->masks, a->err, a->errlen);
    if (st == IE_OK) lb->steps_applied++;
    return st;
}
