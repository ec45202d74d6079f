/* Noise schedule and timestep grids (docs/methods.md, "Shared pieces").
 *
 * Everything here is double precision and pure (no allocation, no state).
 *
 * Schedule: SD "scaled_linear", 1000 train timesteps,
 *     beta_i = (sqrt(0.00085) + i/999 * (sqrt(0.012) - sqrt(0.00085)))^2,  i = 0..999
 *     ab[t]  = prod_{i<=t} (1 - beta_i)
 * built exactly like numpy's float64 `linspace(..)**2` + `cumprod` (BDIA's
 * vendored scheduler): start + i*step with step = (stop-start)/999 and the last
 * point set to stop, then a sequential product. ab[0] = 0.99915,
 * ab[999] = 0.00466.
 *
 * Grids (arrays of train timesteps in the order a sampler visits them, i.e.
 * descending), all written into a caller array of at least n entries:
 *     ie_grid_ddim      DDPM_inversion (offset 1: N=100 -> 991..1) and the
 *                       no-offset variant (N=100 -> 990..0)
 *     ie_grid_bdia_edit BDIA image editing: (N-1)*step .. 0, step = 1000//N
 *                       (the update itself uses the float step 1000/N)
 *     ie_grid_ldm       BDIA text-to-image (LDM "uniform"): {0, c, 2c, ...} + 1
 *                       with c = 1000//N, returned descending
 *     ie_grid_lcm       InfEdit's LCMScheduler grid, old or current formula
 * and ie_grid_strength_start() gives how many leading entries img2img strength
 * drops (the grid itself is always computed with strength 1).
 */
#ifndef INVEDIT_SCHEDULE_H
#define INVEDIT_SCHEDULE_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IE_TRAIN_STEPS 1000

typedef struct ie_schedule {
    double beta[IE_TRAIN_STEPS];
    double ab[IE_TRAIN_STEPS]; /* alphas_cumprod */
} ie_schedule;

/* SD 1.x scaled_linear (beta 0.00085 .. 0.012). */
void ie_schedule_sd(ie_schedule *s);

/* ab at an integer train timestep; t < 0 gives ab[0] ("final_alpha_cumprod"
 * with set_alpha_to_one=False, used by all three codebases), t > 999 gives
 * ab[999]. */
double ie_ab_at(const ie_schedule *s, int t);

/* BDIA's get_alpha_and_beta for a real-valued timestep: t < 0 -> ab[0];
 * integer t -> ab[t]; otherwise the code's linear interpolation with the
 * weights swapped: ab[floor t]*rem + ab[ceil t]*(1-rem), rem = t - floor t.
 * (Reached only when 1000/N is not an integer.) */
double ie_ab_bdia(const ie_schedule *s, double t);

/* DDPM/DDIM posterior variance of DDPM_inversion's get_variance for grid
 * timestep t with N inference steps: prev = t - 1000//N, abp = ab_at(prev),
 *     var = (1 - abp)/(1 - ab[t]) * (1 - ab[t]/abp)
 * (sigma_t^2 at eta = 1; sigma_t = 0.334 at t=991, 0.0207 at t=1 for N=100). */
double ie_ddpm_variance(const ie_schedule *s, int t, int n);

/* --- grids --------------------------------------------------------------- */

/* DDIMScheduler "leading" grid: step = 1000//n, [(n-1)*step, ..., step, 0] +
 * offset (offset 1: SD-1.4 config, DDPM_inversion's default; 0: hand-built
 * scheduler of its ddim modes). Returns n, or -1 when n is not in [1, 1000]. */
int ie_grid_ddim(int n, int offset, int *out);

/* BDIA editing grid (my_diffusers DDIM, offset 0): [(n-1)*step, ..., 0],
 * step = 1000//n. Returns n or -1. *delta receives the float step size
 * 1000/n that the BDIA update uses (may be NULL). */
int ie_grid_bdia_edit(int n, int *out, double *delta);

/* LDM DDIM "uniform" grid used by BDIA text-to-image: c = 1000//n,
 * {0, c, 2c, ... < 1000} + 1, returned in descending (sampling) order.
 * Note range(0, 1000, c) has more than n entries when n does not divide 1000
 * (n = 30 gives 31): the return value is the real count. out must hold
 * 1000/(1000/n) + 1 entries; n <= 1000. Returns the count or -1. */
int ie_grid_ldm(int n, int *out);

typedef enum ie_lcm_formula {
    IE_LCM_CURRENT = 0, /* indices floor(k * orig/n), k = 0..n-1 (diffusers today) */
    IE_LCM_OLD = 1,     /* every (orig//n)-th entry, first n */
} ie_lcm_formula;

/* LCMScheduler grid: origin = {k*(1000/orig) - 1 : k = 1..orig} (orig = 50:
 * 19, 39, ..., 999), reversed, then n of them by `formula`. n must be in
 * [1, orig]. Returns n or -1. N=15 current: 999 939 879 799 ... 79. */
int ie_grid_lcm(int n, int orig, ie_lcm_formula formula, int *out);

/* img2img strength: init = min(int(n*strength), n); the first n - init grid
 * entries are dropped. Returns n - init (0 for strength 1), or -1 when
 * strength is not in (0, 1] or init would be 0. */
int ie_grid_strength_start(int n, double strength);

#ifdef __cplusplus
}
#endif
#endif
