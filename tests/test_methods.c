/* Exactness tests of the three methods with toy denoisers (no networks).
 *
 * Toy denoisers on a 4x8x8 latent, deterministic and nonlinear, each row
 * computed independently (the denoiser contract):
 *   dense: eps = tanh(A x + b t/1000 + c_cond), A a fixed random 256x256
 *   conv:  eps = tanh(K (*) x + b_c t/1000 + c_cond,c), K a 3x3 circular
 *          convolution over 4 channels: exactly translation-equivariant under
 *          circular shifts (same summation order at every pixel), used to
 *          check that shifting the edit-friendly noise maps shifts the output.
 * With `same_prompt` the target condition (2) uses the source's vector (1).
 *
 * Validation targets (docs/methods.md, "Exactness"): EF-DDPM reconstruction (z_1 kept / zeroed),
 * BDIA round trip at gamma 1 / 0.94 / 0.5, InfEdit x_t == x_s with target =
 * source, UNet-evaluation counts, cancellation, noise-map manipulations,
 * local-blend masks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edit/align.h"
#include "inversion/bdia.h"
#include "edit/blend.h"
#include "inversion/ef_ddpm.h"
#include "inversion/infedit.h"
#include "inversion/rng.h"
#include "inversion/schedule.h"
#include "testutil.h"

#define C_ 4
#define H_ 8
#define W_ 8
#define HW (H_ * W_)
#define D (C_ * H_ * W_)
#define NCOND 5

/* --- toy denoisers ---------------------------------------------------------- */

typedef enum { TOY_DENSE, TOY_CONV } toy_kind;

typedef struct toy {
    toy_kind kind;
    double A[D][D];
    double K[C_][C_][3][3];
    double b[D];
    double c[NCOND][D];
    bool same_prompt;
    /* observation */
    int fail_at_call; /* >0: the n-th eps call fails */
    int calls;
    int last_batch;
    ie_row_role roles[8];
    int conds[8];
    ie_step_info last_info;
    ie_infedit_plan plans[64];
    int n_plans;
} toy;

static void toy_init(toy *t, toy_kind kind, uint64_t seed) {
    memset(t, 0, sizeof *t);
    t->kind = kind;
    ie_rng r;
    ie_rng_seed(&r, seed);
    const double sa = 1.5 / sqrt((double)D), sk = 1.5 / sqrt(9.0 * C_);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) t->A[i][j] = sa * (2 * ie_rng_uniform(&r) - 1);
    for (int o = 0; o < C_; o++)
        for (int i = 0; i < C_; i++)
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++) t->K[o][i][y][x] = sk * (2 * ie_rng_uniform(&r) - 1);
    for (int i = 0; i < D; i++) t->b[i] = 2 * ie_rng_uniform(&r) - 1;
    for (int k = 0; k < NCOND; k++)
        for (int i = 0; i < D; i++) t->c[k][i] = 0.8 * (2 * ie_rng_uniform(&r) - 1);
    if (kind == TOY_CONV) { /* spatially constant per channel, so the model stays equivariant */
        for (int k = 0; k < NCOND; k++)
            for (int i = 0; i < D; i++) t->c[k][i] = t->c[k][(i / HW) * HW];
        for (int i = 0; i < D; i++) t->b[i] = t->b[(i / HW) * HW];
    }
}

static void toy_row(const toy *t, const float *x, double tt, int cond, float *e) {
    int cv = (t->same_prompt && cond == IE_COND_TARGET) ? IE_COND_SOURCE : cond;
    for (int i = 0; i < D; i++) {
        double s = 0;
        if (t->kind == TOY_DENSE) {
            for (int j = 0; j < D; j++) s += t->A[i][j] * x[j];
        } else {
            int o = i / HW, y = (i % HW) / W_, xx = i % W_;
            for (int ci = 0; ci < C_; ci++)
                for (int dy = 0; dy < 3; dy++)
                    for (int dx = 0; dx < 3; dx++) {
                        int sy = (y + dy - 1 + H_) % H_, sx = (xx + dx - 1 + W_) % W_;
                        s += t->K[o][ci][dy][dx] * x[ci * HW + sy * W_ + sx];
                    }
        }
        e[i] = (float)tanh(s + t->b[i] * tt / 1000.0 + t->c[cv][i]);
    }
}

static ie_status toy_eps(void *ctx, int batch, const float *x, const double *tt, const int *cond, float *out) {
    toy *t = ctx;
    t->calls++;
    if (t->fail_at_call && t->calls == t->fail_at_call) return IE_ERR_DEVICE;
    if (batch > 8) return IE_ERR_ARG;
    t->last_batch = batch;
    for (int b = 0; b < batch; b++) {
        if (cond[b] < 0 || cond[b] >= NCOND) return IE_ERR_ARG;
        t->conds[b] = cond[b];
        toy_row(t, x + (size_t)b * D, tt[b], cond[b], out + (size_t)b * D);
    }
    return IE_OK;
}

static ie_status toy_step_begin(void *ctx, const ie_step_info *info) {
    toy *t = ctx;
    t->last_info = *info;
    for (int b = 0; b < info->batch && b < 8; b++) t->roles[b] = info->rows[b];
    if (info->plan && t->n_plans < 64) t->plans[t->n_plans++] = *(const ie_infedit_plan *)info->plan;
    return IE_OK;
}

static const char *toy_errmsg(void *ctx) {
    (void)ctx;
    return "toy device lost";
}

static ie_denoiser toy_denoiser(toy *t) {
    ie_denoiser d = {C_, H_, W_, t, toy_eps, toy_step_begin, toy_errmsg};
    return d;
}

/* --- helpers ---------------------------------------------------------------- */

static double max_abs_diff_f(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}
static double max_abs_diff_d(const double *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}
static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

static void make_x0(float *x0, uint64_t seed) {
    ie_rng r;
    ie_rng_seed(&r, seed);
    ie_rng_normal_fill(&r, x0, D);
}

typedef struct cancel_at {
    int step;
    int seen;
} cancel_at;
static bool cancel_progress(void *user, int step, int total, const char *phase) {
    (void)total;
    (void)phase;
    cancel_at *c = user;
    c->seen++;
    return step < c->step;
}

static void roll(const float *in, float *out, int dx, int dy) {
    for (int c = 0; c < C_; c++)
        for (int y = 0; y < H_; y++)
            for (int x = 0; x < W_; x++)
                out[c * HW + y * W_ + x] = in[c * HW + ((y - dy + H_) % H_) * W_ + ((x - dx + W_) % W_)];
}

/* --- EF-DDPM ---------------------------------------------------------------- */

static void test_ef_ddpm(void) {
    printf("\n== edit-friendly DDPM inversion ==\n");
    static toy t;
    toy_init(&t, TOY_DENSE, 11);
    t.same_prompt = true;
    ie_denoiser dn = toy_denoiser(&t);
    ie_run run = ie_run_make(&dn);
    float x0[D], out[2 * D], out0[D];
    make_x0(x0, 3);

    ef_ddpm_params ip;
    ef_ddpm_params_default(&ip);
    ip.keep_z1 = true;
    ip.seed = 7;
    ef_ddpm_maps *mk = NULL;
    ie_status st = ef_ddpm_invert(&run, x0, &ip, &mk);
    TU_CHECK(st == IE_OK && mk, "invert N=100 keep_z1: %s %s", ie_status_name(st), run.err);
    if (!mk) return;
    TU_CHECK(run.unet_evals == 200, "inversion UNet evaluations %lld (spec: 100 x 2 = 200)", (long long)run.unet_evals);
    TU_CHECK(mk->tau[1] == 1 && mk->tau[100] == 991 && mk->tau[64] == 631, "levels: tau_1 %d, tau_64 %d, tau_100 %d",
             mk->tau[1], mk->tau[64], mk->tau[100]);

    ef_ddpm_edit_params ep;
    ef_ddpm_edit_params_default(&ep);
    ep.skip = 0;
    ep.cfg[0] = ip.cfg_src;
    run.unet_evals = 0;
    st = ef_ddpm_edit(&run, mk, &ep, out);
    double err_keep = max_abs_diff_f(out, x0, D);
    TU_CHECK(st == IE_OK && err_keep <= 1e-5,
             "reconstruction, z_1 kept, target = source, cfg_tar = cfg_src, skip 0: max |err| = %.3e (tol 1e-5)",
             err_keep);
    TU_CHECK(memcmp(out, ef_ddpm_xt(mk, 0), sizeof(float) * D) == 0, "  ... bit-identical to the re-stored xt_0");
    TU_CHECK(run.unet_evals == 200, "editing UNet evaluations %lld (100 x 2)", (long long)run.unet_evals);
    memcpy(out0, out, sizeof out0);

    /* z_1 = 0 (the code's default): error = sigma_1 * z_1 */
    ip.keep_z1 = false;
    ef_ddpm_maps *m0 = NULL;
    st = ef_ddpm_invert(&run, x0, &ip, &m0);
    TU_CHECK(st == IE_OK && m0, "invert with z_1 := 0");
    if (m0) {
        float zero[D] = {0};
        TU_CHECK(memcmp(ef_ddpm_z(m0, 1), zero, sizeof zero) == 0 &&
                     memcmp(ef_ddpm_z(m0, 2), ef_ddpm_z(mk, 2), sizeof(float) * D) == 0,
                 "  z_1 is zero, the other maps equal the kept run's");
        st = ef_ddpm_edit(&run, m0, &ep, out);
        ie_schedule s;
        ie_schedule_sd(&s);
        double sd1 = sqrt(ie_ddpm_variance(&s, 1, 100));
        double err0 = max_abs_diff_f(out, x0, D);
        double zmax = max_abs(ef_ddpm_z(mk, 1), D);
        /* out_keep - out_zero = sigma_1 z_1 (up to float rounding) */
        double worst = 0;
        for (int i = 0; i < D; i++) {
            double d = fabs(((double)out0[i] - out[i]) - sd1 * ef_ddpm_z(mk, 1)[i]);
            if (d > worst) worst = d;
        }
        TU_CHECK(
            st == IE_OK && err0 > 1e-4 && err0 <= sd1 * zmax * 1.0001 + 1e-6 && worst < 1e-6,
            "reconstruction with z_1 = 0: max |err| = %.4f, nonzero and = sigma_1 |z_1| (sigma_1 %.4f, max|z_1| %.3f; "
            "residual %.1e)",
            err0, sd1, zmax, worst);
        ef_ddpm_maps_free(m0);
    }

    /* default edit: skip 36, cfg 15, a different target prompt */
    t.same_prompt = false;
    ef_ddpm_edit_params_default(&ep);
    run.unet_evals = 0;
    st = ef_ddpm_edit(&run, mk, &ep, out);
    TU_CHECK(st == IE_OK && run.unet_evals == 128 && t.last_batch == 2 && t.conds[0] == IE_COND_UNCOND &&
                 t.conds[1] == IE_COND_TARGET,
             "default edit (skip 36, cfg 15): %lld UNet evaluations (spec 64 x 2 = 128), batch [uncond, target]",
             (long long)run.unet_evals);
    TU_CHECK(t.last_info.num_steps == 100 && t.last_info.total == 64 && t.last_info.step == 63 && t.last_info.t == 1,
             "  step info: num_steps %d, total %d, last step %d at t=%g", t.last_info.num_steps, t.last_info.total,
             t.last_info.step, t.last_info.t);

    /* p2pinv batch layout: [uncond src, uncond tgt, cond src, cond tgt], shared z */
    t.same_prompt = true;
    ef_ddpm_edit_params_default_p2p(&ep);
    ep.skip = 0;
    ep.cfg[1] = ep.cfg[0] = ip.cfg_src;
    run.unet_evals = 0;
    st = ef_ddpm_edit(&run, mk, &ep, out);
    TU_CHECK(st == IE_OK && memcmp(out, ef_ddpm_xt(mk, 0), sizeof(float) * D) == 0 &&
                 memcmp(out + D, ef_ddpm_xt(mk, 0), sizeof(float) * D) == 0,
             "p2pinv layout, both rows = source prompt: both reconstruct xt_0 bit for bit");
    TU_CHECK(t.last_batch == 4 && t.roles[0].branch == IE_BRANCH_SOURCE && t.roles[0].uncond &&
                 t.roles[1].branch == IE_BRANCH_TARGET && t.roles[1].uncond && t.roles[2].branch == IE_BRANCH_SOURCE &&
                 !t.roles[2].uncond && t.roles[3].branch == IE_BRANCH_TARGET && !t.roles[3].uncond &&
                 t.conds[2] == IE_COND_SOURCE && t.conds[3] == IE_COND_TARGET && run.unet_evals == 400,
             "  rows [S-u, T-u, S-c, T-c], conds [0,0,1,2], %lld evaluations", (long long)run.unet_evals);
    ef_ddpm_edit_params_default_p2p(&ep);
    run.unet_evals = 0;
    st = ef_ddpm_edit(&run, mk, &ep, out);
    TU_CHECK(st == IE_OK && run.unet_evals == 88 * 4, "p2pinv defaults (skip 12): %lld evaluations (88 x 2 x batch 2)",
             (long long)run.unet_evals);

    /* cancellation */
    cancel_at ca = {5, 0};
    run.progress = cancel_progress;
    run.progress_user = &ca;
    ef_ddpm_maps *untouched = (ef_ddpm_maps *)&ca;
    st = ef_ddpm_invert(&run, x0, &ip, &untouched);
    TU_CHECK(st == IE_ERR_CANCELLED && untouched == (ef_ddpm_maps *)&ca,
             "cancel inversion at step 5: %s, output untouched (%s)", ie_status_name(st), run.err);
    float sentinel[2 * D], copy[2 * D];
    for (int i = 0; i < 2 * D; i++) sentinel[i] = -777.0f;
    memcpy(copy, sentinel, sizeof copy);
    ca.step = 3;
    st = ef_ddpm_edit(&run, mk, &ep, sentinel);
    TU_CHECK(st == IE_ERR_CANCELLED && memcmp(copy, sentinel, sizeof copy) == 0,
             "cancel editing at step 3: %s, output untouched", ie_status_name(st));
    run.progress = NULL;

    /* denoiser failure names the step */
    t.calls = 0;
    t.fail_at_call = 3;
    st = ef_ddpm_edit(&run, mk, &ep, out);
    TU_CHECK(st == IE_ERR_DEVICE && strstr(run.err, "step 2") && strstr(run.err, "toy device lost"),
             "denoiser failure: %s \"%s\"", ie_status_name(st), run.err);
    t.fail_at_call = 0;

    /* static colour edit of the maps */
    ef_ddpm_maps *mc = ef_ddpm_maps_clone(mk);
    uint8_t mask[HW];
    for (int i = 0; i < HW; i++) mask[i] = (i % W_) < W_ / 2;
    const float off[C_] = {0.5f, -0.5f, 0.0f, 0.25f};
    char err[256] = "";
    st = ef_ddpm_maps_color(mc, off, 1.0, mask, 10, 60, err, sizeof err);
    int ok = st == IE_OK;
    for (int k = 1; k <= 100 && ok; k++)
        for (int i = 0; i < D && ok; i++) {
            float want = ef_ddpm_z(mk, k)[i];
            if (k >= 10 && k <= 60 && mask[i % HW]) want = (float)(1.0 * want + off[i / HW]);
            ok = ef_ddpm_z(mc, k)[i] == want;
        }
    TU_CHECK(ok, "ef_ddpm_maps_color: offset applied on levels 10..60 inside the mask only");
    ef_ddpm_maps_free(mc);
    ef_ddpm_maps_free(mk);
}

static void test_ef_manipulations(void) {
    printf("\n== noise-map manipulations (conv toy: translation-equivariant) ==\n");
    static toy t;
    toy_init(&t, TOY_CONV, 21);
    ie_denoiser dn = toy_denoiser(&t);
    ie_run run = ie_run_make(&dn);
    float x0[D], a[D], b[D], ra[D];
    make_x0(x0, 5);
    ef_ddpm_params ip;
    ef_ddpm_params_default(&ip);
    ip.num_steps = 50;
    ef_ddpm_maps *m = NULL;
    ie_status st = ef_ddpm_invert(&run, x0, &ip, &m);
    if (st != IE_OK) {
        TU_CHECK(0, "invert (conv toy): %s", run.err);
        return;
    }
    ef_ddpm_edit_params ep;
    ef_ddpm_edit_params_default(&ep);
    ep.skip = 10;
    ep.cfg[0] = 7.5;
    st = ef_ddpm_edit(&run, m, &ep, a);

    ef_ddpm_maps *s = ef_ddpm_maps_clone(m);
    char err[256] = "";
    st = ef_ddpm_maps_shift(s, 3, -2, EF_SHIFT_WRAP, 0, err, sizeof err);
    st = st == IE_OK ? ef_ddpm_edit(&run, s, &ep, b) : st;
    roll(a, ra, 3, -2);
    TU_CHECK(st == IE_OK && memcmp(ra, b, sizeof b) == 0,
             "shift (+3, -2) wrap: edit of the shifted maps == the shifted edit, bit for bit (max diff %.1e)",
             max_abs_diff_f(ra, b, D));
    st = ef_ddpm_maps_shift(s, -3, 2, EF_SHIFT_WRAP, 0, err, sizeof err);
    TU_CHECK(st == IE_OK && memcmp(s->zs, m->zs, sizeof(float) * D * 50) == 0 &&
                 memcmp(s->xts, m->xts, sizeof(float) * D * 51) == 0,
             "shift back (-3, +2) restores all maps bit for bit");

    /* edge / noise modes: the covered interior is the shifted original */
    for (int mode = EF_SHIFT_EDGE; mode <= EF_SHIFT_NOISE; mode++) {
        ef_ddpm_maps *e1 = ef_ddpm_maps_clone(m), *e2 = ef_ddpm_maps_clone(m);
        ef_ddpm_maps_shift(e1, 2, 1, (ef_shift_edge)mode, 99, err, sizeof err);
        ef_ddpm_maps_shift(e2, 2, 1, (ef_shift_edge)mode, 99, err, sizeof err);
        int ok = 1;
        for (int k = 2; k <= 50 && ok; k++)
            for (int c = 0; c < C_; c++)
                for (int y = 1; y < H_; y++)
                    for (int x = 2; x < W_; x++)
                        ok &= ef_ddpm_z(e1, k)[c * HW + y * W_ + x] == ef_ddpm_z(m, k)[c * HW + (y - 1) * W_ + x - 2];
        int edge_ok = 1;
        if (mode == EF_SHIFT_EDGE)
            for (int c = 0; c < C_; c++)
                edge_ok &= ef_ddpm_z(e1, 7)[c * HW + 0 * W_ + 0] == ef_ddpm_z(m, 7)[c * HW + 0];
        st = ef_ddpm_edit(&run, e1, &ep, b);
        TU_CHECK(ok && edge_ok && memcmp(e1->zs, e2->zs, sizeof(float) * D * 50) == 0 && st == IE_OK,
                 "shift (+2, +1) %s: interior = shifted maps, deterministic, editable",
                 mode == EF_SHIFT_EDGE ? "edge" : "noise");
        ef_ddpm_maps_free(e1);
        ef_ddpm_maps_free(e2);
    }
    TU_CHECK(ef_ddpm_maps_shift(s, W_, 0, EF_SHIFT_WRAP, 0, err, sizeof err) == IE_ERR_ARG && strstr(err, "shift"),
             "a shift as large as the latent is refused: \"%s\"", err);

    /* the authors' colour guide (issue #3), in latent space */
    float target[D];
    uint8_t mask[HW];
    for (int i = 0; i < HW; i++) mask[i] = (i % W_) < W_ / 2;
    for (int i = 0; i < D; i++) target[i] = (i / HW) == 0 ? 1.5f : -0.5f;
    ef_color_guide cg = {target, mask, 0.5, 0, 0};
    ep.color = &cg;
    st = ef_ddpm_edit(&run, m, &ep, b);
    double din_a = 0, din_b = 0, dout_a = 0, dout_b = 0;
    int nin = 0, nout = 0;
    for (int i = 0; i < D; i++) {
        if (mask[i % HW]) {
            din_a += fabs(a[i] - target[i]);
            din_b += fabs(b[i] - target[i]);
            nin++;
        } else {
            dout_a += fabs(a[i] - target[i]);
            dout_b += fabs(b[i] - target[i]);
            nout++;
        }
    }
    TU_CHECK(st == IE_OK && din_b < 0.5 * din_a,
             "colour guide alpha 0.5: mean |x - target| inside the mask %.3f -> %.3f (outside %.3f -> %.3f)",
             din_a / nin, din_b / nin, dout_a / nout, dout_b / nout);
    ef_ddpm_maps_free(s);
    ef_ddpm_maps_free(m);
}

/* --- BDIA ------------------------------------------------------------------- */

static void test_bdia(void) {
    printf("\n== BDIA ==\n");
    static toy t;
    toy_init(&t, TOY_DENSE, 31);
    t.same_prompt = true;
    ie_denoiser dn = toy_denoiser(&t);
    ie_run run = ie_run_make(&dn);
    float x0[D];
    make_x0(x0, 9);
    double zh[D], zl[D], zh1[D], zl1[D], out[D], outz0[D];
    const double gammas[3] = {1.0, 0.94, 0.5};
    for (int g = 0; g < 3; g++) {
        bdia_params p;
        bdia_params_default(&p);
        p.gamma = gammas[g];
        run.unet_evals = 0;
        ie_status st = bdia_invert(&run, x0, &p, zh, zl);
        int64_t ev_inv = run.unet_evals;
        p.cond = IE_COND_TARGET; /* same prompt (toy same_prompt) */
        run.unet_evals = 0;
        st = st == IE_OK ? bdia_generate(&run, zh, zl, &p, out, outz0) : st;
        double err = max_abs_diff_d(out, x0, D);
        double zmax = 0;
        for (int i = 0; i < D; i++) zmax = fmax(zmax, fabs(zh[i]));
        if (g < 2)
            TU_CHECK(st == IE_OK && err <= 1e-6,
                     "round trip gamma %.2f: max |z_-1 - x0| = %.3e (tol 1e-6), max|z_39| %.2f", gammas[g], err, zmax);
        else
            printf("info gamma 0.50 (reported, not checked): round trip max |err| = %.3e, max|z_39| = %.3e (%s)\n", err,
                   zmax, ie_status_name(st));
        if (g == 1)
            TU_CHECK(ev_inv == 78 && run.unet_evals == 78,
                     "UNet evaluations: inversion %lld (39 x 2, first call skipped), generation %lld (39 x 2)",
                     (long long)ev_inv, (long long)run.unet_evals);
    }
    /* the identity first step, run vs skipped */
    bdia_params p;
    bdia_params_default(&p);
    bdia_invert(&run, x0, &p, zh, zl);
    p.run_first_call = true;
    run.unet_evals = 0;
    ie_status st = bdia_invert(&run, x0, &p, zh1, zl1);
    double dpair = 0;
    for (int i = 0; i < D; i++) dpair = fmax(dpair, fmax(fabs(zh[i] - zh1[i]), fabs(zl[i] - zl1[i])));
    p.cond = IE_COND_TARGET;
    bdia_generate(&run, zh1, zl1, &p, out, NULL);
    double err1 = max_abs_diff_d(out, x0, D);
    TU_CHECK(st == IE_OK && run.unet_evals == 80 + 78 && err1 <= 1e-6,
             "run_first_call (x0 + s e - s e): 80 evaluations, pair differs from the skipped version by %.1e, round "
             "trip %.1e",
             dpair, err1);

    /* the identity step itself: with K = 2 levels (N 50, strength 0.04) the pair is (z_1, z_0) */
    {
        bdia_params q;
        bdia_params_default(&q);
        q.strength = 0.04;
        q.run_first_call = true;
        ie_status s2 = bdia_invert(&run, x0, &q, zh1, zl1);
        double dz0 = 0;
        int ndiff = 0;
        for (int i = 0; i < D; i++) {
            double dd = fabs(zl1[i] - (double)x0[i]);
            ndiff += dd != 0;
            dz0 = fmax(dz0, dd / fmax(fabs((double)x0[i]), 1e-300));
        }
        TU_CHECK(s2 == IE_OK && dz0 < 4.5e-16,
                 "z_0 = (x0 + s e) - s e differs from x0 in %d of %d elements, by at most %.2e relative (<= 2 ulp)",
                 ndiff, D, dz0);
    }

    /* an edit and text-to-image run; cancellation */
    t.same_prompt = false;
    bdia_params_default(&p);
    bdia_invert(&run, x0, &p, zh, zl);
    p.cond = IE_COND_TARGET;
    st = bdia_generate(&run, zh, zl, &p, out, outz0);
    double dedit = max_abs_diff_d(out, x0, D);
    TU_CHECK(st == IE_OK && dedit > 1e-3 && isfinite(dedit),
             "edit with another prompt changes the latent (max diff %.3f)", dedit);
    /* Prompt-to-Prompt generation: [source, target] chains in one batch of 4. The
     * toy has no attention, so the target chain must equal the plain edit and the
     * source chain (the inversion's conditions) must retrace the inversion. */
    {
        double out_t[D], out_s[D];
        run.unet_evals = 0;
        ie_status s2 = bdia_generate_p2p(&run, zh, zl, &p, IE_COND_UNCOND, IE_COND_SOURCE, p.cfg, out_t, out_s);
        double d_t = 0;
        for (int i = 0; i < D; i++) d_t = fmax(d_t, fabs(out_t[i] - out[i]));
        double d_s = max_abs_diff_d(out_s, x0, D);
        TU_CHECK(s2 == IE_OK && d_t == 0 && d_s <= 1e-6 && run.unet_evals == 4 * 39,
                 "P2P generation: target chain = plain edit (max diff %.1e), source chain = x0 (%.1e), %lld "
                 "evaluations (39 x 4)",
                 d_t, d_s, (long long)run.unet_evals);
    }
    bdia_sample_params sp;
    bdia_sample_params_default(&sp);
    run.unet_evals = 0;
    st = bdia_sample(&run, &sp, NULL, out);
    int finite = 1;
    for (int i = 0; i < D; i++) finite &= isfinite(out[i]);
    TU_CHECK(st == IE_OK && run.unet_evals == 20 && finite,
             "text-to-image, 10 steps gamma 0.5 cfg 9: %lld evaluations, finite", (long long)run.unet_evals);
    cancel_at ca = {4, 0};
    run.progress = cancel_progress;
    run.progress_user = &ca;
    double sent[D];
    for (int i = 0; i < D; i++) sent[i] = 123.0;
    st = bdia_generate(&run, zh, zl, &p, sent, NULL);
    int untouched = 1;
    for (int i = 0; i < D; i++) untouched &= sent[i] == 123.0;
    TU_CHECK(st == IE_ERR_CANCELLED && untouched, "cancel generation at step 4: %s, output untouched",
             ie_status_name(st));
    run.progress = NULL;
    p.gamma = 0;
    TU_CHECK(bdia_invert(&run, x0, &p, zh, zl) == IE_ERR_ARG && strstr(run.err, "gamma"), "gamma 0 refused: \"%s\"",
             run.err);
}

/* --- InfEdit ---------------------------------------------------------------- */

typedef struct step_obs {
    int steps;
    int all_equal; /* x_t == x_s == x_m at every step */
    int check_step;
    float xs[D], xt[D], xm[D];
} step_obs;

static void obs_step(void *user, int step, const float *xs, const float *xt, const float *xm, const float *x0t) {
    (void)x0t;
    step_obs *o = user;
    o->steps++;
    if (memcmp(xs, xt, sizeof(float) * D) || memcmp(xs, xm, sizeof(float) * D)) o->all_equal = 0;
    if (step == o->check_step) {
        memcpy(o->xs, xs, sizeof o->xs);
        memcpy(o->xt, xt, sizeof o->xt);
        memcpy(o->xm, xm, sizeof o->xm);
    }
}

/* fake attention store for the blend: 2x2 maps (latent 8x8 -> ((8+1)//2+1)//2 = 2) */
typedef struct fake_store {
    float src[2 * 2 * 77], lay[2 * 2 * 77];
    int calls;
} fake_store;
static ie_status fake_get_maps(void *user, ie_cross_maps *out) {
    fake_store *f = user;
    f->calls++;
    out->h = out->w = 2;
    out->n_tok = 77;
    out->count = 40;
    out->src = f->src;
    out->lay = f->lay;
    return IE_OK;
}

static void test_blend_masks(void) {
    printf("\n== local-blend masks ==\n");
    static float S[16 * 16 * 77];
    memset(S, 0, sizeof S);
    float w[77] = {0};
    w[2] = 1;
    /* token 2: cell (y, x) value = x + 16 y (max 255 at (15, 15)); token 5 (not in w) huge */
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            S[(y * 16 + x) * 77 + 2] = (float)(40 * (x + 16 * y));
            S[(y * 16 + x) * 77 + 5] = 1e6f;
        }
    static uint8_t mask[64 * 64];
    int n = ie_blend_mask(S, 16, 16, 77, 40, w, 6, 0.5, 64, 64, mask);
    int ok = n > 0;
    for (int Y = 0; Y < 64 && ok; Y++)
        for (int X = 0; X < 64 && ok; X++) {
            int v = (X / 4) + 16 * (Y / 4);
            ok = mask[Y * 64 + X] == ((float)v / 255.0f > 0.5);
        }
    TU_CHECK(ok, "nearest 16->64 upsampling, max-normalised, strict > 0.5: %d of 4096 pixels", n);
    /* strictness: a cell exactly at theta * max is not in the mask (4 and 2 of max 4, theta 0.5) */
    static float S2[16 * 16 * 77];
    memset(S2, 0, sizeof S2);
    S2[(0 * 16 + 0) * 77 + 2] = 40 * 4.0f;
    S2[(0 * 16 + 1) * 77 + 2] = 40 * 2.0f;
    n = ie_blend_mask(S2, 16, 16, 77, 40, w, 6, 0.5, 64, 64, mask);
    TU_CHECK(n == 16 && mask[0] == 1 && mask[4] == 0, "value == theta * max excluded (strict >): %d pixels", n);
    float w0[77] = {0};
    n = ie_blend_mask(S, 16, 16, 77, 40, w0, 6, 0.5, 64, 64, mask);
    TU_CHECK(n == 0, "all-zero word vector -> empty mask (0/0 handled)");
    n = ie_blend_mask(S, 16, 16, 77, 40, w, 2, 0.5, 64, 64, mask);
    TU_CHECK(n == 0, "prompt without word tokens (len 2) -> empty mask");
    int n1 = ie_blend_mask(S, 16, 16, 77, 40, w, 6, 0.5, 64, 64, mask);
    w[5] = 1; /* token 5 (1e6 everywhere) counts only when 5 <= len - 2 */
    int n6 = ie_blend_mask(S, 16, 16, 77, 40, w, 6, 0.5, 64, 64, mask);
    int n7 = ie_blend_mask(S, 16, 16, 77, 40, w, 7, 0.5, 64, 64, mask);
    TU_CHECK(n6 == n1 && n7 == 4096, "only tokens 1..len-2 are used: len 6 -> %d pixels (token 5 ignored), len 7 -> %d",
             n6, n7);
}

static void test_infedit(void) {
    printf("\n== InfEdit ==\n");
    static toy t;
    toy_init(&t, TOY_DENSE, 41);
    t.same_prompt = true;
    ie_denoiser dn = toy_denoiser(&t);
    ie_run run = ie_run_make(&dn);
    float x0[D], out[D];
    make_x0(x0, 13);
    static step_obs obs;
    memset(&obs, 0, sizeof obs);
    obs.all_equal = 1;
    obs.check_step = -1;

    infedit_params p;
    infedit_params_default(&p);
    p.guidance_s = p.guidance_t = 2.0;
    p.on_step = obs_step;
    p.on_step_user = &obs;
    t.n_plans = 0;
    ie_status st = infedit_run(&run, x0, &p, NULL, out);
    TU_CHECK(st == IE_OK && obs.steps == 15 && obs.all_equal,
             "target = source, g_t = g_s = 2, no blend: x_t == x_s == x_m bit for bit at all %d steps", obs.steps);
    TU_CHECK(memcmp(out, x0, sizeof out) == 0, "  output x0_t == x0 (the source reconstruction) bit for bit");
    TU_CHECK(run.unet_evals == 90 && t.last_batch == 6, "UNet evaluations %lld (15 steps x batch 6)",
             (long long)run.unet_evals);
    TU_CHECK(t.roles[0].branch == IE_BRANCH_SOURCE && t.roles[0].uncond && t.roles[1].branch == IE_BRANCH_TARGET &&
                 t.roles[2].branch == IE_BRANCH_LAYOUT && t.roles[2].uncond && t.roles[3].branch == IE_BRANCH_SOURCE &&
                 !t.roles[3].uncond && t.roles[5].branch == IE_BRANCH_LAYOUT && !t.roles[5].uncond && t.conds[0] == 0 &&
                 t.conds[1] == 0 && t.conds[2] == 0 && t.conds[3] == 1 && t.conds[4] == 2 && t.conds[5] == 1,
             "  batch rows [src-u, tgt-u, lay-u, src, tgt, lay], conds [0 0 0 1 2 1]");
    int early = 0, cross = 0, blend = 0, usexm = -1, ok = t.n_plans == 15;
    for (int i = 0; i < t.n_plans; i++) {
        early += t.plans[i].self_early && i <= 3;
        ok &= t.plans[i].self_early == (i <= 3) && t.plans[i].cross_replace == (i <= 9) && t.plans[i].blend == (i > 0);
        cross += t.plans[i].cross_replace;
        blend += t.plans[i].blend;
        if (t.plans[i].use_xm) usexm = usexm == -1 ? i : -2;
    }
    TU_CHECK(ok && usexm == 13,
             "control plan N=15: self early i=0..3 (%d), cross window i=0..9 (%d), blend i>0 (%d), use_xm at i=%d",
             early, cross, blend, usexm);

    /* the demo defaults (g_s 1, g_t 2) with another target prompt */
    t.same_prompt = false;
    infedit_params_default(&p);
    run.unet_evals = 0;
    t.n_plans = 0;
    st = infedit_run(&run, x0, &p, NULL, out);
    double d = max_abs_diff_f(out, x0, D);
    TU_CHECK(st == IE_OK && d > 1e-3 && isfinite(d), "demo defaults, another target: output differs from x0 (max %.3f)",
             d);
    /* g_s = 1: the unused unconditional rows are skipped (issue 10), with the same bits as all six */
    TU_CHECK(run.unet_evals == 4 * 5 + 11 * 4,
             "g_s 1: %lld evaluations (4 early steps x 5 rows + 11 x 4; 90 with all rows)", (long long)run.unet_evals);
    {
        static float all_rows[D];
        infedit_params q = p;
        q.keep_unused_rows = true;
        run.unet_evals = 0;
        st = infedit_run(&run, x0, &q, NULL, all_rows);
        TU_CHECK(st == IE_OK && run.unet_evals == 90 && memcmp(all_rows, out, sizeof out) == 0,
                 "  the same output bit for bit as all six rows (%lld evaluations)", (long long)run.unet_evals);
    }

    /* denoise mode: strength 0.7 -> 10 steps from the 6th grid entry */
    p.denoise = true;
    p.strength = 0.7;
    t.n_plans = 0;
    run.unet_evals = 0;
    st = infedit_run(&run, x0, &p, NULL, out);
    TU_CHECK(
        st == IE_OK && run.unet_evals == 40 && t.n_plans == 10 && t.plans[0].start_steps == 5 &&
            fabs(t.plans[0].p - 6.0 / 15) < 1e-15 && t.last_info.t == 79,
        "denoise strength 0.7: %lld evaluations (10 x 4 rows at g_s 1), start_steps %d, first p = %.3f, last t = %g",
        (long long)run.unet_evals, t.plans[0].start_steps, t.plans[0].p, t.last_info.t);

    /* g_t <= 1 is refused */
    infedit_params_default(&p);
    p.guidance_t = 1.0;
    st = infedit_run(&run, x0, &p, NULL, out);
    TU_CHECK(st == IE_ERR_ARG && strstr(run.err, "guidance_t"), "guidance_t 1 refused: \"%.60s...\"", run.err);

    /* local blend through edit/blend with words from the aligner */
    enum { BOS = 49406, EOS = 49407, A = 320, RED = 736, BLUE = 1746, CIRCLE = 7117 };
    const int32_t src[] = {BOS, A, RED, CIRCLE, EOS}, tgt[] = {BOS, A, BLUE, CIRCLE, EOS};
    const int32_t loc[] = {BOS, BLUE, EOS}, mut[] = {BOS, CIRCLE, EOS};
    ie_infedit_align_input ai = {src, 5, tgt, 5, loc, 3, mut, 3, NULL, NULL, 0, IE_SIM_NONE};
    ie_infedit_align words;
    char err[256] = "";
    st = ie_align_infedit(&ai, &words, err, sizeof err);
    TU_CHECK(st == IE_OK && words.alpha_e[2] == 1 && words.alpha_m[3] == 1 && words.len == 5,
             "blend words: alpha_e at 'blue' (2), alpha_m at 'circle' (3)");
    static fake_store fs;
    memset(&fs, 0, sizeof fs);
    /* 'blue' (token 2) lives in cell (0,0) of the layout map, 'circle' (3) in cell (1,1) of the source map */
    fs.lay[(0 * 2 + 0) * 77 + 2] = 1.0f;
    fs.lay[(1 * 2 + 1) * 77 + 2] = 0.1f;
    fs.src[(1 * 2 + 1) * 77 + 3] = 1.0f;
    ie_local_blend lb;
    memset(&lb, 0, sizeof lb);
    lb.words = &words;
    ie_blend_params_default(&lb.params);
    lb.get_maps = fake_get_maps;
    lb.maps_user = &fs;
    static uint8_t me[HW], mm[HW], mme[HW];
    lb.masks = (ie_blend_masks){me, mm, mme};
    infedit_params_default(&p);
    p.blend = ie_local_blend_step;
    p.blend_user = &lb;
    p.on_step = obs_step;
    p.on_step_user = &obs;
    int ok1 = 1, ok3 = 1;
    for (int pass = 0; pass < 2; pass++) {
        obs.check_step = pass == 0 ? 1 : 3; /* t = 939 (theta_e 1.55: mask_e empty), t = 799 (theta_e 0.78) */
        st = infedit_run(&run, x0, &p, NULL, out);
        for (int c = 0; c < C_; c++)
            for (int y = 0; y < H_; y++)
                for (int x = 0; x < W_; x++) {
                    int i = c * HW + y * W_ + x;
                    bool in_e = y < 4 && x < 4, in_m = y >= 4 && x >= 4;
                    float want_other = in_m ? obs.xs[i] : obs.xm[i];
                    if (pass == 0) ok1 &= obs.xt[i] == want_other;
                    else ok3 &= in_e ? obs.xt[i] != obs.xm[i] || obs.xt[i] == obs.xs[i] : obs.xt[i] == want_other;
                }
    }
    TU_CHECK(st == IE_OK && ok1 && fs.calls == 2 * 14 && lb.steps_applied == 28,
             "blend i=1 (t=939): mask_e empty -> x_t = x_m, except mask_m quadrant -> x_s (%d map reads)", fs.calls);
    int ne = 0, nm = 0;
    for (int i = 0; i < HW; i++) {
        ne += me[i];
        nm += mm[i];
    }
    TU_CHECK(ok3 && ne == 16 && nm == 16,
             "blend i=3 (t=799): x_t kept in mask_e (top-left), x_s in mask_m (bottom-right), x_m elsewhere");

    /* cancellation */
    cancel_at ca = {3, 0};
    run.progress = cancel_progress;
    run.progress_user = &ca;
    float sent[D], copy[D];
    for (int i = 0; i < D; i++) sent[i] = 9.0f;
    memcpy(copy, sent, sizeof copy);
    p.blend = NULL;
    st = infedit_run(&run, x0, &p, NULL, sent);
    TU_CHECK(st == IE_ERR_CANCELLED && memcmp(sent, copy, sizeof copy) == 0, "cancel at step 3: %s, output untouched",
             ie_status_name(st));
}

int main(void) {
    test_ef_ddpm();
    test_ef_manipulations();
    test_bdia();
    test_blend_masks();
    test_infedit();
    return tu_finish("test_methods");
}
