#version 450
// Batched transpose x [B, R, C] -> out [B, C, R] through a 32×33 shared tile:
// reads and writes are both row-contiguous. Workgroup 32×8; each invocation
// moves 4 elements. Group id = (tile column, tile row, batch) folded linearly.
//
// Assumptions (checked by the tests at each subgroup size and under the
// validation layer, tests/vk-checks.sh):
// - workgroup 32 x 8 (the runtime requires maxComputeWorkGroupSize.y >= 8).
// - shared: tile[32][33] floats (4.1 KiB). Every element read in phase 2 was
//   written in phase 1 under the same bounds test; one barrier between the
//   phases. The early return drops whole workgroups only (grid padding).
// - no subgroup operations: independent of the subgroup size.
// - fp16: none (fp32 only).
#include "common.glsl"
layout(local_size_x = 32, local_size_y = 8) in;
layout(push_constant, scalar) uniform P {
    F32 x;
    F32 out_;
    uint B, R, C;
    uint tc, tr;  // tiles along C and R
} p;

shared float tile[32][33];

void main() {
    uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint tcol = wg % p.tc, rest = wg / p.tc;
    uint trow = rest % p.tr, b = rest / p.tr;
    if (b >= p.B) return;
    uint lx = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
    uint r0 = trow * 32u, c0 = tcol * 32u;
    uint base = b * p.R * p.C;
    for (uint k = ly; k < 32u; k += 8u) {
        uint r = r0 + k, c = c0 + lx;
        if (r < p.R && c < p.C) tile[k][lx] = p.x.v[base + r * p.C + c];
    }
    barrier();
    for (uint k = ly; k < 32u; k += 8u) {
        uint c = c0 + k, r = r0 + lx;
        if (r < p.R && c < p.C) p.out_.v[base + c * p.R + r] = tile[lx][k];
    }
}
