#version 450
// LayerNorm over the last dimension: x viewed as [rows, C], one workgroup per
// row. Two passes over the row (mean, then the sum of squared deviations), both
// reduced over a fixed shared-memory tree: deterministic. In place is fine.
//
// Assumptions (checked by the tests at each subgroup size and under the
// validation layer, tests/vk-checks.sh):
// - workgroup 128 x 1 x 1.
// - shared: wg_red[128] (wg_reduce.glsl); wg_sum in uniform control flow (the
//   early return drops whole workgroups only).
// - no subgroup operations: independent of the subgroup size.
// - fp16: gamma/beta may be fp16 (flags), widened to fp32; two-pass fp32
//   statistics.
#extension GL_EXT_control_flow_attributes : enable
#include "common.glsl"

#define WG_SIZE 128u
layout(local_size_x = 128) in;
#include "wg_reduce.glsl"

layout(push_constant, scalar) uniform P {
    F32 x;
    F32 out_;
    F32 gamma;  // F16 when flag 4; address 0 when absent
    F32 beta;   // F16 when flag 8
    uint rows;
    uint C;
    uint flags;  // 1 gamma, 2 beta, 4 gamma f16, 8 beta f16
    float eps;
} p;

float ld_param(F32 buf, uint i, bool f16) { return f16 ? float(F16(buf).v[i]) : buf.v[i]; }

void main() {
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows) return;
    const uint lid = gl_LocalInvocationID.x;
    const uint base = row * p.C;
    float acc = 0.0;
    for (uint c = lid; c < p.C; c += WG_SIZE) acc += p.x.v[base + c];
    const float mean = wg_sum(acc) / float(p.C);
    acc = 0.0;
    for (uint c = lid; c < p.C; c += WG_SIZE) {
        float d = p.x.v[base + c] - mean;
        acc += d * d;
    }
    const float rstd = 1.0 / sqrt(wg_sum(acc) / float(p.C) + p.eps);
    for (uint c = lid; c < p.C; c += WG_SIZE) {
        float y = (p.x.v[base + c] - mean) * rstd;
        if ((p.flags & 1u) != 0u) y *= ld_param(p.gamma, c, (p.flags & 4u) != 0u);
        if ((p.flags & 2u) != 0u) y += ld_param(p.beta, c, (p.flags & 8u) != 0u);
        p.out_.v[base + c] = y;
    }
}
