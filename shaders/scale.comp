#version 450
// out = x * scale + bias, elementwise over n values (may run in place).
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
