/* The Vulkan runtime: device choice, sub-allocation, tensors larger than
 * lavapipe's 128 MiB maxStorageBufferRange, barriers between dependent
 * dispatches, views, timestamps, and backend selection with fallback. */
#include "vkcompute/ops.h"
#include "testutil.h"

#include <stdlib.h>

static ie_backend *vk;

/* A tensor larger than the 128 MiB storage-buffer range: written, scaled on
 * the device, read back, checked at every element. */
static void test_large_tensor(void) {
    const int64_t n = (int64_t)40 << 20; /* 40 Mi floats = 160 MiB */
    ie_tensor *t = ie_tensor_new(vk, IE_F32, 1, &n);
    TU_CHECK(t != NULL, "allocate a 160 MiB tensor (%s)", t ? "ok" : ie_backend_errmsg(vk));
    if (!t) return;
    float *h = malloc((size_t)n * sizeof *h);
    for (int64_t i = 0; i < n; i++) h[i] = (float)(i % 1000003);
    ie_status s = ie_tensor_upload(t, h);
    if (!s) s = ie_scale(vk, t, t, 2.0f, 1.0f);
    if (!s) s = ie_tensor_download(t, h);
    int64_t bad = -1;
    for (int64_t i = 0; i < n && !s; i++)
        if (h[i] != (float)(i % 1000003) * 2.0f + 1.0f) {
            bad = i;
            break;
        }
    TU_CHECK(!s && bad < 0, "scale over 160 MiB: every element right (status %d, first bad %lld)", s, (long long)bad);
    free(h);
    ie_tensor_free(t);
}

/* Dependent dispatches: a chain a->b->a... must see each previous result. */
static void test_barriers(void) {
    const int64_t n = 100003;
    ie_tensor *a = ie_tensor_new(vk, IE_F32, 1, &n), *b = ie_tensor_new(vk, IE_F32, 1, &n);
    float *h = malloc((size_t)n * sizeof *h), *want = malloc((size_t)n * sizeof *want);
    for (int64_t i = 0; i < n; i++) h[i] = want[i] = (float)(i % 97) * 0.25f;
    ie_status s = ie_tensor_upload(a, h);
    for (int k = 0; k < 300 && !s; k++) {           /* more than one submit batch */
        s = ie_scale(vk, b, a, 1.0f, 1.0f);         /* b = a + 1 (read a, write b) */
        if (!s) s = ie_scale(vk, a, b, 0.5f, 0.0f); /* a = b / 2 (RAW on b, WAR on a) */
    }
    for (int k = 0; k < 300; k++)
        for (int64_t i = 0; i < n; i++) want[i] = (want[i] + 1.0f) * 0.5f;
    if (!s) s = ie_tensor_download(a, h);
    int ok = !s && memcmp(h, want, (size_t)n * sizeof *h) == 0;
    TU_CHECK(ok, "600 dependent dispatches in ping-pong give the sequential result");
    free(h);
    free(want);
    ie_tensor_free(a);
    ie_tensor_free(b);
}

/* Many allocations and frees of odd sizes: contents stay intact, memory
 * accounting returns to where it started. */
static void test_suballocation(void) {
    uint64_t before;
    ie_backend_memory(vk, &before, NULL);
    enum { T = 64 };
    ie_tensor *ts[T] = {0};
    tu_rng r = tu_rng_new(7);
    int ok = 1;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < T; i++) {
            if (ts[i] && (tu_next(&r) & 1)) {
                ie_tensor_free(ts[i]);
                ts[i] = NULL;
            }
            if (!ts[i]) {
                int64_t n = 1 + (int64_t)(tu_next(&r) % 300000);
                ts[i] = ie_tensor_new(vk, IE_F32, 1, &n);
                if (!ts[i]) {
                    ok = 0;
                    continue;
                }
                float *h = malloc((size_t)n * sizeof *h);
                for (int64_t k = 0; k < n; k++) h[k] = (float)(i * 1000 + (k % 1000));
                ok &= ie_tensor_upload(ts[i], h) == IE_OK;
                free(h);
            }
        }
        for (int i = 0; i < T; i++) {
            if (!ts[i]) continue;
            int64_t n = ie_tensor_numel(ts[i]);
            float *h = malloc((size_t)n * sizeof *h);
            ok &= ie_tensor_download(ts[i], h) == IE_OK;
            for (int64_t k = 0; k < n; k++)
                if (h[k] != (float)(i * 1000 + (k % 1000))) {
                    ok = 0;
                    break;
                }
            free(h);
        }
    }
    for (int i = 0; i < T; i++) ie_tensor_free(ts[i]);
    uint64_t after, peak;
    ie_backend_memory(vk, &after, &peak);
    TU_CHECK(ok, "sub-allocated tensors keep their contents over 3 rounds of alloc/free");
    TU_CHECK(after == before && peak > before, "memory accounting returns to %llu (peak %llu)",
             (unsigned long long)before, (unsigned long long)peak);
}

/* Views address the right sub-range. */
static void test_views(void) {
    const int64_t n = 1000;
    ie_tensor *t = ie_tensor_new(vk, IE_F32, 1, &n);
    float h[1000];
    for (int i = 0; i < 1000; i++) h[i] = (float)i;
    ie_tensor_upload(t, h);
    int64_t vs[2] = {10, 20};
    ie_tensor *v = ie_tensor_view(t, 300, 2, vs);
    ie_status s = ie_scale(vk, v, v, -1.0f, 0.0f);
    if (!s) s = ie_tensor_download(t, h);
    int ok = !s;
    for (int i = 0; i < 1000 && ok; i++) ok = h[i] == ((i >= 300 && i < 500) ? -(float)i : (float)i);
    TU_CHECK(ok, "an op on a view changes exactly the view's 200 elements");
    int64_t too[1] = {800};
    ie_tensor *bad = ie_tensor_view(t, 300, 1, too);
    TU_CHECK(bad == NULL && strstr(ie_backend_errmsg(vk), "do not fit"), "an out-of-range view is refused: %s",
             ie_backend_errmsg(vk));
    ie_tensor_free(v);
    ie_tensor_free(t);
}

static void test_timer(void) {
    const int64_t n = 1 << 22;
    ie_tensor *t = ie_tensor_new(vk, IE_F32, 1, &n);
    ie_backend_timer_begin(vk);
    for (int i = 0; i < 10; i++) ie_scale(vk, t, t, 1.0f, 0.0f);
    double secs = ie_backend_timer_end(vk);
    TU_CHECK(secs > 0 && secs < 60, "timestamp queries time 10 dispatches: %.3f ms", secs * 1e3);
    ie_tensor_free(t);
}

static void test_selection(void) {
    char note[512];
    setenv("INVEDIT_DEVICE", "cpu", 1);
    ie_backend *be = ie_backend_open(NULL, note, sizeof note);
    TU_CHECK(ie_backend_kind_of(be) == IE_BACKEND_CPU, "INVEDIT_DEVICE=cpu selects %s", ie_backend_description(be));
    ie_backend_free(be);
    setenv("INVEDIT_DEVICE", "vulkan", 1);
    be = ie_backend_open(NULL, note, sizeof note);
    TU_CHECK(ie_backend_kind_of(be) == IE_BACKEND_VULKAN, "INVEDIT_DEVICE=vulkan selects %s",
             ie_backend_description(be));
    ie_backend_free(be);
    be = ie_backend_open("vulkan:99", note, sizeof note);
    TU_CHECK(ie_backend_kind_of(be) == IE_BACKEND_CPU && strstr(note, "99"),
             "a missing device falls back to the CPU with a message: %s", note);
    ie_backend_free(be);
    unsetenv("INVEDIT_DEVICE");
    ie_device_info d[8];
    char err[256];
    int n = ie_vulkan_list_devices(d, 8, err, sizeof err);
    TU_CHECK(n >= 1 && d[0].max_storage_buffer_range > 0, "list devices: %d, first %s (max range %llu MiB)", n,
             n > 0 ? d[0].name : err, n > 0 ? (unsigned long long)(d[0].max_storage_buffer_range >> 20) : 0ull);
}

/* INVEDIT_VK_SUBGROUP_SIZE: a size the device does not offer is refused with
 * a message naming the variable; the device's smallest offered size (when it
 * lets pipelines require one) is taken, reported, and computes right. */
static void test_subgroup_env(void) {
    char err[512];
    ie_device_info info[4];
    if (ie_vulkan_list_devices(info, 4, err, sizeof err) <= 0) return;
    const char *saved = getenv("INVEDIT_VK_SUBGROUP_SIZE");
    char *keep = saved ? strdup(saved) : NULL;
    setenv("INVEDIT_VK_SUBGROUP_SIZE", "3", 1);
    ie_backend *b = ie_backend_vulkan_new(-1, err, sizeof err);
    TU_CHECK(!b && strstr(err, "INVEDIT_VK_SUBGROUP_SIZE=3"), "INVEDIT_VK_SUBGROUP_SIZE=3 is refused: %s",
             b ? "(accepted)" : err);
    if (b) ie_backend_free(b);
    ie_device_info d = info[0];
    for (int i = 0; i < 4; i++) /* the preferred device is the one ie_backend_vulkan_new(-1) opens */
        if (strstr(ie_backend_description(vk), info[i].name)) {
            d = info[i];
            break;
        }
    /* the smallest size whose subgroups can make up a 256-invocation workgroup */
    uint32_t size = d.min_subgroup_size;
    while (size && size <= d.max_subgroup_size && (uint64_t)size * d.max_workgroup_subgroups < 256) size *= 2;
    if (d.subgroup_size_control && size && size <= d.max_subgroup_size) {
        char v[16];
        snprintf(v, sizeof v, "%u", size);
        setenv("INVEDIT_VK_SUBGROUP_SIZE", v, 1);
        b = ie_backend_vulkan_new(-1, err, sizeof err);
        bool ok = b != NULL;
        if (b) {
            const int64_t n = 1000;
            ie_tensor *t = ie_tensor_new(b, IE_F32, 1, &n);
            float h[1000];
            for (int i = 0; i < 1000; i++) h[i] = (float)i;
            ok = t && !ie_tensor_upload(t, h) && !ie_scale(b, t, t, 2.0f, 1.0f) && !ie_tensor_download(t, h);
            for (int i = 0; i < 1000 && ok; i++) ok = h[i] == 2.0f * (float)i + 1.0f;
            ie_tensor_free(t);
            ie_backend_free(b);
        }
        TU_CHECK(ok, "INVEDIT_VK_SUBGROUP_SIZE=%s (offered %u..%u): a required-size pipeline computes right%s%s", v,
                 d.min_subgroup_size, d.max_subgroup_size, b ? "" : ": ", b ? "" : err);
    } else {
        printf("skip required subgroup sizes: %s offers none that fits a 256-invocation workgroup\n", d.name);
    }
    if (keep) setenv("INVEDIT_VK_SUBGROUP_SIZE", keep, 1);
    else unsetenv("INVEDIT_VK_SUBGROUP_SIZE");
    free(keep);
}

int main(void) {
    char err[512];
    vk = ie_backend_vulkan_new(-1, err, sizeof err);
    if (!vk) {
        printf("skip: no Vulkan device (%s)\n", err);
        return 77;
    }
    printf("device: %s\n", ie_backend_description(vk));
    test_large_tensor();
    test_barriers();
    test_suballocation();
    test_views();
    test_timer();
    test_selection();
    test_subgroup_env();
    ie_backend_free(vk);
    return tu_finish("test_vk_runtime");
}
