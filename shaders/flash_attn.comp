#version 450
// Attention in the token-major layout (see ie_attention in vkcompute/ops.h):
//   q [B, Lq, H*D], k [B, Lk, H*D], v [B, Lk, H*DV], head h owns channels h*D...
//
// Three variants of one kernel (vk_ops_attn.c):
//   default      fused flash attention: out = softmax(q kᵀ·scale [+causal]) v,
//                online softmax, no Lq×Lk matrix in memory;
//   MODE_PROBS   probs [B, H, Lq, Lk] = softmax(q kᵀ·scale [+causal]);
//   MODE_APPLY   out = probs · v.
//
// Decomposition: one workgroup of 64 invocations takes BR·R query rows of one
// (batch, head), BR = 64/T. T invocations share a row: invocation t owns the
// vec4 chunks c ≡ t (mod T) of the head dimension, so q and the output
// accumulator stay in registers (≤ ~16 vec4 each per row). Each invocation
// handles R rows (R = 1 on GPUs; more on CPU devices, where every shared-memory
// read is a gather and reusing it across rows pays). Keys are processed in
// tiles of BC: the K and V tiles are staged in shared memory (≤ 16 KiB by
// default) and read as broadcasts (every row of the workgroup reads the same
// key). For T > 1 the partial dot products are summed with a
// subgroupShuffleXor butterfly, which gives every lane of the row the
// bit-identical score (fp add is commutative). Everything runs in a fixed
// order: the output is deterministic.
//
// Scores are kept in log2 units (q is pre-multiplied by scale·log2(e)) so the
// softmax uses exp2. The running max starts at -FLT_MAX/2 (exp2 of the first
// rescale is then exactly 0, never NaN) and masked keys are skipped outright.
// Keys stream one at a time through the online softmax; the accumulator is
// rescaled only when the running max grows.
//
// Assumptions (checked by the tests at each subgroup size and under the
// validation layer, tests/vk-checks.sh):
// - workgroup 64 x 1 x 1.
// - shared: Ks[BC*D4], Vs[BC*DV4] vec4s, within min(16 KiB, the device's
//   maxComputeSharedMemorySize) (vk_ops_attn.c picks BC). Each tile is written
//   whole (zero padding past Lk and past the head dim) between two barriers:
//   one before (the previous tile is no longer read), one after. Loop bounds
//   around the barriers are per workgroup (uniform control flow); the early
//   return drops whole workgroups only.
// - subgroups: for T > 1 the T lanes of a row (local ids r*T .. r*T+T-1) sum
//   their partial dot products with subgroupShuffleXor, so they must sit in
//   one subgroup: the host keeps T <= min(8, minSubgroupSize) (the smallest
//   size the driver may use, VK_EXT_subgroup_size_control), and subgroups are
//   taken to be consecutive, aligned ranges of local invocation ids (as on
//   every driver we know). The shuffles run in uniform control flow. T = 1
//   (head dims <= 64) uses no subgroup operation at all.
// - fp16: none (q, k, v, probs and out fp32). Online softmax in fp32 with the
//   running max subtracted: finite and exact to fp32 at logits of 1e5
//   (tests/test_vk_fp16.c).
#extension GL_KHR_shader_subgroup_shuffle : enable
#extension GL_EXT_control_flow_attributes : enable
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint D = 40;      // q/k head dim (unused by MODE_APPLY)
layout(constant_id = 1) const uint DV = 40;     // v head dim (unused by MODE_PROBS)
layout(constant_id = 2) const uint T = 1;       // invocations per query row (power of 2, ≤ subgroup)
layout(constant_id = 3) const uint BC = 32;     // keys per shared-memory tile
layout(constant_id = 4) const uint CAUSAL = 0;  // key j masked for query i when j > i
layout(constant_id = 5) const uint R = 1;       // query rows per invocation

const uint WG = 64;
const uint BR = WG / T;               // rows per workgroup pass; BR·R rows in all
const uint D4 = (D + 3) / 4;          // head dims in vec4 chunks
const uint DV4 = (DV + 3) / 4;
const uint DT4 = (D4 + T - 1) / T;    // q chunks per invocation and row
const uint DVT4 = (DV4 + T - 1) / T;  // output chunks per invocation and row

const float M_INIT = -1.7014117e38;   // -FLT_MAX/2: running max before any key

layout(push_constant, scalar) uniform P {
    F32 q;      // q (MODE_APPLY: probs)
    F32 k;      // k (unused by MODE_APPLY)
    F32 v;      // v (unused by MODE_PROBS)
    F32 o;      // out (MODE_PROBS: probs)
    uint B, H, Lq, Lk;
    uint qs, ks, vs, os;  // row strides in elements of q, k, v, out
    float scale;          // softmax scale · log2(e)
    uint nqb;             // query blocks (of BR·R rows) per (batch, head)
} p;

#ifndef MODE_APPLY
shared vec4 Ks[BC * D4];
#endif
#ifndef MODE_PROBS
shared vec4 Vs[BC * DV4];
#endif

// Loads a [BC, n] tile of rows j0.. of a token-major tensor (row stride rs,
// channel offset c0) into shared memory as vec4 chunks, zero-padded. The loop
// has a constant trip count and is unrolled: lavapipe caps the iterations of
// all runtime loops of an invocation at 65535 in total (gallivm's
// LP_MAX_TGSI_LOOP_ITERATIONS) and silently cuts them short beyond that.
#define LOAD_TILE(S, buf, rs, c0, n, n4)                                        \
    [[unroll]] for (uint it = 0; it < (BC * n4 + WG - 1) / WG; it++) {         \
        const uint e = it * WG + lid;                                           \
        if ((BC * n4) % WG == 0u || e < BC * n4) {                              \
            uint jj = e / n4, c = (e - jj * n4) * 4u, key = j0 + jj;            \
            vec4 val = vec4(0.0);                                               \
            if (key < p.Lk) {                                                   \
                uint base = (b * p.Lk + key) * rs + c0 + c;                     \
                val.x = buf.v[base];                                            \
                if (n % 4u == 0u || c + 1u < n) val.y = buf.v[base + 1u];       \
                if (n % 4u == 0u || c + 2u < n) val.z = buf.v[base + 2u];       \
                if (n % 4u == 0u || c + 3u < n) val.w = buf.v[base + 3u];       \
            }                                                                   \
            S[e] = val;                                                         \
        }                                                                       \
    }

void main() {
    const uint wgid = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    const uint qb = wgid % p.nqb, bh = wgid / p.nqb;
    if (bh >= p.B * p.H) return;  // whole workgroup: padding of the group grid
    const uint h = bh % p.H, b = bh / p.H;
    const uint lid = gl_LocalInvocationID.x;
    const uint r = lid / T, t = lid % T;
    const uint row0 = qb * BR * R + r;  // this invocation's rows: row0 + k·BR, k < R

#ifndef MODE_APPLY
    // q row slices, pre-scaled; zero for padding rows/dims.
    vec4 q4[R * DT4];
    float m[R], l[R];
    [[unroll]] for (uint k = 0; k < R; k++) {
        const uint i = row0 + k * BR;
        [[unroll]] for (uint c = 0; c < DT4; c++) {
            uint cc = c * T + t;
            vec4 val = vec4(0.0);
            if (i < p.Lq && cc < D4) {
                uint base = (b * p.Lq + i) * p.qs + h * D + cc * 4u;
                val.x = p.q.v[base];
                if (D % 4u == 0u || cc * 4u + 1u < D) val.y = p.q.v[base + 1u];
                if (D % 4u == 0u || cc * 4u + 2u < D) val.z = p.q.v[base + 2u];
                if (D % 4u == 0u || cc * 4u + 3u < D) val.w = p.q.v[base + 3u];
            }
            q4[k * DT4 + c] = val * p.scale;
        }
        m[k] = M_INIT;
        l[k] = 0.0;
    }
#endif
#ifndef MODE_PROBS
    vec4 o4[R * DVT4];
    [[unroll]] for (uint c = 0; c < R * DVT4; c++) o4[c] = vec4(0.0);
#endif
#if defined(MODE_PROBS) || defined(MODE_APPLY)
    // probs row of row k: prow + k·BR·Lk (clamped rows are never written)
    const uint prow = ((b * p.H + h) * p.Lq + min(row0, p.Lq - 1u)) * p.Lk;
#endif

    // With a causal mask no row of this block sees keys at or past kend.
    const uint kend = (CAUSAL != 0u) ? min(p.Lk, (qb + 1u) * BR * R) : p.Lk;

    for (uint j0 = 0; j0 < kend; j0 += BC) {
        barrier();  // the previous tile is no longer read
#ifndef MODE_APPLY
        LOAD_TILE(Ks, p.k, p.ks, h * D, D, D4)
#endif
#ifndef MODE_PROBS
        LOAD_TILE(Vs, p.v, p.vs, h * DV, DV, DV4)
#endif
        barrier();

        // Keys one at a time (a plain loop: unrolling it costs minutes of
        // pipeline compilation on lavapipe), rows and head-dim loops unrolled.
        // Runtime loop iterations per invocation: Lk + Lk/BC (+ R·Lk/T in the
        // probs normalisation): within lavapipe's cap of 65535 up to ~60K keys
        // (probs: ~13K keys).
        const uint jn = min(BC, kend - j0);
        for (uint jj = 0; jj < jn; jj++) {
            const uint key = j0 + jj;
#ifndef MODE_APPLY
            float acc[R];
            [[unroll]] for (uint k = 0; k < R; k++) acc[k] = 0.0;
            [[unroll]] for (uint c = 0; c < DT4; c++) {
                uint cc = c * T + t;
                if (D4 % T == 0u || cc < D4) {
                    const vec4 kv = Ks[jj * D4 + cc];
                    [[unroll]] for (uint k = 0; k < R; k++) acc[k] += dot(q4[k * DT4 + c], kv);
                }
            }
            // Butterfly over the row's T lanes, written out: lavapipe keeps
            // loops it cannot unroll and caps their total iterations.
            [[unroll]] for (uint k = 0; k < R; k++) {
                if (T > 1u) acc[k] += subgroupShuffleXor(acc[k], 1u);
                if (T > 2u) acc[k] += subgroupShuffleXor(acc[k], 2u);
                if (T > 4u) acc[k] += subgroupShuffleXor(acc[k], 4u);
                if (T > 8u) acc[k] += subgroupShuffleXor(acc[k], 8u);
                if (T > 16u) acc[k] += subgroupShuffleXor(acc[k], 16u);
                if (T > 32u) acc[k] += subgroupShuffleXor(acc[k], 32u);
            }
#endif
#if !defined(MODE_APPLY) && !defined(MODE_PROBS)
            // Online softmax: rescale only when the running max grows.
            float pj[R];
            [[unroll]] for (uint k = 0; k < R; k++) {
                pj[k] = 0.0;
                if (CAUSAL == 0u || key <= row0 + k * BR) {
                    if (acc[k] > m[k]) {
                        const float alpha = exp2(m[k] - acc[k]);
                        l[k] *= alpha;
                        [[unroll]] for (uint c = 0; c < DVT4; c++) o4[k * DVT4 + c] *= alpha;
                        m[k] = acc[k];
                    }
                    pj[k] = exp2(acc[k] - m[k]);
                    l[k] += pj[k];
                }
            }
            [[unroll]] for (uint c = 0; c < DVT4; c++) {
                uint cc = c * T + t;
                if (DV4 % T == 0u || cc < DV4) {
                    const vec4 vv = Vs[jj * DV4 + cc];
                    [[unroll]] for (uint k = 0; k < R; k++) o4[k * DVT4 + c] += pj[k] * vv;
                }
            }
#endif
#ifdef MODE_PROBS
            // Raw scores go to probs now; the lane that writes key j also
            // rewrites it in the final pass below (no cross-thread hazard).
            [[unroll]] for (uint k = 0; k < R; k++) {
                const uint i = row0 + k * BR;
                if (i < p.Lq && key % T == t) p.o.v[prow + k * BR * p.Lk + key] = acc[k];
                if (CAUSAL == 0u || key <= i) {
                    if (acc[k] > m[k]) {
                        l[k] *= exp2(m[k] - acc[k]);
                        m[k] = acc[k];
                    }
                    l[k] += exp2(acc[k] - m[k]);
                }
            }
#endif
#ifdef MODE_APPLY
            float pj[R];
            [[unroll]] for (uint k = 0; k < R; k++)
                pj[k] = row0 + k * BR < p.Lq ? p.q.v[prow + k * BR * p.Lk + key] : 0.0;
            [[unroll]] for (uint c = 0; c < DVT4; c++) {
                uint cc = c * T + t;
                if (DV4 % T == 0u || cc < DV4) {
                    const vec4 vv = Vs[jj * DV4 + cc];
                    [[unroll]] for (uint k = 0; k < R; k++) o4[k * DVT4 + c] += pj[k] * vv;
                }
            }
#endif
        }
    }

    [[unroll]] for (uint k = 0; k < R; k++) {
        const uint i = row0 + k * BR;
        if (i >= p.Lq) continue;
#ifdef MODE_PROBS
        // Normalise: invocation t of the row owns the keys j ≡ t (mod T), the
        // same ones it wrote above.
        const uint pr = prow + k * BR * p.Lk;
        for (uint key = t; key < p.Lk; key += T) {
            float val = 0.0;
            if (key < kend && (CAUSAL == 0u || key <= i)) val = exp2(p.o.v[pr + key] - m[k]) / l[k];
            p.o.v[pr + key] = val;
        }
#else
        const uint obase = (b * p.Lq + i) * p.os + h * DV;
        [[unroll]] for (uint c = 0; c < DVT4; c++) {
            uint cc = c * T + t;
            if (DV4 % T == 0u || cc < DV4) {
#ifdef MODE_APPLY
                vec4 val = o4[k * DVT4 + c];
#else
                vec4 val = o4[k * DVT4 + c] / l[k];
#endif
                uint d = cc * 4u;
                p.o.v[obase + d] = val.x;
                if (DV % 4u == 0u || d + 1u < DV) p.o.v[obase + d + 1u] = val.y;
                if (DV % 4u == 0u || d + 2u < DV) p.o.v[obase + d + 2u] = val.z;
                if (DV % 4u == 0u || d + 3u < DV) p.o.v[obase + d + 3u] = val.w;
            }
        }
#endif
    }
}
