/* Vulkan norms, elementwise and data-movement ops.
 *
 * Elementwise kernels run one invocation per output element, 256 per
 * workgroup, with the workgroup count folded into (x, y) by vk_split_groups.
 *
 * GroupNorm: one workgroup per group (ggml's layout) leaves most of a GPU idle
 * at SD shapes (32 groups of 40960+ elements). Instead, groups are cut into
 * chunks of >= 4096 elements: pass 1 computes each chunk's mean and M2 (two
 * passes over the chunk, fp32 trees) into a small scratch buffer; pass 2 has
 * every (group, chunk) workgroup combine its group's partials with Chan's
 * formula over a fixed tree and normalise its chunk (+ affine + SiLU). Groups
 * that fit one chunk use a single one-workgroup-per-group kernel. All orders
 * are fixed: bit-identical results from run to run.
 *
 * LayerNorm: one 128-invocation workgroup per row, two passes in shared memory.
 */
#include "vkcompute/vk_ops.h"

#include <math.h>
#include <string.h>

#define ELEMWISE_WG 256u

static ie_status too_big(ie_backend *be, const char *op, uint64_t n) {
    return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "%s: %llu elements exceed the 2^32 indexing limit", op,
                                (unsigned long long)n);
}

/* Workgroups for n elements, 256 per group. */
static void elem_groups(ie_backend *be, uint64_t n, uint32_t *gx, uint32_t *gy) {
    vk_split_groups(be, (n + ELEMWISE_WG - 1) / ELEMWISE_WG, gx, gy);
}

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

/* --- norms ------------------------------------------------------------------------- */

#define GN_CHUNK_MIN 4096u /* elements per chunk, at least */
#define GN_MAX_CHUNKS 64u  /* chunks per group, at most (pass 2 combines <= 256) */

enum { GN_GAMMA = 1, GN_BETA = 2, GN_SILU = 4, GN_GAMMA16 = 8, GN_BETA16 = 16 };

ie_status vk_op_group_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, int groups, float eps,
                           const ie_tensor *gamma, const ie_tensor *beta, bool silu, int64_t N, int64_t C, int64_t S) {
    const uint64_t total = (uint64_t)N * (uint64_t)C * (uint64_t)S;
    if (total == 0) return IE_OK;
    if (total > UINT32_MAX) return too_big(be, "group_norm", total);
    const uint64_t M = (uint64_t)(C / groups) * (uint64_t)S, ngroups = (uint64_t)N * (uint64_t)groups;
    uint64_t chunk = GN_CHUNK_MIN;
    if ((M + chunk - 1) / chunk > GN_MAX_CHUNKS) chunk = ((M + GN_MAX_CHUNKS - 1) / GN_MAX_CHUNKS + 255) / 256 * 256;
    const uint64_t nchunks = (M + chunk - 1) / chunk;

    struct {
        VkDeviceAddress x, out, gamma, beta, part;
        uint32_t M, S, Cg, G, ngroups, CH, nchunks, flags;
        float eps;
    } pc = {
        vk_tensor_addr(x),
        vk_tensor_addr(out),
        gamma ? vk_tensor_addr(gamma) : 0,
        beta ? vk_tensor_addr(beta) : 0,
        0,
        (uint32_t)M,
        (uint32_t)S,
        (uint32_t)(C / groups),
        (uint32_t)groups,
        (uint32_t)ngroups,
        (uint32_t)chunk,
        (uint32_t)nchunks,
        0,
        eps,
    };
    if (gamma) pc.flags |= GN_GAMMA | (gamma->dtype == IE_F16 ? GN_GAMMA16 : 0);
    if (beta) pc.flags |= GN_BETA | (beta->dtype == IE_F16 ? GN_BETA16 : 0);
    if (silu) pc.flags |= GN_SILU;

    vk_range reads[4] = {vk_range_of(x)}; /* x, gamma, beta, partials */
    int nreads = 1;
    if (gamma) reads[nreads++] = vk_range_of(gamma);
    if (beta) reads[nreads++] = vk_range_of(beta);
    vk_range w = vk_range_of(out);
    uint32_t gx, gy;

    if (nchunks == 1) {
        vk_split_groups(be, ngroups, &gx, &gy);
        return vk_run(be, "group_norm_single", NULL, 0, &pc, sizeof pc, gx, gy, 1, reads, nreads, &w, 1);
    }

    /* Scratch for the partials: freed right after recording. That is safe:
     * the runtime orders any later access to reused memory behind a barrier
     * (its hazard tracking sees this range read), and uploads sync first. */
    vk_runtime *rt = vk_backend_runtime(be);
    vk_mem part;
    char err[256];
    ie_status s = vk_mem_alloc(rt, ngroups * nchunks * 2 * sizeof(float), &part, err, sizeof err);
    if (s) return ie_backend_set_error(be, s, "group_norm: scratch: %s", err);
    pc.part = part.addr;
    vk_range pr = {part.addr, ngroups * nchunks * 2 * sizeof(float)};

    vk_split_groups(be, ngroups * nchunks, &gx, &gy);
    s = vk_run(be, "group_norm_partial", NULL, 0, &pc, sizeof pc, gx, gy, 1, reads, 1, &pr, 1);
    if (s == IE_OK) {
        reads[nreads++] = pr;
        s = vk_run(be, "group_norm_apply", NULL, 0, &pc, sizeof pc, gx, gy, 1, reads, nreads, &w, 1);
    }
    vk_mem_free(rt, &part);
    return s;
}

ie_status vk_op_layer_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, float eps, const ie_tensor *gamma,
                           const ie_tensor *beta, int64_t rows, int64_t C) {
    const uint64_t total = (uint64_t)rows * (uint64_t)C;
    if (total == 0) return IE_OK;
    if (total > UINT32_MAX) return too_big(be, "layer_norm", total);
    struct {
        VkDeviceAddress x, out, gamma, beta;
        uint32_t rows, C, flags;
        float eps;
    } pc = {vk_tensor_addr(x),
            vk_tensor_addr(out),
            gamma ? vk_tensor_addr(gamma) : 0,
            beta ? vk_tensor_addr(beta) : 0,
            (uint32_t)rows,
            (uint32_t)C,
            0,
            eps};
    if (gamma) pc.flags |= 1u | (gamma->dtype == IE_F16 ? 4u : 0u);
    if (beta) pc.flags |= 2u | (beta->dtype == IE_F16 ? 8u : 0u);
    vk_range reads[3] = {vk_range_of(x)};
    int nreads = 1;
    if (gamma) reads[nreads++] = vk_range_of(gamma);
    if (beta) reads[nreads++] = vk_range_of(beta);
    vk_range w = vk_range_of(out);
    uint32_t gx, gy;
    vk_split_groups(be, (uint64_t)rows, &gx, &gy);
    return vk_run(be, "layer_norm", NULL, 0, &pc, sizeof pc, gx, gy, 1, reads, nreads, &w, 1);
}

/* --- elementwise --------------------------------------------------------------------- */

ie_status vk_op_unary(ie_backend *be, ie_tensor *out, const ie_tensor *x, ie_unary_op op) {
    const uint64_t n = (uint64_t)ie_tensor_numel(x);
    if (n == 0) return IE_OK;
    if (n > UINT32_MAX) return too_big(be, "unary", n);
    struct {
        VkDeviceAddress x, out;
        uint32_t n, D;
    } pc = {vk_tensor_addr(x), vk_tensor_addr(out), (uint32_t)n, 0};
    uint32_t spec = (uint32_t)op, gx, gy;
    elem_groups(be, n, &gx, &gy);
    vk_range r = vk_range_of(x), w = vk_range_of(out);
    return vk_run(be, "unary", &spec, 1, &pc, sizeof pc, gx, gy, 1, &r, 1, &w, 1);
}

ie_status vk_op_geglu(ie_backend *be, ie_tensor *out, const ie_tensor *x, int64_t rows, int64_t D) {
    const uint64_t n = (uint64_t)rows * (uint64_t)D;
    if (n == 0) return IE_OK;
    if (2 * n > UINT32_MAX) return too_big(be, "geglu", 2 * n);
    struct {
        VkDeviceAddress x, out;
        uint32_t n, D;
    } pc = {vk_tensor_addr(x), vk_tensor_addr(out), (uint32_t)n, (uint32_t)D};
    uint32_t gx, gy;
    elem_groups(be, n, &gx, &gy);
    vk_range r = vk_range_of(x), w = vk_range_of(out);
    return vk_run(be, "geglu", NULL, 0, &pc, sizeof pc, gx, gy, 1, &r, 1, &w, 1);
}

ie_status vk_op_binary(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, int op,
                       const int64_t ashape[4], const int64_t bshape[4]) {
    const uint64_t n = (uint64_t)ie_tensor_numel(a);
    if (n == 0) return IE_OK;
    if (n > UINT32_MAX) return too_big(be, op ? "mul" : "add", n);
    struct {
        VkDeviceAddress a, b, out;
        uint32_t n, a1, a2, a3, bs0, bs1, bs2, bs3, same;
    } pc = {vk_tensor_addr(a),
            vk_tensor_addr(b),
            vk_tensor_addr(out),
            (uint32_t)n,
            (uint32_t)ashape[1],
            (uint32_t)ashape[2],
            (uint32_t)ashape[3],
            0,
            0,
            0,
            0,
            1};
    uint32_t bstride[4];
    uint64_t s = 1;
    for (int d = 3; d >= 0; d--) {
        bstride[d] = bshape[d] == 1 ? 0 : (uint32_t)s;
        s *= (uint64_t)bshape[d];
        if (bshape[d] != ashape[d]) pc.same = 0;
    }
    pc.bs0 = bstride[0];
    pc.bs1 = bstride[1];
    pc.bs2 = bstride[2];
    pc.bs3 = bstride[3];
    uint32_t spec = (uint32_t)op, gx, gy;
    elem_groups(be, n, &gx, &gy);
    vk_range r[2] = {vk_range_of(a), vk_range_of(b)}, w = vk_range_of(out);
    return vk_run(be, b->dtype == IE_F16 ? "binary_f16" : "binary_f32", &spec, 1, &pc, sizeof pc, gx, gy, 1, r, 2, &w,
                  1);
}

/* --- data movement --------------------------------------------------------------------- */

ie_status vk_op_concat_channels(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, int64_t N,
                                int64_t Ca, int64_t Cb, int64_t S) {
    const uint64_t n = (uint64_t)N * (uint64_t)(Ca + Cb) * (uint64_t)S;
    if (n == 0) return IE_OK;
    if (n > UINT32_MAX) return too_big(be, "concat_channels", n);
    struct {
        VkDeviceAddress a, b, out;
        uint32_t n, as, bs;
    } pc = {vk_tensor_addr(a), vk_tensor_addr(b),  vk_tensor_addr(out),
            (uint32_t)n,       (uint32_t)(Ca * S), (uint32_t)(Cb * S)};
    uint32_t gx, gy;
    elem_groups(be, n, &gx, &gy);
    vk_range r[2] = {vk_range_of(a), vk_range_of(b)}, w = vk_range_of(out);
    return vk_run(be, "concat", NULL, 0, &pc, sizeof pc, gx, gy, 1, r, 2, &w, 1);
}

ie_status vk_op_upsample_nearest2x(ie_backend *be, ie_tensor *out, const ie_tensor *x) {
    const uint64_t n = (uint64_t)ie_tensor_numel(out);
    if (n == 0) return IE_OK;
    if (n > UINT32_MAX) return too_big(be, "upsample_nearest2x", n);
    struct {
        VkDeviceAddress x, out;
        uint32_t n, H, W;
    } pc = {vk_tensor_addr(x), vk_tensor_addr(out), (uint32_t)n, (uint32_t)x->shape[2], (uint32_t)x->shape[3]};
    uint32_t gx, gy;
    elem_groups(be, n, &gx, &gy);
    vk_range r = vk_range_of(x), w = vk_range_of(out);
    return vk_run(be, "upsample", NULL, 0, &pc, sizeof pc, gx, gy, 1, &r, 1, &w, 1);
}

ie_status vk_op_transpose(ie_backend *be, ie_tensor *out, const ie_tensor *x, int64_t B, int64_t R, int64_t C) {
    const uint64_t n = (uint64_t)B * (uint64_t)R * (uint64_t)C;
    if (n == 0) return IE_OK;
    if (n > UINT32_MAX) return too_big(be, "transpose", n);
    struct {
        VkDeviceAddress x, out;
        uint32_t B, R, C, tc, tr;
    } pc = {vk_tensor_addr(x),         vk_tensor_addr(out),      (uint32_t)B, (uint32_t)R, (uint32_t)C,
            (uint32_t)((C + 31) / 32), (uint32_t)((R + 31) / 32)};
    uint32_t gx, gy;
    vk_split_groups(be, (uint64_t)pc.tc * pc.tr * (uint64_t)B, &gx, &gy);
    vk_range r = vk_range_of(x), w = vk_range_of(out);
    return vk_run(be, "transpose", NULL, 0, &pc, sizeof pc, gx, gy, 1, &r, 1, &w, 1);
}

ie_status vk_op_copy(ie_backend *be, ie_tensor *out, const ie_tensor *x) {
    const uint64_t n = (uint64_t)ie_tensor_numel(x);
    if (n == 0) return IE_OK;
    if (n > UINT32_MAX) return too_big(be, "copy", n);
    const char *shader;
    if (x->dtype == out->dtype) shader = x->dtype == IE_F16 ? "copy_u16" : "copy_u32";
    else if (x->dtype == IE_F16 && out->dtype == IE_F32) shader = "copy_f16_f32";
    else if (x->dtype == IE_F32 && out->dtype == IE_F16) shader = "copy_f32_f16";
    else
        return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "copy: %s -> %s is not supported", ie_dtype_name(x->dtype),
                                    ie_dtype_name(out->dtype));
    struct {
        VkDeviceAddress x, out;
        uint32_t n;
    } pc = {vk_tensor_addr(x), vk_tensor_addr(out), (uint32_t)n};
    uint32_t gx, gy;
    elem_groups(be, n, &gx, &gy);
    vk_range r = vk_range_of(x), w = vk_range_of(out);
    return vk_run(be, shader, NULL, 0, &pc, sizeof pc, gx, gy, 1, &r, 1, &w, 1);
}

ie_status vk_op_timestep_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *t, int dim, bool flip_sin_to_cos,
                                   float shift, float max_period) {
    const uint64_t B = (uint64_t)ie_tensor_numel(t), n = B * (uint64_t)dim;
    if (n == 0) return IE_OK;
    if (n > UINT32_MAX) return too_big(be, "timestep_embedding", n);
    const int half = dim / 2;
    /* The same fp32 constants as the CPU backend. */
    struct {
        VkDeviceAddress t, out;
        uint32_t B, dim, half;
        float neg_log, denom;
        uint32_t flip;
    } pc = {vk_tensor_addr(t),
            vk_tensor_addr(out),
            (uint32_t)B,
            (uint32_t)dim,
            (uint32_t)half,
            (float)-log((double)max_period),
            (float)((double)half - (double)shift),
            flip_sin_to_cos ? 1u : 0u};
    uint32_t gx, gy;
    elem_groups(be, n, &gx, &gy);
    vk_range r = vk_range_of(t), w = vk_range_of(out);
    return vk_run(be, "timestep_embedding", NULL, 0, &pc, sizeof pc, gx, gy, 1, &r, 1, &w, 1);
}

ie_status vk_op_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *ids, const ie_tensor *table) {
    const uint64_t n = (uint64_t)ie_tensor_numel(out);
    if (n == 0) return IE_OK;
    if (n > UINT32_MAX || (uint64_t)ie_tensor_numel(table) > UINT32_MAX) return too_big(be, "embedding", n);
    struct {
        VkDeviceAddress ids, table, out;
        uint32_t n, D, V;
    } pc = {vk_tensor_addr(ids), vk_tensor_addr(table),     vk_tensor_addr(out),
            (uint32_t)n,         (uint32_t)table->shape[1], (uint32_t)table->shape[0]};
    uint32_t gx, gy;
    elem_groups(be, n, &gx, &gy);
    vk_range r[2] = {vk_range_of(ids), vk_range_of(table)}, w = vk_range_of(out);
    return vk_run(be, table->dtype == IE_F16 ? "embedding_f16" : "embedding_f32", NULL, 0, &pc, sizeof pc, gx, gy, 1, r,
                  2, &w, 1);
}
