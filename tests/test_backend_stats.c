/* What a backend reports about itself, on the CPU backend and (when there is
 * a device, lavapipe included) the Vulkan backend:
 *   - ie_backend_reset_peak: after a big tensor is freed and the peak reset,
 *     the peak is what is allocated from then on, not the big tensor
 *     (bench-networks and bench-methods read per-phase peaks that way). */
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
    TU_CHECK(in_use == base && peak >= base + 16 * MIB, "%s: 16 MiB freed: in use %llu, peak %llu (base %llu)",
             label, (unsigned long long)in_use, (unsigned long long)peak, (unsigned long long)base);

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

int main(void) {
    ie_backend *cpu = ie_backend_cpu_new(2);
    test_reset_peak(cpu, "cpu");
    ie_backend_free(cpu);

    char err[512];
    ie_backend *vk = ie_backend_vulkan_new(-1, err, sizeof err);
    if (vk) {
        printf("vulkan: %s\n", ie_backend_description(vk));
        test_reset_peak(vk, "vulkan");
        ie_backend_free(vk);
    } else {
        printf("skip vulkan: %s\n", err);
    }
    return tu_finish("test_backend_stats");
}
