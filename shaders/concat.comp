#version 450
// Channel concat: a [N, Ca, S], b [N, Cb, S] -> out [N, Ca+Cb, S]. One
// invocation per output element; the sample's a-part and b-part are contiguous.
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
