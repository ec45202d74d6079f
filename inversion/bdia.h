/* BDIA: exact diffusion inversion via bi-directional integration
 * approximation (Zhang, Lewis, Kleijn, ECCV 2024; guoqiang-zhang-x/BDIA) —
 * docs/methods.md; checked against the authors' code (bdia_edict_functions.py,
 * BDIA_stablediffusion; BDIAddim.py for text-to-image).
 *
 * Levels (editing). N steps, Delta = 1000/N, K = int(N * strength) levels
 *     lambda_j = j * Delta,  j = -1 .. K-1      (N=50, 0.8: -20, 0, 20, ..., 780)
 * ab(lambda) = ie_ab_bdia (negative -> ab[0], so ab(-20) = ab(0)). The UNet
 * time input is the level itself, including -Delta for the clean level. For N
 * dividing 1000 these are exactly the code's grid values; for other N we use
 * j*Delta throughout (the code evaluates the UNet at grid - 1000/N when
 * inverting but at the grid value when generating, which breaks exactness;
 * we keep both directions on the same levels).
 *
 * DDIM moves, in the code's two algebraic forms (they differ in rounding):
 *     down(x, e, hi -> lo):  q = sqrt(ab_hi/ab_lo);  x/q - (sqrt(1-ab_hi)/q) e + sqrt(1-ab_lo) e
 *                            ((1/q) x - ((1/q) sqrt(1-ab_hi)) e) + sqrt(1-ab_lo) e
 *     up(x, e, lo -> hi):    q = sqrt(ab_hi/ab_lo);  (q x + sqrt(1-ab_hi) e) - (q sqrt(1-ab_lo)) e
 *
 * Inversion (reverse=True), z_{-1} = x0, eps_j = CFG(eps(z_j, lambda_j), cfg):
 *     z_0 = up(x0, eps(x0, -Delta), -Delta -> 0)     the identity (both ab are ab[0]):
 *                                                    x + s e - s e, i.e. x0 up to one
 *                                                    rounding; skipped by default (below)
 *     z_j = (z_{j-2}/gamma - down(z_{j-1}, eps_{j-1}, j-1 -> j-2)/gamma) + up(z_{j-1}, eps_{j-1}, j-1 -> j)
 *     returns the pair (z_{K-1}, z_{K-2})
 * Generation (reverse=False) from the pair, j = K-2 .. 0:
 *     F = down(z_j, eps_j, j -> j-1), B = up(z_j, eps_j, j -> j+1)
 *     z_{j-1} = ((z_{j+1} - (1-gamma)(z_{j+1} - z_j)) - gamma (B - z_j)) + (F - z_j)
 *     output z_{-1} (and z_0, the code's second image).
 * With the same prompt the generation meets every (state, level) pair of the
 * inversion, so the round trip is exact up to floating-point error.
 *
 * The skipped first call. run_first_call = false (default) sets z_0 = x0
 * without evaluating eps(x0, -Delta) (saves 2 UNet evaluations). This is NOT
 * bit-identical to the reference: the code computes z_0 = (x0 + s e) - s e,
 * s = sqrt(1 - ab[0]), which rounds to within one double ulp of |x0 + s e|
 * of x0 (and is NaN if e is not finite). The difference is ~1e-17 relative,
 * far below anything the UNet can see, and the round trip stays exact either
 * way because generation replays whatever z_0 the inversion used. Set
 * run_first_call for reference parity.
 *
 * Precision: latents and all D()/BDIA arithmetic in double (the reference runs
 * everything in float64); eps from the denoiser is float. The UNet input is
 * the double state rounded to float. gamma in [0.92, 1] for editing (the authors' README);
 * the inversion amplifies rounding by ~1/gamma per step (its recurrence has
 * a mode with root -1/gamma: ~1e12 over 40 steps at gamma 0.5, ~12 at 0.94).
 */
#ifndef INVEDIT_BDIA_H
#define INVEDIT_BDIA_H

#include <stdbool.h>
#include <stddef.h>

#include "inversion/denoiser.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bdia_params {
    int num_steps;       /* N = 50 */
    double strength;     /* 0.8: K = int(N * strength) levels, K >= 2 */
    double gamma;        /* 0.94 (the released notebook; code default 0.5 is unstable) */
    double cfg;          /* 3 */
    int cond_uncond;     /* IE_COND_UNCOND ("" as null prompt) */
    int cond;            /* IE_COND_SOURCE for inversion, IE_COND_TARGET for generation */
    bool run_first_call; /* false: skip the wasted identity step's UNet call */
} bdia_params;

void bdia_params_default(bdia_params *p);

/* Number of levels K (>= 2) for params, or -1 when they are out of range. */
int bdia_levels(const bdia_params *p);

/* Inverts x0 [C, H, W] with p->cond. Writes z_hi = z_{K-1} (level
 * (K-1)*Delta, 780 by default) and z_lo = z_{K-2} (760), both [C, H, W]
 * double, only on success. UNet evaluations: 2 (K - 1), plus 2 with
 * run_first_call. */
ie_status bdia_invert(ie_run *run, const float *x0, const bdia_params *p, double *z_hi, double *z_lo);

/* Regenerates from the pair with p->cond (the target prompt when editing).
 * out = z_{-1} [C, H, W] (the image latent to decode); out_z0 (may be NULL)
 * = z_0. Written only on success. UNet evaluations: 2 (K - 1). */
ie_status bdia_generate(ie_run *run, const double *z_hi, const double *z_lo, const bdia_params *p, double *out,
                        double *out_z0);

/* Prompt-to-Prompt editing (the authors' use_p2p option): two chains from the
 * same pair in one denoiser batch of 4 [uncond_src, uncond, cond_src, cond]
 * with roles SOURCE / TARGET, so an attention controller on the UNet hook
 * can hand the source's attention to the target. The source chain
 * (cond_uncond_src, cond_src, cfg_src: the inversion's) retraces the
 * inversion, i.e. regenerates the input; the target chain uses p->cond_uncond,
 * p->cond and p->cfg. step_info.num_steps = K - 1 (the generation steps:
 * the controller's fractions are of these). out = the target's z_{-1},
 * out_src (may be NULL) the source's. UNet evaluations: 4 (K - 1). */
ie_status bdia_generate_p2p(ie_run *run, const double *z_hi, const double *z_lo, const bdia_params *p,
                            int cond_uncond_src, int cond_src, double cfg_src, double *out, double *out_src);

/* --- text-to-image (BDIAddim.py) -----------------------------------------
 * LDM "uniform" grid (+1 offset), alphas_prev[0] = ab[0]. The first step is
 * plain DDIM (sigma from eta; noise only there), every later step
 *     x_prev = ((((x_last - (1-g)(x_last - x)) - g((sqrt(a_last) x0hat + sqrt(1-a_last) e) - x))
 *               + sqrt(a_prev) x0hat) + dir) - x,   dir = sqrt(1 - a_prev - sigma^2) e
 * with a_last = ab of the previous (noisier) grid point and x_last the state
 * before the previous step. CFG with one batch [uncond, cond]; cfg == 1 uses
 * the conditional row alone (batch 1), as the LDM sampler does. */
typedef struct bdia_sample_params {
    int num_steps;   /* 10 (sample.py) */
    double gamma;    /* 0.5 (txt2img default; README: 0.5 at 10 steps, 1.0 at 40) */
    double cfg;      /* 9 */
    double eta;      /* 0 */
    int cond_uncond; /* IE_COND_UNCOND */
    int cond;        /* IE_COND_TARGET */
    uint64_t seed;   /* initial noise (when x_T is NULL) and eta noise */
} bdia_sample_params;

void bdia_sample_params_default(bdia_sample_params *p);

/* x_T [C, H, W] initial noise or NULL (drawn from seed). out [C, H, W] double,
 * written only on success. UNet evaluations: 2 x steps (1 x with cfg 1). */
ie_status bdia_sample(ie_run *run, const bdia_sample_params *p, const float *x_T, double *out);

/* Rounds a double latent to float (for the VAE decoder). */
void bdia_to_float(const double *x, float *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
