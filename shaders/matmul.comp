#version 450
// Batched matrix product: out[z] = op(a[z]) · op(b[z]) (+ bias), fp32 accumulate.
//   a: [M, K] row-major, or [K, M] when TRANS_A;    fp32
//   b: [K, N] row-major, or [N, K] when TRANS_B;    fp32 or fp16 (-DW_F16)
//   out: [M, N]; bias [N] (fp32 or fp16) when has_bias != 0.
// Batch z = gl_WorkGroupID.z (over 65535 batches the host issues further dispatches
// with offset addresses); batch strides sa/sb in elements, 0 broadcasts.
// See gemm_tile.glsl for the tiling.
//
// Assumptions (checked by the tests at each subgroup size and under the
// validation layer, tests/vk-checks.sh):
// - see gemm_tile.glsl (workgroup NT x 1 x 1 within the device's
//   limits, shared-memory phases, no subgroup operations).
// - fp16: b and bias may be fp16 (-DW_F16 / has_bias 2), widened to fp32 on
//   load; a and out fp32; fp32 fma accumulation.
#include "common.glsl"
#include "gemm_tile.glsl"

layout(constant_id = 6) const bool TRANS_A = false;
layout(constant_id = 7) const bool TRANS_B = false;

layout(push_constant, scalar) uniform P {
    F32 a;
    WBUF b;
    F32 bias;
    F32 out_;
    uint M, N, K;
    uint sa, sb; // batch strides of a and b (elements), 0 = broadcast
    uint tiles_n, tiles; // output tiles along N; total tiles per batch
    uint has_bias; // 0 none, 1 fp32 bias, 2 fp16 bias
} p;

uint m0, n0, abase, bbase;

void fetch_tiles(uint k0) {
    const uint tid = gl_LocalInvocationIndex;
    [[unroll]] for (uint j = 0; j < LA; j++) {
        const uint i = tid + j * NT;
        uint mm, kk;
        if (TRANS_A) { mm = i % BM; kk = i / BM; } else { kk = i % BK; mm = i / BK; }
        const uint gm = m0 + mm, gk = k0 + kk;
        float v = 0.0;
        if (gm < p.M && gk < p.K) v = p.a.v[abase + (TRANS_A ? gk * p.M + gm : gm * p.K + gk)];
        ra[j] = v;
    }
    [[unroll]] for (uint j = 0; j < LB; j++) {
        const uint i = tid + j * NT;
        uint nn, kk;
        if (TRANS_B) { kk = i % BK; nn = i / BK; } else { nn = i % BN; kk = i / BN; }
        const uint gn = n0 + nn, gk = k0 + kk;
        float v = 0.0;
        if (gn < p.N && gk < p.K) v = load_w(p.b, bbase + (TRANS_B ? gn * p.K + gk : gk * p.N + gn));
        rb[j] = v;
    }
}

void store_tiles() {
    const uint tid = gl_LocalInvocationIndex;
    [[unroll]] for (uint j = 0; j < LA; j++) {
        const uint i = tid + j * NT;
        uint mm, kk;
        if (TRANS_A) { mm = i % BM; kk = i / BM; } else { kk = i % BK; mm = i / BK; }
        store_a(kk, mm, ra[j]);
    }
    [[unroll]] for (uint j = 0; j < LB; j++) {
        const uint i = tid + j * NT;
        uint nn, kk;
        if (TRANS_B) { kk = i % BK; nn = i / BK; } else { nn = i % BN; kk = i / BN; }
        store_b(kk, nn, rb[j]);
    }
}

void main() {
    const uint id = gemm_tile_id();
    if (id >= p.tiles) return; // uniform per workgroup
    m0 = (id / p.tiles_n) * BM;
    n0 = (id % p.tiles_n) * BN;
    const uint z = gl_WorkGroupID.z;
    abase = z * p.sa;
    bbase = z * p.sb;

    gemm_mainloop(p.K);

    const uint tid = gl_LocalInvocationIndex;
    const uint tx = tid % TX, ty = tid / TX;
    const uint cbase = z * p.M * p.N;
    // (No break/continue in these loops: they must fully unroll so that acc
    // stays in registers; on lavapipe an indirectly indexed acc goes to memory.)
    [[unroll]] for (uint j = 0; j < TN; j++) {
        const uint gn = n0 + gemm_col(tx, j);
        if (gn < p.N) {
            float bv = 0.0;
            if (p.has_bias == 1) bv = p.bias.v[gn];
            else if (p.has_bias == 2) bv = float(F16(p.bias).v[gn]);
            [[unroll]] for (uint i = 0; i < TM; i++) {
                const uint gm = m0 + gemm_row(ty, i);
                if (gm < p.M) p.out_.v[cbase + gm * p.N + gn] = gemm_acc(i, j) + bv;
            }
        }
    }
}
