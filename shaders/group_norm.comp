#version 450
// GroupNorm over x viewed as [N, C, S]: group (n, g) is the contiguous block of
// M = (C/G)·S elements starting at (n·G + g)·M. Optional affine gamma/beta [C]
// (each f32 or f16, or absent: address 0 and a flag bit) and fused SiLU.
//
// Variants (vk_ops_basic.c picks them):
//   GN_SINGLE   one workgroup per group: the group's mean, then its sum of
//               squared deviations (two passes, fp32 trees), then normalise.
//               Used when a group is a single chunk.
//   GN_PARTIAL  pass 1 of the parallel path: one workgroup per (group, chunk of
//               CH elements) computes the chunk's mean and M2 (two passes over
//               the chunk) into part[(group·nchunks + chunk)·2 + 0/1].
//   GN_APPLY    pass 2: one workgroup per (group, chunk) combines the group's
//               ≤ 256 partials with Chan's formula over a fixed tree (the same
//               order in every workgroup, so bit-identical statistics), then
//               normalises its chunk elementwise.
// Every reduction runs in a fixed order: deterministic. In place (out == x)
// is fine: each element is read and written by the same invocation, after all
// statistics are known.
//
// Assumptions (checked by the tests at each subgroup size and under the
// validation layer, tests/vk-checks.sh):
// - workgroup 256 x 1 x 1.
// - shared: wg_red[256] (wg_reduce.glsl) and, in GN_APPLY, sh_n/sh_mean/sh_m2
//   [256] (4 KiB in all). Every invocation writes its slot before the barrier
//   that precedes any read; each tree level ends with a barrier; wg_sum runs in
//   uniform control flow (the early returns drop whole workgroups only).
// - no subgroup operations: independent of the subgroup size.
// - fp16: gamma/beta may be fp16 (flags), widened to fp32. Statistics are
//   two-pass in fp32 (mean, then squared deviations; chunks combined with
//   Chan's formula), never E[x^2] - E[x]^2: inputs with a common offset of
//   1e4 and values of 4e5 keep their precision (tests/test_vk_fp16.c).
#extension GL_EXT_control_flow_attributes : enable
#include "common.glsl"

#define WG_SIZE 256u
layout(local_size_x = 256) in;
#include "wg_reduce.glsl"

layout(push_constant, scalar) uniform P {
    F32 x;
    F32 out_;
    F32 gamma;     // F16 when flag GAMMA16
    F32 beta;      // F16 when flag BETA16
    F32 part;      // partial (mean, M2) per chunk (GN_PARTIAL / GN_APPLY)
    uint M;        // elements per group
    uint S;        // spatial size
    uint Cg;       // channels per group
    uint G;        // groups per sample
    uint ngroups;  // N·G
    uint CH;       // elements per chunk
    uint nchunks;  // chunks per group (≤ 256)
    uint flags;
    float eps;
} p;

const uint F_GAMMA = 1u, F_BETA = 2u, F_SILU = 4u, F_GAMMA16 = 8u, F_BETA16 = 16u;

float ld_param(F32 buf, uint i, bool f16) { return f16 ? float(F16(buf).v[i]) : buf.v[i]; }

float finish(float x, float mean, float rstd, uint g, uint e) {
    float y = (x - mean) * rstd;
    if ((p.flags & (F_GAMMA | F_BETA)) != 0u) {
        uint c = (g % p.G) * p.Cg + e / p.S;
        if ((p.flags & F_GAMMA) != 0u) y *= ld_param(p.gamma, c, (p.flags & F_GAMMA16) != 0u);
        if ((p.flags & F_BETA) != 0u) y += ld_param(p.beta, c, (p.flags & F_BETA16) != 0u);
    }
    if ((p.flags & F_SILU) != 0u) y = y / (1.0 + exp(-y));
    return y;
}

#ifdef GN_APPLY
shared float sh_n[256], sh_mean[256], sh_m2[256];
#endif

void main() {
    const uint wgid = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    const uint lid = gl_LocalInvocationID.x;

#if defined(GN_SINGLE)
    const uint g = wgid;
    if (g >= p.ngroups) return;
    const uint base = g * p.M;
    float acc = 0.0;
    for (uint e = lid; e < p.M; e += WG_SIZE) acc += p.x.v[base + e];
    const float mean = wg_sum(acc) / float(p.M);
    acc = 0.0;
    for (uint e = lid; e < p.M; e += WG_SIZE) {
        float d = p.x.v[base + e] - mean;
        acc += d * d;
    }
    const float rstd = 1.0 / sqrt(wg_sum(acc) / float(p.M) + p.eps);
    for (uint e = lid; e < p.M; e += WG_SIZE)
        p.out_.v[base + e] = finish(p.x.v[base + e], mean, rstd, g, e);

#elif defined(GN_PARTIAL)
    const uint g = wgid / p.nchunks, ch = wgid % p.nchunks;
    if (g >= p.ngroups) return;
    const uint base = g * p.M + ch * p.CH, n = min(p.CH, p.M - ch * p.CH);
    float acc = 0.0;
    for (uint e = lid; e < n; e += WG_SIZE) acc += p.x.v[base + e];
    const float mean = wg_sum(acc) / float(n);
    acc = 0.0;
    for (uint e = lid; e < n; e += WG_SIZE) {
        float d = p.x.v[base + e] - mean;
        acc += d * d;
    }
    const float m2 = wg_sum(acc);
    if (lid == 0u) {
        p.part.v[2u * wgid] = mean;
        p.part.v[2u * wgid + 1u] = m2;
    }

#elif defined(GN_APPLY)
    const uint g = wgid / p.nchunks, ch = wgid % p.nchunks;
    if (g >= p.ngroups) return;
    // Chan's parallel combination of (count, mean, M2) over a fixed tree.
    float n = 0.0, mu = 0.0, m2 = 0.0;
    if (lid < p.nchunks) {
        n = float(min(p.CH, p.M - lid * p.CH));
        mu = p.part.v[2u * (g * p.nchunks + lid)];
        m2 = p.part.v[2u * (g * p.nchunks + lid) + 1u];
    }
    sh_n[lid] = n;
    sh_mean[lid] = mu;
    sh_m2[lid] = m2;
    barrier();
    [[unroll]] for (uint s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            float na = sh_n[lid], nb = sh_n[lid + s];
            if (nb > 0.0) {
                float nab = na + nb;
                float delta = sh_mean[lid + s] - sh_mean[lid];
                sh_mean[lid] += delta * (nb / nab);
                sh_m2[lid] += sh_m2[lid + s] + delta * delta * (na * (nb / nab));
                sh_n[lid] = nab;
            }
        }
        barrier();
    }
    const float mean = sh_mean[0];
    const float rstd = 1.0 / sqrt(sh_m2[0] / float(p.M) + p.eps);
    const uint base = g * p.M, start = ch * p.CH, end = min(start + p.CH, p.M);
    for (uint e = start + lid; e < end; e += WG_SIZE)
        p.out_.v[base + e] = finish(p.x.v[base + e], mean, rstd, g, e);
#endif
}
