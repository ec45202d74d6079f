/* InfEdit: inversion-free editing with the denoising diffusion consistent
 * model sampler ("virtual inversion") — Xu et al., CVPR 2024,
 * sled-group/InfEdit; docs/methods.md; checked against pipeline_ead.py
 * and app_infedit.py.
 *
 * Three latent branches, all starting from the same tensor (pure noise
 * n ~ N(0, I), or with denoise/strength a forward sample of x0 at the first
 * grid timestep): x_s (source, reconstructs x0), x_t (target, the edit),
 * x_m (layout / "mutual"). Each step is ONE denoiser call with batch 6:
 *
 *     row 0 x_s  src_uncond     row 3 x_s  src
 *     row 1 x_t  tgt_uncond     row 4 x_t  tgt
 *     row 2 x_m  src_uncond     row 5 x_m  src
 *
 *     eps_s = e0 + g_s (e3 - e0),  eps_t = e1 + g_t (e4 - e1),  eps_m = e2 + g_s (e5 - e2)
 *
 * then one z ~ N(0, I) shared by all branches and two DDCM sampler calls
 * (t' = next grid entry of the full grid, t' = t at the last step;
 * a = ab[t], a' = ab[t'], var = eta (1 - a'), sn = sqrt(var) z):
 *
 *     e_cons = (x_s - sqrt(a) x0) / sqrt(1 - a)
 *     x0_b   = x0 + ((x_b - x_s) - sqrt(1 - a)(eps_b - eps_s)) / sqrt(a)
 *     dir_b  = sqrt((1 - a') - var) ((eps_b - eps_s) + e_cons)
 *     x_b'   = (sqrt(a') x0_b + dir_b) + sn          (x_b' = x0_b when the grid has 1 entry)
 *     x_s'   = (sqrt(a') x0   + dir_b) + sn
 *   call 1: (x_s, x_t) -> new x_t and x0_t (its x_s' is discarded);
 *   call 2: (x_s, x_m) -> new x_s (with dir_m: at eta < 1 the source branch
 *           picks up the layout branch's eps difference, as in the code) and x_m.
 * Then, for i > 0, the local-blend callback may rewrite x_t (edit/blend.h).
 * Output: x0_t of the last step (decode it), not the noisy latent.
 *
 * Works for any eps-prediction UNet: the sampler uses the raw eps formulas,
 * never the LCM boundary scalings; the UNet gets no LCM w-embedding.
 *
 * Attention control (the UNet hook) gets, through step_begin, the 6 row roles
 * and an ie_infedit_plan for the step: p = (i + start_steps + 1) / N,
 * self-attention early phase while p < self_replace (target row uses
 * (Q_s, K_s, V_t), layout row (Q_s, K_s, V_s)), late phase otherwise (target
 * free, layout (Q_t, K_s, V_s)); cross-attention refine on the conditional
 * rows, the target's probabilities replaced while p <= cross_replace, by the
 * source map (demo) or the layout map (PIE-Bench script).
 *
 * Precision: latents fp32 (storage), every per-element expression of CFG and
 * the sampler in double, rounded once to float. With target = source (same
 * text condition), g_t = g_s and identity attention control, x_t and x_m
 * equal x_s bit for bit at every step and the output equals x0 bit for bit.
 */
#ifndef INVEDIT_INFEDIT_H
#define INVEDIT_INFEDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inversion/denoiser.h"
#include "inversion/schedule.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ie_cross_source {
    IE_CROSS_FROM_SOURCE = 0, /* app_infedit.py (demo): P_t <- Refine(P_s, P_t) */
    IE_CROSS_FROM_LAYOUT = 1, /* run_pie_bench.py (after issue #22), paper Alg. 3: P_t <- Refine(P_m, P_t) */
} ie_cross_source;

/* What the attention controller must do at step i (passed as
 * ie_step_info.plan, and computed by infedit_plan_at). */
typedef struct ie_infedit_plan {
    int step;           /* i, 0-based executed step */
    int num_steps;      /* N */
    int start_steps;    /* N - trunc(N * strength) (0 without denoise) */
    double p;           /* (i + start_steps + 1) / N */
    bool self_early;    /* p < self_replace: target (Q_s, K_s, V_t), layout (Q_s, K_s, V_s) */
    bool cross_replace; /* p <= cross_replace: target cond probs <- Refine(P_src|P_lay, P_t) */
    ie_cross_source cross_source;
    bool blend;  /* i > 0: the local blend runs after this step */
    bool use_xm; /* i + start_steps + 2 == N: blend's third rule (mask_me -> x_m) */
} ie_infedit_plan;

/* Arguments of the local-blend callback (after both sampler calls of step i,
 * only for i > 0 as the controller's step_callback). The callback may rewrite
 * x_t (and, formally, x_m; the reference returns it unchanged). */
typedef struct ie_infedit_blend_args {
    int step;          /* i */
    int t;             /* timestep just used */
    double alpha_prod; /* ab[t] */
    bool use_xm;
    int c, h, w;
    const float *x_s;
    float *x_t;
    float *x_m;
    char *err; /* where to put a message on failure */
    size_t errlen;
} ie_infedit_blend_args;
typedef ie_status (*ie_infedit_blend_fn)(void *user, const ie_infedit_blend_args *a);

typedef struct infedit_params {
    int num_steps;                /* N = 15 (demo); PIE-Bench 12 */
    int original_steps;           /* 50 (LCM original_inference_steps) */
    ie_lcm_formula grid_formula;  /* IE_LCM_CURRENT */
    double guidance_s;            /* 1 */
    double guidance_t;            /* 2; must be > 1 (the 6-row CFG layout) */
    double eta;                   /* 1 */
    bool denoise;                 /* false: start from pure noise, strength 1 */
    double strength;              /* used only with denoise (demo slider 0.7) */
    double cross_replace;         /* 0.7 */
    double self_replace;          /* 0.3 (PIE-Bench 0.7) */
    ie_cross_source cross_source; /* IE_CROSS_FROM_SOURCE (demo) */
    uint64_t seed;                /* initial noise, then one draw per step */
    int cond_src_uncond;          /* "positive prompt", default "" -> IE_COND_UNCOND */
    int cond_tgt_uncond;          /* "negative prompt", default "" -> IE_COND_UNCOND */
    int cond_src;                 /* IE_COND_SOURCE */
    int cond_tgt;                 /* IE_COND_TARGET */
    ie_infedit_blend_fn blend;    /* local blend (edit/blend.h: ie_local_blend_step), or NULL */
    void *blend_user;
    /* optional observer after each step (after the blend): the three branch
     * latents and this step's x0_t */
    void (*on_step)(void *user, int step, const float *x_s, const float *x_t, const float *x_m, const float *x0_t);
    void *on_step_user;
    /* Unused rows (issue 10). At guidance_s == 1 the source and layout
     * branches' unconditional rows do not enter the CFG (e_s = e_src,
     * e_m = e_lay exactly), so they are skipped where nothing else reads
     * them: the layout's unconditional row at every step (the control only
     * writes into it), the source's unconditional row at steps without
     * early self-attention control (it is read only there, for the target's
     * unconditional row). 15 default steps: 4 x 5 + 11 x 4 = 64 evaluations
     * instead of 90. The remaining rows give the same bits (every backend's
     * result for a batch row is independent of the batch). true runs all six. */
    bool keep_unused_rows;
} infedit_params;

/* Demo column defaults (thresholds live with the blend: edit/blend.h). */
void infedit_params_default(infedit_params *p);

/* The control plan at executed step i. */
void infedit_plan_at(const infedit_params *p, int start_steps, int i, ie_infedit_plan *out);

/* Number of executed steps and start_steps for p (-1 when out of range). */
int infedit_steps(const infedit_params *p, int *start_steps);

/* Edits x0 [C, H, W] (VAE latent x 0.18215). out [C, H, W] = x0_t of the last
 * step, written only on success. init_noise [C, H, W] may be NULL (drawn from
 * the seed) — the per-step z are always drawn from the seed's generator.
 * UNet evaluations: 6 per executed step. */
ie_status infedit_run(ie_run *run, const float *x0, const infedit_params *p, const float *init_noise, float *out);

#ifdef __cplusplus
}
#endif
#endif
