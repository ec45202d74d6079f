/* Vulkan runtime: instance, device, memory, pipelines and dispatch.
 * Private to vkcompute/; the Vulkan backend (vk_backend.c) and its ops
 * (vk_ops_*.c, vk_ops.h) are built on it.
 *
 * Buffers are addressed from shaders through buffer device addresses
 * (GL_EXT_buffer_reference), passed in push constants. That keeps every shader
 * free of descriptor sets, and storage-buffer ranges never limit a tensor:
 * only maxBufferSize / maxMemoryAllocationSize do, and the allocator respects
 * both (device memory comes in blocks of at most min(1 GiB, those limits),
 * sub-allocated with a first-fit free list; a tensor larger than a block gets
 * a dedicated allocation when the device allows it).
 *
 * Recording model: vk_dispatch() records into the current command buffer and
 * inserts a compute->compute memory barrier only when the dispatch touches a
 * range written (or, for writes, read) since the last barrier. Work is
 * submitted in batches and vk_runtime_sync() waits for all of it.
 */
#ifndef INVEDIT_VK_RUNTIME_H
#define INVEDIT_VK_RUNTIME_H

#include "vkcompute/backend.h"

#include <vulkan/vulkan.h>

typedef struct vk_runtime vk_runtime;
typedef struct vk_kernel vk_kernel;

/* Creates the runtime on physical device `index` (-1: the preferred one,
 * ie_vulkan_preferred_device with CPU implementations included). */
vk_runtime *vk_runtime_create(int index, ie_device_info *info_out, char *err, size_t errlen);
void vk_runtime_destroy(vk_runtime *rt);
const ie_device_info *vk_runtime_info(const vk_runtime *rt);

/* --- memory -------------------------------------------------------------- */

/* One allocation: `size` bytes at device address `addr`. */
typedef struct vk_mem {
    uint32_t block;  /* index of the device-memory block */
    uint64_t offset; /* byte offset inside the block */
    uint64_t size;
    VkDeviceAddress addr; /* device address of byte 0 */
    void *mapped;         /* host pointer when the block is host-visible, else NULL */
} vk_mem;

ie_status vk_mem_alloc(vk_runtime *rt, uint64_t size, vk_mem *out, char *err, size_t errlen);
void vk_mem_free(vk_runtime *rt, vk_mem *m);
/* Copies host <-> device. Both wait for recorded work first (it may still
 * read or write the memory). */
ie_status vk_mem_write(vk_runtime *rt, const vk_mem *m, uint64_t offset, const void *src, uint64_t n, char *err,
                       size_t errlen);
ie_status vk_mem_read(vk_runtime *rt, const vk_mem *m, uint64_t offset, void *dst, uint64_t n, char *err,
                      size_t errlen);

/* Device address of a tensor's element 0 (tensor of a Vulkan backend). */
VkDeviceAddress vk_tensor_addr(const ie_tensor *t);

/* --- kernels ------------------------------------------------------------- */

/* The compute pipeline for an embedded shader (by name, see shaders/meson.build),
 * specialised with constants 0..nspec-1. Cached: cheap after the first call.
 * NULL with a message when the shader is unknown or fails to build. */
vk_kernel *vk_kernel_get(vk_runtime *rt, const char *shader, const uint32_t *spec, int nspec, char *err, size_t errlen);

/* A byte range a dispatch reads or writes (for barrier placement). */
typedef struct vk_range {
    VkDeviceAddress addr;
    uint64_t size;
} vk_range;

static inline vk_range vk_range_of(const ie_tensor *t) {
    vk_range r = {vk_tensor_addr(t), (uint64_t)ie_tensor_nbytes(t)};
    return r;
}

/* Records one dispatch of gx×gy×gz workgroups. push_size ≤ 128 bytes.
 * Group counts above the device limit are an IE_ERR_ARG error (kernels fold
 * large counts into y/z themselves). */
ie_status vk_dispatch(vk_runtime *rt, vk_kernel *k, const void *push, uint32_t push_size, uint32_t gx, uint32_t gy,
                      uint32_t gz, const vk_range *reads, int nreads, const vk_range *writes, int nwrites, char *err,
                      size_t errlen);

/* Submits recorded work and waits. */
ie_status vk_runtime_sync(vk_runtime *rt, char *err, size_t errlen);

/* Timestamps around recorded work; end returns elapsed seconds (syncs). */
void vk_runtime_timer_begin(vk_runtime *rt);
double vk_runtime_timer_end(vk_runtime *rt);

void vk_runtime_memory(const vk_runtime *rt, uint64_t *in_use, uint64_t *peak);
void vk_runtime_reset_peak(vk_runtime *rt);

/* Maximum workgroup count in x (maxComputeWorkGroupCount[0]); y and z may
 * allow fewer, and the ops keep those within 65535. */
uint32_t vk_runtime_max_groups(const vk_runtime *rt);

/* --- embedded SPIR-V (generated at build time) ------------------------------ */

typedef struct vk_shader_blob {
    const char *name;
    const uint32_t *code;
    size_t size_bytes;
} vk_shader_blob;

extern const vk_shader_blob vk_shader_blobs[];
extern const size_t vk_shader_blob_count;

#endif
