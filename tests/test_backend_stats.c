/* What a backend reports about itself, on the CPU backend and (when there is
 * a device, lavapipe included) the Vulkan backend:
 *   - ie_backend_reset_peak: after a big tensor is freed and the peak reset,
 *     the peak is what is allocated from then on, not the big tensor
 *     (bench-networks and bench-methods read per-phase peaks that way);
 *   - the per-op profile (ie_backend_profile_begin/end): each op counted once
 *     under its own kind, FLOPs of the products, nothing counted when off. */
#include "vkcompute/ops.h"
#include "testutil.h"

#define MIB ((uint64_t)1 << 20)

static void test_reset_peak(ie_backend *be, const char *label) {
    uint64_t base, in_use, peak;
    ie_backend_memory(be, &base, NULL);
    const int64_t big_n = (int64_t)(16 * MIB / 4), small_n = 1024; /* 16 MiB, 4 KiB of f32 */
    ie_tensor *big = ie_tensor_new(be, IE_F32, 1, &big_n);
    if (!tu_ok(big ? IE_OK : IE_ERR_NOMEM, be, "allocate 16 MiB")) return;
    ie_tensor_free(big);
    ie_backend_memory(be, &in_use, &peak);
    TU_CHECK(in_use == base && peak >= base + 16 * MIB, "%s: 16 MiB freed: in use %llu, peak %llu (base %llu)", label,
             (unsigned long long)in_use, (unsigned long long)peak, (unsigned long long)base);

    ie_backend_reset_peak(be);
    ie_backend_memory(be, &in_use, &peak);
    TU_CHECK(peak == base, "%s: reset_peak: peak %llu is what is in use (%llu)", label, (unsigned long long)peak,
             (unsigned long long)base);

    ie_tensor *small = ie_tensor_new(be, IE_F32, 1, &small_n);
    if (!tu_ok(small ? IE_OK : IE_ERR_NOMEM, be, "allocate 4 KiB")) return;
    ie_backend_memory(be, &in_use, &peak);
    TU_CHECK(in_use - base == 4096 && peak - base == 4096,
             "%s: 4 KiB after the reset: peak %+lld bytes over the base (want +4096, not the freed 16 MiB)", label,
             (long long)(peak - base));

    /* a second tensor freed again: the peak holds it, until the next reset */
    ie_tensor *tmp = ie_tensor_new(be, IE_F32, 1, &small_n);
    ie_tensor_free(tmp);
    ie_backend_memory(be, &in_use, &peak);
    TU_CHECK(tmp && peak - base == 8192, "%s: a freed 4 KiB tensor stays in the peak: %+lld bytes", label,
             (long long)(peak - base));
    ie_backend_reset_peak(be);
    ie_backend_memory(be, &in_use, &peak);
    TU_CHECK(peak == in_use && in_use - base == 4096, "%s: reset with 4 KiB in use: peak %+lld bytes", label,
             (long long)(peak - base));
    ie_tensor_free(small);
}

static const ie_op_stats *find(const ie_op_stats *t, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return &t[i];
    return NULL;
}

static void test_profile(ie_backend *be, const char *label) {
    const int64_t M = 64, K = 48, N = 32;
    int64_t as[2] = {M, K}, bs[2] = {K, N}, os[2] = {M, N}, ws[2] = {N, K};
    ie_tensor *a = ie_tensor_new(be, IE_F32, 2, as), *b = ie_tensor_new(be, IE_F32, 2, bs);
    ie_tensor *o = ie_tensor_new(be, IE_F32, 2, os), *w = ie_tensor_new(be, IE_F32, 2, ws);
    if (!tu_ok(a && b && o && w ? IE_OK : IE_ERR_NOMEM, be, "profile tensors")) return;
    float *h = tu_alloc((size_t)(M * K));
    tu_rng r = tu_rng_new(3);
    tu_fill(&r, h, (size_t)(M * K), -1.f, 1.f);
    ie_status s = ie_tensor_upload(a, h);
    if (!s) s = ie_tensor_upload(b, h);
    if (!s) s = ie_tensor_upload(w, h);

    ie_op_stats t[IE_OP_KINDS + 4];
    if (!s) s = ie_scale(be, o, o, 1.0f, 0.0f); /* before begin: not counted */
    ie_backend_profile_begin(be);
    if (!s) s = ie_matmul(be, o, a, b, NULL, false, false);
    if (!s) s = ie_linear(be, o, a, w, NULL);
    if (!s) s = ie_scale(be, o, o, 2.0f, 1.0f);
    if (!s) s = ie_scale(be, o, o, 0.5f, 0.0f);
    ie_status bad = ie_scale(be, a, o, 1.0f, 0.0f); /* shape mismatch: refused, not counted */
    int n = ie_backend_profile_end(be, t, IE_OP_KINDS + 4);
    if (!s) s = ie_scale(be, o, o, 1.0f, 0.0f); /* after end: not counted */
    tu_ok(s, be, "profiled ops");
    TU_CHECK(bad == IE_ERR_SHAPE, "%s: the mismatched scale is refused", label);

    TU_CHECK(n == IE_OP_KINDS, "%s: the profile has %d kinds (got %d)", label, IE_OP_KINDS, n);
    const ie_op_stats *mm = find(t, n, "matmul"), *lin = find(t, n, "linear"), *sc = find(t, n, "scale");
    long others = 0;
    for (int i = 0; i < n; i++)
        if (&t[i] != mm && &t[i] != lin && &t[i] != sc) others += t[i].calls;
    double want = 2.0 * (double)(M * N * K);
    TU_CHECK(mm && mm->calls == 1 && mm->flops == want && mm->seconds > 0,
             "%s: matmul: 1 call, %.0f FLOPs (got %ld, %.0f)", label, want, mm ? mm->calls : -1, mm ? mm->flops : -1.0);
    TU_CHECK(lin && lin->calls == 1 && lin->flops == want, "%s: linear: 1 call, %.0f FLOPs (got %ld, %.0f)", label,
             want, lin ? lin->calls : -1, lin ? lin->flops : -1.0);
    TU_CHECK(sc && sc->calls == 2 && sc->flops == 0 && others == 0,
             "%s: scale: 2 calls (got %ld), no FLOPs; no other kind counted (%ld)", label, sc ? sc->calls : -1, others);
    TU_CHECK(ie_backend_profile_end(be, t, IE_OP_KINDS) == 0, "%s: profile_end without begin returns nothing", label);
    free(h);
    ie_tensor_free(a);
    ie_tensor_free(b);
    ie_tensor_free(o);
    ie_tensor_free(w);
}

int main(void) {
    ie_backend *cpu = ie_backend_cpu_new(2);
    test_reset_peak(cpu, "cpu");
    test_profile(cpu, "cpu");
    ie_backend_free(cpu);

    char err[512];
    ie_backend *vk = ie_backend_vulkan_new(-1, err, sizeof err);
    if (vk) {
        printf("vulkan: %s\n", ie_backend_description(vk));
        test_reset_peak(vk, "vulkan");
        test_profile(vk, "vulkan");
        ie_backend_free(vk);
    } else {
        printf("skip vulkan: %s\n", err);
    }
    return tu_finish("test_backend_stats");
}
