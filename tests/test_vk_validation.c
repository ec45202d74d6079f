/* The validation check itself (INVEDIT_VK_VALIDATION, meson test --setup
 * vkvalidation) must be able to fail. Each case runs in a child process with
 * validation on and does one thing the Khronos layer must report:
 *   - a pipeline whose workgroup (a specialization constant) exceeds the
 *     device's limits (core validation at pipeline creation);
 *   - a shader reading through a buffer device address far outside any
 *     buffer (GPU-assisted validation, inside the shader).
 * The child must then exit with status 1 and name the message; a child that
 * does nothing wrong must exit 0. Skips when there is no Vulkan device or no
 * validation layer. */
#include "testutil.h"
#include "vkcompute/vk_runtime.h"
#include "vkcompute/vk_validation.h"

#include <dlfcn.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CASE_CLEAN, CASE_WORKGROUP, CASE_OOB };

/* Runs in the child: returns normally; the exit hook decides the status. */
static void child(int which) {
    char err[256];
    vk_runtime *rt = vk_runtime_create(-1, NULL, err, sizeof err);
    if (!rt) {
        fprintf(stderr, "child: no Vulkan device: %s\n", err);
        _exit(77);
    }
    vk_mem m;
    if (vk_mem_alloc(rt, 4096, &m, err, sizeof err) != IE_OK) _exit(2);
    struct {
        VkDeviceAddress x, out;
        uint32_t n;
        float scale, bias;
    } pc = {m.addr, m.addr, 1024, 2.0f, 1.0f};
    if (which == CASE_WORKGROUP) {
        const uint32_t spec[6] = {4096, 64, 64, 16, 4, 4}; /* NT = 4096 invocations */
        vk_kernel *k = vk_kernel_get(rt, "matmul_f32", spec, 6, err, sizeof err);
        (void)k;
    } else {
        if (which == CASE_OOB) pc.x = m.addr + ((uint64_t)1 << 40);
        vk_kernel *k = vk_kernel_get(rt, "scale", NULL, 0, err, sizeof err);
        vk_range r = {m.addr, 4096};
        if (!k || vk_dispatch(rt, k, &pc, sizeof pc, 4, 1, 1, &r, 1, &r, 1, err, sizeof err) ||
            vk_runtime_sync(rt, err, sizeof err))
            _exit(2);
    }
    vk_mem_free(rt, &m);
    vk_runtime_destroy(rt);
}

/* Runs a case in a child with validation on; returns its exit status and
 * whether stderr named `expect`. */
static int run_case(int which, const char *expect, bool *named) {
    int fds[2];
    if (pipe(fds)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        setenv("INVEDIT_VK_VALIDATION", "1", 1);
        unsetenv("INVEDIT_VK_SUBGROUP_SIZE");
        child(which);
        exit(0);
    }
    close(fds[1]);
    GString *text = g_string_new(NULL);
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) g_string_append_len(text, buf, n);
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    *named = expect ? strstr(text->str, expect) != NULL : strstr(text->str, "Vulkan validation") == NULL;
    if (!*named || !WIFEXITED(st)) printf("     child stderr:\n%s\n", text->str);
    g_string_free(text, TRUE);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(void) {
    char err[256];
    ie_device_info info[4];
    if (ie_vulkan_list_devices(info, 4, err, sizeof err) <= 0) {
        printf("SKIP: no Vulkan device (%s)\n", err);
        return 77;
    }
    /* is the layer installed? (asked of the loader directly) */
    void *h = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    PFN_vkGetInstanceProcAddr gipa = h ? (PFN_vkGetInstanceProcAddr)dlsym(h, "vkGetInstanceProcAddr") : NULL;
    bool have_layer = false;
    if (gipa) {
        PFN_vkEnumerateInstanceLayerProperties el =
            (PFN_vkEnumerateInstanceLayerProperties)gipa(NULL, "vkEnumerateInstanceLayerProperties");
        uint32_t n = 0;
        if (el && el(&n, NULL) == VK_SUCCESS && n) {
            VkLayerProperties *lp = calloc(n, sizeof *lp);
            if (el(&n, lp) == VK_SUCCESS)
                for (uint32_t i = 0; i < n; i++) have_layer |= !strcmp(lp[i].layerName, "VK_LAYER_KHRONOS_validation");
            free(lp);
        }
    }
    if (!have_layer) {
        printf("SKIP: VK_LAYER_KHRONOS_validation is not installed (vulkan-validationlayers)\n");
        return 77;
    }
    bool named;
    int st = run_case(CASE_CLEAN, NULL, &named);
    TU_CHECK(st == 0 && named, "valid work under validation: exit %d, no message", st);
    st = run_case(CASE_WORKGROUP, "maxComputeWorkGroupInvocations", &named);
    TU_CHECK(st == 1 && named, "a 4096-invocation workgroup is reported (exit %d, named %d)", st, named);
    st = run_case(CASE_OOB, "out of bounds", &named);
    TU_CHECK(st == 1 && named, "GPU-assisted validation reports an out-of-bounds device address (exit %d, named %d)",
             st, named);
    return tu_finish("test_vk_validation");
}
