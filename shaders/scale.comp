#version 450
// out = x * scale + bias, elementwise over n values (may run in place).
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
    F32 x;
    F32 out_;
    uint n;
    float scale;
    float bias;
} p;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= p.n) return;
    p.out_.v[i] = p.x.v[i] * p.scale + p.bias;
}
