/* conv2d (implicit GEMM) and matmul/linear on Vulkan against the CPU backend.
 *
 * Odd sizes (7x9 spatial, channel counts 5/13/33, K not a multiple of the
 * tile), all three conv paddings, 1x1 convs, batch 2, fp32 and fp16 weights,
 * every matmul transpose combination with batch broadcast and bias; then the
 * largest SD 1.5 shapes of a 64x64 latent. Determinism: the same input twice on
 * Vulkan gives identical bits.
 */
#include "vkcompute/ops.h"
#include "testutil.h"

#include <time.h>

static ie_backend *cpu, *vk;

/* A tensor on `be` holding `data` (fp32 host values, converted to dtype). */
static ie_tensor *make(ie_backend *be, ie_dtype dt, int ndim, const int64_t *shape, const float *data) {
    ie_tensor *t = ie_tensor_new(be, dt, ndim, shape);
    if (!t) {
        fprintf(stderr, "tensor alloc failed: %s\n", ie_backend_errmsg(be));
        exit(2);
    }
    if (data && !tu_ok(ie_tensor_upload_f32(t, data), be, "upload")) exit(2);
    return t;
}

static void free_all(ie_tensor **t, int n) {
    for (int i = 0; i < n; i++)
        if (t[i]) ie_tensor_free(t[i]);
}

/* --- conv2d ---------------------------------------------------------------- */

typedef struct conv_case {
    int n, cin, h, w, cout, kh, kw;
    ie_conv2d_params p;
    bool bias;
    ie_dtype wdt, bdt;
    bool twice; /* check determinism */
} conv_case;

static void run_conv(const conv_case *c, uint64_t seed) {
    tu_rng r = tu_rng_new(seed);
    const int64_t xs[4] = {c->n, c->cin, c->h, c->w};
    const int64_t ws[4] = {c->cout, c->cin, c->kh, c->kw};
    const int64_t bs[1] = {c->cout};
    const int oh = (c->h + c->p.pad_top + c->p.pad_bottom - c->kh) / c->p.stride + 1;
    const int ow = (c->w + c->p.pad_left + c->p.pad_right - c->kw) / c->p.stride + 1;
    const int64_t os[4] = {c->n, c->cout, oh, ow};
    const size_t nx = (size_t)c->n * c->cin * c->h * c->w;
    const size_t nw = (size_t)c->cout * c->cin * c->kh * c->kw;
    const size_t no = (size_t)c->n * c->cout * oh * ow;
    float *x = tu_alloc(nx), *w = tu_alloc(nw), *b = tu_alloc((size_t)c->cout);
    float *want = tu_alloc(no), *got = tu_alloc(no), *got2 = tu_alloc(no);
    tu_fill(&r, x, nx, -1.f, 1.f);
    tu_fill_normal(&r, w, nw, 1.f / sqrtf((float)(c->cin * c->kh * c->kw)));
    tu_fill(&r, b, (size_t)c->cout, -0.5f, 0.5f);

    char name[160];
    snprintf(name, sizeof name, "conv [%d,%d,%d,%d]->%d %dx%d s%d p(%d,%d,%d,%d)%s w%s%s", c->n, c->cin, c->h, c->w,
             c->cout, c->kh, c->kw, c->p.stride, c->p.pad_top, c->p.pad_bottom, c->p.pad_left, c->p.pad_right,
             c->bias ? " +b" : "", ie_dtype_name(c->wdt), c->bias && c->bdt == IE_F16 ? " b:f16" : "");

    double t_vk = 0;
    for (int which = 0; which < 2; which++) {
        ie_backend *be = which ? vk : cpu;
        ie_tensor *t[4] = {make(be, IE_F32, 4, xs, x), make(be, c->wdt, 4, ws, w),
                           c->bias ? make(be, c->bdt, 1, bs, b) : NULL, make(be, IE_F32, 4, os, NULL)};
        double t0 = tu_now();
        if (!tu_ok(ie_conv2d(be, t[3], t[0], t[1], t[2], &c->p), be, name) || !tu_ok(ie_backend_sync(be), be, name) ||
            !tu_ok(ie_tensor_download_f32(t[3], which ? got : want), be, name)) {
            free_all(t, 4);
            goto done;
        }
        if (which) t_vk = tu_now() - t0;
        if (which && c->twice) {
            if (ie_conv2d(be, t[3], t[0], t[1], t[2], &c->p) == IE_OK && ie_tensor_download_f32(t[3], got2) == IE_OK)
                TU_CHECK(memcmp(got, got2, no * sizeof(float)) == 0, "deterministic: %s", name);
            else TU_CHECK(0, "second run failed: %s: %s", name, ie_backend_errmsg(be));
        }
        free_all(t, 4);
    }
    tu_check_close(name, got, want, no, c->wdt == IE_F16 ? 2e-3 : 1e-4);
    const double flop = 2.0 * (double)no * c->cin * c->kh * c->kw;
    if (flop > 1e9) /* informational; includes pipeline creation and transfers */
        printf("     vulkan %.3f s incl. upload/download (%.2f GFLOP/s)\n", t_vk, flop / t_vk * 1e-9);
done:
    free(x), free(w), free(b), free(want), free(got), free(got2);
}

/* --- matmul / linear ----------------------------------------------------- */

typedef struct mm_case {
    int B, M, N, K;
    bool ta, tb;
    int a_ndim, b_ndim; /* 2 or 3; a 3-D operand with batch 1 broadcasts too */
    bool a_batched, b_batched;
    bool bias;
    ie_dtype bdt, biasdt;
    bool linear; /* through ie_linear (x [B, M, K], w [N, K]) */
    bool twice;
} mm_case;

static void run_mm(const mm_case *c, uint64_t seed) {
    tu_rng r = tu_rng_new(seed);
    const int Ba = c->a_batched ? c->B : 1, Bb = c->b_batched ? c->B : 1;
    int64_t as[3], bs[3], os[3], biass[1] = {c->N};
    int an = c->a_ndim, bn = c->b_ndim, on;
    if (an == 3) as[0] = Ba;
    as[an - 2] = c->ta ? c->K : c->M;
    as[an - 1] = c->ta ? c->M : c->K;
    if (bn == 3) bs[0] = Bb;
    bs[bn - 2] = c->tb ? c->N : c->K;
    bs[bn - 1] = c->tb ? c->K : c->N;
    if (c->linear || an == 3 || bn == 3) {
        on = 3;
        os[0] = c->B, os[1] = c->M, os[2] = c->N;
    } else {
        on = 2;
        os[0] = c->M, os[1] = c->N;
    }
    const size_t na = (size_t)Ba * c->M * c->K, nb = (size_t)Bb * c->K * c->N;
    const size_t no = (size_t)c->B * c->M * c->N;
    float *a = tu_alloc(na), *b = tu_alloc(nb), *bias = tu_alloc((size_t)c->N);
    float *want = tu_alloc(no), *got = tu_alloc(no), *got2 = tu_alloc(no);
    tu_fill(&r, a, na, -1.f, 1.f);
    tu_fill_normal(&r, b, nb, 1.f / sqrtf((float)c->K));
    tu_fill(&r, bias, (size_t)c->N, -0.5f, 0.5f);

    char name[160];
    if (c->linear)
        snprintf(name, sizeof name, "linear [%d,%d,%d] x [%d,%d]%s w%s", c->B, c->M, c->K, c->N, c->K,
                 c->bias ? " +b" : "", ie_dtype_name(c->bdt));
    else
        snprintf(name, sizeof name, "matmul B%d(%s%s) %dx%dx%d%s%s%s b%s%s", c->B,
                 c->a_batched ? "a" : (an == 3 ? "a1" : "-"), c->b_batched ? "b" : (bn == 3 ? "b1" : "-"), c->M, c->N,
                 c->K, c->ta ? " aT" : "", c->tb ? " bT" : "", c->bias ? " +bias" : "", ie_dtype_name(c->bdt),
                 c->bias && c->biasdt == IE_F16 ? " bias:f16" : "");

    double t_vk = 0;
    for (int which = 0; which < 2; which++) {
        ie_backend *be = which ? vk : cpu;
        ie_tensor *t[4] = {make(be, IE_F32, an, as, a), make(be, c->bdt, bn, bs, b),
                           c->bias ? make(be, c->biasdt, 1, biass, bias) : NULL, make(be, IE_F32, on, os, NULL)};
        double t0 = tu_now();
        ie_status st =
            c->linear ? ie_linear(be, t[3], t[0], t[1], t[2]) : ie_matmul(be, t[3], t[0], t[1], t[2], c->ta, c->tb);
        if (!tu_ok(st, be, name) || !tu_ok(ie_backend_sync(be), be, name) ||
            !tu_ok(ie_tensor_download_f32(t[3], which ? got : want), be, name)) {
            free_all(t, 4);
            goto done;
        }
        if (which) t_vk = tu_now() - t0;
        if (which && c->twice) {
            st =
                c->linear ? ie_linear(be, t[3], t[0], t[1], t[2]) : ie_matmul(be, t[3], t[0], t[1], t[2], c->ta, c->tb);
            if (st == IE_OK && ie_tensor_download_f32(t[3], got2) == IE_OK)
                TU_CHECK(memcmp(got, got2, no * sizeof(float)) == 0, "deterministic: %s", name);
            else TU_CHECK(0, "second run failed: %s: %s", name, ie_backend_errmsg(be));
        }
        free_all(t, 4);
    }
    tu_check_close(name, got, want, no, c->bdt == IE_F16 ? 2e-3 : 1e-4);
    const double flop = 2.0 * (double)no * c->K;
    if (flop > 1e9) /* informational; includes pipeline creation and transfers */
        printf("     vulkan %.3f s incl. upload/download (%.2f GFLOP/s)\n", t_vk, flop / t_vk * 1e-9);
done:
    free(a), free(b), free(bias), free(want), free(got), free(got2);
}

/* Whether the Vulkan backend runs on a CPU device (lavapipe): the preferred
 * device is a CPU one only when no usable GPU exists. */
static bool on_cpu_device(void) {
    ie_device_info devs[16];
    char err[256];
    int n = ie_vulkan_list_devices(devs, 16, err, sizeof err);
    for (int i = 0; i < n && i < 16; i++)
        if (devs[i].usable && devs[i].type != IE_DEVICE_CPU) return false;
    return true;
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
        printf("FAIL: no CPU backend\n");
        return 1;
    }
    printf("vulkan: %s\ncpu: %s\n", ie_backend_description(vk), ie_backend_description(cpu));

    const ie_conv2d_params s1p1 = ie_conv2d_params_sym(1, 1), s2p1 = ie_conv2d_params_sym(2, 1);
    const ie_conv2d_params s1p0 = ie_conv2d_params_sym(1, 0), s2p0 = ie_conv2d_params_sym(2, 0);
    const ie_conv2d_params vae = {2, 0, 1, 0, 1}; /* VAE downsampler: pad (0, 1, 0, 1) */
    const ie_conv2d_params odd = {2, 1, 2, 0, 1};
    const ie_dtype F32 = IE_F32, F16 = IE_F16;

    /* --- conv2d: small and odd ------------------------------------------- */
    const conv_case convs[] = {
        {2, 5, 7, 9, 13, 3, 3, s1p1, true, F32, F32, true},
        {2, 13, 7, 9, 5, 3, 3, s1p1, false, F32, F32, false},
        {2, 13, 7, 9, 33, 3, 3, s1p1, true, F16, F16, false},
        {1, 33, 9, 7, 13, 3, 3, s2p1, true, F32, F32, false},
        {2, 13, 7, 9, 33, 3, 3, s2p1, false, F16, F32, false},
        {2, 5, 7, 9, 13, 3, 3, vae, true, F32, F32, false},
        {1, 33, 9, 7, 5, 3, 3, vae, true, F16, F16, true},
        {1, 33, 8, 8, 33, 3, 3, vae, false, F32, F32, false},
        {2, 33, 7, 9, 13, 1, 1, s1p0, true, F32, F32, false},
        {2, 13, 7, 9, 33, 1, 1, s1p0, false, F16, F16, false},
        {1, 5, 7, 9, 13, 1, 1, s2p0, true, F32, F32, false},
        {1, 70, 11, 13, 130, 3, 3, s1p1, true, F32, F32, false}, /* several M tiles + tails */
        {2, 3, 33, 35, 4, 3, 3, s1p1, true, F32, F32, false},    /* Cout 4 (conv_out-like) */
        {1, 4, 17, 19, 70, 3, 3, s1p1, true, F16, F32, false},   /* Cin 4 (conv_in-like) */
        {1, 7, 9, 11, 6, 2, 3, odd, true, F32, F32, false},      /* non-square kernel, odd pads */
        {1, 6, 1, 1, 5, 3, 3, s1p1, true, F32, F32, false},      /* 1x1 spatial, all padding */
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) run_conv(&convs[i], 100 + i);

    /* --- matmul: all transposes, broadcast, bias ------------------------- */
    uint64_t seed = 1000;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int bc = 0; bc < 4; bc++) {
                /* bc: 0 both batched, 1 a broadcast (2-D), 2 b broadcast (3-D batch 1), 3 both 2-D */
                mm_case c = {3, 13, 33, 37, ta, tb, 3, 3, true, true, (bc & 1) != 0, F32, F32, false, false};
                if (bc == 1) c.a_batched = false, c.a_ndim = 2;
                if (bc == 2) c.b_batched = false;
                if (bc == 3) c.B = 1, c.a_batched = c.b_batched = false, c.a_ndim = c.b_ndim = 2;
                if ((ta + tb + bc) % 2) c.bdt = F16;
                run_mm(&c, seed++);
            }
    const mm_case mms[] = {
        /* B M N K ta tb an bn a_b b_b bias bdt biasdt linear twice */
        {1, 70, 130, 77, false, false, 2, 2, false, false, true, F32, F32, false, true},
        {2, 130, 70, 200, true, false, 3, 3, true, true, false, F32, F32, false, false},
        {2, 65, 129, 17, false, true, 3, 2, true, false, true, F16, F16, false, false},
        {5, 1, 1, 1, false, false, 3, 3, true, true, true, F32, F32, false, false},
        {1, 3, 5, 1000, true, true, 2, 2, false, false, false, F16, F32, false, false},
        {2, 77, 320, 768, false, true, 3, 2, true, false, true, F16, F32, true, false}, /* cross-attn k */
        {1, 300, 129, 130, false, true, 3, 2, false, false, true, F32, F32, true, true},
        {1, 17, 33, 40, false, false, 3, 3, false, false, false, F32, F32, false, false},
    };
    for (size_t i = 0; i < sizeof mms / sizeof mms[0]; i++) run_mm(&mms[i], 2000 + i);

    /* More batches than one dispatch's z limit (65535): the op splits the
     * dispatch. 70000 tiny workgroups cost lavapipe ~15 s of CPU, so on a CPU
     * device this runs only with TEST_VK_GEMM_FULL=1. */
    const char *full = getenv("TEST_VK_GEMM_FULL");
    if (!on_cpu_device() || (full && *full && *full != '0')) {
        const mm_case zc = {70000, 2, 3, 5, false, true, 3, 3, true, false, true, F32, F32, false, false};
        run_mm(&zc, 3000);
    } else {
        printf("skip matmul with 70000 batches on a CPU device (TEST_VK_GEMM_FULL=1 runs it)\n");
    }

    /* --- the largest SD 1.5 shapes at a 64x64 latent (batch 1) --------------- */
    /* (slow on lavapipe; TEST_VK_GEMM_QUICK=1 skips them, e.g. when sweeping
     * INVEDIT_GEMM_TILE configurations) */
    const char *quick = getenv("TEST_VK_GEMM_QUICK");
    if (quick && *quick && *quick != '0') {
        printf("TEST_VK_GEMM_QUICK: skipping the SD-size shapes\n");
        goto out;
    }
    const conv_case big_convs[] = {
        {1, 320, 64, 64, 320, 3, 3, s1p1, true, F16, F16, false}, /* down_blocks.0 resnet conv */
        {1, 640, 64, 64, 320, 3, 3, s1p1, true, F32, F32, false}, /* up_blocks.3 concat -> 320 */
        {1, 128, 64, 64, 128, 3, 3, vae, true, F32, F32, true},   /* VAE downsampler geometry */
    };
    for (size_t i = 0; i < sizeof big_convs / sizeof big_convs[0]; i++) run_conv(&big_convs[i], 300 + i);
    const mm_case big_mms[] = {
        {1, 4096, 2560, 320, false, true, 3, 2, false, false, true, F16, F16, true, false}, /* GEGLU proj */
        {1, 4096, 1280, 1280, false, true, 2, 2, false, false, false, F32, F32, false, false},
    };
    for (size_t i = 0; i < sizeof big_mms / sizeof big_mms[0]; i++) run_mm(&big_mms[i], 400 + i);

out:
    ie_backend_free(vk);
    ie_backend_free(cpu);
    return tu_finish("test_vk_gemm");
}
