/* The denoiser interface between the methods and the networks.
 *
 * The methods (ef_ddpm, bdia, infedit) know nothing of UNets, text encoders
 * or devices. They hold latents on the host (4x64x64 floats at 512x512: tiny)
 * and ask an ie_denoiser for the noise prediction of a *batch* of latents:
 *
 *     eps(ctx, batch, x [batch, C, H, W], t [batch], cond [batch], eps_out [batch, C, H, W])
 *
 *   t     train timestep per row, as a double: may be non-integer or negative
 *         (BDIA evaluates the clean level at t = -1000/N, e.g. -20);
 *   cond  index into the text conditions the caller set up for this edit:
 *         IE_COND_UNCOND = 0 is the empty prompt "", IE_COND_SOURCE = 1 the
 *         source prompt, IE_COND_TARGET = 2 the target prompt; further indices
 *         are free for the caller (e.g. InfEdit's positive/negative prompts).
 *
 * Classifier-free guidance is one batch: a method builds
 * [uncond rows..., cond rows...] and combines the eps rows on the host.
 *
 * Contract (what exactness relies on):
 *   - eps is an epsilon-prediction (a v-prediction model converts inside its
 *     denoiser);
 *   - rows are independent and deterministic: the same (x row, t, cond) gives
 *     bit-identical eps whatever the batch size or the row's position, as long
 *     as no attention control changes it. EF-DDPM and BDIA reconstruction and
 *     InfEdit's source==target identity are exact only under this contract.
 *   - the denoiser must accept the batch sizes the methods use in one call
 *     (attention control needs all rows of a step together): EF-DDPM
 *     inversion 2 (1 for an empty source prompt), EF-DDPM editing
 *     2 x prompts (2 or 4), BDIA 2, InfEdit 6.
 *
 * step_begin (optional) is called right before every eps call that belongs to
 * a diffusion step, with the step index and the role of every row: this is
 * what an attention controller (P2P, InfEdit's unified attention control)
 * needs to know which rows are source / target / layout and uncond / cond.
 *
 * Every method takes an ie_run: the denoiser, the progress/cancel callback,
 * and outputs (UNet image-evaluation count, error message).
 */
#ifndef INVEDIT_DENOISER_H
#define INVEDIT_DENOISER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vkcompute/ops.h" /* ie_status */

#ifdef __cplusplus
extern "C" {
#endif

enum { IE_COND_UNCOND = 0, IE_COND_SOURCE = 1, IE_COND_TARGET = 2 };

typedef enum ie_branch {
    IE_BRANCH_SOURCE = 0, /* reconstructs the input (inversion rows, P2P row 0, InfEdit x_s) */
    IE_BRANCH_TARGET = 1, /* the edit */
    IE_BRANCH_LAYOUT = 2, /* InfEdit's mutual/layout branch x_m */
} ie_branch;

typedef struct ie_row_role {
    uint8_t branch; /* ie_branch */
    uint8_t uncond; /* 1: the unconditional half of CFG */
} ie_row_role;

typedef enum ie_method_phase {
    IE_PHASE_EF_INVERT = 0, /* edit-friendly DDPM inversion ("forward process") */
    IE_PHASE_EF_EDIT = 1,   /* edit-friendly DDPM editing ("reverse process") */
    IE_PHASE_BDIA_INVERT = 2,
    IE_PHASE_BDIA_GENERATE = 3,
    IE_PHASE_BDIA_SAMPLE = 4, /* BDIA text-to-image */
    IE_PHASE_INFEDIT = 5,
} ie_method_phase;

const char *ie_phase_name(ie_method_phase p);

typedef struct ie_step_info {
    ie_method_phase phase;
    int step;      /* 0-based index of this denoiser call within the phase (a P2P
                      controller's cur_step) */
    int total;     /* number of denoiser calls in the phase */
    int num_steps; /* what the reference passes to its controller as num_steps
                      (EF-DDPM editing: N, not N - skip; InfEdit: N) */
    double t;      /* train timestep of all rows */
    int batch;
    const ie_row_role *rows; /* [batch] */
    const void *plan;        /* method-specific control plan or NULL
                                (InfEdit: const ie_infedit_plan *) */
} ie_step_info;

typedef struct ie_denoiser {
    int channels, height, width; /* latent shape C, H, W */
    void *ctx;
    ie_status (*eps)(void *ctx, int batch, const float *x, const double *t, const int *cond, float *eps_out);
    /* optional; a non-OK status aborts the method with that status */
    ie_status (*step_begin)(void *ctx, const ie_step_info *info);
    /* optional: message for the last failure of eps/step_begin */
    const char *(*errmsg)(void *ctx);
} ie_denoiser;

/* Progress and cancellation: called once before every step with step in
 * [0, total); returning false cancels the method with IE_ERR_CANCELLED, and
 * nothing the caller passed for output is written. */
typedef bool (*ie_progress_fn)(void *user, int step, int total, const char *phase);

typedef struct ie_run {
    const ie_denoiser *dn;
    ie_progress_fn progress; /* may be NULL */
    void *progress_user;
    /* outputs, accumulated over calls (reset them yourself) */
    int64_t unet_evals;     /* image-evaluations: sum of batch sizes over eps calls */
    int64_t denoiser_calls; /* eps calls */
    double eps_seconds;     /* wall time inside the eps calls (the UNet with its attention hooks) */
    char err[256];          /* message when a method returns an error */
} ie_run;

/* A run over dn with no progress callback and zeroed counters. */
ie_run ie_run_make(const ie_denoiser *dn);

/* --- helpers the methods share (also useful to denoiser implementers) ---- */

/* Sets run->err (printf-style) and returns st. */
ie_status ie_run_fail(ie_run *run, ie_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Checks run, run->dn, its callbacks and shape. */
ie_status ie_run_check(ie_run *run, const char *method);

/* Progress call: IE_ERR_CANCELLED (with a message) when the callback says stop. */
ie_status ie_run_progress(ie_run *run, int step, int total, const char *phase);

/* step_begin (if any) then eps; counts evaluations; names the phase, step and
 * t in the error message when the denoiser fails. */
ie_status ie_run_eps(ie_run *run, const ie_step_info *info, const float *x, const double *t, const int *cond,
                     float *eps_out);

#ifdef __cplusplus
}
#endif
#endif
