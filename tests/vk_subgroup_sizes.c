/* vk-subgroup-sizes: prints the subgroup sizes the preferred Vulkan device
 * lets invedit require for its compute shaders (VK_EXT_subgroup_size_control),
 * one per line, each checked by creating the runtime with
 * INVEDIT_VK_SUBGROUP_SIZE set to it. Prints nothing when the device offers
 * no choice (its one size is what every test already runs at); exit 77 when
 * there is no Vulkan device. Used by tests/vk-checks.sh subgroups. */
#include "vkcompute/vk_runtime.h"

#include <stdio.h>
#include <stdlib.h>

int main(void) {
    char err[256];
    ie_device_info info;
    unsetenv("INVEDIT_VK_SUBGROUP_SIZE");
    vk_runtime *rt = vk_runtime_create(-1, &info, err, sizeof err);
    if (!rt) {
        fprintf(stderr, "vk-subgroup-sizes: %s\n", err);
        return 77;
    }
    vk_runtime_destroy(rt);
    fprintf(stderr, "vk-subgroup-sizes: %s: subgroup size %u, range %u..%u, required sizes %s\n", info.name,
            info.subgroup_size, info.min_subgroup_size, info.max_subgroup_size,
            info.subgroup_size_control ? "supported" : "not supported");
    /* no choice: the plain suite already runs at the one size */
    if (!info.subgroup_size_control || info.min_subgroup_size == info.max_subgroup_size) return 0;
    for (uint32_t s = info.min_subgroup_size; s && s <= info.max_subgroup_size && s <= 128; s *= 2) {
        char v[16];
        snprintf(v, sizeof v, "%u", s);
        setenv("INVEDIT_VK_SUBGROUP_SIZE", v, 1);
        rt = vk_runtime_create(-1, NULL, err, sizeof err);
        if (rt) {
            printf("%u\n", s);
            vk_runtime_destroy(rt);
        } else {
            fprintf(stderr, "vk-subgroup-sizes: size %u refused: %s\n", s, err);
        }
    }
    return 0;
}
