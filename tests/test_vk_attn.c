/* Attention on Vulkan against the CPU backend: the fused flash kernel
 * (ie_attention) and the probs/apply pair used by attention control.
 *
 * Head dims 40/64/80/160/512 plus odd ones (5, 7, 24: not multiples of 4),
 * D != Dv, Lq != Lk (cross-attention with 77 keys), causal masks (CLIP, and
 * Lq != Lk with the top-left aligned mask), batch 2, peaky softmax rows (large
 * scores); then the largest SD 1.5 shapes of a 64x64 latent: UNet
 * self-attention 4096 tokens x 8 heads x 40 and the VAE mid-block 4096 tokens
 * x 1 head x 512. Determinism: the same input twice on Vulkan gives identical
 * bits. On a CPU Vulkan device (lavapipe) the VAE shape keeps every key but
 * only the first 256 query rows unless INVEDIT_TEST_FULL=1 (which also checks
 * the 4096-token self-attention for determinism); INVEDIT_TEST_QUICK=1 skips
 * the big shapes.
 */
#include "vkcompute/ops.h"
#include "testutil.h"

#include <time.h>

static ie_backend *cpu, *vk;

static ie_tensor *make3(ie_backend *be, int64_t a, int64_t b, int64_t c, const float *data) {
    int64_t s[3] = {a, b, c};
    ie_tensor *t = ie_tensor_new(be, IE_F32, 3, s);
    if (!t) {
        fprintf(stderr, "tensor alloc failed: %s\n", ie_backend_errmsg(be));
        exit(2);
    }
    if (data && !tu_ok(ie_tensor_upload_f32(t, data), be, "upload")) exit(2);
    return t;
}

static ie_tensor *make4(ie_backend *be, int64_t a, int64_t b, int64_t c, int64_t d, const float *data) {
    int64_t s[4] = {a, b, c, d};
    ie_tensor *t = ie_tensor_new(be, IE_F32, 4, s);
    if (!t) {
        fprintf(stderr, "tensor alloc failed: %s\n", ie_backend_errmsg(be));
        exit(2);
    }
    if (data && !tu_ok(ie_tensor_upload_f32(t, data), be, "upload")) exit(2);
    return t;
}

typedef struct attn_case {
    int B, Lq, Lk, H, D, Dv;
    bool causal;
    float qstd; /* q/k scale: larger means peakier softmax rows */
    bool twice;
    bool pair; /* also test probs + apply */
} attn_case;

static void run_case(const attn_case *c, uint64_t seed) {
    tu_rng r = tu_rng_new(seed);
    const size_t nq = (size_t)c->B * c->Lq * c->H * c->D, nk = (size_t)c->B * c->Lk * c->H * c->D;
    const size_t nv = (size_t)c->B * c->Lk * c->H * c->Dv, no = (size_t)c->B * c->Lq * c->H * c->Dv;
    const size_t np = (size_t)c->B * c->H * c->Lq * c->Lk;
    float *q = tu_alloc(nq), *k = tu_alloc(nk), *v = tu_alloc(nv);
    float *want = tu_alloc(no), *got = tu_alloc(no), *got2 = tu_alloc(no);
    tu_fill_normal(&r, q, nq, c->qstd);
    tu_fill_normal(&r, k, nk, c->qstd);
    tu_fill(&r, v, nv, -1.f, 1.f);
    const float scale = 1.0f / sqrtf((float)c->D);

    char name[160];
    snprintf(name, sizeof name, "attention B%d Lq%d Lk%d H%d D%d%s%s%s", c->B, c->Lq, c->Lk, c->H, c->D,
             c->Dv != c->D ? " Dv" : "", c->Dv != c->D ? "" : "", c->causal ? " causal" : "");
    if (c->Dv != c->D) snprintf(name + strlen(name), sizeof name - strlen(name), "%d", c->Dv);
    if (c->qstd > 1.5f) snprintf(name + strlen(name), sizeof name - strlen(name), " peaky");

    double t_vk = 0;
    for (int which = 0; which < 2; which++) {
        ie_backend *be = which ? vk : cpu;
        ie_tensor *tq = make3(be, c->B, c->Lq, c->H * c->D, q), *tk = make3(be, c->B, c->Lk, c->H * c->D, k);
        ie_tensor *tv = make3(be, c->B, c->Lk, c->H * c->Dv, v), *to = make3(be, c->B, c->Lq, c->H * c->Dv, NULL);
        double t0 = tu_now();
        int ok = tu_ok(ie_attention(be, to, tq, tk, tv, c->H, scale, c->causal), be, name) &&
                 tu_ok(ie_backend_sync(be), be, name);
        if (which) t_vk = tu_now() - t0;
        ok = ok && tu_ok(ie_tensor_download_f32(to, which ? got : want), be, name);
        if (ok && which && c->twice) {
            if (ie_attention(be, to, tq, tk, tv, c->H, scale, c->causal) == IE_OK &&
                ie_tensor_download_f32(to, got2) == IE_OK)
                TU_CHECK(memcmp(got, got2, no * sizeof(float)) == 0, "deterministic: %s", name);
            else TU_CHECK(0, "second run failed: %s: %s", name, ie_backend_errmsg(be));
        }
        ie_tensor_free(tq), ie_tensor_free(tk), ie_tensor_free(tv), ie_tensor_free(to);
        if (!ok) goto done;
    }
    tu_check_close(name, got, want, no, 1e-4);
    if (t_vk > 0.2) {
        double flop = 2.0 * c->B * c->H * (double)c->Lq * c->Lk * (c->D + c->Dv);
        if (c->causal) flop /= 2;
        printf("     vulkan %.3f s (op + sync, %.2f GFLOP/s)\n", t_vk, flop / t_vk * 1e-9);
    }

    if (c->pair) {
        /* probs on both backends; apply on both from the CPU's probs; and the
         * Vulkan probs -> apply chain against the fused kernel. */
        float *pw = tu_alloc(np), *pg = tu_alloc(np), *pg2 = tu_alloc(np);
        char pname[192], aname[192];
        snprintf(pname, sizeof pname, "probs: %s", name + strlen("attention "));
        snprintf(aname, sizeof aname, "apply: %s", name + strlen("attention "));
        for (int which = 0; which < 2; which++) {
            ie_backend *be = which ? vk : cpu;
            ie_tensor *tq = make3(be, c->B, c->Lq, c->H * c->D, q), *tk = make3(be, c->B, c->Lk, c->H * c->D, k);
            ie_tensor *tp = make4(be, c->B, c->H, c->Lq, c->Lk, NULL);
            int ok = tu_ok(ie_attention_probs(be, tp, tq, tk, c->H, scale, c->causal), be, pname) &&
                     tu_ok(ie_tensor_download_f32(tp, which ? pg : pw), be, pname);
            if (ok && which && c->twice) {
                if (ie_attention_probs(be, tp, tq, tk, c->H, scale, c->causal) == IE_OK &&
                    ie_tensor_download_f32(tp, pg2) == IE_OK)
                    TU_CHECK(memcmp(pg, pg2, np * sizeof(float)) == 0, "deterministic: %s", pname);
                else TU_CHECK(0, "second run failed: %s: %s", pname, ie_backend_errmsg(be));
            }
            ie_tensor_free(tq), ie_tensor_free(tk), ie_tensor_free(tp);
            if (!ok) goto pdone;
        }
        tu_check_close(pname, pg, pw, np, 1e-4);
        {
            /* rows sum to 1, masked entries are exactly 0 */
            double worst = 0;
            size_t masked_nonzero = 0;
            for (size_t row = 0; row < np / (size_t)c->Lk; row++) {
                double s = 0;
                const int i = (int)(row % (size_t)c->Lq);
                for (int j = 0; j < c->Lk; j++) {
                    s += pg[row * (size_t)c->Lk + (size_t)j];
                    if (c->causal && j > i && pg[row * (size_t)c->Lk + (size_t)j] != 0.f) masked_nonzero++;
                }
                if (fabs(s - 1.0) > worst) worst = fabs(s - 1.0);
            }
            TU_CHECK(worst < 1e-5 && masked_nonzero == 0, "probs rows sum to 1 (worst %.2e), %zu masked nonzero", worst,
                     masked_nonzero);
        }
        for (int which = 0; which < 2; which++) {
            ie_backend *be = which ? vk : cpu;
            ie_tensor *tp = make4(be, c->B, c->H, c->Lq, c->Lk, pw);
            ie_tensor *tv = make3(be, c->B, c->Lk, c->H * c->Dv, v), *to = make3(be, c->B, c->Lq, c->H * c->Dv, NULL);
            int ok = tu_ok(ie_attention_apply(be, to, tp, tv), be, aname) &&
                     tu_ok(ie_tensor_download_f32(to, which ? got : want), be, aname);
            if (ok && which && c->twice) {
                if (ie_attention_apply(be, to, tp, tv) == IE_OK && ie_tensor_download_f32(to, got2) == IE_OK)
                    TU_CHECK(memcmp(got, got2, no * sizeof(float)) == 0, "deterministic: %s", aname);
                else TU_CHECK(0, "second run failed: %s: %s", aname, ie_backend_errmsg(be));
            }
            ie_tensor_free(tp), ie_tensor_free(tv), ie_tensor_free(to);
            if (!ok) goto pdone;
        }
        tu_check_close(aname, got, want, no, 1e-4);
    pdone:
        free(pw), free(pg), free(pg2);
    }
done:
    free(q), free(k), free(v), free(want), free(got), free(got2);
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

    static const attn_case cases[] = {
        /* B  Lq   Lk  H   D   Dv  causal qstd twice pair */
        {2, 37, 77, 8, 40, 40, false, 1.f, true, true}, /* UNet cross-attention, odd Lq */
        {1, 77, 77, 12, 64, 64, true, 1.f, true, true}, /* CLIP: causal, 77 tokens */
        {2, 64, 64, 8, 80, 80, false, 1.f, true, true},
        {1, 33, 50, 8, 160, 160, false, 1.f, true, true},
        {1, 100, 100, 1, 512, 512, false, 1.f, true, true}, /* VAE-like */
        {2, 256, 256, 8, 40, 40, false, 1.f, false, true},  /* self-attention at 16x16 */
        {1, 20, 50, 2, 40, 40, true, 1.f, false, true},     /* causal, Lq < Lk */
        {1, 50, 20, 2, 64, 64, true, 1.f, false, true},     /* causal, Lq > Lk */
        {1, 17, 23, 2, 40, 24, false, 1.f, true, true},     /* D != Dv */
        {2, 9, 13, 3, 5, 7, false, 1.f, true, true},        /* head dims not multiples of 4 */
        {1, 70, 70, 2, 7, 5, true, 1.f, false, true},
        {1, 65, 77, 8, 40, 40, false, 4.f, false, true}, /* peaky rows */
        {1, 65, 129, 1, 512, 512, false, 3.f, false, false},
        {2, 1, 1, 1, 64, 64, false, 1.f, false, true}, /* one key */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], 100 + i);

    /* The GPU configuration (one query row per invocation; lavapipe uses 4)
     * on a few shapes, T = 1, 2, 4 and 8 included. */
    setenv("INVEDIT_ATTN_ROWS", "1", 1);
    printf("-- one row per invocation (the GPU default)\n");
    for (size_t i = 0; i < 5; i++) run_case(&cases[i], 300 + i);
    unsetenv("INVEDIT_ATTN_ROWS");

    const char *quick = getenv("INVEDIT_TEST_QUICK"), *full = getenv("INVEDIT_TEST_FULL");
    if (!(quick && *quick == '1')) {
        /* The largest SD 1.5 shapes (64x64 latent: 4096 tokens). On a CPU
         * device (lavapipe, ~0.5 GFLOP/s) the VAE shape keeps every key but
         * only the first 256 query rows, and the 4096-token self-attention runs
         * once (~40 s), unless INVEDIT_TEST_FULL=1. */
        const char *desc = ie_backend_description(vk);
        const size_t dl = strlen(desc);
        const bool cpu_device = dl >= 5 && !strcmp(desc + dl - 5, "(CPU)");
        const bool all = (full && *full == '1') || !cpu_device;
        printf("-- SD 1.5 shapes (64x64 latent)%s\n", all ? "" : "; VAE: first 256 query rows");
        const attn_case big[] = {
            {1, 4096, 4096, 8, 40, 40, false, 1.f, all, false},                 /* down/up block 0 self-attention */
            {2, 4096, 77, 8, 40, 40, false, 1.f, false, true},                  /* cross-attention, batch 2 (CFG) */
            {1, all ? 4096 : 256, 4096, 1, 512, 512, false, 1.f, false, false}, /* VAE mid-block */
        };
        for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) run_case(&big[i], 200 + i);
    }

    ie_backend_free(vk);
    ie_backend_free(cpu);
    return tu_finish("test_vk_attn");
}
