/* The CPU backend against the naive reference loops of naive.h.
 *
 * For every op: random data (odd sizes, batch 2, fp32 and fp16 weights),
 * CPU result vs naive within a tolerance, and a determinism check (the op run
 * twice into fresh outputs gives identical bytes). Outputs start as NaN so an
 * element an op forgets to write fails the comparison. Conv and attention also
 * run on a second backend with a 4 KiB scratch limit, which forces the chunked
 * im2col and query-block paths at these small sizes.
 */
#include "vkcompute/backend.h"
#include "naive.h"
#include "testutil.h"

#include <stdbool.h>

#define TOL_F32 1e-4 /* fp32 weights */
#define TOL_F16 2e-3 /* fp16 weights (the reference weights are rounded too) */
#define TOL_EW 1e-5  /* elementwise math */

static ie_backend *be;       /* default CPU backend */
static ie_backend *be_small; /* the same with a 4 KiB scratch limit */
/* the same with its AVX2 kernels (INVEDIT_CPU_NO_AVX512) and its baseline ones
 * (INVEDIT_CPU_NO_AVX2): on a CPU without AVX-512 or AVX2 they run the same
 * code as the default, elsewhere they must give the same bits */
static ie_backend *be_avx2, *be_base;

/* --- helpers ------------------------------------------------------------------ */

static void fail_status(const char *what, ie_backend *b, ie_status s) {
    TU_CHECK(0, "%s: %s (%s)", what, ie_status_name(s), ie_backend_errmsg(b));
}

/* A tensor holding data (fp32 values, converted to t's dtype), or NaN when data is NULL. */
static ie_tensor *mk(ie_backend *b, ie_dtype dt, int ndim, const int64_t *shape, const float *data) {
    ie_tensor *t = ie_tensor_new(b, dt, ndim, shape);
    if (!t) {
        fprintf(stderr, "tensor_new failed: %s\n", ie_backend_errmsg(b));
        exit(2);
    }
    int64_t n = ie_tensor_numel(t);
    float *tmp = NULL;
    if (!data) {
        tmp = tu_alloc((size_t)n);
        for (int64_t i = 0; i < n; i++) tmp[i] = NAN;
        data = tmp;
    }
    if (ie_tensor_upload_f32(t, data) != IE_OK) {
        fprintf(stderr, "upload failed: %s\n", ie_backend_errmsg(b));
        exit(2);
    }
    free(tmp);
    return t;
}

static ie_tensor *mk4(ie_backend *b, ie_dtype dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const float *data) {
    int64_t s[4] = {d0, d1, d2, d3};
    return mk(b, dt, 4, s, data);
}
static ie_tensor *mk3(ie_backend *b, ie_dtype dt, int64_t d0, int64_t d1, int64_t d2, const float *data) {
    int64_t s[3] = {d0, d1, d2};
    return mk(b, dt, 3, s, data);
}
static ie_tensor *mk2(ie_backend *b, ie_dtype dt, int64_t d0, int64_t d1, const float *data) {
    int64_t s[2] = {d0, d1};
    return mk(b, dt, 2, s, data);
}
static ie_tensor *mk1(ie_backend *b, ie_dtype dt, int64_t d0, const float *data) { return mk(b, dt, 1, &d0, data); }

/* t's values as fp32 (malloc'd). */
static float *get(ie_tensor *t) {
    float *h = tu_alloc((size_t)ie_tensor_numel(t));
    if (ie_tensor_download_f32(t, h) != IE_OK) {
        fprintf(stderr, "download failed: %s\n", ie_backend_errmsg(t->be));
        exit(2);
    }
    return h;
}

static float *rnd(tu_rng *r, size_t n, float lo, float hi) {
    float *x = tu_alloc(n);
    tu_fill(r, x, n, lo, hi);
    return x;
}
static float *rndn(tu_rng *r, size_t n, float std) {
    float *x = tu_alloc(n);
    tu_fill_normal(r, x, n, std);
    return x;
}
/* A copy of x rounded through fp16 when dt is f16 (the reference's view of a weight). */
static float *as_weight(const float *x, size_t n, ie_dtype dt) {
    float *y = tu_alloc(n);
    memcpy(y, x, n * sizeof(float));
    if (dt == IE_F16) naive_round_f16_array(y, n);
    return y;
}

static void check_bits(const char *name, const float *a, const float *b, size_t n) {
    TU_CHECK(memcmp(a, b, n * sizeof(float)) == 0, "%-48s deterministic (2 runs bit-identical)", name);
}

static const char *dt_name(ie_dtype dt) { return dt == IE_F16 ? "f16" : "f32"; }

/* --- fp16 ------------------------------------------------------------------------- */

static void test_fp16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float a = ie_fp16_to_fp32((uint16_t)h), b = naive_f16_to_f32((uint16_t)h);
        if (isnan(b) ? !isnan(a) : memcmp(&a, &b, 4) != 0) bad++;
    }
    TU_CHECK(bad == 0, "fp16->fp32 all 65536 halves match naive (%d differ)", bad);

    /* the backend's row conversion (F16C's vcvtph2ps where the CPU has it, issue 10): every
     * half through ie_copy f16 -> f32, against the same naive conversion */
    {
        uint16_t *hs = malloc(65536 * sizeof *hs);
        float *got = tu_alloc(65536);
        for (uint32_t h = 0; h < 65536; h++) hs[h] = (uint16_t)h;
        int64_t sh[1] = {65536};
        ie_tensor *th = ie_tensor_new(be, IE_F16, 1, sh), *tf = ie_tensor_new(be, IE_F32, 1, sh);
        ie_status s = th && tf ? ie_tensor_upload(th, hs) : IE_ERR_NOMEM;
        if (!s) s = ie_copy(be, tf, th);
        if (!s) s = ie_tensor_download(tf, got);
        int bad16 = s ? 65536 : 0;
        for (uint32_t h = 0; !s && h < 65536; h++) {
            float b = naive_f16_to_f32((uint16_t)h);
            if (isnan(b) ? !isnan(got[h]) : memcmp(&got[h], &b, 4) != 0) bad16++;
        }
        TU_CHECK(bad16 == 0, "backend fp16->fp32 rows (%s): all 65536 halves match naive (%d differ)",
                 ie_backend_description(be), bad16);
        ie_tensor_free(th);
        ie_tensor_free(tf);
        free(hs);
        free(got);
    }

    tu_rng r = tu_rng_new(1);
    bad = 0;
    static const float special[] = {0.0f,     -0.0f,         65504.0f,      65519.99f,     65520.0f, 1e-8f,
                                    2.98e-8f, 2.9802322e-8f, 5.9604645e-8f, 6.1035156e-5f, 6.1e-5f,  1.0f / 3,
                                    INFINITY, -INFINITY,     1e30f,         -1e-30f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (ie_fp32_to_fp16(special[i]) != naive_f32_to_f16(special[i])) bad++;
    for (int i = 0; i < 1000000; i++) {
        /* random sign, exponent across the half range and beyond, random mantissa */
        uint32_t bits = (uint32_t)(tu_next(&r) >> 32);
        uint32_t e = 127 - 30 + (bits >> 8) % 50;
        uint32_t u = (bits & 0x80000000u) | (e << 23) | ((uint32_t)tu_next(&r) & 0x7fffffu);
        float f;
        memcpy(&f, &u, 4);
        if (ie_fp32_to_fp16(f) != naive_f32_to_f16(f)) bad++;
    }
    float nanf_ = NAN;
    TU_CHECK(bad == 0 && isnan(ie_fp16_to_fp32(ie_fp32_to_fp16(nanf_))),
             "fp32->fp16 1M random + specials match naive RNE (%d differ), NaN stays NaN", bad);
}

/* --- conv2d ------------------------------------------------------------------------- */

typedef struct conv_case {
    const char *what;
    int64_t N, Cin, H, W, Cout, KH, KW;
    int stride, pt, pb, pl, pr;
    bool bias;
} conv_case;

static void run_conv(const conv_case *c, ie_dtype wdt, uint64_t seed) {
    tu_rng r = tu_rng_new(seed);
    const int64_t OH = naive_conv_out_size(c->H, c->KH, c->stride, c->pt, c->pb);
    const int64_t OW = naive_conv_out_size(c->W, c->KW, c->stride, c->pl, c->pr);
    const size_t nx = (size_t)(c->N * c->Cin * c->H * c->W), nw = (size_t)(c->Cout * c->Cin * c->KH * c->KW);
    const size_t no = (size_t)(c->N * c->Cout * OH * OW);
    float *x = rnd(&r, nx, -1, 1), *w = rnd(&r, nw, -0.5f, 0.5f), *b = rnd(&r, (size_t)c->Cout, -1, 1);
    float *wr = as_weight(w, nw, wdt), *br = as_weight(b, (size_t)c->Cout, wdt);
    float *want = tu_alloc(no);
    naive_conv2d(want, x, wr, c->bias ? br : NULL, c->N, c->Cin, c->H, c->W, c->Cout, c->KH, c->KW, c->stride, c->pt,
                 c->pb, c->pl, c->pr);
    ie_conv2d_params p = {c->stride, c->pt, c->pb, c->pl, c->pr};

    ie_backend *bes[2] = {be, be_small};
    for (int bi = 0; bi < 2; bi++) {
        ie_backend *B = bes[bi];
        ie_tensor *tx = mk4(B, IE_F32, c->N, c->Cin, c->H, c->W, x);
        ie_tensor *tw = mk4(B, wdt, c->Cout, c->Cin, c->KH, c->KW, w);
        ie_tensor *tb = c->bias ? mk1(B, wdt, c->Cout, b) : NULL;
        float *got[2] = {0};
        for (int rep = 0; rep < (bi == 0 ? 2 : 1); rep++) {
            ie_tensor *to = mk4(B, IE_F32, c->N, c->Cout, OH, OW, NULL);
            ie_status s = ie_conv2d(B, to, tx, tw, tb, &p);
            if (s) fail_status("conv2d", B, s);
            got[rep] = get(to);
            ie_tensor_free(to);
        }
        char name[160];
        snprintf(name, sizeof name, "conv2d %s w=%s%s", c->what, dt_name(wdt), bi ? " (4K scratch)" : "");
        tu_check_close(name, got[0], want, no, wdt == IE_F16 ? TOL_F16 : TOL_F32);
        if (bi == 0) check_bits(name, got[0], got[1], no);
        free(got[0]);
        free(got[1]);
        ie_tensor_free(tx);
        ie_tensor_free(tw);
        ie_tensor_free(tb);
    }
    free(x);
    free(w);
    free(b);
    free(wr);
    free(br);
    free(want);
}

static void test_conv2d(void) {
    static const conv_case cases[] = {
        /* what                               N  Cin H  W  Cout KH KW  s pt pb pl pr bias */
        {"3x3 s1 p1 [2,5,7,9]->13", 2, 5, 7, 9, 13, 3, 3, 1, 1, 1, 1, 1, true},
        {"3x3 s1 p1 [1,33,9,7]->5 no bias", 1, 33, 9, 7, 5, 3, 3, 1, 1, 1, 1, 1, false},
        {"1x1 direct [2,13,7,9]->33", 2, 13, 7, 9, 33, 1, 1, 1, 0, 0, 0, 0, true},
        {"1x1 s2 [1,5,7,9]->13", 1, 5, 7, 9, 13, 1, 1, 2, 0, 0, 0, 0, true},
        {"1x1 s1 p1 [1,5,7,9]->13", 1, 5, 7, 9, 13, 1, 1, 1, 1, 1, 1, 1, true},
        {"3x3 s2 p1 [2,13,9,7]->5", 2, 13, 9, 7, 5, 3, 3, 2, 1, 1, 1, 1, true},
        {"3x3 s2 pad(0,1,0,1) [2,5,8,8]->13", 2, 5, 8, 8, 13, 3, 3, 2, 0, 1, 0, 1, true},
        {"3x3 s2 pad(0,1,0,1) [1,13,7,9]->5", 1, 13, 7, 9, 5, 3, 3, 2, 0, 1, 0, 1, true},
        {"4x4 s1 p0 [1,5,9,7]->13", 1, 5, 9, 7, 13, 4, 4, 1, 0, 0, 0, 0, true},
        {"5x3 s1 p(2,1,0,3) [2,5,7,9]->4", 2, 5, 7, 9, 4, 5, 3, 1, 2, 1, 0, 3, true},
        {"3x3 s1 p1 [2,64,16,16]->32", 2, 64, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, true},
        /* the shifted-GEMM path (stride 1, OH*OW >= Cout, OW >= 16): uneven pads, no bias, 1 row per
         * chunk in the 4K-scratch backend */
        {"5x3 s1 p(2,1,0,3) [2,5,7,19]->4 shifted", 2, 5, 7, 19, 4, 5, 3, 1, 2, 1, 0, 3, true},
        {"4x4 s1 p0 [1,6,9,20]->7 shifted no bias", 1, 6, 9, 20, 7, 4, 4, 1, 0, 0, 0, 0, false},
        {"3x3 s1 p1 [1,24,16,24]->16 shifted", 1, 24, 16, 24, 16, 3, 3, 1, 1, 1, 1, 1, true},
        {"3x3 s1 p1 tiny [1,3,2,3]->4", 1, 3, 2, 3, 4, 3, 3, 1, 1, 1, 1, 1, true},
        /* a weight of 138240 values: fp16 widened in 64 Ki blocks on the pool (3 blocks, one partial) */
        {"3x3 s1 p1 [2,96,12,12]->160", 2, 96, 12, 12, 160, 3, 3, 1, 1, 1, 1, 1, true},
        /* weights the larger side (an 8x8 layer): fp16 weights are widened per thread in panels
         * of K inside the sgemm (K = 4608 in several panels), summed in a fixed order */
        {"3x3 s1 p1 [1,512,8,8]->640", 1, 512, 8, 8, 640, 3, 3, 1, 1, 1, 1, 1, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_conv(&cases[i], IE_F32, 100 + i);
        run_conv(&cases[i], IE_F16, 200 + i);
    }
}

/* --- matmul / linear ------------------------------------------------------------------ */

typedef struct mm_case {
    int64_t B, M, N, K;
    bool ta, tb, a_batched, b_batched, bias;
    ie_dtype bdt, biasdt;
} mm_case;

static void run_matmul(const mm_case *c, uint64_t seed) {
    tu_rng r = tu_rng_new(seed);
    const int64_t Ba = c->a_batched ? c->B : 1, Bb = c->b_batched ? c->B : 1;
    const size_t na = (size_t)(Ba * c->M * c->K), nb = (size_t)(Bb * c->K * c->N), no = (size_t)(c->B * c->M * c->N);
    float *a = rnd(&r, na, -1, 1), *b = rnd(&r, nb, -1, 1), *bias = rnd(&r, (size_t)c->N, -1, 1);
    float *br = as_weight(b, nb, c->bdt), *biasr = as_weight(bias, (size_t)c->N, c->biasdt);
    float *want = tu_alloc(no);
    naive_matmul(want, a, br, c->bias ? biasr : NULL, c->B, c->M, c->N, c->K, c->ta, c->tb, c->a_batched, c->b_batched);

    /* 2-D operands when not batched (broadcast); 3-D [B, ...] when batched */
    int64_t ash[3] = {Ba, c->ta ? c->K : c->M, c->ta ? c->M : c->K};
    int64_t bsh[3] = {Bb, c->tb ? c->N : c->K, c->tb ? c->K : c->N};
    int64_t osh[3] = {c->B, c->M, c->N};
    ie_tensor *ta = c->a_batched ? mk(be, IE_F32, 3, ash, a) : mk(be, IE_F32, 2, ash + 1, a);
    ie_tensor *tb = c->b_batched ? mk(be, c->bdt, 3, bsh, b) : mk(be, c->bdt, 2, bsh + 1, b);
    ie_tensor *tbias = c->bias ? mk1(be, c->biasdt, c->N, bias) : NULL;
    float *got[2];
    for (int rep = 0; rep < 2; rep++) {
        ie_tensor *to = c->B > 1 ? mk(be, IE_F32, 3, osh, NULL) : mk(be, IE_F32, 2, osh + 1, NULL);
        ie_status s = ie_matmul(be, to, ta, tb, tbias, c->ta, c->tb);
        if (s) fail_status("matmul", be, s);
        got[rep] = get(to);
        ie_tensor_free(to);
    }
    char name[160];
    snprintf(name, sizeof name, "matmul B%lld M%lld N%lld K%lld%s%s%s%s%s b=%s", (long long)c->B, (long long)c->M,
             (long long)c->N, (long long)c->K, c->ta ? " tA" : "", c->tb ? " tB" : "", c->a_batched ? "" : " a-bcast",
             c->b_batched ? "" : " b-bcast", c->bias ? (c->biasdt == IE_F16 ? " bias16" : " bias") : "",
             dt_name(c->bdt));
    tu_check_close(name, got[0], want, no, c->bdt == IE_F16 ? TOL_F16 : TOL_F32);
    check_bits(name, got[0], got[1], no);
    free(got[0]);
    free(got[1]);
    ie_tensor_free(ta);
    ie_tensor_free(tb);
    ie_tensor_free(tbias);
    free(a);
    free(b);
    free(bias);
    free(br);
    free(biasr);
    free(want);
}

static void test_matmul(void) {
    static const mm_case cases[] = {
        /* B  M   N   K    ta     tb     a_b    b_b    bias   bdt     biasdt */
        {1, 13, 33, 40, false, false, false, false, true, IE_F32, IE_F32},
        {2, 13, 33, 40, false, false, true, true, false, IE_F32, IE_F32},
        {2, 13, 33, 40, true, false, true, true, true, IE_F32, IE_F32},
        {2, 13, 33, 40, false, true, true, true, true, IE_F32, IE_F32},
        {2, 13, 33, 40, true, true, true, true, false, IE_F32, IE_F32},
        {2, 77, 65, 64, false, true, true, false, true, IE_F32, IE_F32}, /* folded Linear */
        {2, 77, 65, 64, false, true, true, false, true, IE_F16, IE_F32},
        {2, 77, 65, 64, false, false, true, false, false, IE_F16, IE_F32},
        {3, 13, 33, 5, true, false, true, false, true, IE_F32, IE_F16}, /* a batched, tA: no fold */
        {3, 9, 40, 13, false, true, false, true, true, IE_F32, IE_F32}, /* a broadcast */
        {3, 9, 40, 13, true, true, false, true, false, IE_F16, IE_F32},
        {2, 1, 7, 1, false, false, true, true, true, IE_F32, IE_F32}, /* degenerate */
        /* a Linear weight of 147456 fp16 values (widened in blocks on the pool) */
        {2, 37, 384, 384, false, true, true, false, true, IE_F16, IE_F32},
        /* few rows, a large fp16 weight (as GEGLU at 16x16): widened in panels of K per thread */
        {1, 16, 1280, 2048, false, true, false, false, true, IE_F16, IE_F32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_matmul(&cases[i], 300 + i);

    /* ie_linear: x [2, 77, 64], w [96, 64], b [96] -> [2, 77, 96] */
    for (int f16 = 0; f16 < 2; f16++) {
        ie_dtype wdt = f16 ? IE_F16 : IE_F32;
        tu_rng r = tu_rng_new(350 + f16);
        const int64_t B = 2, L = 77, K = 64, N = 96;
        float *x = rnd(&r, B * L * K, -1, 1), *w = rnd(&r, N * K, -0.3f, 0.3f), *b = rnd(&r, N, -1, 1);
        float *wr = as_weight(w, N * K, wdt), *want = tu_alloc(B * L * N);
        naive_matmul(want, x, wr, b, 1, B * L, N, K, false, true, false, false);
        ie_tensor *tx = mk3(be, IE_F32, B, L, K, x), *tw = mk2(be, wdt, N, K, w), *tb = mk1(be, IE_F32, N, b);
        float *got[2];
        for (int rep = 0; rep < 2; rep++) {
            ie_tensor *to = mk3(be, IE_F32, B, L, N, NULL);
            ie_status s = ie_linear(be, to, tx, tw, tb);
            if (s) fail_status("linear", be, s);
            got[rep] = get(to);
            ie_tensor_free(to);
        }
        char name[96];
        snprintf(name, sizeof name, "linear [2,77,64]x[96,64]^T+b w=%s", dt_name(wdt));
        tu_check_close(name, got[0], want, B * L * N, f16 ? TOL_F16 : TOL_F32);
        check_bits(name, got[0], got[1], B * L * N);
        free(got[0]);
        free(got[1]);
        ie_tensor_free(tx);
        ie_tensor_free(tw);
        ie_tensor_free(tb);
        free(x);
        free(w);
        free(b);
        free(wr);
        free(want);
    }
}

/* --- group_norm / layer_norm ----------------------------------------------------------- */

typedef struct gn_case {
    int64_t N, C, H, W;
    int groups;
    float eps;
    bool silu, gamma, beta;
    float mean, std; /* input distribution */
    ie_dtype pdt;    /* gamma/beta dtype */
    bool inplace, three_d;
} gn_case;

static void test_group_norm(void) {
    static const gn_case cases[] = {
        /* N  C   H  W   g   eps    silu   gamma  beta   mean  std  pdt     inplace three_d */
        {2, 33, 7, 9, 3, 1e-5f, true, true, true, 0, 1, IE_F32, false, false},
        {2, 33, 7, 9, 3, 1e-5f, false, true, true, 0, 1, IE_F32, false, false},
        {1, 64, 8, 8, 32, 1e-6f, false, false, true, 0.5f, 2, IE_F32, false, false},
        {2, 13, 5, 1, 13, 1e-5f, true, true, false, 0, 1, IE_F32, false, true},
        {2, 32, 9, 7, 32, 1e-6f, true, true, true, 100, 0.01f, IE_F32, false, false}, /* offset: two-pass */
        {2, 40, 7, 9, 4, 1e-5f, true, true, true, 0, 1, IE_F16, false, false},
        {2, 33, 7, 9, 1, 1e-5f, true, true, true, 0, 1, IE_F32, true, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const gn_case *c = &cases[i];
        tu_rng r = tu_rng_new(400 + i);
        const int64_t S = c->H * c->W;
        const size_t n = (size_t)(c->N * c->C * S);
        float *x = rndn(&r, n, c->std);
        for (size_t j = 0; j < n; j++) x[j] += c->mean;
        float *g = rnd(&r, c->C, 0.5f, 1.5f), *b = rnd(&r, c->C, -1, 1);
        float *gr = as_weight(g, c->C, c->pdt), *brf = as_weight(b, c->C, c->pdt), *want = tu_alloc(n);
        naive_group_norm(want, x, c->gamma ? gr : NULL, c->beta ? brf : NULL, c->N, c->C, S, c->groups, c->eps,
                         c->silu);
        ie_tensor *tg = c->gamma ? mk1(be, c->pdt, c->C, g) : NULL, *tb = c->beta ? mk1(be, c->pdt, c->C, b) : NULL;
        float *got[2];
        for (int rep = 0; rep < 2; rep++) {
            ie_tensor *tx = c->three_d ? mk3(be, IE_F32, c->N, c->C, S, x) : mk4(be, IE_F32, c->N, c->C, c->H, c->W, x);
            ie_tensor *to = c->inplace   ? tx
                            : c->three_d ? mk3(be, IE_F32, c->N, c->C, S, NULL)
                                         : mk4(be, IE_F32, c->N, c->C, c->H, c->W, NULL);
            ie_status s = ie_group_norm(be, to, tx, c->groups, c->eps, tg, tb, c->silu);
            if (s) fail_status("group_norm", be, s);
            got[rep] = get(to);
            if (to != tx) ie_tensor_free(to);
            ie_tensor_free(tx);
        }
        char name[160];
        snprintf(name, sizeof name, "group_norm [%lld,%lld,%lld] g%d%s%s%s%s%s", (long long)c->N, (long long)c->C,
                 (long long)S, c->groups, c->silu ? " silu" : "", c->gamma ? "" : " no-gamma",
                 c->beta ? "" : " no-beta", c->mean == 100 ? " mean100" : "",
                 c->inplace         ? " in-place"
                 : c->pdt == IE_F16 ? " affine-f16"
                                    : "");
        tu_check_close(name, got[0], want, n, TOL_F32);
        check_bits(name, got[0], got[1], n);
        free(got[0]);
        free(got[1]);
        ie_tensor_free(tg);
        ie_tensor_free(tb);
        free(x);
        free(g);
        free(b);
        free(gr);
        free(brf);
        free(want);
    }
}

static void test_layer_norm(void) {
    static const struct {
        int64_t rows_a, rows_b, C;
        bool affine;
        float mean;
    } cases[] = {
        {2, 77, 768, true, 0},
        {3, 1, 13, false, 0},
        {2, 5, 40, true, 3000},
        {1, 7, 33, true, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_rng r = tu_rng_new(500 + i);
        const int64_t A = cases[i].rows_a, L = cases[i].rows_b, C = cases[i].C;
        const size_t n = (size_t)(A * L * C);
        float *x = rndn(&r, n, 1.0f), *g = rnd(&r, C, 0.5f, 1.5f), *b = rnd(&r, C, -1, 1);
        for (size_t j = 0; j < n; j++) x[j] += cases[i].mean;
        float *want = tu_alloc(n);
        bool aff = cases[i].affine;
        naive_layer_norm(want, x, aff ? g : NULL, aff ? b : NULL, A * L, C, 1e-5f);
        ie_tensor *tx = mk3(be, IE_F32, A, L, C, x);
        ie_tensor *tg = aff ? mk1(be, IE_F32, C, g) : NULL, *tb = aff ? mk1(be, IE_F32, C, b) : NULL;
        float *got[2];
        for (int rep = 0; rep < 2; rep++) {
            ie_tensor *to = mk3(be, IE_F32, A, L, C, NULL);
            ie_status s = ie_layer_norm(be, to, tx, 1e-5f, tg, tb);
            if (s) fail_status("layer_norm", be, s);
            got[rep] = get(to);
            ie_tensor_free(to);
        }
        char name[128];
        snprintf(name, sizeof name, "layer_norm [%lld,%lld,%lld]%s mean %g", (long long)A, (long long)L, (long long)C,
                 aff ? " affine" : "", (double)cases[i].mean);
        tu_check_close(name, got[0], want, n, TOL_F32);
        check_bits(name, got[0], got[1], n);
        free(got[0]);
        free(got[1]);
        ie_tensor_free(tx);
        ie_tensor_free(tg);
        ie_tensor_free(tb);
        free(x);
        free(g);
        free(b);
        free(want);
    }
}

/* --- attention ------------------------------------------------------------------------ */

typedef struct attn_case {
    int64_t B, H, Lq, Lk, D, Dv;
    bool causal;
} attn_case;

static void run_attention(const attn_case *c, uint64_t seed) {
    tu_rng r = tu_rng_new(seed);
    const int64_t B = c->B, H = c->H, Lq = c->Lq, Lk = c->Lk, D = c->D, Dv = c->Dv;
    const size_t nq = (size_t)(B * Lq * H * D), nk = (size_t)(B * Lk * H * D), nv = (size_t)(B * Lk * H * Dv);
    const size_t no = (size_t)(B * Lq * H * Dv), np = (size_t)(B * H * Lq * Lk);
    const float scale = 1.0f / sqrtf((float)D);
    /* q·k has std ~ 1.5²·sqrt(D), so scaled scores have std ~ 2: peaked softmax rows */
    float *q = rndn(&r, nq, 1.5f), *k = rndn(&r, nk, 1.5f), *v = rndn(&r, nv, 1.0f);
    float *want = tu_alloc(no), *want_p = tu_alloc(np), *want_apply = tu_alloc(no);
    naive_attention(want, q, k, v, B, H, Lq, Lk, D, Dv, scale, c->causal);
    naive_attention_probs(want_p, q, k, B, H, Lq, Lk, D, scale, c->causal);
    naive_attention_apply(want_apply, want_p, v, B, H, Lq, Lk, Dv);

    char tag[128];
    snprintf(tag, sizeof tag, "B%lld H%lld Lq%lld Lk%lld D%lld%s%s", (long long)B, (long long)H, (long long)Lq,
             (long long)Lk, (long long)D, D != Dv ? " Dv" : "", c->causal ? " causal" : "");
    ie_backend *bes[4] = {be, be_small, be_avx2, be_base};
    static const char *const sfxs[4] = {"", " (4K scratch)", " (AVX2 kernels)", " (baseline kernels)"};
    float *first[3] = {0}; /* the default backend's outputs: the kernel variants give the same bits */
    for (int bi = 0; bi < 4; bi++) {
        ie_backend *E = bes[bi];
        const char *sfx = sfxs[bi];
        ie_tensor *tq = mk3(E, IE_F32, B, Lq, H * D, q), *tk = mk3(E, IE_F32, B, Lk, H * D, k);
        ie_tensor *tv = mk3(E, IE_F32, B, Lk, H * Dv, v);
        float *got[2] = {0}, *gotp[2] = {0}, *gota[2] = {0};
        for (int rep = 0; rep < 2; rep++) {
            ie_tensor *to = mk3(E, IE_F32, B, Lq, H * Dv, NULL);
            ie_tensor *tp = mk4(E, IE_F32, B, H, Lq, Lk, NULL);
            ie_tensor *tpw = mk4(E, IE_F32, B, H, Lq, Lk, want_p);
            ie_tensor *ta = mk3(E, IE_F32, B, Lq, H * Dv, NULL);
            ie_status s;
            if ((s = ie_attention(E, to, tq, tk, tv, (int)H, scale, c->causal))) fail_status("attention", E, s);
            if ((s = ie_attention_probs(E, tp, tq, tk, (int)H, scale, c->causal))) fail_status("attention_probs", E, s);
            if ((s = ie_attention_apply(E, ta, tpw, tv))) fail_status("attention_apply", E, s);
            got[rep] = get(to);
            gotp[rep] = get(tp);
            gota[rep] = get(ta);
            ie_tensor_free(to);
            ie_tensor_free(tp);
            ie_tensor_free(tpw);
            ie_tensor_free(ta);
        }
        char name[200];
        snprintf(name, sizeof name, "attention %s%s", tag, sfx);
        tu_check_close(name, got[0], want, no, TOL_F32);
        check_bits(name, got[0], got[1], no);
        snprintf(name, sizeof name, "attention_probs %s%s", tag, sfx);
        tu_check_close(name, gotp[0], want_p, np, TOL_F32);
        check_bits(name, gotp[0], gotp[1], np);
        snprintf(name, sizeof name, "attention_apply %s%s", tag, sfx);
        tu_check_close(name, gota[0], want_apply, no, TOL_F32);
        check_bits(name, gota[0], gota[1], no);
        if (bi >= 2) {
            snprintf(name, sizeof name, "attention %s%s = default's", tag, sfx);
            check_bits(name, got[0], first[0], no);
            snprintf(name, sizeof name, "attention_probs %s%s = default's", tag, sfx);
            check_bits(name, gotp[0], first[1], np);
            snprintf(name, sizeof name, "attention_apply %s%s = default's", tag, sfx);
            check_bits(name, gota[0], first[2], no);
        }
        if (c->causal && bi == 0) { /* masked entries are exactly 0, rows sum to 1 */
            int64_t nonzero = 0;
            double worst = 0;
            for (int64_t bh = 0; bh < B * H; bh++)
                for (int64_t i = 0; i < Lq; i++) {
                    double sum = 0;
                    for (int64_t j = 0; j < Lk; j++) {
                        float pv = gotp[0][(bh * Lq + i) * Lk + j];
                        if (j > i && pv != 0.0f) nonzero++;
                        sum += pv;
                    }
                    if (fabs(sum - 1) > worst) worst = fabs(sum - 1);
                }
            TU_CHECK(nonzero == 0 && worst < 1e-5, "%-48s mask: %lld nonzero above diagonal, |rowsum-1| <= %.1e", tag,
                     (long long)nonzero, worst);
        }
        if (bi == 0) {
            first[0] = got[0];
            first[1] = gotp[0];
            first[2] = gota[0];
            got[0] = gotp[0] = gota[0] = NULL;
        }
        for (int rep = 0; rep < 2; rep++) {
            free(got[rep]);
            free(gotp[rep]);
            free(gota[rep]);
        }
        ie_tensor_free(tq);
        ie_tensor_free(tk);
        ie_tensor_free(tv);
    }
    for (int i = 0; i < 3; i++) free(first[i]);
    free(q);
    free(k);
    free(v);
    free(want);
    free(want_p);
    free(want_apply);
}

static void test_attention(void) {
    static const attn_case cases[] = {
        /* B  H   Lq   Lk   D    Dv   causal */
        {2, 8, 64, 64, 40, 40, false},                                  /* UNet self, head 40 */
        {2, 8, 64, 77, 40, 40, false},                                  /* UNet cross, context 77 */
        {1, 8, 300, 77, 80, 80, false},                                 /* two query blocks (256 + 44) */
        {2, 8, 30, 77, 160, 160, false}, {1, 12, 77, 77, 64, 64, true}, /* CLIP */
        {1, 1, 50, 50, 512, 512, false},                                /* VAE mid attention, small L */
        {1, 2, 20, 20, 64, 32, false},                                  /* Dv != D */
        {2, 3, 10, 20, 16, 16, true},                                   /* causal, Lq < Lk */
        {1, 3, 20, 10, 16, 16, true},                                   /* causal, Lq > Lk */
        {1, 2, 300, 300, 40, 40, true},                                 /* causal across query blocks */
        {1, 2, 13, 37, 24, 20, false}, /* value panels 16 + 8 (4 used), 13 rows: partial tiles */
        {1, 1, 9, 70, 8, 8, false},    /* one 8-wide value panel */
        {1, 2, 5, 21, 16, 48, false},  /* three full 16-wide panels, 21 keys (a partial key block) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_attention(&cases[i], 600 + i);
}

/* --- elementwise ------------------------------------------------------------------------ */

static void test_unary_scale_geglu(void) {
    static const char *names[] = {"silu", "gelu", "quick_gelu", "relu", "tanh"};
    tu_rng r = tu_rng_new(700);
    const int64_t n = 2 * 13 * 7 * 9;
    float *x = rnd(&r, n, -8, 8), *want = tu_alloc(n);
    for (int op = 0; op <= IE_UNARY_TANH; op++) {
        naive_unary(want, x, n, op);
        float *got[2];
        for (int rep = 0; rep < 2; rep++) {
            ie_tensor *tx = mk4(be, IE_F32, 2, 13, 7, 9, x);
            ie_tensor *to = rep ? tx : mk4(be, IE_F32, 2, 13, 7, 9, NULL); /* 2nd run in place */
            ie_status s = ie_unary(be, to, tx, (ie_unary_op)op);
            if (s) fail_status("unary", be, s);
            got[rep] = get(to);
            if (to != tx) ie_tensor_free(to);
            ie_tensor_free(tx);
        }
        char name[64];
        snprintf(name, sizeof name, "unary %s [2,13,7,9]", names[op]);
        tu_check_close(name, got[0], want, n, TOL_EW);
        snprintf(name, sizeof name, "unary %s out-of-place vs in-place", names[op]);
        check_bits(name, got[0], got[1], n);
        free(got[0]);
        free(got[1]);
    }

    naive_scale(want, x, n, 0.18215f, -0.5f);
    float *got[2];
    for (int rep = 0; rep < 2; rep++) {
        ie_tensor *tx = mk4(be, IE_F32, 2, 13, 7, 9, x);
        ie_tensor *to = rep ? tx : mk4(be, IE_F32, 2, 13, 7, 9, NULL);
        ie_status s = ie_scale(be, to, tx, 0.18215f, -0.5f);
        if (s) fail_status("scale", be, s);
        got[rep] = get(to);
        if (to != tx) ie_tensor_free(to);
        ie_tensor_free(tx);
    }
    tu_check_close("scale x*0.18215-0.5", got[0], want, n, TOL_EW);
    check_bits("scale out-of-place vs in-place", got[0], got[1], n);
    free(got[0]);
    free(got[1]);
    free(x);
    free(want);

    /* geglu: [2, 7, 2*33] -> [2, 7, 33] */
    const int64_t rows = 14, D = 33;
    float *gx = rnd(&r, rows * 2 * D, -4, 4), *gw = tu_alloc(rows * D);
    naive_geglu(gw, gx, rows, D);
    ie_tensor *tx = mk3(be, IE_F32, 2, 7, 2 * D, gx);
    for (int rep = 0; rep < 2; rep++) {
        ie_tensor *to = mk3(be, IE_F32, 2, 7, D, NULL);
        ie_status s = ie_geglu(be, to, tx);
        if (s) fail_status("geglu", be, s);
        got[rep] = get(to);
        ie_tensor_free(to);
    }
    tu_check_close("geglu [2,7,66]->[2,7,33]", got[0], gw, rows * D, TOL_EW);
    check_bits("geglu", got[0], got[1], rows * D);
    free(got[0]);
    free(got[1]);
    ie_tensor_free(tx);
    free(gx);
    free(gw);
}

static void test_binary(void) {
    static const struct {
        const char *what;
        int andim;
        int64_t ash[4];
        int bndim;
        int64_t bsh[4];
        int op;
        bool inplace;
        ie_dtype bdt;
    } cases[] = {
        {"add [2,13,7,9] + [2,13,1,1]", 4, {2, 13, 7, 9}, 4, {2, 13, 1, 1}, 0, false, IE_F32},
        {"add [2,13,7,9] + [13,1,1]", 4, {2, 13, 7, 9}, 3, {13, 1, 1}, 0, false, IE_F32},
        {"add [2,13,7,9] + [9] (last dim)", 4, {2, 13, 7, 9}, 1, {9}, 0, false, IE_F32},
        {"add [2,13,7,9] + [2,13,7,9] in place", 4, {2, 13, 7, 9}, 4, {2, 13, 7, 9}, 0, true, IE_F32},
        {"add [2,77,768] + [768]", 3, {2, 77, 768}, 1, {768}, 0, false, IE_F32},
        {"add [2,77,33] + [33] b=f16", 3, {2, 77, 33}, 1, {33}, 0, false, IE_F16},
        {"mul [2,13,7,9] * [1,1,7,9]", 4, {2, 13, 7, 9}, 4, {1, 1, 7, 9}, 1, false, IE_F32},
        {"mul [2,13,7,9] * [2,1,7,1]", 4, {2, 13, 7, 9}, 4, {2, 1, 7, 1}, 1, false, IE_F32},
        {"mul [2,13,7,9] * [1] in place", 4, {2, 13, 7, 9}, 1, {1}, 1, true, IE_F32},
        {"mul [5,33] * [5,1]", 2, {5, 33}, 2, {5, 1}, 1, false, IE_F32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_rng r = tu_rng_new(800 + i);
        int64_t a4[4] = {1, 1, 1, 1}, b4[4] = {1, 1, 1, 1}, na = 1, nb = 1;
        for (int d = 0; d < cases[i].andim; d++) {
            a4[4 - cases[i].andim + d] = cases[i].ash[d];
            na *= cases[i].ash[d];
        }
        for (int d = 0; d < cases[i].bndim; d++) {
            b4[4 - cases[i].bndim + d] = cases[i].bsh[d];
            nb *= cases[i].bsh[d];
        }
        float *a = rnd(&r, na, -2, 2), *b = rnd(&r, nb, -2, 2), *br = as_weight(b, nb, cases[i].bdt);
        float *want = tu_alloc(na);
        naive_binary(want, a, br, a4, b4, cases[i].op);
        ie_tensor *tb = mk(be, cases[i].bdt, cases[i].bndim, cases[i].bsh, b);
        float *got[2];
        for (int rep = 0; rep < 2; rep++) {
            ie_tensor *ta = mk(be, IE_F32, cases[i].andim, cases[i].ash, a);
            ie_tensor *to = cases[i].inplace ? ta : mk(be, IE_F32, cases[i].andim, cases[i].ash, NULL);
            ie_status s = cases[i].op ? ie_mul(be, to, ta, tb) : ie_add(be, to, ta, tb);
            if (s) fail_status(cases[i].what, be, s);
            got[rep] = get(to);
            if (to != ta) ie_tensor_free(to);
            ie_tensor_free(ta);
        }
        tu_check_close(cases[i].what, got[0], want, na, 0.0); /* float add/mul: bit-exact */
        check_bits(cases[i].what, got[0], got[1], na);
        free(got[0]);
        free(got[1]);
        ie_tensor_free(tb);
        free(a);
        free(b);
        free(br);
        free(want);
    }
}

/* --- data movement ---------------------------------------------------------------------- */

static void test_data_movement(void) {
    tu_rng r = tu_rng_new(900);
    float *got[2];
    ie_status s;

    { /* concat [2,5,7,9] + [2,13,7,9] -> [2,18,7,9] */
        const int64_t N = 2, Ca = 5, Cb = 13, S = 63;
        float *a = rnd(&r, N * Ca * S, -1, 1), *b = rnd(&r, N * Cb * S, -1, 1), *want = tu_alloc(N * (Ca + Cb) * S);
        naive_concat_channels(want, a, b, N, Ca, Cb, S);
        ie_tensor *ta = mk4(be, IE_F32, N, Ca, 7, 9, a), *tb = mk4(be, IE_F32, N, Cb, 7, 9, b);
        for (int rep = 0; rep < 2; rep++) {
            ie_tensor *to = mk4(be, IE_F32, N, Ca + Cb, 7, 9, NULL);
            if ((s = ie_concat_channels(be, to, ta, tb))) fail_status("concat", be, s);
            got[rep] = get(to);
            ie_tensor_free(to);
        }
        tu_check_close("concat_channels [2,5,7,9]+[2,13,7,9]", got[0], want, N * (Ca + Cb) * S, 0.0);
        check_bits("concat_channels", got[0], got[1], N * (Ca + Cb) * S);
        free(got[0]);
        free(got[1]);
        free(a);
        free(b);
        free(want);
        ie_tensor_free(ta);
        ie_tensor_free(tb);
    }
    { /* upsample [2,13,7,9] -> [2,13,14,18] */
        const int64_t n = 2 * 13 * 7 * 9;
        float *x = rnd(&r, n, -1, 1), *want = tu_alloc(4 * n);
        naive_upsample_nearest2x(want, x, 2, 13, 7, 9);
        ie_tensor *tx = mk4(be, IE_F32, 2, 13, 7, 9, x);
        for (int rep = 0; rep < 2; rep++) {
            ie_tensor *to = mk4(be, IE_F32, 2, 13, 14, 18, NULL);
            if ((s = ie_upsample_nearest2x(be, to, tx))) fail_status("upsample", be, s);
            got[rep] = get(to);
            ie_tensor_free(to);
        }
        tu_check_close("upsample_nearest2x [2,13,7,9]", got[0], want, 4 * n, 0.0);
        check_bits("upsample_nearest2x", got[0], got[1], 4 * n);
        free(got[0]);
        free(got[1]);
        free(x);
        free(want);
        ie_tensor_free(tx);
    }
    { /* transpose: [2,33,77] (3-D), [3,100,65] crossing 32-tiles, [2,3,40,50] (4-D) */
        static const int64_t shapes[3][4] = {{2, 33, 77, 0}, {3, 100, 65, 0}, {2, 3, 40, 50}};
        for (int i = 0; i < 3; i++) {
            int nd = shapes[i][3] ? 4 : 3;
            int64_t xs[4], os[4], n = 1;
            for (int d = 0; d < nd; d++) {
                xs[d] = os[d] = shapes[i][d];
                n *= xs[d];
            }
            os[nd - 2] = xs[nd - 1];
            os[nd - 1] = xs[nd - 2];
            const int64_t R = xs[nd - 2], C = xs[nd - 1], B = n / (R * C);
            float *x = rnd(&r, n, -1, 1), *want = tu_alloc(n);
            naive_transpose(want, x, B, R, C);
            ie_tensor *tx = mk(be, IE_F32, nd, xs, x);
            for (int rep = 0; rep < 2; rep++) {
                ie_tensor *to = mk(be, IE_F32, nd, os, NULL);
                if ((s = ie_transpose(be, to, tx))) fail_status("transpose", be, s);
                got[rep] = get(to);
                ie_tensor_free(to);
            }
            char name[64];
            snprintf(name, sizeof name, "transpose [B=%lld, %lld, %lld]", (long long)B, (long long)R, (long long)C);
            tu_check_close(name, got[0], want, n, 0.0);
            check_bits(name, got[0], got[1], n);
            free(got[0]);
            free(got[1]);
            free(x);
            free(want);
            ie_tensor_free(tx);
        }
    }
    { /* copy: f32 -> f16 -> f32 (rounding), f16 -> f16, f32 -> f32 reshaped, i32 -> i32 */
        const int64_t n = 13 * 77;
        float *x = rnd(&r, n, -70000, 70000), *want = tu_alloc(n);
        x[0] = 1e-7f;
        x[1] = -3e-5f;
        x[2] = 65519.0f;
        x[3] = 65520.0f;
        x[4] = 0.1f;
        for (int64_t i = 5; i < n / 2; i++) x[i] *= 1e-4f; /* keep most in the fp16 range */
        for (int64_t i = 0; i < n; i++) want[i] = naive_round_f16(x[i]);
        ie_tensor *tx = mk2(be, IE_F32, 13, 77, x);
        ie_tensor *th = mk2(be, IE_F16, 77, 13, NULL), *th2 = mk1(be, IE_F16, n, NULL);
        ie_tensor *tf = mk3(be, IE_F32, 7, 11, 13, NULL), *tf2 = mk1(be, IE_F32, n, NULL);
        if ((s = ie_copy(be, th, tx))) fail_status("copy f32->f16", be, s);
        if ((s = ie_copy(be, th2, th))) fail_status("copy f16->f16", be, s);
        if ((s = ie_copy(be, tf, th2))) fail_status("copy f16->f32", be, s);
        if ((s = ie_copy(be, tf2, tx))) fail_status("copy f32->f32", be, s);
        float *g1 = get(tf), *g2 = get(tf2);
        /* inf compares as inf-inf = NaN in a relative check: compare bits instead */
        TU_CHECK(memcmp(g1, want, n * sizeof(float)) == 0,
                 "copy f32->f16->f16->f32 == naive fp16 rounding (bits, incl. inf)");
        TU_CHECK(memcmp(g2, x, n * sizeof(float)) == 0, "copy f32->f32 reshaped [13,77]->[1001] bit-exact");
        free(g1);
        free(g2);
        ie_tensor_free(tx);
        ie_tensor_free(th);
        ie_tensor_free(th2);
        ie_tensor_free(tf);
        ie_tensor_free(tf2);
        free(x);
        free(want);

        int32_t ids[6] = {0, -1, 49407, 7, 2147483647, -2147483647 - 1}, back[6] = {0};
        int64_t sh6 = 6, sh23[2] = {2, 3};
        ie_tensor *ti = ie_tensor_new(be, IE_I32, 1, &sh6), *ti2 = ie_tensor_new(be, IE_I32, 2, sh23);
        ie_tensor_upload(ti, ids);
        if ((s = ie_copy(be, ti2, ti))) fail_status("copy i32", be, s);
        ie_tensor_download(ti2, back);
        TU_CHECK(memcmp(ids, back, sizeof ids) == 0, "copy i32->i32 [6]->[2,3] bit-exact");
        ie_tensor_free(ti);
        ie_tensor_free(ti2);
    }
}

/* --- embeddings ------------------------------------------------------------------------- */

static void test_timestep_embedding(void) {
    static const struct {
        int dim;
        bool flip;
        float shift, max_period;
    } cases[] = {
        {320, true, 0, 10000},  /* SD UNet */
        {256, false, 1, 10000}, /* LCM guidance embedding */
        {321, true, 0, 10000},  /* odd dim: trailing zero */
        {8, false, 0, 100},
    };
    const float t[4] = {0.0f, 1.0f, 500.5f, 999.0f};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int dim = cases[i].dim;
        float *want = tu_alloc(4 * dim), *got[2];
        naive_timestep_embedding(want, t, 4, dim, cases[i].flip, cases[i].shift, cases[i].max_period);
        ie_tensor *tt = mk1(be, IE_F32, 4, t);
        for (int rep = 0; rep < 2; rep++) {
            ie_tensor *to = mk2(be, IE_F32, 4, dim, NULL);
            ie_status s = ie_timestep_embedding(be, to, tt, dim, cases[i].flip, cases[i].shift, cases[i].max_period);
            if (s) fail_status("timestep_embedding", be, s);
            got[rep] = get(to);
            ie_tensor_free(to);
        }
        char name[96];
        snprintf(name, sizeof name, "timestep_embedding dim %d%s shift %g", dim, cases[i].flip ? " flip" : "",
                 (double)cases[i].shift);
        tu_check_close(name, got[0], want, 4 * dim, TOL_EW);
        check_bits(name, got[0], got[1], 4 * dim);
        if (i == 0) { /* t = 0: [cos 0 .. = 1, sin 0 .. = 0] */
            int ok = 1;
            for (int j = 0; j < dim; j++) ok &= got[0][j] == (j < dim / 2 ? 1.0f : 0.0f);
            TU_CHECK(ok, "timestep_embedding t=0 flip -> [1 x160, 0 x160]");
        }
        if (dim % 2) {
            int ok = 1;
            for (int b = 0; b < 4; b++) ok &= got[0][b * dim + dim - 1] == 0.0f;
            TU_CHECK(ok, "timestep_embedding odd dim pads 0 at the end");
        }
        free(got[0]);
        free(got[1]);
        free(want);
        ie_tensor_free(tt);
    }
}

static void test_embedding(void) {
    const int64_t V = 100, D = 40, B = 2, L = 77;
    tu_rng r = tu_rng_new(1000);
    int32_t ids[2 * 77];
    for (int i = 0; i < B * L; i++) ids[i] = (int32_t)(tu_next(&r) % V);
    ids[0] = 0;
    ids[1] = (int32_t)V - 1;
    float *table = rnd(&r, V * D, -1, 1);
    int64_t ish[2] = {B, L};
    ie_tensor *tid = ie_tensor_new(be, IE_I32, 2, ish);
    ie_tensor_upload(tid, ids);
    for (int f16 = 0; f16 < 2; f16++) {
        ie_dtype dt = f16 ? IE_F16 : IE_F32;
        float *tr = as_weight(table, V * D, dt), *want = tu_alloc(B * L * D), *got[2];
        naive_embedding(want, ids, tr, B * L, V, D);
        ie_tensor *tt = mk2(be, dt, V, D, table);
        for (int rep = 0; rep < 2; rep++) {
            ie_tensor *to = mk3(be, IE_F32, B, L, D, NULL);
            ie_status s = ie_embedding(be, to, tid, tt);
            if (s) fail_status("embedding", be, s);
            got[rep] = get(to);
            ie_tensor_free(to);
        }
        char name[64];
        snprintf(name, sizeof name, "embedding [2,77] ids, table [100,40] %s", dt_name(dt));
        tu_check_close(name, got[0], want, B * L * D, 0.0);
        check_bits(name, got[0], got[1], B * L * D);
        free(got[0]);
        free(got[1]);
        free(tr);
        free(want);
        ie_tensor_free(tt);
    }
    /* out-of-range ids: IE_ERR_ARG naming the id */
    ie_tensor *tt = mk2(be, IE_F32, V, D, table), *to = mk3(be, IE_F32, B, L, D, NULL);
    const int32_t bad_ids[2] = {100, -1};
    for (int i = 0; i < 2; i++) {
        int32_t ids2[2 * 77];
        memcpy(ids2, ids, sizeof ids2);
        ids2[42] = bad_ids[i];
        ie_tensor_upload(tid, ids2);
        ie_status s = ie_embedding(be, to, tid, tt);
        char idstr[16];
        snprintf(idstr, sizeof idstr, "%d", bad_ids[i]);
        TU_CHECK(s == IE_ERR_ARG && strstr(ie_backend_errmsg(be), idstr), "embedding id %d -> %s: \"%s\"", bad_ids[i],
                 ie_status_name(s), ie_backend_errmsg(be));
    }
    ie_tensor_free(tt);
    ie_tensor_free(to);
    ie_tensor_free(tid);
    free(table);
}

/* --- backend basics -------------------------------------------------------------------- */

static void test_backend_basics(void) {
    const char *desc = ie_backend_description(be);
    TU_CHECK(ie_backend_kind_of(be) == IE_BACKEND_CPU && !strncmp(desc, "cpu (OpenBLAS", 13),
             "backend kind cpu, description \"%s\"", desc);
    uint64_t use0, peak0, use1, peak1, use2;
    ie_backend_memory(be, &use0, &peak0);
    ie_backend_reset_peak(be);
    ie_tensor *t = ie_tensor_new4(be, IE_F16, 2, 3, 5, 7);
    ie_tensor *v = ie_tensor_view(t, 10, 1, (int64_t[]){20});
    ie_backend_memory(be, &use1, &peak1);
    TU_CHECK(t && v && use1 == use0 + 2 * 3 * 5 * 7 * 2 && peak1 >= use1,
             "memory: +%llu bytes for a [2,3,5,7] f16 tensor (view adds none)", (unsigned long long)(use1 - use0));
    TU_CHECK(v && (uintptr_t)t->host % 64 == 0 && (char *)v->host == (char *)t->host + 20,
             "host pointers: 64-byte aligned, view at +20 bytes");
    ie_tensor_free(v);
    ie_tensor_free(t);
    ie_backend_memory(be, &use2, NULL);
    TU_CHECK(use2 == use0, "memory back to %llu bytes after free", (unsigned long long)use2);
    ie_backend_timer_begin(be);
    double dt = ie_backend_timer_end(be);
    TU_CHECK(dt >= 0 && dt < 1 && ie_backend_sync(be) == IE_OK, "timer %.2e s, sync ok", dt);
}

int main(void) {
    be = ie_backend_cpu_new(0);
    setenv("INVEDIT_CPU_SCRATCH_BYTES", "4096", 1);
    be_small = ie_backend_cpu_new(0);
    unsetenv("INVEDIT_CPU_SCRATCH_BYTES");
    setenv("INVEDIT_CPU_NO_AVX512", "1", 1);
    be_avx2 = ie_backend_cpu_new(0);
    setenv("INVEDIT_CPU_NO_AVX2", "1", 1);
    be_base = ie_backend_cpu_new(0);
    unsetenv("INVEDIT_CPU_NO_AVX512");
    unsetenv("INVEDIT_CPU_NO_AVX2");
    if (!be || !be_small || !be_avx2 || !be_base) {
        fprintf(stderr, "cannot create the CPU backend\n");
        return 1;
    }
    printf("backend: %s\n", ie_backend_description(be));

    test_backend_basics();
    test_fp16();
    test_conv2d();
    test_matmul();
    test_group_norm();
    test_layer_norm();
    test_attention();
    test_unary_scale_geglu();
    test_binary();
    test_data_movement();
    test_timestep_embedding();
    test_embedding();

    ie_backend_free(be_base);
    ie_backend_free(be_avx2);
    ie_backend_free(be_small);
    ie_backend_free(be);
    return tu_finish("test_cpu_ops");
}
