/* The Vulkan backend's ops, one group per file:
 *   vk_ops_gemm.c   conv2d (implicit GEMM), matmul/linear
 *   vk_ops_attn.c   fused flash attention, attention probs/apply
 *   vk_ops_basic.c  norms, elementwise, concat, upsample, transpose, copy,
 *                   timestep embedding, embedding lookup
 * Signatures match ie_backend_ops (backend.h); arguments arrive checked.
 */
#ifndef INVEDIT_VK_OPS_H
#define INVEDIT_VK_OPS_H

#include "vkcompute/vk_runtime.h"

/* The runtime behind a Vulkan backend. */
vk_runtime *vk_backend_runtime(ie_backend *be);

/* Gets the kernel `shader` specialised with spec[0..nspec-1] and records one
 * dispatch; errors are set on the backend. The usual way an op runs. */
ie_status vk_run(ie_backend *be, const char *shader, const uint32_t *spec, int nspec, const void *push,
                 uint32_t push_size, uint32_t gx, uint32_t gy, uint32_t gz, const vk_range *reads, int nreads,
                 const vk_range *writes, int nwrites);

/* Splits a 1-D count of workgroups into (x, y) within the device limit:
 * shaders recover the linear group id as gl_WorkGroupID.x +
 * gl_WorkGroupID.y * gl_NumWorkGroups.x (and must bounds-check). */
void vk_split_groups(ie_backend *be, uint64_t groups, uint32_t *gx, uint32_t *gy);

ie_status vk_op_conv2d(ie_backend *be, ie_tensor *out, const ie_tensor *x, const ie_tensor *w, const ie_tensor *b,
                       const ie_conv2d_params *p);
ie_status vk_op_matmul(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, const ie_tensor *bias,
                       bool trans_a, bool trans_b, int64_t B, int64_t M, int64_t N, int64_t K, bool a_batched,
                       bool b_batched);

ie_status vk_op_attention(ie_backend *be, ie_tensor *out, const ie_tensor *q, const ie_tensor *k, const ie_tensor *v,
                          int heads, float scale, bool causal);
ie_status vk_op_attention_probs(ie_backend *be, ie_tensor *probs, const ie_tensor *q, const ie_tensor *k, int heads,
                                float scale, bool causal);
ie_status vk_op_attention_apply(ie_backend *be, ie_tensor *out, const ie_tensor *probs, const ie_tensor *v);

ie_status vk_op_group_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, int groups, float eps,
                           const ie_tensor *gamma, const ie_tensor *beta, bool silu, int64_t N, int64_t C, int64_t S);
ie_status vk_op_layer_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, float eps, const ie_tensor *gamma,
                           const ie_tensor *beta, int64_t rows, int64_t C);
ie_status vk_op_unary(ie_backend *be, ie_tensor *out, const ie_tensor *x, ie_unary_op op);
ie_status vk_op_scale(ie_backend *be, ie_tensor *out, const ie_tensor *x, float scale, float bias);
ie_status vk_op_geglu(ie_backend *be, ie_tensor *out, const ie_tensor *x, int64_t rows, int64_t D);
ie_status vk_op_binary(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, int op,
                       const int64_t ashape[4], const int64_t bshape[4]);
ie_status vk_op_concat_channels(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, int64_t N,
                                int64_t Ca, int64_t Cb, int64_t S);
ie_status vk_op_upsample_nearest2x(ie_backend *be, ie_tensor *out, const ie_tensor *x);
ie_status vk_op_transpose(ie_backend *be, ie_tensor *out, const ie_tensor *x, int64_t B, int64_t R, int64_t C);
ie_status vk_op_copy(ie_backend *be, ie_tensor *out, const ie_tensor *x);
ie_status vk_op_timestep_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *t, int dim, bool flip_sin_to_cos,
                                   float shift, float max_period);
ie_status vk_op_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *ids, const ie_tensor *table);

#endif
