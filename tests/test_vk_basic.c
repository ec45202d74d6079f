/* Norms, elementwise ops and data movement on Vulkan against the CPU backend.
 *
 * Every op on random data with odd sizes (7x9 spatial, channel counts 5, 13,
 * 33), broadcast shapes, fp16 weights/tables, in-place calls, edge values
 * (large activations for GELU/SiLU/tanh, subnormal/inf/NaN for the fp16
 * conversions, timesteps up to 1000 and LCM guidance values up to 15000);
 * then the largest SD 1.5 shapes of a 64x64 latent (group_norm [1,320,64,64]
 * and [1,640,64,64], geglu [4096, 2x2560], layer_norm [2,4096,320]).
 * Determinism: the same input twice on Vulkan gives identical bits.
 */
#include "vkcompute/backend.h" /* ie_fp32_to_fp16 */
#include "vkcompute/ops.h"
#include "testutil.h"

#include <time.h>

static ie_backend *cpu, *vk;

/* --- a generic "same op on both backends" harness ---------------------------------- */

typedef struct targ {
    ie_dtype dt;
    int ndim;
    int64_t shape[4];
    const void *data; /* fp32 values (converted to dt), or raw int32 for IE_I32; NULL: none */
} targ;

static size_t targ_numel(const targ *a) {
    size_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= (size_t)a->shape[i];
    return n;
}

static ie_tensor *make(ie_backend *be, const targ *a) {
    ie_tensor *t = ie_tensor_new(be, a->dt, a->ndim, a->shape);
    if (!t) {
        fprintf(stderr, "tensor alloc failed: %s\n", ie_backend_errmsg(be));
        exit(2);
    }
    if (a->data) {
        ie_status st = a->dt == IE_I32 ? ie_tensor_upload(t, a->data) : ie_tensor_upload_f32(t, a->data);
        if (!tu_ok(st, be, "upload")) exit(2);
    }
    return t;
}

/* out, in[0..nin) -> status. ctx carries the op's scalar arguments. */
typedef ie_status (*run_fn)(ie_backend *be, ie_tensor *out, ie_tensor **in, const void *ctx);

enum {
    CK_TWICE = 1,   /* run twice on Vulkan: identical bits */
    CK_EXACT = 2,   /* Vulkan must match the CPU bit for bit */
    CK_INPLACE = 4, /* out is in[0] */
    CK_TIME = 8,    /* print the Vulkan time */
};

#define MAXIN 4

static void check_op(const char *name, run_fn fn, const void *ctx, const targ *out, const targ *in, int nin, double tol,
                     int flags) {
    const size_t n = targ_numel(flags & CK_INPLACE ? &in[0] : out);
    const ie_dtype odt = flags & CK_INPLACE ? in[0].dt : out->dt;
    const size_t nbytes = n * (odt == IE_F16 ? 2 : 4);
    float *want = tu_alloc(n), *got = tu_alloc(n);
    char *raw[2] = {calloc(1, nbytes + 1), calloc(1, nbytes + 1)}, *raw2 = calloc(1, nbytes + 1);
    double t_vk = 0;
    for (int which = 0; which < 2; which++) {
        ie_backend *be = which ? vk : cpu;
        ie_tensor *t[MAXIN] = {0}, *o;
        for (int i = 0; i < nin; i++) t[i] = make(be, &in[i]);
        o = flags & CK_INPLACE ? t[0] : make(be, out);
        double t0 = tu_now();
        int ok = tu_ok(fn(be, o, t, ctx), be, name) && tu_ok(ie_backend_sync(be), be, name);
        if (which) t_vk = tu_now() - t0;
        ok = ok && tu_ok(ie_tensor_download(o, raw[which]), be, name);
        if (ok && odt != IE_I32) ok = tu_ok(ie_tensor_download_f32(o, which ? got : want), be, name);
        if (ok && odt == IE_I32)
            for (size_t i = 0; i < n; i++) (which ? got : want)[i] = (float)((int32_t *)raw[which])[i];
        if (ok && which && (flags & CK_TWICE)) {
            if (flags & CK_INPLACE) ok = tu_ok(ie_tensor_upload_f32(t[0], in[0].data), be, name);
            ok = ok && tu_ok(fn(be, o, t, ctx), be, name) && tu_ok(ie_tensor_download(o, raw2), be, name);
            if (ok) TU_CHECK(memcmp(raw[1], raw2, nbytes) == 0, "deterministic: %s", name);
        }
        for (int i = 0; i < nin; i++) ie_tensor_free(t[i]);
        if (!(flags & CK_INPLACE)) ie_tensor_free(o);
        if (!ok) goto done;
    }
    tu_check_close(name, got, want, n, tol);
    if (flags & CK_EXACT) TU_CHECK(memcmp(raw[0], raw[1], nbytes) == 0, "bit-exact: %s", name);
    if ((flags & CK_TIME) || t_vk > 0.5) printf("     vulkan %.3f s (op + sync)\n", t_vk);
done:
    free(want), free(got), free(raw[0]), free(raw[1]), free(raw2);
}

static float *rand_buf(uint64_t seed, size_t n, float lo, float hi) {
    tu_rng r = tu_rng_new(seed);
    float *p = tu_alloc(n);
    tu_fill(&r, p, n, lo, hi);
    return p;
}

static targ T4(ie_dtype dt, int64_t a, int64_t b, int64_t c, int64_t d, const void *data) {
    targ t = {dt, 4, {a, b, c, d}, data};
    return t;
}
static targ T3(ie_dtype dt, int64_t a, int64_t b, int64_t c, const void *data) {
    targ t = {dt, 3, {a, b, c, 1}, data};
    return t;
}
static targ T2(ie_dtype dt, int64_t a, int64_t b, const void *data) {
    targ t = {dt, 2, {a, b, 1, 1}, data};
    return t;
}
static targ T1(ie_dtype dt, int64_t a, const void *data) {
    targ t = {dt, 1, {a, 1, 1, 1}, data};
    return t;
}

/* --- group_norm / layer_norm ------------------------------------------------------------ */

typedef struct gn_ctx {
    int groups;
    float eps;
    bool gamma, beta, silu;
} gn_ctx;

static ie_status run_gn(ie_backend *be, ie_tensor *out, ie_tensor **in, const void *ctx) {
    const gn_ctx *c = ctx;
    return ie_group_norm(be, out, in[0], c->groups, c->eps, c->gamma ? in[1] : NULL, c->beta ? in[2] : NULL, c->silu);
}

static void test_group_norm(int N, int C, int H, int W, int groups, bool affine, bool silu, ie_dtype wdt, float offset,
                            int flags) {
    const size_t n = (size_t)N * C * H * W;
    float *x = rand_buf(1000 + n + (size_t)groups, n, -2.f + offset, 2.f + offset);
    float *g = rand_buf(7, (size_t)C, 0.5f, 1.5f), *b = rand_buf(8, (size_t)C, -0.5f, 0.5f);
    gn_ctx c = {groups, 1e-5f, affine, affine, silu};
    targ in[3] = {T4(IE_F32, N, C, H, W, x), T1(wdt, C, g), T1(wdt, C, b)};
    targ out = T4(IE_F32, N, C, H, W, NULL);
    char name[160];
    snprintf(name, sizeof name, "group_norm [%d,%d,%d,%d] G%d%s%s%s%s%s", N, C, H, W, groups, affine ? " affine" : "",
             wdt == IE_F16 ? ":f16" : "", silu ? " silu" : "", offset != 0 ? " offset" : "",
             flags & CK_INPLACE ? " in-place" : "");
    check_op(name, run_gn, &c, &out, in, 3, wdt == IE_F16 ? 2e-3 : 1e-4, flags);
    free(x), free(g), free(b);
}

static void test_gn_partial_affine(void) {
    /* gamma only, f16 beta only */
    const int N = 2, C = 33, H = 7, W = 9;
    const size_t n = (size_t)N * C * H * W;
    float *x = rand_buf(31, n, -1.f, 3.f), *g = rand_buf(32, C, -1.f, 1.f);
    targ in[3] = {T4(IE_F32, N, C, H, W, x), T1(IE_F32, C, g), T1(IE_F16, C, g)};
    targ out = T4(IE_F32, N, C, H, W, NULL);
    gn_ctx c1 = {11, 1e-6f, true, false, false}, c2 = {3, 1e-6f, false, true, true};
    check_op("group_norm [2,33,7,9] G11 gamma only", run_gn, &c1, &out, in, 3, 1e-4, CK_TWICE);
    check_op("group_norm [2,33,7,9] G3 beta:f16 only silu", run_gn, &c2, &out, in, 3, 2e-3, CK_TWICE);
    free(x), free(g);
}

typedef struct ln_ctx {
    float eps;
    bool gamma, beta;
} ln_ctx;

static ie_status run_ln(ie_backend *be, ie_tensor *out, ie_tensor **in, const void *ctx) {
    const ln_ctx *c = ctx;
    return ie_layer_norm(be, out, in[0], c->eps, c->gamma ? in[1] : NULL, c->beta ? in[2] : NULL);
}

static void test_layer_norm(int B, int L, int C, bool gamma, bool beta, ie_dtype wdt, int flags) {
    const size_t n = (size_t)B * L * C;
    float *x = rand_buf(2000 + n, n, -3.f, 2.f);
    float *g = rand_buf(9, (size_t)C, 0.5f, 1.5f), *b = rand_buf(10, (size_t)C, -0.5f, 0.5f);
    ln_ctx c = {1e-5f, gamma, beta};
    targ in[3] = {T3(IE_F32, B, L, C, x), T1(wdt, C, g), T1(wdt, C, b)};
    targ out = T3(IE_F32, B, L, C, NULL);
    char name[160];
    snprintf(name, sizeof name, "layer_norm [%d,%d,%d]%s%s%s%s", B, L, C, gamma ? " gamma" : "", beta ? " beta" : "",
             wdt == IE_F16 ? ":f16" : "", flags & CK_INPLACE ? " in-place" : "");
    check_op(name, run_ln, &c, &out, in, 3, wdt == IE_F16 ? 2e-3 : 1e-4, flags);
    free(x), free(g), free(b);
}

/* --- elementwise ------------------------------------------------------------------------- */

static ie_status run_unary(ie_backend *be, ie_tensor *out, ie_tensor **in, const void *ctx) {
    return ie_unary(be, out, in[0], *(const ie_unary_op *)ctx);
}

static void test_unary(void) {
    static const char *names[] = {"silu", "gelu", "quick_gelu", "relu", "tanh"};
    const size_t n = 7 * 9 * 33;
    float *x = rand_buf(77, n, -8.f, 8.f);
    /* big activations and tails */
    x[0] = 30.f, x[1] = -30.f, x[2] = 100.f, x[3] = -100.f, x[4] = 1e-6f, x[5] = -1e-6f, x[6] = 0.f;
    x[7] = 4.5f, x[8] = -4.5f, x[9] = 3.9f, x[10] = -0.999f, x[11] = 1.001f;
    for (int op = 0; op <= IE_UNARY_TANH; op++) {
        ie_unary_op o = (ie_unary_op)op;
        targ in[1] = {T3(IE_F32, 7, 9, 33, x)};
        targ out = T3(IE_F32, 7, 9, 33, NULL);
        char name[96];
        snprintf(name, sizeof name, "unary %s [7,9,33]", names[op]);
        check_op(name, run_unary, &o, &out, in, 1, 1e-4, CK_TWICE);
        snprintf(name, sizeof name, "unary %s in-place", names[op]);
        check_op(name, run_unary, &o, &out, in, 1, 1e-4, CK_INPLACE);
    }
    free(x);
    /* GELU/tanh/SiLU on a dense grid: the erf approximation must hold everywhere,
     * and errors are judged pointwise against |y| + 1e-3 too. */
    const size_t m = 200001;
    float *g = tu_alloc(m);
    for (size_t i = 0; i < m; i++) g[i] = -10.f + 20.f * (float)i / (float)(m - 1);
    for (int op = 0; op <= IE_UNARY_TANH; op++) {
        if (op == IE_UNARY_RELU) continue;
        ie_unary_op o = (ie_unary_op)op;
        targ in[1] = {T1(IE_F32, (int64_t)m, g)};
        targ out = T1(IE_F32, (int64_t)m, NULL);
        char name[96];
        snprintf(name, sizeof name, "unary %s grid [-10, 10]", names[op]);
        check_op(name, run_unary, &o, &out, in, 1, 1e-5, 0);
    }
    free(g);
}

static ie_status run_geglu(ie_backend *be, ie_tensor *out, ie_tensor **in, const void *ctx) {
    return ie_geglu(be, out, in[0]);
}

static void test_geglu(int B, int L, int D, int flags) {
    const size_t n = (size_t)B * L * 2 * D;
    float *x = rand_buf(3000 + n, n, -5.f, 5.f);
    targ in[1] = {T3(IE_F32, B, L, 2 * D, x)};
    targ out = T3(IE_F32, B, L, D, NULL);
    char name[96];
    snprintf(name, sizeof name, "geglu [%d,%d,%d]", B, L, 2 * D);
    check_op(name, run_geglu, NULL, &out, in, 1, 1e-4, flags);
    free(x);
}

static ie_status run_add(ie_backend *be, ie_tensor *out, ie_tensor **in, const void *ctx) {
    return *(const int *)ctx ? ie_mul(be, out, in[0], in[1]) : ie_add(be, out, in[0], in[1]);
}

static void test_binary(void) {
    const int A[4] = {2, 33, 7, 9};
    const size_t na = 2 * 33 * 7 * 9;
    float *a = rand_buf(41, na, -2.f, 2.f), *b = rand_buf(42, na, -2.f, 2.f);
    static const struct {
        int ndim;
        int64_t s[4];
    } bs[] = {
        {4, {2, 33, 7, 9}}, {3, {33, 1, 1}}, {4, {2, 33, 1, 1}}, {1, {1}},
        {1, {9}},           {2, {7, 9}},     {4, {2, 1, 7, 9}},  {4, {1, 33, 7, 1}},
    };
    for (int op = 0; op < 2; op++) {
        for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) {
            for (int f16 = 0; f16 < 2; f16++) {
                targ in[2] = {T4(IE_F32, A[0], A[1], A[2], A[3], a),
                              {f16 ? IE_F16 : IE_F32, bs[i].ndim, {1, 1, 1, 1}, b}};
                for (int d = 0; d < bs[i].ndim; d++) in[1].shape[d] = bs[i].s[d];
                targ out = T4(IE_F32, A[0], A[1], A[2], A[3], NULL);
                char name[128], sh[64] = "";
                for (int d = 0; d < bs[i].ndim; d++)
                    snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%lld", d ? "," : "", (long long)bs[i].s[d]);
                snprintf(name, sizeof name, "%s [2,33,7,9] (b [%s]%s)", op ? "mul" : "add", sh, f16 ? " f16" : "");
                check_op(name, run_add, &op, &out, in, 2, f16 ? 2e-3 : 1e-4, f16 ? 0 : CK_EXACT);
                if (i == 1 && !f16) {
                    snprintf(name, sizeof name, "%s in-place (b [%s])", op ? "mul" : "add", sh);
                    check_op(name, run_add, &op, &out, in, 2, 1e-4, CK_INPLACE | CK_EXACT | CK_TWICE);
                }
            }
        }
    }
    free(a), free(b);
}

/* --- data movement --------------------------------------------------------------------------- */

static ie_status run_concat(ie_backend *be, ie_tensor *out, ie_tensor **in, const void *ctx) {
    return ie_concat_channels(be, out, in[0], in[1]);
}
static ie_status run_up(ie_backend *be, ie_tensor *out, ie_tensor **in, const void *ctx) {
    return ie_upsample_nearest2x(be, out, in[0]);
}
static ie_status run_tr(ie_backend *be, ie_tensor *out, ie_tensor **in, const void *ctx) {
    return ie_transpose(be, out, in[0]);
}
static ie_status run_copy(ie_backend *be, ie_tensor *out, ie_tensor **in, const void *ctx) {
    return ie_copy(be, out, in[0]);
}

static void test_movement(void) {
    float *a = rand_buf(51, 2 * 13 * 64 * 64, -1.f, 1.f), *b = rand_buf(52, 2 * 13 * 64 * 64, -1.f, 1.f);
    {
        targ in[2] = {T4(IE_F32, 2, 5, 7, 9, a), T4(IE_F32, 2, 13, 7, 9, b)};
        targ out = T4(IE_F32, 2, 18, 7, 9, NULL);
        check_op("concat [2,5,7,9] + [2,13,7,9]", run_concat, NULL, &out, in, 2, 0, CK_EXACT | CK_TWICE);
        targ in3[2] = {T3(IE_F32, 3, 1, 11, a), T3(IE_F32, 3, 4, 11, b)};
        targ out3 = T3(IE_F32, 3, 5, 11, NULL);
        check_op("concat [3,1,11] + [3,4,11]", run_concat, NULL, &out3, in3, 2, 0, CK_EXACT);
    }
    {
        targ in[1] = {T4(IE_F32, 2, 5, 7, 9, a)};
        targ out = T4(IE_F32, 2, 5, 14, 18, NULL);
        check_op("upsample_nearest2x [2,5,7,9]", run_up, NULL, &out, in, 1, 0, CK_EXACT | CK_TWICE);
        targ in2[1] = {T4(IE_F32, 1, 13, 32, 33, a)};
        targ out2 = T4(IE_F32, 1, 13, 64, 66, NULL);
        check_op("upsample_nearest2x [1,13,32,33]", run_up, NULL, &out2, in2, 1, 0, CK_EXACT);
    }
    {
        static const int cases[][3] = {{2, 63, 33}, {1, 1, 7}, {3, 7, 1}, {2, 32, 64}, {1, 4096, 320}, {2, 77, 768}};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            int B = cases[i][0], R = cases[i][1], C = cases[i][2];
            float *x = rand_buf(60 + i, (size_t)B * R * C, -1.f, 1.f);
            targ in[1] = {T3(IE_F32, B, R, C, x)};
            targ out = T3(IE_F32, B, C, R, NULL);
            char name[96];
            snprintf(name, sizeof name, "transpose [%d,%d,%d]", B, R, C);
            check_op(name, run_tr, NULL, &out, in, 1, 0, CK_EXACT | (i == 0 ? CK_TWICE : 0));
            free(x);
        }
        targ in4[1] = {T4(IE_F32, 2, 5, 7, 9, a)};
        targ out4 = T4(IE_F32, 2, 5, 9, 7, NULL);
        check_op("transpose [2,5,7,9] (4-D)", run_tr, NULL, &out4, in4, 1, 0, CK_EXACT);
    }
    {
        /* f32 source with fp16 edge cases: subnormals, ties, overflow, inf, NaN */
        const size_t n = 1001;
        float *x = rand_buf(71, n, -70000.f, 70000.f);
        const float special[] = {
            0.f,     -0.f,           1e-8f,          -3e-6f,         6.0e-5f,        6.1035156e-05f,
            65504.f, 65520.f,        1e30f,          -1e30f,         INFINITY,       -INFINITY,
            NAN,     1.00048828125f, 1.00146484375f, 2.9802322e-08f, 5.9604645e-08f, 8.940697e-08f};
        for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) x[i] = special[i];
        for (size_t i = 100; i < 400; i++) x[i] *= 1e-9f; /* subnormal range of fp16 */
        for (size_t i = 400; i < 700; i++) x[i] *= 1e-4f;
        targ dst16 = T2(IE_F16, 77, 13, NULL), dst32 = T2(IE_F32, 1001, 1, NULL);
        /* inf/NaN break tu_check_close: those are checked bit for bit below. */
        float *xf = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) xf[i] = fabsf(x[i]) <= 65504.f ? x[i] : 0.f;
        targ src32f = T3(IE_F32, 7, 11, 13, xf);
        check_op("copy f32 -> f16 (edge values)", run_copy, NULL, &dst16, &src32f, 1, 1e-3, CK_EXACT | CK_TWICE);
        check_op("copy f32 -> f32", run_copy, NULL, &dst32, &src32f, 1, 0, CK_EXACT);
        targ src16 = T3(IE_F16, 7, 11, 13, xf);
        check_op("copy f16 -> f32 (subnormals incl.)", run_copy, NULL, &dst32, &src16, 1, 0, CK_EXACT);
        check_op("copy f16 -> f16", run_copy, NULL, &dst16, &src16, 1, 0, CK_EXACT);
        int32_t *ids = malloc(n * sizeof(int32_t));
        for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(i * 2654435761u);
        targ srci = T1(IE_I32, (int64_t)n, ids), dsti = T2(IE_I32, 13, 77, NULL);
        check_op("copy i32 -> i32", run_copy, NULL, &dsti, &srci, 1, 0, CK_EXACT);
        /* f32 -> f16 bit patterns incl. NaN: compare raw halves */
        ie_tensor *s = ie_tensor_new(vk, IE_F32, 1, (int64_t[]){(int64_t)n});
        ie_tensor *d = ie_tensor_new(vk, IE_F16, 1, (int64_t[]){(int64_t)n});
        uint16_t *h = malloc(n * 2);
        if (s && d && ie_tensor_upload_f32(s, x) == IE_OK && ie_copy(vk, d, s) == IE_OK &&
            ie_tensor_download(d, h) == IE_OK) {
            size_t bad = 0;
            for (size_t i = 0; i < n; i++) {
                uint16_t e = ie_fp32_to_fp16(x[i]);
                if (h[i] != e) bad++;
            }
            TU_CHECK(bad == 0, "copy f32 -> f16 matches ie_fp32_to_fp16 on all %zu values (%zu differ)", n, bad);
        } else {
            TU_CHECK(0, "copy f32 -> f16 raw: %s", ie_backend_errmsg(vk));
        }
        ie_tensor_free(s), ie_tensor_free(d), free(h), free(ids), free(x), free(xf);
    }
    free(a), free(b);
}

/* --- timestep embedding / embedding -------------------------------------------------------- */

typedef struct ts_ctx {
    int dim;
    bool flip;
    float shift, max_period;
} ts_ctx;

static ie_status run_ts(ie_backend *be, ie_tensor *out, ie_tensor **in, const void *ctx) {
    const ts_ctx *c = ctx;
    return ie_timestep_embedding(be, out, in[0], c->dim, c->flip, c->shift, c->max_period);
}

static void test_timestep(void) {
    float t[1001];
    for (int i = 0; i <= 1000; i++) t[i] = (float)i;
    t[3] = 500.5f, t[5] = 980.25f;
    ts_ctx unet = {320, true, 0.f, 10000.f};
    targ in = T1(IE_F32, 1001, t), out = T2(IE_F32, 1001, 320, NULL);
    check_op("timestep_embedding t=0..1000 dim 320 flip", run_ts, &unet, &out, &in, 1, 1e-4, CK_TWICE);
    /* LCM guidance: w = (g - 1) * 1000, dim 256, sin first, shift 1 */
    float w[6] = {0.f, 1000.f, 3000.f, 7000.f, 7500.f, 15000.f};
    ts_ctx lcm = {256, false, 1.f, 10000.f};
    targ in2 = T1(IE_F32, 6, w), out2 = T2(IE_F32, 6, 256, NULL);
    check_op("timestep_embedding LCM w<=15000 dim 256 shift 1", run_ts, &lcm, &out2, &in2, 1, 1e-4, 0);
    ts_ctx odd = {33, false, 0.5f, 1000.f};
    targ in3 = T1(IE_F32, 7, t + 990), out3 = T2(IE_F32, 7, 33, NULL);
    check_op("timestep_embedding odd dim 33", run_ts, &odd, &out3, &in3, 1, 1e-4, 0);
}

static ie_status run_emb(ie_backend *be, ie_tensor *out, ie_tensor **in, const void *ctx) {
    return ie_embedding(be, out, in[0], in[1]);
}

static void test_embedding(int B, int L, int V, int D, ie_dtype dt) {
    int32_t *ids = malloc((size_t)B * L * sizeof(int32_t));
    tu_rng r = tu_rng_new(90 + (uint64_t)D);
    for (int i = 0; i < B * L; i++) ids[i] = (int32_t)(tu_next(&r) % (uint64_t)V);
    ids[0] = 0, ids[B * L - 1] = V - 1;
    float *tab = rand_buf(91, (size_t)V * D, -1.f, 1.f);
    targ in[2] = {T2(IE_I32, B, L, ids), T2(dt, V, D, tab)};
    targ out = T3(IE_F32, B, L, D, NULL);
    char name[96];
    snprintf(name, sizeof name, "embedding [%d,%d] table [%d,%d] %s", B, L, V, D, ie_dtype_name(dt));
    check_op(name, run_emb, NULL, &out, in, 2, 0, CK_EXACT | CK_TWICE);
    free(ids), free(tab);
}

int main(void) {
    char err[512];
    vk = ie_backend_vulkan_new(-1, err, sizeof err);
    if (!vk) {
        printf("skip: no Vulkan device: %s\n", err);
        return 77;
    }
    cpu = ie_backend_cpu_new(0);
    if (!cpu) {
        fprintf(stderr, "no CPU backend\n");
        return 1;
    }
    printf("vulkan: %s\ncpu: %s\n", ie_backend_description(vk), ie_backend_description(cpu));

    /* group_norm: odd sizes, single-chunk and multi-chunk paths */
    test_group_norm(2, 33, 7, 9, 3, true, false, IE_F32, 0.f, CK_TWICE);
    test_group_norm(2, 33, 7, 9, 11, true, true, IE_F32, 0.f, 0);
    test_group_norm(1, 5, 7, 9, 5, false, false, IE_F32, 0.f, 0);
    test_group_norm(2, 13, 3, 1, 13, true, true, IE_F16, 0.f, 0);           /* 3 elements per group */
    test_group_norm(1, 4, 1, 1, 4, true, false, IE_F32, 0.f, 0);            /* 1 element per group */
    test_group_norm(1, 96, 45, 47, 32, true, true, IE_F32, 0.f, CK_TWICE);  /* 2 uneven chunks */
    test_group_norm(1, 8, 300, 300, 2, true, false, IE_F32, 0.f, CK_TWICE); /* 64 chunks */
    test_group_norm(2, 64, 33, 35, 32, true, true, IE_F16, 0.f, 0);
    test_group_norm(1, 64, 40, 40, 32, true, false, IE_F32, 30.f, 0); /* |mean| >> std */
    test_group_norm(1, 96, 45, 47, 32, true, true, IE_F32, 0.f, CK_INPLACE | CK_TWICE);
    test_group_norm(2, 33, 7, 9, 3, true, true, IE_F32, 0.f, CK_INPLACE);
    test_gn_partial_affine();

    /* layer_norm */
    test_layer_norm(3, 5, 13, true, true, IE_F32, CK_TWICE);
    test_layer_norm(2, 77, 768, true, true, IE_F32, CK_TWICE);
    test_layer_norm(1, 7, 33, false, false, IE_F32, 0);
    test_layer_norm(1, 64, 1280, true, false, IE_F16, 0);
    test_layer_norm(2, 9, 320, false, true, IE_F16, 0);
    test_layer_norm(2, 9, 320, true, true, IE_F32, CK_INPLACE);

    test_unary();
    test_geglu(2, 7, 33, CK_TWICE);
    test_geglu(1, 5, 5, 0);
    test_binary();
    test_movement();
    test_timestep();
    test_embedding(2, 77, 1000, 768, IE_F32);
    test_embedding(2, 77, 1000, 768, IE_F16);
    test_embedding(3, 5, 17, 13, IE_F16);

    /* the largest SD 1.5 shapes at a 64x64 latent */
    printf("-- SD 1.5 shapes (64x64 latent)\n");
    test_group_norm(1, 320, 64, 64, 32, true, true, IE_F32, 0.f, CK_TWICE | CK_TIME);
    test_group_norm(1, 640, 64, 64, 32, true, false, IE_F32, 0.f, CK_TWICE | CK_TIME);
    test_geglu(1, 4096, 2560, CK_TWICE | CK_TIME);
    test_layer_norm(2, 4096, 320, true, true, IE_F32, CK_TWICE | CK_TIME);

    ie_backend_free(vk);
    ie_backend_free(cpu);
    return tu_finish("test_vk_basic");
}
