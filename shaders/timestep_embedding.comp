#version 450
// Sinusoidal timestep embedding, diffusers' get_timestep_embedding in fp32
// exactly as the CPU backend (and torch) evaluate it:
//   exponent_j = (-ln(max_period) · j) / (half - shift)      (two fp32 roundings)
//   arg = t · exp(exponent_j);  out = [sin, cos] or [cos, sin] (flip); odd dim: 0.
// t·f reaches ~1e3-1e4, so exp, the division and sin/cos must be accurate to an
// ULP (mathfn.glsl); Vulkan's built-ins are not (exp 3+2|x| ULP, division 2.5 ULP,
// sin/cos unbounded outside [-pi, pi]).
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
layout(push_constant, scalar) uniform P {
    F32 t;
    F32 out_;
    uint B, dim, half_;
    float neg_log;  // (float)-ln(max_period)
    float denom;    // (float)(half - shift)
    uint flip;
} p;

// Correctly rounded a / b (but for rare near-ties): the quotient corrected by
// the exact residual a - q·b (Dekker's product; `precise` forbids contraction).
float div_cr(float a, float b) {
    precise float q = a / b;
    precise float cq = 4097.0 * q;
    precise float qh = cq - (cq - q);
    precise float ql = q - qh;
    precise float cb = 4097.0 * b;
    precise float bh = cb - (cb - b);
    precise float bl = b - bh;
    precise float ph = q * b;
    precise float pl = ((qh * bh - ph) + qh * bl + ql * bh) + ql * bl;
    precise float r = (a - ph) - pl;
    return q + r / b;
}

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= p.B * p.dim) return;
    uint b = i / p.dim, col = i - b * p.dim;
    if (col >= 2u * p.half_) {  // odd dim: zero pad
        p.out_.v[i] = 0.0;
        return;
    }
    bool second = col >= p.half_;
    uint j = second ? col - p.half_ : col;
    precise float e = p.neg_log * float(j);
    float ex = div_cr(e, p.denom);
    precise float arg = p.t.v[b] * exp_acc(ex);
    float s, c;
    sincos_acc(arg, s, c);
    // first half: sin (cos when flipped); second half: cos (sin when flipped)
    bool want_sin = second == (p.flip != 0u);
    p.out_.v[i] = want_sin ? s : c;
}
