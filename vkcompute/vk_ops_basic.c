/* Vulkan norms, elementwise and data-movement ops. */
#include "vk_ops.h"

#define STUB(name) return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, name ": not implemented on vulkan yet")

ie_status vk_op_scale(ie_backend *be, ie_tensor *out, const ie_tensor *x, float scale, float bias) {
    struct {
        VkDeviceAddress x, out;
        uint32_t n;
        float scale, bias;
    } pc = {vk_tensor_addr(x), vk_tensor_addr(out), (uint32_t)ie_tensor_numel(x), scale, bias};
    uint32_t gx, gy;
    vk_split_groups(be, ((uint64_t)pc.n + 255) / 256, &gx, &gy);
    vk_range r = vk_range_of(x), w = vk_range_of(out);
    return vk_run(be, "scale", NULL, 0, &pc, sizeof pc, gx, gy, 1, &r, 1, &w, 1);
}

ie_status vk_op_group_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, int groups,
                           float eps, const ie_tensor *gamma, const ie_tensor *beta, bool silu,
                           int64_t N, int64_t C, int64_t S) { STUB("group_norm"); }
ie_status vk_op_layer_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, float eps,
                           const ie_tensor *gamma, const ie_tensor *beta, int64_t rows, int64_t C) { STUB("layer_norm"); }
ie_status vk_op_unary(ie_backend *be, ie_tensor *out, const ie_tensor *x, ie_unary_op op) { STUB("unary"); }
ie_status vk_op_geglu(ie_backend *be, ie_tensor *out, const ie_tensor *x, int64_t rows, int64_t D) { STUB("geglu"); }
ie_status vk_op_binary(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b,
                       int op, const int64_t ashape[4], const int64_t bshape[4]) { STUB("binary"); }
ie_status vk_op_concat_channels(ie_backend *be, ie_tensor *out, const ie_tensor *a,
                                const ie_tensor *b, int64_t N, int64_t Ca, int64_t Cb, int64_t S) { STUB("concat_channels"); }
ie_status vk_op_upsample_nearest2x(ie_backend *be, ie_tensor *out, const ie_tensor *x) { STUB("upsample_nearest2x"); }
ie_status vk_op_transpose(ie_backend *be, ie_tensor *out, const ie_tensor *x, int64_t B, int64_t R,
                          int64_t C) { STUB("transpose"); }
ie_status vk_op_copy(ie_backend *be, ie_tensor *out, const ie_tensor *x) { STUB("copy"); }
ie_status vk_op_timestep_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *t, int dim,
                                   bool flip_sin_to_cos, float shift, float max_period) { STUB("timestep_embedding"); }
ie_status vk_op_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *ids,
                          const ie_tensor *table) { STUB("embedding"); }
