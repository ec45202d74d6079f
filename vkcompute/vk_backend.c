/* The Vulkan backend: tensors live in device memory (vk_mem), ops record
 * dispatches through the runtime; errors land in the backend's message. */
#include "vkcompute/vk_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vk_backend {
    vk_runtime *rt;
} vk_backend;

vk_runtime *vk_backend_runtime(ie_backend *be) { return ((vk_backend *)be->impl)->rt; }

VkDeviceAddress vk_tensor_addr(const ie_tensor *t) {
    const vk_mem *m = t->storage;
    return m->addr + t->offset; /* t->offset: bytes from the allocation's start */
}

ie_status vk_run(ie_backend *be, const char *shader, const uint32_t *spec, int nspec, const void *push,
                 uint32_t push_size, uint32_t gx, uint32_t gy, uint32_t gz, const vk_range *reads, int nreads,
                 const vk_range *writes, int nwrites) {
    vk_runtime *rt = vk_backend_runtime(be);
    char err[512];
    vk_kernel *k = vk_kernel_get(rt, shader, spec, nspec, err, sizeof err);
    if (!k) return ie_backend_set_error(be, IE_ERR_DEVICE, "%s", err);
    ie_status s = vk_dispatch(rt, k, push, push_size, gx, gy, gz, reads, nreads, writes, nwrites, err, sizeof err);
    if (s) return ie_backend_set_error(be, s, "%s: %s", shader, err);
    return IE_OK;
}

void vk_split_groups(ie_backend *be, uint64_t groups, uint32_t *gx, uint32_t *gy) {
    uint64_t max = vk_runtime_max_groups(vk_backend_runtime(be));
    if (max > 65535) max = 65535;
    if (groups <= max) {
        *gx = (uint32_t)(groups ? groups : 1);
        *gy = 1;
        return;
    }
    uint64_t y = (groups + max - 1) / max;
    *gx = (uint32_t)((groups + y - 1) / y);
    *gy = (uint32_t)y;
}

/* --- backend functions ------------------------------------------------------------ */

static void vkb_destroy(ie_backend *be) {
    vk_backend *vb = be->impl;
    if (vb) vk_runtime_destroy(vb->rt);
    free(vb);
    free(be);
}

static ie_status vkb_sync(ie_backend *be) {
    char err[512];
    ie_status s = vk_runtime_sync(vk_backend_runtime(be), err, sizeof err);
    return s ? ie_backend_set_error(be, s, "%s", err) : IE_OK;
}

static ie_status vkb_alloc(ie_backend *be, ie_tensor *t, size_t nbytes) {
    vk_mem *m = calloc(1, sizeof *m);
    if (!m) return ie_backend_set_error(be, IE_ERR_NOMEM, "out of host memory");
    char err[512];
    ie_status s = vk_mem_alloc(vk_backend_runtime(be), nbytes, m, err, sizeof err);
    if (s) {
        free(m);
        char b[96];
        return ie_backend_set_error(be, s, "tensor %s: %s", ie_tensor_shape_str(t, b, sizeof b), err);
    }
    t->storage = m;
    t->offset = 0;
    t->host = NULL;
    vk_runtime_memory(vk_backend_runtime(be), &be->mem_in_use, &be->mem_peak);
    return IE_OK;
}

static void vkb_release(ie_backend *be, ie_tensor *t) {
    vk_mem *m = t->storage;
    if (!m) return;
    vk_mem_free(vk_backend_runtime(be), m);
    free(m);
    t->storage = NULL;
    vk_runtime_memory(vk_backend_runtime(be), &be->mem_in_use, &be->mem_peak);
}

static ie_status vkb_upload(ie_backend *be, ie_tensor *t, const void *src, size_t nbytes) {
    char err[512];
    ie_status s = vk_mem_write(vk_backend_runtime(be), t->storage, t->offset, src, nbytes, err, sizeof err);
    return s ? ie_backend_set_error(be, s, "upload: %s", err) : IE_OK;
}

static ie_status vkb_download(ie_backend *be, ie_tensor *t, void *dst, size_t nbytes) {
    char err[512];
    ie_status s = vk_mem_read(vk_backend_runtime(be), t->storage, t->offset, dst, nbytes, err, sizeof err);
    return s ? ie_backend_set_error(be, s, "download: %s", err) : IE_OK;
}

static void vkb_reset_peak(ie_backend *be) {
    vk_runtime_reset_peak(vk_backend_runtime(be));
    vk_runtime_memory(vk_backend_runtime(be), &be->mem_in_use, &be->mem_peak);
}

static void vkb_timer_begin(ie_backend *be) { vk_runtime_timer_begin(vk_backend_runtime(be)); }
static double vkb_timer_end(ie_backend *be) { return vk_runtime_timer_end(vk_backend_runtime(be)); }

static const ie_backend_ops vk_backend_ops = {
    .name = "vulkan",
    .destroy = vkb_destroy,
    .sync = vkb_sync,
    .alloc = vkb_alloc,
    .release = vkb_release,
    .upload = vkb_upload,
    .download = vkb_download,
    .reset_peak = vkb_reset_peak,
    .timer_begin = vkb_timer_begin,
    .timer_end = vkb_timer_end,
    .conv2d = vk_op_conv2d,
    .matmul = vk_op_matmul,
    .group_norm = vk_op_group_norm,
    .layer_norm = vk_op_layer_norm,
    .attention = vk_op_attention,
    .attention_probs = vk_op_attention_probs,
    .attention_apply = vk_op_attention_apply,
    .unary = vk_op_unary,
    .scale = vk_op_scale,
    .geglu = vk_op_geglu,
    .binary = vk_op_binary,
    .concat_channels = vk_op_concat_channels,
    .upsample_nearest2x = vk_op_upsample_nearest2x,
    .transpose = vk_op_transpose,
    .copy = vk_op_copy,
    .timestep_embedding = vk_op_timestep_embedding,
    .embedding = vk_op_embedding,
};

ie_backend *ie_vk_backend_create(int device_index, char *err, size_t errlen) {
    ie_device_info info;
    vk_runtime *rt = vk_runtime_create(device_index, &info, err, errlen);
    if (!rt) return NULL;
    ie_backend *be = calloc(1, sizeof *be);
    vk_backend *vb = calloc(1, sizeof *vb);
    if (!be || !vb) {
        free(be);
        free(vb);
        vk_runtime_destroy(rt);
        if (err) snprintf(err, errlen, "out of host memory");
        return NULL;
    }
    vb->rt = rt;
    be->impl = vb;
    be->ops = &vk_backend_ops;
    be->kind = IE_BACKEND_VULKAN;
    snprintf(be->description, sizeof be->description, "vulkan:%d %s (%s)", info.index, info.name,
             ie_device_type_name(info.type));
    return be;
}
