/* fp16 safety of the fp16-weight path at the activation magnitudes real SD 1.5
 * reaches (VAE decoder activations of 1e4 and more, attention logits in the
 * thousands), on the Vulkan backend.
 *
 * Weights are stored as fp16 (as invedit loads SD checkpoints); activations
 * stay fp32 everywhere and every sum accumulates in fp32, so nothing may
 * overflow even where a value exceeds fp16's range (65504). Each case runs
 * twice on the device, with the fp16 weights and with the same weights in
 * fp32, and is compared with a double-precision reference computed here on the
 * fp16-rounded weights:
 *   - every output is finite;
 *   - fp16-weight result vs the double reference: max rel error <= TOL_REF
 *     (fp32 arithmetic alone);
 *   - fp16-weight result vs the fp32-weight result: max rel error <= TOL_W16
 *     (the weights' rounding to fp16, 2^-11 relative, is the whole difference).
 * "max rel error" = worst absolute error / largest reference magnitude
 * (tests/testutil.h).
 *
 * Cases: softmax inside attention with logits of 1e4 and 1e5 (q, k from an
 * fp16-weight projection of 1e3-sized inputs; flash kernel and the
 * probs/apply pair), group norm with fp16 affine on inputs of mean 1e4 and on
 * inputs reaching 2e5 (beyond fp16), and a VAE-decoder-like block (group norm
 * + SiLU + 3x3 conv + residual, nearest upsample, conv) on 1e4-sized inputs.
 */
#include "naive.h"
#include "testutil.h"

#include <math.h>
#include <stdbool.h>

#define TOL_REF 2e-5
#define TOL_W16 3e-3

static ie_backend *vk;

static ie_tensor *dev(ie_dtype dt, int ndim, const int64_t *shape, const float *host) {
    ie_tensor *t = ie_tensor_new(vk, dt, ndim, shape);
    if (!t) {
        printf("FAIL: allocating a tensor: %s\n", ie_backend_errmsg(vk));
        exit(1);
    }
    if (host && ie_tensor_upload_f32(t, host) != IE_OK) {
        printf("FAIL: upload: %s\n", ie_backend_errmsg(vk));
        exit(1);
    }
    return t;
}

static bool all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

static float max_abs(const float *x, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* Reports the three checks for one output. w16_tol 0: the fp16-vs-fp32
 * weight difference is printed, not judged (see test_attention). */
static void judge(const char *what, const float *w16, const float *w32, const float *ref, size_t n, double w16_tol) {
    bool fin = all_finite(w16, n) && all_finite(w32, n);
    double e_ref = tu_max_rel_err(w16, ref, n), e_w = tu_max_rel_err(w16, w32, n);
    char tol[32] = "not judged";
    if (w16_tol > 0) snprintf(tol, sizeof tol, "tol %.0e", w16_tol);
    TU_CHECK(fin && e_ref <= TOL_REF && (w16_tol <= 0 || e_w <= w16_tol),
             "%-44s max|out| %.3g  finite %s  vs double %.2e (tol %.0e)  vs fp32 weights %.2e (%s)", what,
             (double)max_abs(ref, n), fin ? "yes" : "NO", e_ref, TOL_REF, e_w, tol);
}

/* x [B, L, C] (magnitude xs) -> q = x Wq, k = x Wk, v = x Wv (fp16 or fp32
 * weights [C, C], linear) -> attention with H heads; logits ~xs^2.
 * With logits in the thousands the softmax is (nearly) one-hot: rounding the
 * weights to fp16 moves logits by units and may pick another key, a property
 * of the inputs, not an arithmetic error. There (min_logit set) the check is
 * finiteness and agreement with the double reference on the device's own q,
 * k, v; the fp16-vs-fp32-weight difference is judged on moderate logits. */
static void test_attention(int B, int L, int C, int H, float xs, double min_logit, uint64_t seed) {
    tu_rng r = tu_rng_new(seed);
    const size_t nx = (size_t)B * L * C, nw = (size_t)C * C;
    float *x = tu_alloc(nx), *w[3], *w16[3];
    tu_fill_normal(&r, x, nx, xs);
    for (int i = 0; i < 3; i++) {
        w[i] = tu_alloc(nw);
        tu_fill_normal(&r, w[i], nw, 1.0f / sqrtf((float)C));
        w16[i] = tu_alloc(nw);
        memcpy(w16[i], w[i], nw * sizeof(float));
        naive_round_f16_array(w16[i], nw);
    }
    const int D = C / H;
    const float scale = 1.0f / sqrtf((float)D);
    const int64_t xs3[3] = {B, L, C}, ws[2] = {C, C}, ps[4] = {B, H, L, L};
    float *out[2][2]; /* [fp16 weights?][flash / probs+apply] */
    float *qkv_host[3] = {tu_alloc(nx), tu_alloc(nx), tu_alloc(nx)};
    ie_tensor *tx = dev(IE_F32, 3, xs3, x);
    for (int half = 0; half < 2; half++) {
        ie_tensor *tq[3];
        for (int i = 0; i < 3; i++) {
            ie_tensor *tw = dev(half ? IE_F16 : IE_F32, 2, ws, w[i]);
            tq[i] = dev(IE_F32, 3, xs3, NULL);
            if (!tu_ok(ie_linear(vk, tq[i], tx, tw, NULL), vk, "linear")) exit(1);
            if (half) ie_tensor_download_f32(tq[i], qkv_host[i]);
            ie_tensor_free(tw);
        }
        ie_tensor *to = dev(IE_F32, 3, xs3, NULL), *tp = dev(IE_F32, 4, ps, NULL), *to2 = dev(IE_F32, 3, xs3, NULL);
        tu_ok(ie_attention(vk, to, tq[0], tq[1], tq[2], H, scale, false), vk, "attention");
        tu_ok(ie_attention_probs(vk, tp, tq[0], tq[1], H, scale, false), vk, "attention_probs");
        tu_ok(ie_attention_apply(vk, to2, tp, tq[2]), vk, "attention_apply");
        out[half][0] = tu_alloc(nx);
        out[half][1] = tu_alloc(nx);
        ie_tensor_download_f32(to, out[half][0]);
        ie_tensor_download_f32(to2, out[half][1]);
        for (int i = 0; i < 3; i++) ie_tensor_free(tq[i]);
        ie_tensor_free(to);
        ie_tensor_free(tp);
        ie_tensor_free(to2);
    }
    /* the largest logit, and the double reference from the device's q, k, v
     * (the projections are checked by test_vk_gemm; here the softmax is) */
    double maxlogit = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < L; i++)
                for (int j = 0; j < L; j++) {
                    double s = 0;
                    for (int d = 0; d < D; d++)
                        s += (double)qkv_host[0][((size_t)b * L + i) * C + h * D + d] *
                             qkv_host[1][((size_t)b * L + j) * C + h * D + d];
                    if (fabs(s * scale) > maxlogit) maxlogit = fabs(s * scale);
                }
    float *ref = tu_alloc(nx);
    naive_attention(ref, qkv_host[0], qkv_host[1], qkv_host[2], B, H, L, L, D, D, scale, false);
    char what[128];
    snprintf(what, sizeof what, "attention |logit| <= %.3g (flash)", maxlogit);
    judge(what, out[1][0], out[0][0], ref, nx, min_logit > 0 ? 0 : TOL_W16);
    snprintf(what, sizeof what, "attention |logit| <= %.3g (probs+apply)", maxlogit);
    judge(what, out[1][1], out[0][1], ref, nx, min_logit > 0 ? 0 : TOL_W16);
    if (min_logit > 0)
        TU_CHECK(maxlogit >= min_logit, "the case reaches large logits (%.3g >= %.0e)", maxlogit, min_logit);
    ie_tensor_free(tx);
    for (int i = 0; i < 3; i++) free(w[i]), free(w16[i]), free(qkv_host[i]);
    for (int h = 0; h < 2; h++) free(out[h][0]), free(out[h][1]);
    free(x);
    free(ref);
}

/* group norm with fp16 / fp32 affine on x [N, C, S] = mean + std * noise. */
static void test_group_norm(int N, int C, int S, int G, float mean, float std, bool silu, uint64_t seed) {
    tu_rng r = tu_rng_new(seed);
    const size_t n = (size_t)N * C * S;
    float *x = tu_alloc(n), *g = tu_alloc((size_t)C), *b = tu_alloc((size_t)C);
    tu_fill_normal(&r, x, n, std);
    for (size_t i = 0; i < n; i++) x[i] += mean * (1.0f + 0.1f * (float)((i / (size_t)S) % 7));
    tu_fill(&r, g, (size_t)C, 0.5f, 1.5f);
    tu_fill(&r, b, (size_t)C, -1.0f, 1.0f);
    float *g16 = tu_alloc((size_t)C), *b16 = tu_alloc((size_t)C);
    memcpy(g16, g, (size_t)C * sizeof *g);
    memcpy(b16, b, (size_t)C * sizeof *b);
    naive_round_f16_array(g16, (size_t)C);
    naive_round_f16_array(b16, (size_t)C);
    const int64_t xs[3] = {N, C, S}, cs[1] = {C};
    float *out[2];
    ie_tensor *tx = dev(IE_F32, 3, xs, x);
    for (int half = 0; half < 2; half++) {
        ie_tensor *tg = dev(half ? IE_F16 : IE_F32, 1, cs, g), *tb = dev(half ? IE_F16 : IE_F32, 1, cs, b);
        ie_tensor *to = dev(IE_F32, 3, xs, NULL);
        tu_ok(ie_group_norm(vk, to, tx, G, 1e-6f, tg, tb, silu), vk, "group_norm");
        out[half] = tu_alloc(n);
        ie_tensor_download_f32(to, out[half]);
        ie_tensor_free(tg);
        ie_tensor_free(tb);
        ie_tensor_free(to);
    }
    float *ref = tu_alloc(n);
    naive_group_norm(ref, x, g16, b16, N, C, S, G, 1e-6f, silu);
    char what[128];
    snprintf(what, sizeof what, "group_norm input |x| <= %.3g%s", (double)max_abs(x, n), silu ? " +silu" : "");
    judge(what, out[1], out[0], ref, n, TOL_W16);
    ie_tensor_free(tx);
    free(x), free(g), free(b), free(g16), free(b16), free(out[0]), free(out[1]), free(ref);
}

/* A VAE-decoder-like block on h [1, C, H, W] of magnitude ~xs:
 *   y = h + conv3x3(silu(group_norm(h)))   (resnet half-block, fp16 weights)
 *   z = conv3x3(upsample2x(y))             (up-block conv) */
static void test_vae_block(int C, int H, int W, float xs, uint64_t seed) {
    tu_rng r = tu_rng_new(seed);
    const size_t nh = (size_t)C * H * W, nw = (size_t)C * C * 9, nz = nh * 4;
    float *h = tu_alloc(nh), *w1 = tu_alloc(nw), *w2 = tu_alloc(nw), *b1 = tu_alloc((size_t)C),
          *b2 = tu_alloc((size_t)C), *g = tu_alloc((size_t)C), *be = tu_alloc((size_t)C);
    tu_fill_normal(&r, h, nh, xs);
    tu_fill_normal(&r, w1, nw, 1.0f / sqrtf(9.0f * (float)C));
    tu_fill_normal(&r, w2, nw, 1.0f / sqrtf(9.0f * (float)C));
    tu_fill(&r, b1, (size_t)C, -1.f, 1.f);
    tu_fill(&r, b2, (size_t)C, -1.f, 1.f);
    tu_fill(&r, g, (size_t)C, 0.5f, 1.5f);
    tu_fill(&r, be, (size_t)C, -1.f, 1.f);
    float *p16[6] = {w1, w2, b1, b2, g, be};
    size_t pn[6] = {nw, nw, (size_t)C, (size_t)C, (size_t)C, (size_t)C};
    float *r16[6];
    for (int i = 0; i < 6; i++) {
        r16[i] = tu_alloc(pn[i]);
        memcpy(r16[i], p16[i], pn[i] * sizeof(float));
        naive_round_f16_array(r16[i], pn[i]);
    }
    const int64_t hs[4] = {1, C, H, W}, zs[4] = {1, C, 2 * H, 2 * W}, ws[4] = {C, C, 3, 3}, cs[1] = {C};
    const ie_conv2d_params p = ie_conv2d_params_sym(1, 1);
    float *out[2];
    ie_tensor *th = dev(IE_F32, 4, hs, h);
    for (int half = 0; half < 2; half++) {
        ie_dtype dt = half ? IE_F16 : IE_F32;
        ie_tensor *tw1 = dev(dt, 4, ws, w1), *tw2 = dev(dt, 4, ws, w2), *tb1 = dev(dt, 1, cs, b1),
                  *tb2 = dev(dt, 1, cs, b2), *tg = dev(dt, 1, cs, g), *tbe = dev(dt, 1, cs, be);
        ie_tensor *t1 = dev(IE_F32, 4, hs, NULL), *t2 = dev(IE_F32, 4, hs, NULL), *tu = dev(IE_F32, 4, zs, NULL),
                  *tz = dev(IE_F32, 4, zs, NULL);
        tu_ok(ie_group_norm(vk, t1, th, 32, 1e-6f, tg, tbe, true), vk, "group_norm");
        tu_ok(ie_conv2d(vk, t2, t1, tw1, tb1, &p), vk, "conv2d");
        tu_ok(ie_add(vk, t2, t2, th), vk, "add");
        tu_ok(ie_upsample_nearest2x(vk, tu, t2), vk, "upsample");
        tu_ok(ie_conv2d(vk, tz, tu, tw2, tb2, &p), vk, "conv2d");
        out[half] = tu_alloc(nz);
        ie_tensor_download_f32(tz, out[half]);
        ie_tensor *f[] = {tw1, tw2, tb1, tb2, tg, tbe, t1, t2, tu, tz};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) ie_tensor_free(f[i]);
    }
    /* the reference, in double loops on the fp16-rounded parameters */
    float *a = tu_alloc(nh), *y = tu_alloc(nh), *u = tu_alloc(nz), *ref = tu_alloc(nz);
    naive_group_norm(a, h, r16[4], r16[5], 1, C, (int64_t)H * W, 32, 1e-6f, true);
    naive_conv2d(y, a, r16[0], r16[2], 1, C, H, W, C, 3, 3, 1, 1, 1, 1, 1);
    for (size_t i = 0; i < nh; i++) y[i] += h[i];
    for (int c = 0; c < C; c++)
        for (int i = 0; i < 2 * H; i++)
            for (int j = 0; j < 2 * W; j++)
                u[((size_t)c * 2 * H + i) * 2 * W + j] = y[((size_t)c * H + i / 2) * W + j / 2];
    naive_conv2d(ref, u, r16[1], r16[3], 1, C, 2 * H, 2 * W, C, 3, 3, 1, 1, 1, 1, 1);
    char what[128];
    snprintf(what, sizeof what, "VAE-like block C%d %dx%d input |h| <= %.3g", C, H, W, (double)max_abs(h, nh));
    judge(what, out[1], out[0], ref, nz, TOL_W16);
    ie_tensor_free(th);
    for (int i = 0; i < 6; i++) free(p16[i]), free(r16[i]);
    free(h), free(out[0]), free(out[1]), free(a), free(y), free(u), free(ref);
}

int main(void) {
    char err[512];
    vk = ie_backend_vulkan_new(-1, err, sizeof err);
    if (!vk) {
        printf("skip: no Vulkan device: %s\n", err);
        return 77;
    }
    printf("vulkan: %s\n", ie_backend_description(vk));
    printf("tolerances: vs double %.0e (fp32 arithmetic), vs fp32 weights %.0e (fp16 weight rounding)\n", TOL_REF,
           TOL_W16);
    /* attention: inputs projected by fp16 weights; logits ~1e4 and ~1e5,
     * then moderate logits for the fp16-vs-fp32-weight comparison */
    test_attention(1, 64, 64, 1, 60.0f, 1e4, 1);
    test_attention(2, 77, 80, 2, 300.0f, 1e5, 2);
    test_attention(2, 77, 80, 2, 2.0f, 0, 8);
    /* group norm: a large common offset (catastrophic cancellation if the
     * variance were E[x^2] - E[x]^2), values beyond fp16's range */
    test_group_norm(1, 64, 256, 32, 1.0e4f, 1.0f, false, 3);
    test_group_norm(2, 64, 300, 32, 3.0e4f, 3.0e3f, true, 4);
    test_group_norm(1, 32, 4096, 32, 1.5e5f, 5.0e4f, true, 5); /* several chunks per group */
    /* VAE decoder-like block */
    test_vae_block(64, 16, 16, 1.0e4f, 6);
    test_vae_block(32, 12, 20, 8.0e4f, 7);
    ie_backend_free(vk);
    return tu_finish("test_vk_fp16");
}
