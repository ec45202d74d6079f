#version 450
// Embedding lookup: ids [n] i32, table [V, D] f32 (f16 with -DW_F16) ->
// out [n, D]. An id outside [0, V) yields a zero row (the CPU backend reports
// an error; a shader cannot, so callers validate ids on the host).
//
// Assumptions (checked by the tests at each subgroup size and under the
// validation layer, tests/vk-checks.sh):
// - workgroup 256 x 1 x 1 (the runtime requires a device limit of >= 256
//   invocations); one invocation per output element, so no two invocations
//   write one element (no races); no shared memory, no barriers, no subgroup
//   operations: independent of the subgroup size.
// - fp16: the table may be fp16 (-DW_F16), widened to fp32; out fp32.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(push_constant, scalar) uniform P {
    I32 ids;
    WBUF table;
    F32 out_;
    uint n;  // output elements
    uint D, V;
} p;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= p.n) return;
    uint row = i / p.D, d = i - row * p.D;
    int id = p.ids.v[row];
    p.out_.v[i] = (id >= 0 && uint(id) < p.V) ? load_w(p.table, uint(id) * p.D + d) : 0.0;
}
