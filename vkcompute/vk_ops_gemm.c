/* Vulkan conv2d (implicit GEMM) and matmul.
 *
 * Both ops run the tiled GEMM core in shaders/gemm_tile.glsl: one workgroup per
 * BM x BN output tile, K walked in steps of BK through shared memory, each
 * invocation accumulating a TM x TN block in fp32 registers. The tile shape is
 * in specialization constants 0..5 (NT, BM, BN, BK, TM, TN) and chosen here per
 * device and problem size; INVEDIT_GEMM_TILE="BM,BN,BK,TM,TN" overrides it (for
 * tuning on a new device).
 *
 * conv2d is an implicit GEMM (M = Cout, N = batch*OH*OW, K = Cin*KH*KW): the
 * im2col matrix is gathered tile by tile into shared memory and never exists in
 * device memory. Kernel size, stride and top/left padding are specialization
 * constants 6..10, so each conv geometry gets its own pipeline.
 *
 * Every output element is reduced by one invocation in a fixed K order: results
 * are bit-identical from run to run (no atomics, no split-K).
 */
#include "vkcompute/vk_ops.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct gemm_cfg {
    uint32_t bm, bn, bk, tm, tn;
} gemm_cfg;

/* Shared bytes per tile: As[BK][BM+4] + Bs[BK][BN+4] floats (see gemm_tile.glsl). */
static uint32_t cfg_shared_bytes(gemm_cfg c) { return 4u * c.bk * (c.bm + 4 + c.bn + 4); }
static uint32_t cfg_threads(gemm_cfg c) { return (c.bm / c.tm) * (c.bn / c.tn); }

static bool cfg_valid(gemm_cfg c, uint32_t max_shared, uint32_t max_threads) {
    if (!c.bm || !c.bn || !c.bk || !c.tm || !c.tn) return false;
    /* Thread tiles are read from shared memory as vec4s. */
    if (c.tm % 4 || c.tn % 4 || c.bm % c.tm || c.bn % c.tn) return false;
    uint32_t nt = cfg_threads(c);
    if (nt < 1 || nt > max_threads) return false;
    /* Every invocation fetches whole, equal shares of both tiles, and the conv
     * gather keeps one output column per invocation for the whole K loop. */
    if ((c.bm * c.bk) % nt || (c.bn * c.bk) % nt || nt % c.bn) return false;
    return cfg_shared_bytes(c) <= max_shared;
}

/* INVEDIT_GEMM_TILE="BM,BN,BK,TM,TN", when set and valid. */
static bool cfg_from_env(gemm_cfg *c, uint32_t max_shared, uint32_t max_threads) {
    const char *s = getenv("INVEDIT_GEMM_TILE");
    if (!s || !*s) return false;
    gemm_cfg e;
    if (sscanf(s, "%u,%u,%u,%u,%u", &e.bm, &e.bn, &e.bk, &e.tm, &e.tn) != 5 || !cfg_valid(e, max_shared, max_threads)) {
        static bool warned = false; /* a tuning knob: say once why it is ignored */
        if (!warned)
            fprintf(stderr,
                    "invedit: ignoring INVEDIT_GEMM_TILE=\"%s\" (want BM,BN,BK,TM,TN with "
                    "TM,TN multiples of 4, BM%%TM == BN%%TN == 0, NT=(BM/TM)*(BN/TN) <= %u, "
                    "NT %% BN == 0, BM*BK and BN*BK multiples of NT, shared memory <= %u)\n",
                    s, max_threads, max_shared);
        warned = true;
        return false;
    }
    *c = e;
    return true;
}

/* Picks the tile for an M x N (x batches) output. */
static gemm_cfg choose_cfg(ie_backend *be, uint64_t M, uint64_t N, uint64_t batches) {
    const ie_device_info *info = vk_runtime_info(vk_backend_runtime(be));
    uint32_t max_shared = info->max_shared_memory ? info->max_shared_memory : 16384;
    gemm_cfg c;
    /* workgroup of NT x 1 x 1 invocations: both device limits apply */
    uint32_t max_threads = info->max_workgroup_invocations ? info->max_workgroup_invocations : 128;
    if (info->max_workgroup_size[0] && info->max_workgroup_size[0] < max_threads)
        max_threads = info->max_workgroup_size[0];
    if (cfg_from_env(&c, max_shared, max_threads)) return c;

    if (info->type == IE_DEVICE_CPU) {
        /* lavapipe/llvmpipe: a workgroup runs on one CPU thread, 8 invocations
         * per SIMD vector, and every shared-memory read is a per-lane loop:
         * big 8x8 register tiles (fewest reads per FMA) win. */
        c = (gemm_cfg){64, 64, 16, 8, 8};
        if (M <= 16) c = (gemm_cfg){16, 64, 16, 4, 4};
        return c;
    }
    /* GPUs: 128x128 tiles, 8x8 per invocation, 256 invocations, 8.25 KiB of
     * shared memory; smaller tiles when that leaves too few workgroups. */
    uint64_t big = ((M + 127) / 128) * ((N + 127) / 128) * batches;
    if (M <= 16) c = (gemm_cfg){16, 128, 16, 4, 4};
    else if (big >= 512) c = (gemm_cfg){128, 128, 8, 8, 8};
    else c = (gemm_cfg){64, 64, 16, 4, 4};
    if (!cfg_valid(c, max_shared, max_threads)) c = (gemm_cfg){32, 32, 8, 4, 4}; /* 64 inv., 2.3 KiB */
    return c;
}

/* has_bias push constant: 0 none, 1 fp32, 2 fp16. */
static uint32_t bias_kind(const ie_tensor *b) { return !b ? 0u : b->dtype == IE_F16 ? 2u : 1u; }

#define U32_LIMIT ((uint64_t)UINT32_MAX)

ie_status vk_op_conv2d(ie_backend *be, ie_tensor *out, const ie_tensor *x, const ie_tensor *w, const ie_tensor *b,
                       const ie_conv2d_params *p) {
    const uint64_t N = (uint64_t)x->shape[0], Cin = (uint64_t)x->shape[1];
    const uint64_t H = (uint64_t)x->shape[2], W = (uint64_t)x->shape[3];
    const uint64_t Cout = (uint64_t)w->shape[0];
    const uint64_t KH = (uint64_t)w->shape[2], KW = (uint64_t)w->shape[3];
    const uint64_t OH = (uint64_t)out->shape[2], OW = (uint64_t)out->shape[3];
    const uint64_t K = Cin * KH * KW, NPQ = N * OH * OW;
    if (NPQ == 0 || Cout == 0) return IE_OK;
    /* Shaders index with 32-bit element offsets. */
    if ((uint64_t)ie_tensor_numel(x) > U32_LIMIT || (uint64_t)ie_tensor_numel(w) > U32_LIMIT ||
        (uint64_t)ie_tensor_numel(out) > U32_LIMIT)
        return ie_backend_set_error(be, IE_ERR_UNSUPPORTED,
                                    "conv2d: tensors over 2^32 elements are not supported on vulkan");

    gemm_cfg c = choose_cfg(be, Cout, NPQ, 1);
    const uint64_t tiles_m = (Cout + c.bm - 1) / c.bm, tiles_n = (NPQ + c.bn - 1) / c.bn;
    const uint64_t tiles = tiles_m * tiles_n;
    if (tiles > U32_LIMIT) return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "conv2d: too many output tiles");

    const uint32_t spec[11] = {cfg_threads(c),
                               c.bm,
                               c.bn,
                               c.bk,
                               c.tm,
                               c.tn,
                               (uint32_t)KH,
                               (uint32_t)KW,
                               (uint32_t)p->stride,
                               (uint32_t)p->pad_top,
                               (uint32_t)p->pad_left};
    struct {
        VkDeviceAddress x, w, bias, out;
        uint32_t Cin, H, W, Cout, OH, OW, K, NPQ, tiles_n, tiles, has_bias;
    } pc = {
        vk_tensor_addr(x),   vk_tensor_addr(w), b ? vk_tensor_addr(b) : 0,
        vk_tensor_addr(out), (uint32_t)Cin,     (uint32_t)H,
        (uint32_t)W,         (uint32_t)Cout,    (uint32_t)OH,
        (uint32_t)OW,        (uint32_t)K,       (uint32_t)NPQ,
        (uint32_t)tiles_n,   (uint32_t)tiles,   bias_kind(b),
    };
    _Static_assert(sizeof pc <= 128, "push constants");

    uint32_t gx, gy;
    vk_split_groups(be, tiles, &gx, &gy);
    vk_range reads[3] = {vk_range_of(x), vk_range_of(w)};
    int nreads = 2;
    if (b) reads[nreads++] = vk_range_of(b);
    vk_range wr = vk_range_of(out);
    const char *shader = w->dtype == IE_F16 ? "conv2d_f16" : "conv2d_f32";
    return vk_run(be, shader, spec, 11, &pc, sizeof pc, gx, gy, 1, reads, nreads, &wr, 1);
}

ie_status vk_op_matmul(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, const ie_tensor *bias,
                       bool trans_a, bool trans_b, int64_t B, int64_t M, int64_t N, int64_t K, bool a_batched,
                       bool b_batched) {
    if (B <= 0 || M <= 0 || N <= 0) return IE_OK;
    const uint64_t sa = a_batched ? (uint64_t)M * (uint64_t)K : 0;
    const uint64_t sb = b_batched ? (uint64_t)N * (uint64_t)K : 0;
    const uint64_t sc = (uint64_t)M * (uint64_t)N;
    if ((uint64_t)ie_tensor_numel(a) > U32_LIMIT || (uint64_t)ie_tensor_numel(b) > U32_LIMIT ||
        (uint64_t)ie_tensor_numel(out) > U32_LIMIT)
        return ie_backend_set_error(be, IE_ERR_UNSUPPORTED,
                                    "matmul: tensors over 2^32 elements are not supported on vulkan");

    gemm_cfg c = choose_cfg(be, (uint64_t)M, (uint64_t)N, (uint64_t)B);
    const uint64_t tiles_m = ((uint64_t)M + c.bm - 1) / c.bm;
    const uint64_t tiles_n = ((uint64_t)N + c.bn - 1) / c.bn;
    const uint64_t tiles = tiles_m * tiles_n;
    if (tiles > U32_LIMIT) return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "matmul: too many output tiles");

    const uint32_t spec[8] = {cfg_threads(c), c.bm, c.bn, c.bk, c.tm, c.tn, trans_a ? 1u : 0u, trans_b ? 1u : 0u};
    struct {
        VkDeviceAddress a, b, bias, out;
        uint32_t M, N, K, sa, sb, tiles_n, tiles, has_bias;
    } pc = {
        0,
        0,
        bias ? vk_tensor_addr(bias) : 0,
        0,
        (uint32_t)M,
        (uint32_t)N,
        (uint32_t)K,
        (uint32_t)sa,
        (uint32_t)sb,
        (uint32_t)tiles_n,
        (uint32_t)tiles,
        bias_kind(bias),
    };
    _Static_assert(sizeof pc <= 128, "push constants");

    uint32_t gx, gy;
    vk_split_groups(be, tiles, &gx, &gy);
    vk_range reads[3] = {vk_range_of(a), vk_range_of(b)};
    int nreads = 2;
    if (bias) reads[nreads++] = vk_range_of(bias);
    vk_range wr = vk_range_of(out);
    const char *shader = b->dtype == IE_F16 ? "matmul_f16" : "matmul_f32";
    const uint64_t bsize = ie_dtype_size(b->dtype);

    /* The batch is gl_WorkGroupID.z; batches beyond the group-count limit go
     * in further dispatches with offset addresses. */
    uint64_t maxz = vk_runtime_max_groups(vk_backend_runtime(be));
    if (maxz > 65535) maxz = 65535; /* that limit is for x; y and z are only sure of 65535 */
    for (uint64_t z0 = 0; z0 < (uint64_t)B; z0 += maxz) {
        uint64_t nz = (uint64_t)B - z0 < maxz ? (uint64_t)B - z0 : maxz;
        pc.a = vk_tensor_addr(a) + z0 * sa * 4;
        pc.b = vk_tensor_addr(b) + z0 * sb * bsize;
        pc.out = vk_tensor_addr(out) + z0 * sc * 4;
        ie_status st = vk_run(be, shader, spec, 8, &pc, sizeof pc, gx, gy, (uint32_t)nz, reads, nreads, &wr, 1);
        if (st != IE_OK) return st;
    }
    return IE_OK;
}
