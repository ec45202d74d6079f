#version 450
// Nearest-neighbour ×2: x [NC, H, W] -> out [NC, 2H, 2W]; one invocation per
// output element.
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
    uint n;  // output elements
    uint H, W;
} p;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= p.n) return;
    uint W2 = 2u * p.W;
    uint ox = i % W2, r = i / W2;
    uint oy = r % (2u * p.H), plane = r / (2u * p.H);
    p.out_.v[i] = p.x.v[(plane * p.H + (oy >> 1u)) * p.W + (ox >> 1u)];
}
