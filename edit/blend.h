/* InfEdit's local blending (docs/methods.md, "Local blend"; LocalBlend in
 * app_infedit.py).
 *
 * Input maps. The attention controller accumulates, at every UNet call, the
 * refined cross-attention probabilities of the conditional rows,
 * R_s = Refine(P_s, P_t) and R_m = Refine(P_m, P_t), over the five 16x16
 * layers the reference uses (down_cross[2:4] + up_cross[:3] at 512x512) and
 * their 8 heads, and sums them over steps:
 *     S_b[y, x, n] = sum over steps, layers, heads of R_b        (b = s, m)
 * plus `count` = the number of head-layer maps per step (40), so the mean the
 * reference takes is S_b / count (the per-map max-normalisation makes the
 * step sum irrelevant). Layout: [h][w][n_tok], token fastest.
 *
 * Mask of a map S for a 0/1 token vector w and threshold theta (get_mask):
 *   1. M[y,x] = max over n in [1, len-2] of (S[y,x,n] w[n]) / count
 *   2. nearest upsampling to the latent size (PyTorch's rule:
 *      src = min(floor(dst * (float)in/out), in-1))
 *   3. divide by the spatial max; an all-zero (or empty-token, len < 3) map
 *      gives an empty mask (the reference computes 0/0 = NaN, NaN > theta is
 *      false: same result, made explicit)
 *   4. mask = M / max > theta (strict; the quotient in float, theta double)
 *
 * Masks at step i > 0 with a = ab[t]:
 *   theta_e = max(temperature / sqrt(a), thresh_e)    (temperature 0.15)
 *   mask_e  = mask(S_m, alpha_e, theta_e)              where the edit is allowed
 *   mask_m  = mask(S_s, alpha_m - alpha_me, thresh_m)  what must stay as source
 *   mask_me = mask(S_m, alpha_me, thresh_e)
 * Update of x_t, per latent pixel, broadcast over channels:
 *   if any alpha_e:  x_t = mask_e ? x_t : x_m
 *                    x_t = mask_m ? x_s : x_t
 *   if use_xm:       x_t = mask_me ? x_m : x_t
 * x_m is left unchanged (the reference returns it as is).
 */
#ifndef INVEDIT_BLEND_H
#define INVEDIT_BLEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edit/align.h"
#include "inversion/infedit.h"
#include "vkcompute/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ie_cross_maps {
    int h, w;         /* map grid: 16x16 at 512x512 (latent / 4, rounded up twice) */
    int n_tok;        /* 77 */
    int count;        /* head-layer maps summed per step (5 layers x 8 heads = 40) */
    const float *src; /* S_s [h, w, n_tok] */
    const float *lay; /* S_m [h, w, n_tok] */
} ie_cross_maps;

typedef struct ie_blend_params {
    double thresh_e;    /* 0.6 demo, 0.55 PIE-Bench */
    double thresh_m;    /* 0.6 */
    double temperature; /* 0.15 */
} ie_blend_params;

void ie_blend_params_default(ie_blend_params *p);

/* One mask (steps 1-4 above). S [h, w, n_tok], word [n_tok] (0/1 weights),
 * len = target token count incl. BOS/EOS; mask [out_h, out_w] gets 0/1.
 * Returns the number of pixels set, or -1 on a bad argument. */
int ie_blend_mask(const float *S, int h, int w, int n_tok, int count, const float *word, int len, double thresh,
                  int out_h, int out_w, uint8_t *mask);

/* The three masks and the update of x_t [C, H, W] in place. masks_* may be
 * NULL; when given they receive [H, W] 0/1 maps (all zero for a word vector
 * that is all zero). */
typedef struct ie_blend_masks {
    uint8_t *e, *m, *me; /* [H, W] each, or NULL */
} ie_blend_masks;

ie_status ie_local_blend_apply(const ie_cross_maps *maps, const ie_infedit_align *words, const ie_blend_params *bp,
                               double alpha_prod, bool use_xm, int C, int H, int W, const float *x_s, float *x_t,
                               const float *x_m, ie_blend_masks *masks, char *err, size_t errlen);

/* Adapter for infedit_params.blend: set blend = ie_local_blend_step and
 * blend_user = &an ie_local_blend. get_maps asks the attention controller
 * for its accumulated maps (valid until the next UNet call). When every
 * word vector is zero the step does nothing and get_maps is not called (the
 * reference computes empty masks then). */
typedef struct ie_local_blend {
    const ie_infedit_align *words;
    ie_blend_params params;
    ie_status (*get_maps)(void *user, ie_cross_maps *out);
    void *maps_user;
    ie_blend_masks masks; /* optional outputs of the last step */
    int steps_applied;    /* how many steps ran the blend */
} ie_local_blend;

ie_status ie_local_blend_step(void *user, const ie_infedit_blend_args *a);

#ifdef __cplusplus
}
#endif
#endif
