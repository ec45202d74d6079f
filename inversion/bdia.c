/* BDIA-DDIM inversion, regeneration and text-to-image; see bdia.h. */
#include "inversion/bdia.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inversion/rng.h"
#include "inversion/schedule.h"

void bdia_params_default(bdia_params *p) {
    memset(p, 0, sizeof *p);
    p->num_steps = 50;
    p->strength = 0.8;
    p->gamma = 0.94;
    p->cfg = 3.0;
    p->cond_uncond = IE_COND_UNCOND;
    p->cond = IE_COND_SOURCE;
    p->run_first_call = false;
}

void bdia_sample_params_default(bdia_sample_params *p) {
    memset(p, 0, sizeof *p);
    p->num_steps = 10;
    p->gamma = 0.5;
    p->cfg = 9.0;
    p->eta = 0.0;
    p->cond_uncond = IE_COND_UNCOND;
    p->cond = IE_COND_TARGET;
    p->seed = 1;
}

int bdia_levels(const bdia_params *p) {
    if (!p || p->num_steps < 1 || p->num_steps > IE_TRAIN_STEPS) return -1;
    if (!(p->strength > 0.0 && p->strength <= 1.0)) return -1;
    int k = (int)((double)p->num_steps * p->strength); /* t_limit = N - int(N * strength) */
    return k >= 2 ? k : -1;
}

void bdia_to_float(const double *x, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (float)x[i];
}

/* Coefficients of the two DDIM move forms between levels lo < hi. */
typedef struct move {
    double q;       /* sqrt(ab_hi / ab_lo) */
    double inv_q;   /* 1 / q */
    double down_e1; /* (1/q) * sqrt(1 - ab_hi) */
    double down_e2; /* sqrt(1 - ab_lo) */
    double up_e1;   /* sqrt(1 - ab_hi) */
    double up_e2;   /* q * sqrt(1 - ab_lo) */
} move;

static move move_between(const ie_schedule *s, double lo, double hi) {
    move m;
    double a_hi = ie_ab_bdia(s, hi), a_lo = ie_ab_bdia(s, lo);
    m.q = sqrt(a_hi / a_lo);
    m.inv_q = 1.0 / m.q;
    m.down_e1 = m.inv_q * sqrt(1.0 - a_hi);
    m.down_e2 = sqrt(1.0 - a_lo);
    m.up_e1 = sqrt(1.0 - a_hi);
    m.up_e2 = m.q * sqrt(1.0 - a_lo);
    return m;
}

/* forward_step of the code: from hi down to lo */
static inline double down(const move *m, double x, double e) {
    return (m->inv_q * x - m->down_e1 * e) + m->down_e2 * e;
}
/* reverse_step of the code: from lo up to hi */
static inline double up(const move *m, double x, double e) { return (m->q * x + m->up_e1 * e) - m->up_e2 * e; }

typedef struct bdia_ctx {
    ie_run *run;
    size_t chw;
    float *xin; /* [2, chw] */
    float *eps; /* [2, chw] */
    double *e;  /* [chw] guided eps */
} bdia_ctx;

/* rows: latent chains evaluated together (1; 2 for P2P generation) */
static ie_status ctx_init_rows(bdia_ctx *c, ie_run *run, const char *M, int rows) {
    const ie_denoiser *dn = run->dn;
    c->run = run;
    c->chw = (size_t)dn->channels * dn->height * dn->width;
    c->xin = malloc(2 * (size_t)rows * c->chw * sizeof(float));
    c->eps = malloc(2 * (size_t)rows * c->chw * sizeof(float));
    c->e = malloc((size_t)rows * c->chw * sizeof(double));
    if (!c->xin || !c->eps || !c->e) return ie_run_fail(run, IE_ERR_NOMEM, "%s: out of memory", M);
    return IE_OK;
}

static ie_status ctx_init(bdia_ctx *c, ie_run *run, const char *M) { return ctx_init_rows(c, run, M, 1); }

static void ctx_free(bdia_ctx *c) {
    free(c->xin);
    free(c->eps);
    free(c->e);
}

/* e = CFG(eps(x, t)) for a double state x: one batch [uncond, cond] (batch 1
 * with the conditional row only when cond_only). */
static ie_status guided_eps(bdia_ctx *c, ie_method_phase phase, ie_branch br, int step, int total, int num_steps,
                            const double *x, double t, int cond_uncond, int cond, double cfg, bool cond_only) {
    const size_t chw = c->chw;
    for (size_t i = 0; i < chw; i++) c->xin[i] = (float)x[i];
    int batch = cond_only ? 1 : 2;
    if (!cond_only) memcpy(c->xin + chw, c->xin, chw * sizeof(float));
    ie_row_role roles[2] = {{br, 1}, {br, 0}};
    int conds[2] = {cond_uncond, cond};
    double tt[2] = {t, t};
    if (cond_only) {
        roles[0] = (ie_row_role){br, 0};
        conds[0] = cond;
    }
    ie_step_info info = {phase, step, total, num_steps, t, batch, roles, NULL};
    ie_status st = ie_run_eps(c->run, &info, c->xin, tt, conds, c->eps);
    if (st != IE_OK) return st;
    const float *eu = c->eps, *ec = c->eps + chw;
    if (cond_only) {
        for (size_t i = 0; i < chw; i++) c->e[i] = eu[i];
    } else {
        for (size_t i = 0; i < chw; i++) c->e[i] = (double)eu[i] + cfg * ((double)ec[i] - (double)eu[i]);
    }
    return IE_OK;
}

static ie_status check_params(ie_run *run, const bdia_params *p, const char *M, int *K) {
    if (!p) return ie_run_fail(run, IE_ERR_ARG, "%s: params is NULL", M);
    *K = bdia_levels(p);
    if (*K < 0)
        return ie_run_fail(run, IE_ERR_ARG,
                           "%s: num_steps %d / strength %g give fewer than 2 levels (need N in [1, 1000], "
                           "strength in (0, 1], int(N*strength) >= 2)",
                           M, p->num_steps, p->strength);
    if (!(p->gamma > 0.0 && p->gamma <= 1.0))
        return ie_run_fail(run, IE_ERR_ARG, "%s: gamma %g is not in (0, 1]", M, p->gamma);
    if (!isfinite(p->cfg)) return ie_run_fail(run, IE_ERR_ARG, "%s: cfg is not finite", M);
    return IE_OK;
}

ie_status bdia_invert(ie_run *run, const float *x0, const bdia_params *p, double *z_hi, double *z_lo) {
    const char *M = "bdia_invert";
    ie_status st = ie_run_check(run, M);
    if (st != IE_OK) return st;
    int K;
    if ((st = check_params(run, p, M, &K)) != IE_OK) return st;
    if (!x0 || !z_hi || !z_lo) return ie_run_fail(run, IE_ERR_ARG, "%s: x0, z_hi and z_lo must not be NULL", M);

    bdia_ctx c = {0};
    double *zprev = NULL, *zcur = NULL, *znew = NULL;
    if ((st = ctx_init(&c, run, M)) != IE_OK) goto done;
    const size_t chw = c.chw;
    zprev = malloc(chw * sizeof(double)); /* z_{j-2} */
    zcur = malloc(chw * sizeof(double));  /* z_{j-1} */
    znew = malloc(chw * sizeof(double));
    if (!zprev || !zcur || !znew) {
        st = ie_run_fail(run, IE_ERR_NOMEM, "%s: out of memory", M);
        goto done;
    }
    ie_schedule sched;
    ie_schedule_sd(&sched);
    const double delta = (double)IE_TRAIN_STEPS / (double)p->num_steps;
    const double gamma = p->gamma;
    const int total = p->run_first_call ? K : K - 1;
    int step = 0;
    const char *phase = ie_phase_name(IE_PHASE_BDIA_INVERT);

    for (size_t i = 0; i < chw; i++) zprev[i] = x0[i]; /* z_{-1} = x0 */
    if (p->run_first_call) {
        if ((st = ie_run_progress(run, step, total, phase)) != IE_OK) goto done;
        if ((st = guided_eps(&c, IE_PHASE_BDIA_INVERT, IE_BRANCH_SOURCE, step, total, p->num_steps, zprev, -delta,
                             p->cond_uncond, p->cond, p->cfg, false)) != IE_OK)
            goto done;
        move mv = move_between(&sched, -delta, 0.0);
        for (size_t i = 0; i < chw; i++) zcur[i] = up(&mv, zprev[i], c.e[i]);
        step++;
    } else {
        memcpy(zcur, zprev, chw * sizeof(double)); /* z_0 = x0 (identity step skipped) */
    }
    for (int j = 1; j < K; j++, step++) {
        if ((st = ie_run_progress(run, step, total, phase)) != IE_OK) goto done;
        const double l_prev = (j - 2) * delta, l_cur = (j - 1) * delta, l_next = j * delta;
        if ((st = guided_eps(&c, IE_PHASE_BDIA_INVERT, IE_BRANCH_SOURCE, step, total, p->num_steps, zcur, l_cur,
                             p->cond_uncond, p->cond, p->cfg, false)) != IE_OK)
            goto done;
        move mdown = move_between(&sched, l_prev, l_cur);
        move mup = move_between(&sched, l_cur, l_next);
        for (size_t i = 0; i < chw; i++) {
            double e = c.e[i];
            double F = up(&mup, zcur[i], e);
            double B = down(&mdown, zcur[i], e);
            znew[i] = (zprev[i] / gamma - B / gamma) + F;
        }
        double *tmp = zprev;
        zprev = zcur;
        zcur = znew;
        znew = tmp;
    }
    memcpy(z_hi, zcur, chw * sizeof(double));
    memcpy(z_lo, zprev, chw * sizeof(double));
    st = IE_OK;
done:
    ctx_free(&c);
    free(zprev);
    free(zcur);
    free(znew);
    return st;
}

/* e[r] = CFG(eps(x[r], t)) for R double states at once: one batch
 * [uncond rows 0..R-1, cond rows 0..R-1] with roles br[r]. For R = 1 this is
 * guided_eps's batch [uncond, cond] (same rows, same bits). */
static ie_status guided_eps_rows(bdia_ctx *c, int R, const ie_branch *br, int step, int total, int num_steps,
                                 double *const *x, double t, const int *cond_uncond, const int *cond,
                                 const double *cfg) {
    const size_t chw = c->chw;
    ie_row_role roles[4];
    int conds[4];
    double tt[4];
    for (int r = 0; r < R; r++) {
        for (size_t i = 0; i < chw; i++) c->xin[(size_t)r * chw + i] = (float)x[r][i];
        memcpy(c->xin + (size_t)(R + r) * chw, c->xin + (size_t)r * chw, chw * sizeof(float));
        roles[r] = (ie_row_role){(uint8_t)br[r], 1};
        roles[R + r] = (ie_row_role){(uint8_t)br[r], 0};
        conds[r] = cond_uncond[r];
        conds[R + r] = cond[r];
        tt[r] = tt[R + r] = t;
    }
    ie_step_info info = {IE_PHASE_BDIA_GENERATE, step, total, num_steps, t, 2 * R, roles, NULL};
    ie_status st = ie_run_eps(c->run, &info, c->xin, tt, conds, c->eps);
    if (st != IE_OK) return st;
    for (int r = 0; r < R; r++) {
        const float *eu = c->eps + (size_t)r * chw, *ec = c->eps + (size_t)(R + r) * chw;
        double *e = c->e + (size_t)r * chw;
        for (size_t i = 0; i < chw; i++) e[i] = (double)eu[i] + cfg[r] * ((double)ec[i] - (double)eu[i]);
    }
    return IE_OK;
}

/* The generation loop for R chains from the same pair (R = 1: the edit;
 * R = 2: [source, target] for Prompt-to-Prompt). out[r] = z_{-1} of chain r,
 * out_z0 (may be NULL) = chain R-1's z_0. */
static ie_status generate_rows(ie_run *run, const char *M, const double *z_hi, const double *z_lo, const bdia_params *p,
                               int R, const ie_branch *br, const int *cond_uncond, const int *cond, const double *cfg,
                               int num_steps, double *const *out, double *out_z0) {
    ie_status st = ie_run_check(run, M);
    if (st != IE_OK) return st;
    int K;
    if ((st = check_params(run, p, M, &K)) != IE_OK) return st;
    if (!z_hi || !z_lo || !out[0] || !out[R - 1])
        return ie_run_fail(run, IE_ERR_ARG, "%s: z_hi, z_lo and out must not be NULL", M);

    bdia_ctx c = {0};
    double *buf = NULL;
    if ((st = ctx_init_rows(&c, run, M, R)) != IE_OK) goto done;
    const size_t chw = c.chw;
    buf = malloc(3 * (size_t)R * chw * sizeof(double));
    if (!buf) {
        st = ie_run_fail(run, IE_ERR_NOMEM, "%s: out of memory", M);
        goto done;
    }
    double *zlast[2], *zcur[2], *znew[2]; /* z_{j+1}, z_j, z_{j-1} per chain */
    for (int r = 0; r < R; r++) {
        zlast[r] = buf + (size_t)(3 * r) * chw;
        zcur[r] = buf + (size_t)(3 * r + 1) * chw;
        znew[r] = buf + (size_t)(3 * r + 2) * chw;
        memcpy(zlast[r], z_hi, chw * sizeof(double));
        memcpy(zcur[r], z_lo, chw * sizeof(double));
    }
    ie_schedule sched;
    ie_schedule_sd(&sched);
    const double delta = (double)IE_TRAIN_STEPS / (double)p->num_steps;
    const double g = p->gamma;
    const int total = K - 1;
    const char *phase = ie_phase_name(IE_PHASE_BDIA_GENERATE);
    for (int j = K - 2, step = 0; j >= 0; j--, step++) {
        if ((st = ie_run_progress(run, step, total, phase)) != IE_OK) goto done;
        const double l_lo = (j - 1) * delta, l = j * delta, l_hi = (j + 1) * delta;
        if ((st = guided_eps_rows(&c, R, br, step, total, num_steps, zcur, l, cond_uncond, cond, cfg)) != IE_OK)
            goto done;
        move mdown = move_between(&sched, l_lo, l);
        move mup = move_between(&sched, l, l_hi);
        for (int r = 0; r < R; r++) {
            const double *ce = c.e + (size_t)r * chw, *zc = zcur[r], *zp = zlast[r];
            double *zn = znew[r];
            for (size_t i = 0; i < chw; i++) {
                double e = ce[i], z = zc[i], zl = zp[i];
                double F = down(&mdown, z, e);
                double B = up(&mup, z, e);
                zn[i] = ((zl - (1.0 - g) * (zl - z)) - g * (B - z)) + (F - z);
            }
            double *tmp = zlast[r];
            zlast[r] = zcur[r];
            zcur[r] = znew[r];
            znew[r] = tmp;
        }
    }
    /* zcur = z_{-1}, zlast = z_0 */
    for (int r = 0; r < R; r++) memcpy(out[r], zcur[r], chw * sizeof(double));
    if (out_z0) memcpy(out_z0, zlast[R - 1], chw * sizeof(double));
    st = IE_OK;
done:
    ctx_free(&c);
    free(buf);
    return st;
}

ie_status bdia_generate(ie_run *run, const double *z_hi, const double *z_lo, const bdia_params *p, double *out,
                        double *out_z0) {
    if (!p) return ie_run_fail(run, IE_ERR_ARG, "bdia_generate: params is NULL");
    ie_branch br = IE_BRANCH_TARGET;
    double *outs[1] = {out};
    return generate_rows(run, "bdia_generate", z_hi, z_lo, p, 1, &br, &p->cond_uncond, &p->cond, &p->cfg, p->num_steps,
                         outs, out_z0);
}

ie_status bdia_generate_p2p(ie_run *run, const double *z_hi, const double *z_lo, const bdia_params *p,
                            int cond_uncond_src, int cond_src, double cfg_src, double *out, double *out_src) {
    const char *M = "bdia_generate_p2p";
    ie_status st = ie_run_check(run, M);
    if (st != IE_OK) return st;
    if (!p) return ie_run_fail(run, IE_ERR_ARG, "%s: params is NULL", M);
    int K = bdia_levels(p);
    ie_branch br[2] = {IE_BRANCH_SOURCE, IE_BRANCH_TARGET};
    int cu[2] = {cond_uncond_src, p->cond_uncond}, cc[2] = {cond_src, p->cond};
    double cfg[2] = {cfg_src, p->cfg};
    const ie_denoiser *dn = run->dn;
    double *src = out_src ? out_src : malloc((size_t)dn->channels * dn->height * dn->width * sizeof(double));
    double *outs[2] = {src, out};
    st = src ? generate_rows(run, M, z_hi, z_lo, p, 2, br, cu, cc, cfg, K > 1 ? K - 1 : 1, outs, NULL)
             : ie_run_fail(run, IE_ERR_NOMEM, "%s: out of memory", M);
    if (!out_src) free(src);
    return st;
}

ie_status bdia_sample(ie_run *run, const bdia_sample_params *p, const float *x_T, double *out) {
    const char *M = "bdia_sample";
    ie_status st = ie_run_check(run, M);
    if (st != IE_OK) return st;
    if (!p || !out) return ie_run_fail(run, IE_ERR_ARG, "%s: params and out must not be NULL", M);
    if (p->num_steps < 1 || p->num_steps > IE_TRAIN_STEPS)
        return ie_run_fail(run, IE_ERR_ARG, "%s: num_steps %d is not in [1, 1000]", M, p->num_steps);
    if (!(p->gamma >= 0.0 && p->gamma <= 1.0) || !(p->eta >= 0.0) || !isfinite(p->cfg))
        return ie_run_fail(run, IE_ERR_ARG, "%s: gamma %g must be in [0, 1], eta %g >= 0, cfg finite", M, p->gamma,
                           p->eta);

    bdia_ctx c = {0};
    int *grid = NULL;
    double *x = NULL, *xlast = NULL, *xnew = NULL;
    float *noise = NULL;
    if ((st = ctx_init(&c, run, M)) != IE_OK) goto done;
    const size_t chw = c.chw;
    grid = malloc(((size_t)IE_TRAIN_STEPS + 1) * sizeof *grid);
    x = malloc(chw * sizeof(double));
    xlast = malloc(chw * sizeof(double));
    xnew = malloc(chw * sizeof(double));
    noise = malloc(chw * sizeof(float));
    if (!grid || !x || !xlast || !xnew || !noise) {
        st = ie_run_fail(run, IE_ERR_NOMEM, "%s: out of memory", M);
        goto done;
    }
    ie_schedule sched;
    ie_schedule_sd(&sched);
    /* ascending grid ts[0..n-1]; ie_grid_ldm returns it descending */
    const int n = ie_grid_ldm(p->num_steps, grid);
    ie_rng rng;
    ie_rng_seed(&rng, p->seed);
    if (x_T) {
        for (size_t i = 0; i < chw; i++) x[i] = x_T[i];
    } else {
        ie_rng_normal_fill(&rng, noise, chw);
        for (size_t i = 0; i < chw; i++) x[i] = noise[i];
    }
    const bool cond_only = p->cfg == 1.0;
    const double g = p->gamma;
    const char *phase = ie_phase_name(IE_PHASE_BDIA_SAMPLE);
    for (int step = 0; step < n; step++) {
        const int index = n - 1 - step; /* position in the ascending grid */
        const int t = grid[step];
        if ((st = ie_run_progress(run, step, n, phase)) != IE_OK) goto done;
        if ((st = guided_eps(&c, IE_PHASE_BDIA_SAMPLE, IE_BRANCH_TARGET, step, n, n, x, (double)t, p->cond_uncond,
                             p->cond, p->cfg, cond_only)) != IE_OK)
            goto done;
        const double a = ie_ab_at(&sched, t);
        const double ap = index == 0 ? sched.ab[0] : ie_ab_at(&sched, grid[step + 1]);
        const double sigma = p->eta * sqrt((1.0 - ap) / (1.0 - a) * (1.0 - a / ap));
        const double sa = sqrt(a), s1a = sqrt(1.0 - a), sap = sqrt(ap);
        double dc = 1.0 - ap - sigma * sigma;
        const double dir_c = sqrt(dc > 0.0 ? dc : 0.0);
        if (step == 0) {
            if (sigma > 0.0) ie_rng_normal_fill(&rng, noise, chw);
            for (size_t i = 0; i < chw; i++) {
                double e = c.e[i];
                double x0 = (x[i] - s1a * e) / sa;
                xnew[i] = sap * x0 + dir_c * e + (sigma > 0.0 ? sigma * (double)noise[i] : 0.0);
            }
        } else {
            const double al = ie_ab_at(&sched, grid[step - 1]); /* alphas[index + 1] */
            const double sal = sqrt(al), s1al = sqrt(1.0 - al);
            for (size_t i = 0; i < chw; i++) {
                double e = c.e[i], xi = x[i], xl = xlast[i];
                double x0 = (xi - s1a * e) / sa;
                xnew[i] =
                    (((xl - (1.0 - g) * (xl - xi)) - g * ((sal * x0 + s1al * e) - xi)) + sap * x0 + dir_c * e) - xi;
            }
        }
        double *tmp = xlast;
        xlast = x;
        x = xnew;
        xnew = tmp;
    }
    memcpy(out, x, chw * sizeof(double));
    st = IE_OK;
done:
    ctx_free(&c);
    free(grid);
    free(x);
    free(xlast);
    free(xnew);
    free(noise);
    return st;
}
