/* Vulkan attention: the fused flash kernel and the probs/apply pair, all from
 * shaders/flash_attn.comp.
 *
 * One workgroup of 64 invocations takes BR = 64/T query rows of one (batch,
 * head), R times over (R rows per invocation). T invocations share a row and
 * split its head dimension into vec4 chunks (T = 1 for head dims up to 64, 2
 * for 80, 4 for 160, 8 for 512), so q and the output accumulator stay within
 * ~16 vec4 registers per invocation and row. K and V are streamed in tiles of
 * BC keys through shared memory (<= 16 KiB unless the device has less) with an
 * online softmax in fp32: no Lq×Lk matrix exists in memory. R = 1 on GPUs;
 * R = 4 on CPU devices (lavapipe), where each shared-memory read is a gather
 * and feeding 4 rows from it runs ~4x faster. Head dims, T, BC, R and the
 * causal flag are specialization constants. Fixed reduction order, no
 * atomics: deterministic.
 *
 * The causal mask is top-left aligned (key j masked for query i when j > i),
 * as the CPU backend and torch's is_causal.
 *
 * INVEDIT_ATTN_SHARED=<bytes> overrides the shared-memory budget and
 * INVEDIT_ATTN_ROWS=<1..8> the query rows per invocation (tuning).
 */
#include "vkcompute/vk_ops.h"

#include <stdlib.h>

#define ATTN_WG 64u
#define ATTN_MAX_VEC4_PER_THREAD 16u /* q / output chunks kept in registers */
#define ATTN_DEFAULT_SHARED 16384u
#define ATTN_CPU_ROWS 4u

typedef struct attn_cfg {
    uint32_t spec[6]; /* D, DV, T, BC, CAUSAL, R */
    uint32_t br;      /* query rows per workgroup */
} attn_cfg;

/* uses_k: the kernel stages K tiles (flash, probs); uses_v: V tiles (flash, apply). */
static ie_status attn_config(ie_backend *be, const char *op, uint32_t D, uint32_t DV, bool uses_k, bool uses_v,
                             bool causal, attn_cfg *c) {
    const ie_device_info *info = vk_runtime_info(vk_backend_runtime(be));
    uint32_t budget = info->max_shared_memory ? info->max_shared_memory : ATTN_DEFAULT_SHARED;
    if (budget > ATTN_DEFAULT_SHARED) budget = ATTN_DEFAULT_SHARED;
    const char *env = getenv("INVEDIT_ATTN_SHARED");
    if (env && *env) {
        unsigned long v = strtoul(env, NULL, 10);
        if (v >= 1024 && v <= info->max_shared_memory) budget = (uint32_t)v;
    }
    /* T: a power of two within the smallest subgroup the driver may use for
     * this shader (the row's partial dot products are summed with subgroup
     * shuffles): VK_EXT_subgroup_size_control's minSubgroupSize where the
     * driver reports it (Intel and AMD vary the size per shader), and at most 8
     * in any case (Intel may run compute shaders 8 wide whatever subgroupSize
     * says). */
    uint32_t sg = info->min_subgroup_size ? info->min_subgroup_size : info->subgroup_size;
    uint32_t tmax = 1;
    while (tmax * 2 <= sg && tmax * 2 <= 8) tmax *= 2;
    const uint32_t d4 = uses_k ? (D + 3) / 4 : 0, dv4 = uses_v ? (DV + 3) / 4 : 0;
    const uint32_t n4 = d4 > dv4 ? d4 : dv4;
    uint32_t T = 1;
    while ((n4 + T - 1) / T > ATTN_MAX_VEC4_PER_THREAD && T * 2 <= tmax) T *= 2;
    uint32_t BC = 32;
    while (BC > 1 && BC * 16u * (d4 + dv4) > budget) BC /= 2;
    if (BC * 16u * (d4 + dv4) > budget)
        return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "%s: head dims %u/%u need more shared memory than %u bytes",
                                    op, D, DV, budget);
    c->spec[0] = uses_k ? D : 4;
    c->spec[1] = uses_v ? DV : 4;
    c->spec[2] = T;
    c->spec[3] = BC;
    c->spec[4] = causal ? 1u : 0u;
    /* Rows per invocation: 1 on GPUs (registers); on CPU devices (lavapipe)
     * every shared-memory read is a gather, so each one feeds R rows. */
    uint32_t R = info->type == IE_DEVICE_CPU ? ATTN_CPU_ROWS : 1;
    env = getenv("INVEDIT_ATTN_ROWS");
    if (env && *env) {
        unsigned long v = strtoul(env, NULL, 10);
        if (v >= 1 && v <= 8) R = (uint32_t)v;
    }
    c->spec[5] = R;
    c->br = ATTN_WG / T * R;
    return IE_OK;
}

typedef struct attn_push {
    VkDeviceAddress q, k, v, o;
    uint32_t B, H, Lq, Lk;
    uint32_t qs, ks, vs, os;
    float scale;
    uint32_t nqb;
} attn_push;

static ie_status attn_launch(ie_backend *be, const char *shader, const attn_cfg *c, attn_push *pc,
                             const vk_range *reads, int nreads, const vk_range *w) {
    pc->nqb = (pc->Lq + c->br - 1) / c->br;
    uint32_t gx, gy;
    vk_split_groups(be, (uint64_t)pc->B * pc->H * pc->nqb, &gx, &gy);
    return vk_run(be, shader, c->spec, 6, pc, sizeof *pc, gx, gy, 1, reads, nreads, w, 1);
}

static bool fits_u32(const ie_tensor *t) { return (uint64_t)ie_tensor_numel(t) <= UINT32_MAX; }

#define LOG2E 1.4426950408889634

ie_status vk_op_attention(ie_backend *be, ie_tensor *out, const ie_tensor *q, const ie_tensor *k, const ie_tensor *v,
                          int heads, float scale, bool causal) {
    const uint32_t B = (uint32_t)q->shape[0], Lq = (uint32_t)q->shape[1], Lk = (uint32_t)k->shape[1];
    const uint32_t HD = (uint32_t)q->shape[2], HDv = (uint32_t)v->shape[2], H = (uint32_t)heads;
    if (B == 0 || Lq == 0 || Lk == 0 || HDv == 0) return IE_OK; /* as the CPU backend */
    if (!fits_u32(q) || !fits_u32(k) || !fits_u32(v) || !fits_u32(out))
        return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "attention: tensors over 2^32 elements");
    attn_cfg c;
    ie_status s = attn_config(be, "attention", HD / H, HDv / H, true, true, causal, &c);
    if (s) return s;
    attn_push pc = {vk_tensor_addr(q),
                    vk_tensor_addr(k),
                    vk_tensor_addr(v),
                    vk_tensor_addr(out),
                    B,
                    H,
                    Lq,
                    Lk,
                    HD,
                    HD,
                    HDv,
                    HDv,
                    (float)(scale * LOG2E),
                    0};
    vk_range r[3] = {vk_range_of(q), vk_range_of(k), vk_range_of(v)}, w = vk_range_of(out);
    return attn_launch(be, "flash_attn", &c, &pc, r, 3, &w);
}

ie_status vk_op_attention_probs(ie_backend *be, ie_tensor *probs, const ie_tensor *q, const ie_tensor *k, int heads,
                                float scale, bool causal) {
    const uint32_t B = (uint32_t)q->shape[0], Lq = (uint32_t)q->shape[1], Lk = (uint32_t)k->shape[1];
    const uint32_t HD = (uint32_t)q->shape[2], H = (uint32_t)heads;
    if (B == 0 || Lq == 0 || Lk == 0) return IE_OK;
    if (!fits_u32(q) || !fits_u32(k) || !fits_u32(probs))
        return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "attention_probs: tensors over 2^32 elements");
    attn_cfg c;
    ie_status s = attn_config(be, "attention_probs", HD / H, 0, true, false, causal, &c);
    if (s) return s;
    attn_push pc = {vk_tensor_addr(q),
                    vk_tensor_addr(k),
                    0,
                    vk_tensor_addr(probs),
                    B,
                    H,
                    Lq,
                    Lk,
                    HD,
                    HD,
                    0,
                    0,
                    (float)(scale * LOG2E),
                    0};
    vk_range r[2] = {vk_range_of(q), vk_range_of(k)}, w = vk_range_of(probs);
    return attn_launch(be, "attn_probs", &c, &pc, r, 2, &w);
}

ie_status vk_op_attention_apply(ie_backend *be, ie_tensor *out, const ie_tensor *probs, const ie_tensor *v) {
    const uint32_t B = (uint32_t)probs->shape[0], H = (uint32_t)probs->shape[1];
    const uint32_t Lq = (uint32_t)probs->shape[2], Lk = (uint32_t)probs->shape[3];
    const uint32_t HDv = (uint32_t)v->shape[2];
    if (B == 0 || Lq == 0 || HDv == 0) return IE_OK;
    if (!fits_u32(probs) || !fits_u32(v) || !fits_u32(out))
        return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "attention_apply: tensors over 2^32 elements");
    attn_cfg c;
    ie_status s = attn_config(be, "attention_apply", 0, HDv / H, false, true, false, &c);
    if (s) return s;
    attn_push pc = {
        vk_tensor_addr(probs), 0, vk_tensor_addr(v), vk_tensor_addr(out), B, H, Lq, Lk, 0, 0, HDv, HDv, 1.0f, 0};
    vk_range r[2] = {vk_range_of(probs), vk_range_of(v)}, w = vk_range_of(out);
    return attn_launch(be, "attn_apply", &c, &pc, r, 2, &w);
}
