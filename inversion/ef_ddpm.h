/* Edit-friendly DDPM inversion (Huberman-Spiegelglas, Kulikov, Michaeli,
 * CVPR 2024; inbarhub/DDPM_inversion) — docs/methods.md explains it.
 *
 * Inversion ("forward process"): for levels k = 1..N (timestep tau_k = grid[N-k], tau_1 = 1,
 * tau_N = 991 at N = 100) draw independent noisy copies
 *     xt_k = sqrt(ab[tau_k]) x0 + sqrt(1 - ab[tau_k]) n_k        (k = 1 first)
 * then for k = N..1 extract the noise map that makes one DDPM step land on
 * the next copy:
 *     e     = CFG(eps(xt_k, tau_k), cfg_src)             one batch [uncond, cond]
 *     mu    = sqrt(abp) x0hat(xt_k, e) + sqrt(1 - abp - eta var) e
 *     z_k   = (xt_{k-1} - mu) / (eta sigma)               sigma = sqrt(var)
 *     xt_{k-1} <- mu + eta sigma z_k                      (the authors' re-store)
 * and finally z_1 := 0 (the code's choice; keep_z1 keeps it, which makes the
 * reconstruction exact: issue #13).
 *
 * Editing ("reverse process"): from xt_K, K = N - skip, for k = K..1
 *     xhat_{k-1} = mu(xhat_k, CFG(eps(xhat_k, tau_k), cfg_tar)) + eta sigma z_k
 * with the target prompt; P2P mode ("p2pinv") runs two prompt rows
 * [source, target] with per-row CFG scales, both starting from xt_K and sharing
 * every z_k; the attention controller (UNet hook, step_begin) does the rest.
 *
 * Precision: latents and maps are stored in fp32 (the reference keeps fp32);
 * every per-element expression (CFG combine, x0hat, mu, z extraction, the
 * re-store and the editing step) is evaluated in double and rounded once to
 * float. The re-store and the editing step use the same expression on the
 * same float inputs, so with identical eps (target = source prompt,
 * cfg_tar = cfg_src, skip 0, z_1 kept) editing retraces the stored xt_k bit
 * for bit and returns the re-stored xt_0, which differs from x0 only by the
 * rounding of mu + eta sigma z_1 (7e-9 max |err| with the toy denoiser of
 * tests/test_methods.c on N(0,1) latents).
 *
 * Noise-map manipulations (shown in the paper, not in the public code) are
 * functions over the stored maps: ef_ddpm_maps_shift (spatial shift of xt and all z)
 * and ef_ddpm_maps_color (per-channel offset/scale of z over a region); plus
 * the authors' colour recipe from issue #3 as an editing-time guide
 * (ef_color_guide). See each function for what exactly it does.
 */
#ifndef INVEDIT_EF_DDPM_H
#define INVEDIT_EF_DDPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inversion/denoiser.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ef_ddpm_params {
    int num_steps;           /* N = 100 */
    double eta;              /* 1; must be in (0, 1] (eta = 0 is DDIM inversion, a different mode) */
    double cfg_src;          /* 3.5 */
    int grid_offset;         /* 1: SD-1.4 DDIMScheduler grid (991..1); 0: 990..0 */
    bool keep_z1;            /* false: z_1 := 0 as in the code */
    bool source_uncond_only; /* true when the source prompt is "": only the
                                unconditional pass (batch 1), e = eps_uncond */
    int cond_uncond;         /* IE_COND_UNCOND */
    int cond_src;            /* IE_COND_SOURCE */
    uint64_t seed;           /* for the noisy copies n_k (ie_rng) */
} ef_ddpm_params;

void ef_ddpm_params_default(ef_ddpm_params *p);

/* What inversion produces: (2N+1) latents (13 MB at N = 100, 64x64). */
typedef struct ef_ddpm_maps {
    int n;       /* N */
    int c, h, w; /* latent shape */
    double eta;
    int grid_offset;
    bool z1_kept;
    int *tau;   /* [N + 1]: tau[k] = timestep of level k (k >= 1); tau[0] = -1 (clean) */
    float *xts; /* [N + 1, C, H, W]: xt_0 (= x0) .. xt_N, re-stored values */
    float *zs;  /* [N, C, H, W]: zs[(k-1)*CHW ..] = z_k, k = 1..N */
} ef_ddpm_maps;

/* Inverts x0 [C, H, W] (the VAE latent, scaled by 0.18215). On success *out
 * is a new maps object (free with ef_ddpm_maps_free); on error or cancel *out
 * is left untouched. UNet evaluations: N x 2 (N x 1 with source_uncond_only). */
ie_status ef_ddpm_invert(ie_run *run, const float *x0, const ef_ddpm_params *p, ef_ddpm_maps **out);

void ef_ddpm_maps_free(ef_ddpm_maps *m);
/* Deep copy (NULL when out of memory). */
ef_ddpm_maps *ef_ddpm_maps_clone(const ef_ddpm_maps *m);
/* Pointers to level k's latent / noise map. */
float *ef_ddpm_xt(const ef_ddpm_maps *m, int k); /* k = 0..N */
float *ef_ddpm_z(const ef_ddpm_maps *m, int k);  /* k = 1..N */

/* The authors' colour manipulation (issue #3, pixel-space model), adapted to
 * latents: at every editing step whose level k is in [k_lo, k_hi] the noise
 * map used by that step becomes
 *     z' = z_k + alpha * mask * (target - x0hat_k)
 * where x0hat_k is the step's own clean-latent prediction (per prompt row),
 * target the latent the region should move toward (e.g. the VAE encoding of
 * the image with the region painted in the new colour) and mask a binary
 * latent-resolution mask. The stored maps are not modified. */
typedef struct ef_color_guide {
    const float *target; /* [C, H, W] */
    const uint8_t *mask; /* [H, W], nonzero = inside; NULL = everywhere */
    double alpha;        /* e.g. 0.1 .. 1 */
    int k_lo, k_hi;      /* levels (1..N) where applied; k_hi = 0 means N */
} ef_color_guide;

typedef struct ef_ddpm_edit_params {
    int skip;                    /* 36: T_skip in inference steps; editing starts at level K = N - skip */
    int n_prompts;               /* 1 ("our_inv") or 2 ("p2pinv": rows [source, target]) */
    int cond[2];                 /* text condition per prompt row */
    double cfg[2];               /* CFG scale per prompt row */
    int cond_uncond;             /* IE_COND_UNCOND */
    const ef_color_guide *color; /* optional */
} ef_ddpm_edit_params;

/* our_inv defaults: skip 36, one row {IE_COND_TARGET, cfg 15}. */
void ef_ddpm_edit_params_default(ef_ddpm_edit_params *p);
/* p2pinv defaults (README): skip 12, rows {SOURCE 3.5, TARGET 9}. The P2P
 * controller (xa 0.6, sa 0.2, num_steps = N) lives behind the UNet hook. */
void ef_ddpm_edit_params_default_p2p(ef_ddpm_edit_params *p);

/* Runs the reverse process from maps. out: [n_prompts, C, H, W] final latents
 * (row 1 is the edit in P2P mode), written only on success. Each step is one
 * denoiser call with batch 2 x n_prompts laid out
 *     [uncond row 0, ..., uncond row P-1, cond row 0, ..., cond row P-1]
 * (step_begin gets the roles: P2P rows are [SOURCE, TARGET], a single row is
 * TARGET; step = 0 at level K; num_steps = N). UNet evaluations: K x 2P. */
ie_status ef_ddpm_edit(ie_run *run, const ef_ddpm_maps *maps, const ef_ddpm_edit_params *p, float *out);

/* --- noise-map manipulations (shown in the paper) ---------------------------
 *
 * Shift: translates every stored latent xt_0..xt_N and every noise map
 * z_1..z_N by (dx, dy) latent pixels (+dx right, +dy down; one latent pixel =
 * 8 image pixels for SD). Editing from the shifted maps (any prompt, any
 * skip) then produces a shifted image: the paper's observation is that the
 * edit-friendly maps carry the image structure, so moving them moves the
 * content. How the uncovered strip is filled:
 *   EF_SHIFT_WRAP   circular (torch.roll): the strip gets the maps of the
 *                   opposite border (statistics preserved, content wraps);
 *   EF_SHIFT_EDGE   replicate the last row/column (smears the border);
 *   EF_SHIFT_NOISE  fresh noise: z ~ N(0, 1) and xt_k a new forward sample of
 *                   the edge-replicated xt_0 at level k (drawn as the
 *                   inversion draws its copies), so the model invents
 *                   plausible content there.
 * |dx| < W and |dy| < H. */
typedef enum ef_shift_edge { EF_SHIFT_WRAP = 0, EF_SHIFT_EDGE = 1, EF_SHIFT_NOISE = 2 } ef_shift_edge;
ie_status ef_ddpm_maps_shift(ef_ddpm_maps *m, int dx, int dy, ef_shift_edge edge, uint64_t seed, char *err,
                             size_t errlen);

/* Colour edit by modifying noise maps: for levels k in [k_lo, k_hi] (k_hi = 0
 * means N) and latent pixels inside mask (NULL = all),
 *     z_k[c] <- scale * z_k[c] + offset[c]        (offset NULL = 0)
 * SD latent channels are loosely colour/brightness-like, so a per-channel
 * offset over a region tints it; scale > 1 strengthens the structure the
 * maps imprint (more contrast/texture), < 1 weakens it. The paper shows
 * colour edits by modifying noise maps on a pixel-space model; its exact
 * recipe is not public (issue #3 gives the guided version, ef_color_guide),
 * so this static version is our interpretation. xt is not modified. */
ie_status ef_ddpm_maps_color(ef_ddpm_maps *m, const float *offset, double scale, const uint8_t *mask, int k_lo,
                             int k_hi, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
