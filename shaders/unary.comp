#version 450
// out = op(x) elementwise over n values (may run in place). OP is a
// specialization constant (ie_unary_op): 0 SiLU, 1 erf GELU, 2 quick GELU,
// 3 ReLU, 4 tanh. GEGLU (define GEGLU): x [rows, 2D] -> out [rows, D] =
// x[:, :D] · gelu(x[:, D:]).
//
// Assumptions (checked by the tests at each subgroup size and under the
// validation layer, tests/vk-checks.sh):
// - workgroup 256 x 1 x 1 (the runtime requires a device limit of >= 256
//   invocations); one invocation per output element, so no two invocations
//   write one element (no races); no shared memory, no barriers, no subgroup
//   operations: independent of the subgroup size.
// - fp16: none (fp32 only).
#include "common.glsl"
#include "mathfn.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint OP = 0;
layout(push_constant, scalar) uniform P {
    F32 x;
    F32 out_;
    uint n;  // output elements
    uint D;  // GEGLU: output row length
} p;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= p.n) return;
#ifdef GEGLU
    uint r = i / p.D, c = i - r * p.D;
    uint a = r * 2u * p.D + c;
    p.out_.v[i] = p.x.v[a] * gelu_erf(p.x.v[a + p.D]);
#else
    float v = p.x.v[i], y;
    if (OP == 0u) y = silu(v);
    else if (OP == 1u) y = gelu_erf(v);
    else if (OP == 2u) y = v / (1.0 + exp(-1.702 * v));
    else if (OP == 3u) y = v > 0.0 ? v : 0.0;
    else y = tanh_safe(v);
    p.out_.v[i] = y;
#endif
}
