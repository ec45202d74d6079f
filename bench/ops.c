/* Op benchmark: time and GFLOP/s of the hot ops of an SD 1.5 UNet, per
 * backend, against OpenBLAS sgemm on the same machine as the ceiling.
 *
 *   bench-ops [--backend cpu|vulkan|all] [--device N] [--reps N] [--quick] [--tiny] [--f16]
 *             [--only conv|gemm|attention]
 *
 * Shapes (batch 1 unless noted; SD 1.5 at 512x512 = a 64x64 latent):
 *   conv 3x3: [1,320,64,64]->320, [1,640,32,32]->640, [1,1280,16,16]->1280,
 *             [1,2560,8,8]->1280 (up_blocks.0 concat)
 *   GEMM 4096x1280x1280 (M x N x K), 256x10240x1280 (GEGLU's projection at a
 *        16x16 latent: few tokens, a large weight)
 *   attention: 4096 tokens, 8 heads, head dim 40 (down_blocks.0 self-attention)
 * --f16: weights (conv kernels, biases, the GEMM matrix) stored as fp16, as
 * the networks load them by default (the CPU backend widens them per op).
 * --only: that group of shapes only (to compare one op quickly).
 * --quick: the first conv and GEMM only. --tiny: every shape 16x smaller (conv 4x4
 * less spatial, GEMM M / 16, attention 256 tokens), a smoke run for slow
 * devices (scripts/gpu-check.sh --dry on lavapipe).
 * Time = the best of --reps runs after one warm-up run.
 */

#include "vkcompute/ops.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (all threads): on a shared machine this
 * does not count the time the threads spent waiting for a core. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static double g_cpu_secs; /* best CPU seconds of the last time_op / sgemm_ceiling */

static void fill(float *x, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
}

static ie_tensor *random_tensor(ie_backend *be, ie_dtype dt, int ndim, const int64_t *shape, uint32_t seed) {
    ie_tensor *t = ie_tensor_new(be, dt, ndim, shape);
    if (!t) return NULL;
    size_t n = (size_t)ie_tensor_numel(t);
    float *h = malloc(n * sizeof *h);
    if (!h) {
        ie_tensor_free(t);
        return NULL;
    }
    fill(h, n, seed);
    ie_status s = ie_tensor_upload_f32(t, h);
    free(h);
    if (s) {
        ie_tensor_free(t);
        return NULL;
    }
    return t;
}

/* Seconds of the best run of op(ctx) on be, after a warm-up; <0 on error. */
typedef ie_status (*op_fn)(ie_backend *be, void *ctx);

static double time_op(ie_backend *be, op_fn fn, void *ctx, int reps) {
    if (fn(be, ctx) || ie_backend_sync(be)) return -1;
    double best = 1e30;
    g_cpu_secs = 1e30;
    for (int r = 0; r < reps; r++) {
        double c0 = cpu_now();
        ie_backend_timer_begin(be);
        if (fn(be, ctx)) return -1;
        double t = ie_backend_timer_end(be);
        if (t < best) best = t;
        if (cpu_now() - c0 < g_cpu_secs) g_cpu_secs = cpu_now() - c0;
    }
    return best;
}

typedef struct conv_ctx {
    ie_tensor *out, *x, *w, *b;
} conv_ctx;

static ie_status run_conv(ie_backend *be, void *p) {
    conv_ctx *c = p;
    ie_conv2d_params cp = ie_conv2d_params_sym(1, 1);
    return ie_conv2d(be, c->out, c->x, c->w, c->b, &cp);
}

typedef struct mm_ctx {
    ie_tensor *out, *a, *w;
} mm_ctx;

static ie_status run_linear(ie_backend *be, void *p) {
    mm_ctx *c = p;
    return ie_linear(be, c->out, c->a, c->w, NULL);
}

typedef struct attn_ctx {
    ie_tensor *out, *q, *k, *v;
    int heads;
    float scale;
} attn_ctx;

static ie_status run_attn(ie_backend *be, void *p) {
    attn_ctx *c = p;
    return ie_attention(be, c->out, c->q, c->k, c->v, c->heads, c->scale, false);
}

static double sgemm_ceiling(int M, int N, int K, int reps) {
    float *a = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)K * N),
          *c = malloc(sizeof(float) * (size_t)M * N);
    if (!a || !b || !c) return 0;
    fill(a, (size_t)M * K, 1);
    fill(b, (size_t)K * N, 2);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.f, a, K, b, K, 0.f, c, N);
    double best = 1e30;
    g_cpu_secs = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cpu_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.f, a, K, b, K, 0.f, c, N);
        double t = now() - t0;
        if (t < best) best = t;
        if (cpu_now() - c0 < g_cpu_secs) g_cpu_secs = cpu_now() - c0;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * M * N * K / best * 1e-9;
}

/* ceiling_cpu: sgemm's GFLOP per CPU second (0: none) */
static double g_ceiling_cpu;

static void report(const char *backend, const char *what, double flops, double secs, double ceiling) {
    if (secs < 0) {
        printf("%-28s %-44s failed\n", backend, what);
        return;
    }
    double gf = flops / secs * 1e-9;
    printf("%-28s %-44s %9.2f ms %9.1f GFLOP/s", backend, what, secs * 1e3, gf);
    if (ceiling > 0) printf("  (%3.0f%% of sgemm)", 100.0 * gf / ceiling);
    if (!strcmp(backend, "cpu") && g_ceiling_cpu > 0) {
        double gfc = flops / g_cpu_secs * 1e-9;
        printf("  [%.1f GFLOP per CPU s, %3.0f%% of sgemm's]", gfc, 100.0 * gfc / g_ceiling_cpu);
    }
    printf("\n");
    fflush(stdout);
}

static void bench_backend(ie_backend *be, const char *label, bool quick, bool tiny, bool f16, int reps, double ceiling,
                          const char *only) {
    ie_dtype wt = f16 ? IE_F16 : IE_F32;
    static const int convs[][3] = {{320, 64, 64}, {640, 32, 32}, {1280, 16, 16}, {2560, 8, 8}};
    int nconv = only && strcmp(only, "conv") ? 0 : quick ? 1 : 4;
    for (int i = 0; i < nconv; i++) {
        int64_t C = convs[i][0], H = convs[i][1] / (tiny ? 4 : 1), W = convs[i][2] / (tiny ? 4 : 1);
        int64_t Co = C > 1280 ? 1280 : C;
        int64_t xs[4] = {1, C, H, W}, ws[4] = {Co, C, 3, 3}, bs[1] = {Co}, os[4] = {1, Co, H, W};
        conv_ctx c = {ie_tensor_new(be, IE_F32, 4, os), random_tensor(be, IE_F32, 4, xs, 3),
                      random_tensor(be, wt, 4, ws, 4), random_tensor(be, wt, 1, bs, 5)};
        char what[96];
        snprintf(what, sizeof what, "conv3x3 [1,%lld,%lld,%lld]->%lld%s", (long long)C, (long long)H, (long long)W,
                 (long long)Co, f16 ? " f16w" : "");
        double t = c.out && c.x && c.w && c.b ? time_op(be, run_conv, &c, reps) : -1;
        if (t < 0) fprintf(stderr, "  (%s)\n", ie_backend_errmsg(be));
        report(label, what, 2.0 * Co * C * 9 * H * W, t, ceiling);
        ie_tensor_free(c.out);
        ie_tensor_free(c.x);
        ie_tensor_free(c.w);
        ie_tensor_free(c.b);
    }
    static const int gemms[][3] = {{4096, 1280, 1280}, {256, 10240, 1280}}; /* M, N, K */
    for (int g = 0; g < ((!only || !strcmp(only, "gemm")) ? (quick ? 1 : 2) : 0); g++) {
        int64_t M = gemms[g][0] / (tiny ? 16 : 1), N = gemms[g][1], K = gemms[g][2];
        int64_t as[3] = {1, M, K}, ws[2] = {N, K}, os[3] = {1, M, N};
        mm_ctx c = {ie_tensor_new(be, IE_F32, 3, os), random_tensor(be, IE_F32, 3, as, 6),
                    random_tensor(be, wt, 2, ws, 7)};
        double t = c.out && c.a && c.w ? time_op(be, run_linear, &c, reps) : -1;
        if (t < 0) fprintf(stderr, "  (%s)\n", ie_backend_errmsg(be));
        char what[96];
        snprintf(what, sizeof what, "GEMM %lldx%lldx%lld (linear)%s", (long long)M, (long long)N, (long long)K,
                 f16 ? " f16w" : "");
        report(label, what, 2.0 * M * N * K, t, ceiling);
        ie_tensor_free(c.out);
        ie_tensor_free(c.a);
        ie_tensor_free(c.w);
    }
    if (!only || !strcmp(only, "attention")) {
        int64_t L = tiny ? 256 : 4096, H = 8, D = 40;
        int64_t s[3] = {1, L, H * D};
        attn_ctx c = {ie_tensor_new(be, IE_F32, 3, s),
                      random_tensor(be, IE_F32, 3, s, 8),
                      random_tensor(be, IE_F32, 3, s, 9),
                      random_tensor(be, IE_F32, 3, s, 10),
                      (int)H,
                      0.158113883f};
        double t = c.out && c.q && c.k && c.v ? time_op(be, run_attn, &c, reps) : -1;
        if (t < 0) fprintf(stderr, "  (%s)\n", ie_backend_errmsg(be));
        char what[96];
        snprintf(what, sizeof what, "attention %lld tok, 8 heads x 40", (long long)L);
        report(label, what, 4.0 * L * L * D * H, t, 0);
        ie_tensor_free(c.out);
        ie_tensor_free(c.q);
        ie_tensor_free(c.k);
        ie_tensor_free(c.v);
    }
}

int main(int argc, char **argv) {
    const char *which = "all", *only = NULL;
    int device = -1, reps = 3;
    bool quick = false, tiny = false, f16 = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc) which = argv[++i];
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--tiny")) tiny = true;
        else if (!strcmp(argv[i], "--f16")) f16 = true;
        else {
            printf("usage: bench-ops [--backend cpu|vulkan|all] [--device N] [--reps N] [--quick] [--tiny] [--f16]\n"
                   "                 [--only conv|gemm|attention]\n"
                   "Times SD 1.5 conv/GEMM/attention shapes per backend; OpenBLAS sgemm is the ceiling.\n");
            return strcmp(argv[i], "--help") && strcmp(argv[i], "-h") ? 2 : 0;
        }
    }
    if (reps < 1) reps = 1;
    double ceiling = sgemm_ceiling(4096, 1280, 1280, reps);
    g_ceiling_cpu = 2.0 * 4096 * 1280 * 1280 / g_cpu_secs * 1e-9;
    printf("OpenBLAS sgemm 4096x1280x1280 on this machine: %.1f GFLOP/s (%d threads) = the ceiling\n"
           "  (%.1f GFLOP per CPU second, the ceiling for the CPU backend's [per CPU s] figures, which\n"
           "  do not count time spent waiting for a core on a shared machine)\n\n",
           ceiling, openblas_get_num_threads(), g_ceiling_cpu);
    if (!strcmp(which, "cpu") || !strcmp(which, "all")) {
        ie_backend *cpu = ie_backend_cpu_new(0);
        bench_backend(cpu, "cpu", quick, tiny, f16, reps, ceiling, only);
        ie_backend_free(cpu);
    }
    if (!strcmp(which, "vulkan") || !strcmp(which, "all")) {
        char err[512];
        ie_backend *vk = ie_backend_vulkan_new(device, err, sizeof err);
        if (!vk) {
            printf("vulkan: unavailable (%s)\n", err);
        } else {
            char label[64];
            snprintf(label, sizeof label, "%.27s", ie_backend_description(vk));
            bench_backend(vk, label, quick, tiny, f16, reps, ceiling, only);
            ie_backend_free(vk);
        }
    }
    return 0;
}
