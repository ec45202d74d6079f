#version 450
// out = a (op) b with b broadcast onto a's 4-D shape (vk_op_binary); a and out
// may be the same tensor. b is f32, or f16 with -DW_F16. OP (specialization
// constant): 0 add, 1 mul.
//
// Assumptions (checked by the tests at each subgroup size and under the
// validation layer, tests/vk-checks.sh):
// - workgroup 256 x 1 x 1 (the runtime requires a device limit of >= 256
//   invocations); one invocation per output element, so no two invocations
//   write one element (no races); no shared memory, no barriers, no subgroup
//   operations: independent of the subgroup size.
// - fp16: b may be fp16 (-DW_F16), widened to fp32 before the op; a and out fp32.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint OP = 0;
layout(push_constant, scalar) uniform P {
    F32 a;
    WBUF b;
    F32 out_;
    uint n;
    uint a1, a2, a3;      // a's dims 1..3 (dim 0 is implied by n)
    uint bs0, bs1, bs2, bs3;  // b's element strides, 0 along broadcast dims
    uint same;            // b has a's shape: index b like a
} p;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= p.n) return;
    uint bi = i;
    if (p.same == 0u) {
        uint i3 = i % p.a3, r = i / p.a3;
        uint i2 = r % p.a2;
        r /= p.a2;
        uint i1 = r % p.a1, i0 = r / p.a1;
        bi = i0 * p.bs0 + i1 * p.bs1 + i2 * p.bs2 + i3 * p.bs3;
    }
    float bv = load_w(p.b, bi);
    p.out_.v[i] = OP == 0u ? p.a.v[i] + bv : p.a.v[i] * bv;
}
