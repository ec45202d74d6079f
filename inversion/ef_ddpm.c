/* Edit-friendly DDPM inversion and editing; see ef_ddpm.h. */
#include "inversion/ef_ddpm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inversion/rng.h"
#include "inversion/schedule.h"

void ef_ddpm_params_default(ef_ddpm_params *p) {
    memset(p, 0, sizeof *p);
    p->num_steps = 100;
    p->eta = 1.0;
    p->cfg_src = 3.5;
    p->grid_offset = 1;
    p->keep_z1 = false;
    p->source_uncond_only = false;
    p->cond_uncond = IE_COND_UNCOND;
    p->cond_src = IE_COND_SOURCE;
    p->seed = 0;
}

void ef_ddpm_edit_params_default(ef_ddpm_edit_params *p) {
    memset(p, 0, sizeof *p);
    p->skip = 36;
    p->n_prompts = 1;
    p->cond[0] = IE_COND_TARGET;
    p->cfg[0] = 15.0;
    p->cond_uncond = IE_COND_UNCOND;
}

void ef_ddpm_edit_params_default_p2p(ef_ddpm_edit_params *p) {
    memset(p, 0, sizeof *p);
    p->skip = 12;
    p->n_prompts = 2;
    p->cond[0] = IE_COND_SOURCE;
    p->cfg[0] = 3.5;
    p->cond[1] = IE_COND_TARGET;
    p->cfg[1] = 9.0;
    p->cond_uncond = IE_COND_UNCOND;
}

static size_t chw_of(const ef_ddpm_maps *m) { return (size_t)m->c * m->h * m->w; }

float *ef_ddpm_xt(const ef_ddpm_maps *m, int k) { return m->xts + (size_t)k * chw_of(m); }
float *ef_ddpm_z(const ef_ddpm_maps *m, int k) { return m->zs + (size_t)(k - 1) * chw_of(m); }

void ef_ddpm_maps_free(ef_ddpm_maps *m) {
    if (!m) return;
    free(m->tau);
    free(m->xts);
    free(m->zs);
    free(m);
}

static ef_ddpm_maps *maps_alloc(int n, int c, int h, int w) {
    ef_ddpm_maps *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->n = n;
    m->c = c;
    m->h = h;
    m->w = w;
    size_t chw = chw_of(m);
    m->tau = calloc((size_t)n + 1, sizeof *m->tau);
    m->xts = malloc(((size_t)n + 1) * chw * sizeof(float));
    m->zs = malloc((size_t)n * chw * sizeof(float));
    if (!m->tau || !m->xts || !m->zs) {
        ef_ddpm_maps_free(m);
        return NULL;
    }
    return m;
}

ef_ddpm_maps *ef_ddpm_maps_clone(const ef_ddpm_maps *m) {
    ef_ddpm_maps *c = maps_alloc(m->n, m->c, m->h, m->w);
    if (!c) return NULL;
    size_t chw = chw_of(m);
    c->eta = m->eta;
    c->grid_offset = m->grid_offset;
    c->z1_kept = m->z1_kept;
    memcpy(c->tau, m->tau, ((size_t)m->n + 1) * sizeof *m->tau);
    memcpy(c->xts, m->xts, ((size_t)m->n + 1) * chw * sizeof(float));
    memcpy(c->zs, m->zs, (size_t)m->n * chw * sizeof(float));
    return c;
}

/* Scalars of one DDPM step at grid timestep t (the code's reverse_step). */
typedef struct step_coef {
    double sqrt_a, sqrt_1ma; /* x0hat = (x - sqrt_1ma e) / sqrt_a */
    double sqrt_abp;         /* mu = sqrt_abp x0hat + dir_c e */
    double dir_c;            /* sqrt(1 - abp - eta var) */
    double sd;               /* eta sqrt(var): the noise-map coefficient */
} step_coef;

static step_coef step_coef_at(const ie_schedule *s, int t, int n, double eta) {
    step_coef c;
    double a = ie_ab_at(s, t);
    double abp = ie_ab_at(s, t - IE_TRAIN_STEPS / n);
    double var = ie_ddpm_variance(s, t, n);
    c.sqrt_a = sqrt(a);
    c.sqrt_1ma = sqrt(1.0 - a);
    c.sqrt_abp = sqrt(abp);
    double d = 1.0 - abp - eta * var;
    c.dir_c = sqrt(d > 0.0 ? d : 0.0);
    c.sd = eta * sqrt(var);
    return c;
}

static inline double mu_of(const step_coef *c, double x, double e, double *x0hat) {
    double x0 = (x - c->sqrt_1ma * e) / c->sqrt_a;
    if (x0hat) *x0hat = x0;
    return c->sqrt_abp * x0 + c->dir_c * e;
}

ie_status ef_ddpm_invert(ie_run *run, const float *x0, const ef_ddpm_params *p, ef_ddpm_maps **out) {
    const char *M = "ef_ddpm_invert";
    ie_status st = ie_run_check(run, M);
    if (st != IE_OK) return st;
    if (!x0 || !p || !out) return ie_run_fail(run, IE_ERR_ARG, "%s: x0, params and out must not be NULL", M);
    const int n = p->num_steps;
    if (n < 1 || n > IE_TRAIN_STEPS) return ie_run_fail(run, IE_ERR_ARG, "%s: num_steps %d is not in [1, 1000]", M, n);
    if (!(p->eta > 0.0 && p->eta <= 1.0))
        return ie_run_fail(run, IE_ERR_ARG, "%s: eta %g is not in (0, 1] (eta = 0 is DDIM inversion)", M, p->eta);
    if (p->grid_offset != 0 && p->grid_offset != 1)
        return ie_run_fail(run, IE_ERR_ARG, "%s: grid_offset %d is not 0 or 1", M, p->grid_offset);
    if (!isfinite(p->cfg_src)) return ie_run_fail(run, IE_ERR_ARG, "%s: cfg_src is not finite", M);

    const ie_denoiser *dn = run->dn;
    ef_ddpm_maps *m = maps_alloc(n, dn->channels, dn->height, dn->width);
    int *grid = malloc((size_t)n * sizeof *grid);
    const size_t chw = (size_t)dn->channels * dn->height * dn->width;
    float *xin = malloc(2 * chw * sizeof(float));
    float *eps = malloc(2 * chw * sizeof(float));
    float *noise = malloc(chw * sizeof(float));
    ie_schedule sched;
    if (!m || !grid || !xin || !eps || !noise) {
        st = ie_run_fail(run, IE_ERR_NOMEM, "%s: out of memory for %d levels of %zu floats", M, n, chw);
        goto done;
    }
    ie_schedule_sd(&sched);
    m->eta = p->eta;
    m->grid_offset = p->grid_offset;
    m->z1_kept = p->keep_z1;
    ie_grid_ddim(n, p->grid_offset, grid);
    m->tau[0] = -1;
    for (int k = 1; k <= n; k++) m->tau[k] = grid[n - k];

    /* 1. independent noisy copies, k = 1 first (sample_xts_from_x0) */
    memcpy(ef_ddpm_xt(m, 0), x0, chw * sizeof(float));
    ie_rng rng;
    ie_rng_seed(&rng, p->seed);
    for (int k = 1; k <= n; k++) {
        double a = ie_ab_at(&sched, m->tau[k]);
        double sa = sqrt(a), s1 = sqrt(1.0 - a);
        float *xk = ef_ddpm_xt(m, k);
        ie_rng_normal_fill(&rng, noise, chw);
        for (size_t i = 0; i < chw; i++) xk[i] = (float)((double)x0[i] * sa + (double)noise[i] * s1);
    }

    /* 2. noise-map extraction, k = N .. 1 */
    const int batch = p->source_uncond_only ? 1 : 2;
    const ie_row_role roles[2] = {{IE_BRANCH_SOURCE, 1}, {IE_BRANCH_SOURCE, 0}};
    const int conds[2] = {p->cond_uncond, p->cond_src};
    const double cfg = p->cfg_src;
    for (int k = n; k >= 1; k--) {
        const int step = n - k;
        st = ie_run_progress(run, step, n, ie_phase_name(IE_PHASE_EF_INVERT));
        if (st != IE_OK) goto done;
        const float *xk = ef_ddpm_xt(m, k);
        double tt[2] = {m->tau[k], m->tau[k]};
        for (int b = 0; b < batch; b++) memcpy(xin + b * chw, xk, chw * sizeof(float));
        ie_step_info info = {IE_PHASE_EF_INVERT, step, n, n, (double)m->tau[k], batch, roles, NULL};
        st = ie_run_eps(run, &info, xin, tt, conds, eps);
        if (st != IE_OK) goto done;

        step_coef c = step_coef_at(&sched, m->tau[k], n, p->eta);
        float *xprev = ef_ddpm_xt(m, k - 1);
        float *z = ef_ddpm_z(m, k);
        const float *eu = eps, *ec = eps + chw;
        for (size_t i = 0; i < chw; i++) {
            double e = batch == 1 ? (double)eu[i] : (double)eu[i] + cfg * ((double)ec[i] - (double)eu[i]);
            double mu = mu_of(&c, xk[i], e, NULL);
            if (c.sd > 0.0) {
                z[i] = (float)(((double)xprev[i] - mu) / c.sd);
                /* "correction to avoid error accumulation": the value editing will reproduce */
                xprev[i] = (float)(mu + c.sd * (double)z[i]);
            } else {
                /* zero variance (grid offset 0, last step): no noise map exists; the
                 * reference divides by zero here. z = 0, xt_{k-1} kept. */
                z[i] = 0.0f;
            }
        }
    }
    if (!p->keep_z1) memset(ef_ddpm_z(m, 1), 0, chw * sizeof(float));
    *out = m;
    m = NULL;
    st = IE_OK;
done:
    ef_ddpm_maps_free(m);
    free(grid);
    free(xin);
    free(eps);
    free(noise);
    return st;
}

ie_status ef_ddpm_edit(ie_run *run, const ef_ddpm_maps *maps, const ef_ddpm_edit_params *p, float *out) {
    const char *M = "ef_ddpm_edit";
    ie_status st = ie_run_check(run, M);
    if (st != IE_OK) return st;
    if (!maps || !p || !out) return ie_run_fail(run, IE_ERR_ARG, "%s: maps, params and out must not be NULL", M);
    const ie_denoiser *dn = run->dn;
    if (maps->c != dn->channels || maps->h != dn->height || maps->w != dn->width)
        return ie_run_fail(run, IE_ERR_SHAPE, "%s: maps are %dx%dx%d but the denoiser takes %dx%dx%d", M, maps->c,
                           maps->h, maps->w, dn->channels, dn->height, dn->width);
    const int n = maps->n;
    if (p->skip < 0 || p->skip >= n)
        return ie_run_fail(run, IE_ERR_ARG, "%s: skip %d is not in [0, %d)", M, p->skip, n);
    const int P = p->n_prompts;
    if (P != 1 && P != 2) return ie_run_fail(run, IE_ERR_ARG, "%s: n_prompts %d is not 1 or 2", M, P);
    for (int r = 0; r < P; r++)
        if (!isfinite(p->cfg[r])) return ie_run_fail(run, IE_ERR_ARG, "%s: cfg[%d] is not finite", M, r);
    const ef_color_guide *cg = p->color;
    int cg_lo = 0, cg_hi = -1;
    if (cg) {
        if (!cg->target) return ie_run_fail(run, IE_ERR_ARG, "%s: color guide has no target latent", M);
        cg_lo = cg->k_lo < 1 ? 1 : cg->k_lo;
        cg_hi = cg->k_hi <= 0 ? n : cg->k_hi;
    }

    const int K = n - p->skip;
    const size_t chw = chw_of(maps);
    const size_t hw = (size_t)maps->h * maps->w;
    float *x = malloc((size_t)P * chw * sizeof(float));       /* current latent per prompt row */
    float *xin = malloc(2 * (size_t)P * chw * sizeof(float)); /* [uncond rows, cond rows] */
    float *eps = malloc(2 * (size_t)P * chw * sizeof(float));
    if (!x || !xin || !eps) {
        st = ie_run_fail(run, IE_ERR_NOMEM, "%s: out of memory", M);
        goto done;
    }
    ie_schedule sched;
    ie_schedule_sd(&sched);
    for (int r = 0; r < P; r++) memcpy(x + r * chw, ef_ddpm_xt(maps, K), chw * sizeof(float));

    ie_row_role roles[4];
    int conds[4];
    double tt[4];
    for (int r = 0; r < P; r++) {
        uint8_t br = P == 2 && r == 0 ? IE_BRANCH_SOURCE : IE_BRANCH_TARGET;
        roles[r] = (ie_row_role){br, 1};
        roles[P + r] = (ie_row_role){br, 0};
        conds[r] = p->cond_uncond;
        conds[P + r] = p->cond[r];
    }
    for (int k = K; k >= 1; k--) {
        const int step = K - k;
        st = ie_run_progress(run, step, K, ie_phase_name(IE_PHASE_EF_EDIT));
        if (st != IE_OK) goto done;
        const int t = maps->tau[k];
        for (int b = 0; b < 2 * P; b++) tt[b] = t;
        memcpy(xin, x, (size_t)P * chw * sizeof(float));
        memcpy(xin + (size_t)P * chw, x, (size_t)P * chw * sizeof(float));
        ie_step_info info = {IE_PHASE_EF_EDIT, step, K, n, (double)t, 2 * P, roles, NULL};
        st = ie_run_eps(run, &info, xin, tt, conds, eps);
        if (st != IE_OK) goto done;

        step_coef c = step_coef_at(&sched, t, n, maps->eta);
        const float *z = ef_ddpm_z(maps, k);
        const bool guide = cg && k >= cg_lo && k <= cg_hi;
        for (int r = 0; r < P; r++) {
            float *xr = x + r * chw;
            const float *eu = eps + (size_t)r * chw, *ec = eps + (size_t)(P + r) * chw;
            const double s = p->cfg[r];
            for (size_t i = 0; i < chw; i++) {
                double e = (double)eu[i] + s * ((double)ec[i] - (double)eu[i]);
                double x0hat;
                double mu = mu_of(&c, xr[i], e, &x0hat);
                double zz = z[i];
                if (guide && (!cg->mask || cg->mask[i % hw])) zz += cg->alpha * ((double)cg->target[i] - x0hat);
                xr[i] = (float)(mu + c.sd * zz);
            }
        }
    }
    memcpy(out, x, (size_t)P * chw * sizeof(float));
    st = IE_OK;
done:
    free(x);
    free(xin);
    free(eps);
    return st;
}

/* --- noise-map manipulations -------------------------------------------- */

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static int wrapi(int v, int n) {
    int r = v % n;
    return r < 0 ? r + n : r;
}

/* Shifts one [C, H, W] latent in place through tmp. Uncovered pixels: wrap or
 * edge-replicate; with fill != NULL they get fill[i] instead (NOISE mode). */
static void shift_plane(float *x, float *tmp, int C, int H, int W, int dx, int dy, ef_shift_edge edge,
                        const float *fill) {
    for (int c = 0; c < C; c++) {
        const float *src = x + (size_t)c * H * W;
        float *dst = tmp + (size_t)c * H * W;
        for (int y = 0; y < H; y++) {
            for (int xx = 0; xx < W; xx++) {
                int sy = y - dy, sx = xx - dx;
                bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
                size_t o = (size_t)y * W + xx;
                if (edge == EF_SHIFT_WRAP) {
                    dst[o] = src[(size_t)wrapi(sy, H) * W + wrapi(sx, W)];
                } else if (inside || !fill) {
                    dst[o] = src[(size_t)clampi(sy, 0, H - 1) * W + clampi(sx, 0, W - 1)];
                } else {
                    dst[o] = fill[(size_t)c * H * W + o];
                }
            }
        }
    }
    memcpy(x, tmp, (size_t)C * H * W * sizeof(float));
}

ie_status ef_ddpm_maps_shift(ef_ddpm_maps *m, int dx, int dy, ef_shift_edge edge, uint64_t seed, char *err,
                             size_t errlen) {
    if (!m) {
        if (err) snprintf(err, errlen, "ef_ddpm_maps_shift: maps is NULL");
        return IE_ERR_ARG;
    }
    if (dx <= -m->w || dx >= m->w || dy <= -m->h || dy >= m->h) {
        if (err)
            snprintf(err, errlen, "ef_ddpm_maps_shift: shift (%d, %d) is not smaller than the %dx%d latent", dx, dy,
                     m->w, m->h);
        return IE_ERR_ARG;
    }
    if (edge != EF_SHIFT_WRAP && edge != EF_SHIFT_EDGE && edge != EF_SHIFT_NOISE) {
        if (err) snprintf(err, errlen, "ef_ddpm_maps_shift: unknown edge mode %d", (int)edge);
        return IE_ERR_ARG;
    }
    const size_t chw = chw_of(m);
    float *tmp = malloc(chw * sizeof(float));
    float *fill = edge == EF_SHIFT_NOISE ? malloc(chw * sizeof(float)) : NULL;
    float *x0e = edge == EF_SHIFT_NOISE ? malloc(chw * sizeof(float)) : NULL;
    if (!tmp || (edge == EF_SHIFT_NOISE && (!fill || !x0e))) {
        free(tmp);
        free(fill);
        free(x0e);
        if (err) snprintf(err, errlen, "ef_ddpm_maps_shift: out of memory");
        return IE_ERR_NOMEM;
    }
    ie_schedule sched;
    ie_schedule_sd(&sched);
    ie_rng rng;
    ie_rng_seed(&rng, seed);
    if (edge == EF_SHIFT_NOISE) {
        /* the edge-replicated shift of xt_0: the clean content the new strip continues */
        memcpy(x0e, ef_ddpm_xt(m, 0), chw * sizeof(float));
        shift_plane(x0e, tmp, m->c, m->h, m->w, dx, dy, EF_SHIFT_EDGE, NULL);
    }
    for (int k = 0; k <= m->n; k++) {
        const float *f = NULL;
        if (edge == EF_SHIFT_NOISE) {
            double a = ie_ab_at(&sched, m->tau[k]); /* tau[0] = -1 -> ab[0]; level 0 gets no noise */
            double sa = k == 0 ? 1.0 : sqrt(a), s1 = k == 0 ? 0.0 : sqrt(1.0 - a);
            ie_rng_normal_fill(&rng, fill, chw);
            for (size_t i = 0; i < chw; i++) fill[i] = (float)(sa * x0e[i] + s1 * fill[i]);
            f = fill;
        }
        shift_plane(ef_ddpm_xt(m, k), tmp, m->c, m->h, m->w, dx, dy, edge, f);
    }
    for (int k = 1; k <= m->n; k++) {
        if (k == 1 && !m->z1_kept) continue; /* z_1 stays 0 */
        const float *f = NULL;
        if (edge == EF_SHIFT_NOISE) {
            ie_rng_normal_fill(&rng, fill, chw);
            f = fill;
        }
        shift_plane(ef_ddpm_z(m, k), tmp, m->c, m->h, m->w, dx, dy, edge, f);
    }
    free(tmp);
    free(fill);
    free(x0e);
    return IE_OK;
}

ie_status ef_ddpm_maps_color(ef_ddpm_maps *m, const float *offset, double scale, const uint8_t *mask, int k_lo,
                             int k_hi, char *err, size_t errlen) {
    if (!m) {
        if (err) snprintf(err, errlen, "ef_ddpm_maps_color: maps is NULL");
        return IE_ERR_ARG;
    }
    if (k_hi <= 0) k_hi = m->n;
    if (k_lo < 1) k_lo = 1;
    if (k_lo > k_hi || k_hi > m->n || !isfinite(scale)) {
        if (err)
            snprintf(err, errlen, "ef_ddpm_maps_color: levels [%d, %d] not inside [1, %d] or scale not finite", k_lo,
                     k_hi, m->n);
        return IE_ERR_ARG;
    }
    const size_t hw = (size_t)m->h * m->w;
    for (int k = k_lo; k <= k_hi; k++) {
        if (k == 1 && !m->z1_kept) continue; /* z_1 = 0 is not a noise map */
        float *z = ef_ddpm_z(m, k);
        for (int c = 0; c < m->c; c++) {
            double off = offset ? offset[c] : 0.0;
            float *zc = z + (size_t)c * hw;
            for (size_t i = 0; i < hw; i++)
                if (!mask || mask[i]) zc[i] = (float)(scale * zc[i] + off);
        }
    }
    return IE_OK;
}
