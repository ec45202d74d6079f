#version 450
// Copy n elements with dtype conversion (same numel, any shapes):
//   default      32-bit words, bit-exact (f32 -> f32, i32 -> i32)
//   HALF         16-bit values, bit-exact (f16 -> f16)
//   F16_TO_F32   exact widening (subnormals included, done on the bits)
//   F32_TO_F16   round to nearest even, exactly as ie_fp32_to_fp16 (fp16.c):
//                GLSL's own conversion leaves the rounding mode open.
//
// Assumptions (checked by the tests at each subgroup size and under the
// validation layer, tests/vk-checks.sh):
// - workgroup 256 x 1 x 1 (the runtime requires a device limit of >= 256
//   invocations); one invocation per output element, so no two invocations
//   write one element (no races); no shared memory, no barriers, no subgroup
//   operations: independent of the subgroup size.
// - fp16: conversions work on the bits in integer arithmetic (exact widening;
//   narrowing rounds to nearest even as fp16.c, beyond 65504 -> inf): used for
//   weights and tests, never for activations.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(push_constant, scalar) uniform P {
    F32 x;
    F32 out_;
    uint n;
} p;

uint f32_to_f16_bits(float f) {
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u;
    uint e8 = (x >> 23) & 0xffu;
    uint man = x & 0x7fffffu;
    if (e8 == 0xffu) return sign | 0x7c00u | (man != 0u ? 0x200u | (man >> 13) : 0u);
    int e = int(e8) - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00u;
    if (e <= 0) {
        if (e < -10) return sign;
        man |= 0x800000u;
        uint shift = uint(14 - e);
        uint h = man >> shift;
        uint rem = man & ((1u << shift) - 1u);
        uint mid = 1u << (shift - 1u);
        if (rem > mid || (rem == mid && (h & 1u) != 0u)) h++;
        return sign | h;
    }
    uint h = sign | (uint(e) << 10) | (man >> 13);
    uint rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0u)) h++;
    return h;
}

float f16_bits_to_f32(uint h) {
    uint sign = (h & 0x8000u) << 16;
    uint e = (h >> 10) & 0x1fu;
    uint man = h & 0x3ffu;
    uint x;
    if (e == 0u) {
        if (man == 0u) {
            x = sign;
        } else {  // subnormal: value = man · 2^-24
            int msb = findMSB(man);  // 0..9
            x = sign | (uint(msb + 103) << 23) | ((man << uint(23 - msb)) & 0x7fffffu);
        }
    } else if (e == 0x1fu) {
        x = sign | 0x7f800000u | (man << 13);
    } else {
        x = sign | ((e + 112u) << 23) | (man << 13);
    }
    return uintBitsToFloat(x);
}

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= p.n) return;
#if defined(HALF)
    F16(p.out_).v[i] = F16(p.x).v[i];
#elif defined(F16_TO_F32)
    uint h = packFloat2x16(f16vec2(F16(p.x).v[i], float16_t(0.0)));
    p.out_.v[i] = f16_bits_to_f32(h & 0xffffu);
#elif defined(F32_TO_F16)
    F16(p.out_).v[i] = unpackFloat2x16(f32_to_f16_bits(p.x.v[i])).x;
#else
    I32(p.out_).v[i] = I32(p.x).v[i];
#endif
}
