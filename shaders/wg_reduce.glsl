// Deterministic workgroup sum: a fixed binary tree in shared memory.
// Include after the local_size declaration with WG_SIZE (a power of two)
// defined; every invocation of the workgroup must call wg_sum in uniform
// control flow. Returns the total to every invocation.
shared float wg_red[WG_SIZE];

float wg_sum(float v) {
    const uint lid = gl_LocalInvocationID.x;
    wg_red[lid] = v;
    barrier();
    [[unroll]] for (uint s = WG_SIZE / 2u; s > 0u; s >>= 1u) {
        if (lid < s) wg_red[lid] += wg_red[lid + s];
        barrier();
    }
    float r = wg_red[0];
    barrier();  // wg_red may be reused right away
    return r;
}
