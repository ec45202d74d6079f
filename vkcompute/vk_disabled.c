/* The Vulkan entry points of a build without the Vulkan backend
 * (-Dvulkan=disabled, or auto without glslc or the Vulkan headers; see
 * docs/vulkan.md). Listing devices and opening the backend fail with a message
 * that says so, and ie_backend_open falls back to the CPU backend as it does on
 * a machine without a Vulkan driver. */
#include "vkcompute/backend.h"

#include <stdio.h>

#define NOT_COMPILED_IN                                                                                                \
    "the Vulkan backend is not compiled in (invedit was configured with -Dvulkan=disabled, or "                        \
    "without glslc or the Vulkan headers)"

int ie_vulkan_list_devices(ie_device_info *out, int max, char *err, size_t errlen) {
    (void)out;
    (void)max;
    if (err && errlen) snprintf(err, errlen, "%s", NOT_COMPILED_IN);
    return -1;
}

ie_backend *ie_vk_backend_create(int device_index, char *err, size_t errlen) {
    (void)device_index;
    if (err && errlen) snprintf(err, errlen, "%s", NOT_COMPILED_IN);
    return NULL;
}
