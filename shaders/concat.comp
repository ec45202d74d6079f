#version 450
// Channel concat: a [N, Ca, S], b [N, Cb, S] -> out [N, Ca+Cb, S]. One
// invocation per output element; the sample's a-part and b-part are contiguous.
//
// Assumptions (checked by the tests at each subgroup size and under the
// validation layer, tests/vk-checks.sh):
// - workgroup 256 x 1 x 1 (the runtime requires a device limit of >= 256
//   invocations); one invocation per output element, so no two invocations
//   write one element (no races); no shared memory, no barriers, no subgroup
//   operations: independent of the subgroup size.
// - fp16: none (fp32 only).
#include "common.glsl"
layout(local_size_x = 256) in;
layout(push_constant, scalar) uniform P {
    F32 a;
    F32 b;
    F32 out_;
    uint n;   // output elements
    uint as_; // Ca·S
    uint bs;  // Cb·S
} p;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= p.n) return;
    uint per = p.as_ + p.bs;
    uint s = i / per, e = i - s * per;
    p.out_.v[i] = e < p.as_ ? p.a.v[s * p.as_ + e] : p.b.v[s * p.bs + (e - p.as_)];
}
