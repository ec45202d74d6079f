/* Shared plumbing for the methods: run context, progress, denoiser calls. */
#include "inversion/denoiser.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *ie_phase_name(ie_method_phase p) {
    switch (p) {
        case IE_PHASE_EF_INVERT: return "ef-ddpm invert";
        case IE_PHASE_EF_EDIT: return "ef-ddpm edit";
        case IE_PHASE_BDIA_INVERT: return "bdia invert";
        case IE_PHASE_BDIA_GENERATE: return "bdia generate";
        case IE_PHASE_BDIA_SAMPLE: return "bdia sample";
        case IE_PHASE_INFEDIT: return "infedit";
    }
    return "?";
}

ie_run ie_run_make(const ie_denoiser *dn) {
    ie_run r;
    memset(&r, 0, sizeof r);
    r.dn = dn;
    return r;
}

ie_status ie_run_fail(ie_run *run, ie_status st, const char *fmt, ...) {
    if (run) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(run->err, sizeof run->err, fmt, ap);
        va_end(ap);
    }
    return st;
}

ie_status ie_run_check(ie_run *run, const char *method) {
    if (!run) return IE_ERR_ARG;
    run->err[0] = 0;
    const ie_denoiser *dn = run->dn;
    if (!dn || !dn->eps)
        return ie_run_fail(run, IE_ERR_ARG, "%s: no denoiser (run->dn or its eps callback is NULL)", method);
    if (dn->channels < 1 || dn->height < 1 || dn->width < 1 ||
        (int64_t)dn->channels * dn->height * dn->width > (1 << 26))
        return ie_run_fail(run, IE_ERR_SHAPE, "%s: denoiser latent shape %dx%dx%d is not valid", method, dn->channels,
                           dn->height, dn->width);
    return IE_OK;
}

ie_status ie_run_progress(ie_run *run, int step, int total, const char *phase) {
    if (run->progress && !run->progress(run->progress_user, step, total, phase))
        return ie_run_fail(run, IE_ERR_CANCELLED, "%s: cancelled at step %d of %d", phase, step, total);
    return IE_OK;
}

ie_status ie_run_eps(ie_run *run, const ie_step_info *info, const float *x, const double *t, const int *cond,
                     float *eps_out) {
    const ie_denoiser *dn = run->dn;
    const char *phase = ie_phase_name(info->phase);
    ie_status st;
    if (dn->step_begin) {
        st = dn->step_begin(dn->ctx, info);
        if (st != IE_OK) {
            const char *m = dn->errmsg ? dn->errmsg(dn->ctx) : NULL;
            return ie_run_fail(run, st, "%s step %d (t=%g): attention control (step_begin) failed: %s", phase,
                               info->step, info->t, m && *m ? m : ie_status_name(st));
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = dn->eps(dn->ctx, info->batch, x, t, cond, eps_out);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    run->eps_seconds += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    run->denoiser_calls++;
    if (st != IE_OK) {
        const char *m = dn->errmsg ? dn->errmsg(dn->ctx) : NULL;
        return ie_run_fail(run, st, "%s step %d (t=%g, batch %d): denoiser failed: %s", phase, info->step, info->t,
                           info->batch, m && *m ? m : ie_status_name(st));
    }
    run->unet_evals += info->batch;
    return IE_OK;
}
