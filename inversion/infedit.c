/* InfEdit's DDCM virtual-inversion sampler; see infedit.h. */
#include "inversion/infedit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inversion/rng.h"

void infedit_params_default(infedit_params *p) {
    memset(p, 0, sizeof *p);
    p->num_steps = 15;
    p->original_steps = 50;
    p->grid_formula = IE_LCM_CURRENT;
    p->guidance_s = 1.0;
    p->guidance_t = 2.0;
    p->eta = 1.0;
    p->denoise = false;
    p->strength = 0.7;
    p->cross_replace = 0.7;
    p->self_replace = 0.3;
    p->cross_source = IE_CROSS_FROM_SOURCE;
    p->seed = 0;
    p->cond_src_uncond = IE_COND_UNCOND;
    p->cond_tgt_uncond = IE_COND_UNCOND;
    p->cond_src = IE_COND_SOURCE;
    p->cond_tgt = IE_COND_TARGET;
}

int infedit_steps(const infedit_params *p, int *start_steps) {
    if (!p || p->num_steps < 1 || p->original_steps < 1 || p->original_steps > IE_TRAIN_STEPS ||
        p->num_steps > p->original_steps)
        return -1;
    int start = 0;
    if (p->denoise) {
        start = ie_grid_strength_start(p->num_steps, p->strength);
        if (start < 0) return -1;
    }
    if (start_steps) *start_steps = start;
    return p->num_steps - start;
}

void infedit_plan_at(const infedit_params *p, int start_steps, int i, ie_infedit_plan *out) {
    memset(out, 0, sizeof *out);
    out->step = i;
    out->num_steps = p->num_steps;
    out->start_steps = start_steps;
    /* the controller's ((cur_step + start_steps + 1) * 1.0 / num_steps), cur_step = i */
    out->p = (double)(i + start_steps + 1) * 1.0 / (double)p->num_steps;
    out->self_early = !(p->self_replace <= out->p);
    out->cross_replace = p->cross_replace >= out->p;
    out->cross_source = p->cross_source;
    out->blend = i > 0;
    /* step_callback runs after cur_step was advanced to i + 1 */
    out->use_xm = (i + 1) + start_steps + 1 == p->num_steps;
}

ie_status infedit_run(ie_run *run, const float *x0, const infedit_params *p, const float *init_noise, float *out) {
    const char *M = "infedit_run";
    ie_status st = ie_run_check(run, M);
    if (st != IE_OK) return st;
    if (!x0 || !p || !out) return ie_run_fail(run, IE_ERR_ARG, "%s: x0, params and out must not be NULL", M);
    int start = 0;
    const int steps = infedit_steps(p, &start);
    if (steps < 1)
        return ie_run_fail(run, IE_ERR_ARG,
                           "%s: num_steps %d / original_steps %d / strength %g are out of range "
                           "(1 <= num_steps <= original_steps <= 1000, strength in (0, 1])",
                           M, p->num_steps, p->original_steps, p->strength);
    if (!(p->guidance_t > 1.0))
        return ie_run_fail(run, IE_ERR_ARG,
                           "%s: guidance_t %g must be > 1 (the reference switches to a 3-row path without "
                           "CFG that its attention controller does not support)",
                           M, p->guidance_t);
    if (!isfinite(p->guidance_s) || !isfinite(p->guidance_t))
        return ie_run_fail(run, IE_ERR_ARG, "%s: guidance scales must be finite", M);
    if (!(p->eta >= 0.0 && p->eta <= 1.0))
        return ie_run_fail(run, IE_ERR_ARG, "%s: eta %g is not in [0, 1]", M, p->eta);

    const ie_denoiser *dn = run->dn;
    const size_t chw = (size_t)dn->channels * dn->height * dn->width;
    const int N = p->num_steps;
    int *grid = malloc((size_t)N * sizeof *grid);
    float *xs = malloc(chw * sizeof(float)), *xt = malloc(chw * sizeof(float));
    float *xm = malloc(chw * sizeof(float)), *x0t = malloc(chw * sizeof(float));
    float *z = malloc(chw * sizeof(float));
    float *xin = malloc(6 * chw * sizeof(float)), *eps = malloc(6 * chw * sizeof(float));
    if (!grid || !xs || !xt || !xm || !x0t || !z || !xin || !eps) {
        st = ie_run_fail(run, IE_ERR_NOMEM, "%s: out of memory", M);
        goto done;
    }
    ie_schedule sched;
    ie_schedule_sd(&sched);
    ie_grid_lcm(N, p->original_steps, p->grid_formula, grid);

    /* initial latents: RNG draws in the reference's order (noise, then one z per step) */
    ie_rng rng;
    ie_rng_seed(&rng, p->seed);
    if (init_noise) {
        memcpy(z, init_noise, chw * sizeof(float));
    } else {
        ie_rng_normal_fill(&rng, z, chw);
    }
    if (p->denoise) {
        double a = ie_ab_at(&sched, grid[start]);
        double sa = sqrt(a), s1 = sqrt(1.0 - a);
        for (size_t i = 0; i < chw; i++) xs[i] = (float)(sa * (double)x0[i] + s1 * (double)z[i]);
    } else {
        memcpy(xs, z, chw * sizeof(float));
    }
    memcpy(xt, xs, chw * sizeof(float));
    memcpy(xm, xs, chw * sizeof(float));

    const ie_row_role roles[6] = {{IE_BRANCH_SOURCE, 1}, {IE_BRANCH_TARGET, 1}, {IE_BRANCH_LAYOUT, 1},
                                  {IE_BRANCH_SOURCE, 0}, {IE_BRANCH_TARGET, 0}, {IE_BRANCH_LAYOUT, 0}};
    const int conds[6] = {p->cond_src_uncond, p->cond_tgt_uncond, p->cond_src_uncond,
                          p->cond_src,        p->cond_tgt,        p->cond_src};
    const double gs = p->guidance_s, gt = p->guidance_t;
    const char *phase = ie_phase_name(IE_PHASE_INFEDIT);

    for (int i = 0; i < steps; i++) {
        const int idx = start + i; /* index into the full grid (the scheduler's step_index) */
        const int t = grid[idx];
        const int tn = idx + 1 < N ? grid[idx + 1] : t;
        if ((st = ie_run_progress(run, i, steps, phase)) != IE_OK) goto done;

        ie_infedit_plan plan;
        infedit_plan_at(p, start, i, &plan);
        memcpy(xin + 0 * chw, xs, chw * sizeof(float));
        memcpy(xin + 1 * chw, xt, chw * sizeof(float));
        memcpy(xin + 2 * chw, xm, chw * sizeof(float));
        memcpy(xin + 3 * chw, xin, 3 * chw * sizeof(float));
        double tt[6];
        for (int b = 0; b < 6; b++) tt[b] = t;
        /* the rows this step needs (see keep_unused_rows in infedit.h) */
        bool active[6] = {true, true, true, true, true, true};
        if (gs == 1.0 && !p->keep_unused_rows) {
            active[2] = false;
            active[0] = plan.self_early;
        }
        int nb = 0, cond_c[6];
        ie_row_role roles_c[6];
        for (int b = 0; b < 6; b++) {
            if (!active[b]) continue;
            if (nb != b) memmove(xin + (size_t)nb * chw, xin + (size_t)b * chw, chw * sizeof(float));
            roles_c[nb] = roles[b];
            cond_c[nb] = conds[b];
            nb++;
        }
        ie_step_info info = {IE_PHASE_INFEDIT, i, steps, N, (double)t, nb, roles_c, &plan};
        if ((st = ie_run_eps(run, &info, xin, tt, cond_c, eps)) != IE_OK) goto done;
        for (int b = 5, k = nb - 1; b >= 0; b--) { /* back to the six slots (skipped ones: zero, unread) */
            if (active[b]) {
                if (k != b) memmove(eps + (size_t)b * chw, eps + (size_t)k * chw, chw * sizeof(float));
                k--;
            } else {
                memset(eps + (size_t)b * chw, 0, chw * sizeof(float));
            }
        }
        ie_rng_normal_fill(&rng, z, chw); /* one z per step, shared by all branches */

        const double a = ie_ab_at(&sched, t), an = ie_ab_at(&sched, tn);
        const double sa = sqrt(a), s1a = sqrt(1.0 - a), san = sqrt(an);
        const double var = p->eta * (1.0 - an); /* the code's std_dev_t */
        const double dvar = (1.0 - an) - var;
        const double dir_c = sqrt(dvar > 0.0 ? dvar : 0.0);
        const double snc = sqrt(var);
        const bool one_step = N == 1; /* "noise is not used for one-step sampling" */
        const float *e0 = eps, *e1 = eps + chw, *e2 = eps + 2 * chw;
        const float *e3 = eps + 3 * chw, *e4 = eps + 4 * chw, *e5 = eps + 5 * chw;
        for (size_t k = 0; k < chw; k++) {
            /* at gs == 1, u + (c - u) is c (exactly, in double, for eps values): the skipped rows */
            const double es = active[0] ? (double)e0[k] + gs * ((double)e3[k] - (double)e0[k]) : (double)e3[k];
            const double et = (double)e1[k] + gt * ((double)e4[k] - (double)e1[k]);
            const double em = active[2] ? (double)e2[k] + gs * ((double)e5[k] - (double)e2[k]) : (double)e5[k];
            const double vs = xs[k], vt = xt[k], vm = xm[k], v0 = x0[k];
            const double sn = snc * (double)z[k];
            const double ecs = (vs - sa * v0) / s1a;
            /* call 1: (x_s, x_t) */
            const double x0_t = v0 + ((vt - vs) - s1a * (et - es)) / sa;
            const double dir_t = dir_c * ((et - es) + ecs);
            /* call 2: (x_s, x_m) */
            const double x0_m = v0 + ((vm - vs) - s1a * (em - es)) / sa;
            const double dir_m = dir_c * ((em - es) + ecs);
            if (one_step) {
                xt[k] = (float)x0_t;
                xm[k] = (float)x0_m;
                xs[k] = (float)v0;
            } else {
                xt[k] = (float)((san * x0_t + dir_t) + sn);
                xm[k] = (float)((san * x0_m + dir_m) + sn);
                xs[k] = (float)((san * v0 + dir_m) + sn);
            }
            x0t[k] = (float)x0_t;
        }
        if (plan.blend && p->blend) {
            ie_infedit_blend_args ba = {i,         t,  a,  plan.use_xm, dn->channels, dn->height,
                                        dn->width, xs, xt, xm,          run->err,     sizeof run->err};
            run->err[0] = 0;
            st = p->blend(p->blend_user, &ba);
            if (st != IE_OK) {
                if (!run->err[0]) ie_run_fail(run, st, "%s: local blend failed at step %d", M, i);
                goto done;
            }
        }
        if (p->on_step) p->on_step(p->on_step_user, i, xs, xt, xm, x0t);
    }
    memcpy(out, x0t, chw * sizeof(float));
    st = IE_OK;
done:
    free(grid);
    free(xs);
    free(xt);
    free(xm);
    free(x0t);
    free(z);
    free(xin);
    free(eps);
    return st;
}
