#version 450
// 2-D convolution (dilation 1, groups 1) as an implicit GEMM:
//   M = Cout, N = batch*OH*OW, K = Cin*KH*KW,
//   A = w viewed as [Cout, K] (fp32, or fp16 with -DW_F16),
//   B = the virtual im2col matrix [K, N], gathered from x [batch, Cin, H, W]
//       tile by tile into shared memory (padding reads as 0); never stored.
//   out [batch, Cout, OH, OW] (+ bias[Cout], fp32 or fp16, when has_bias != 0).
// Kernel size, stride and the top/left padding are specialization constants, so
// every conv geometry gets its own pipeline and the index math folds.
// See gemm_tile.glsl for the tiling.
//
// Assumptions (checked by the tests at each subgroup size and under the
// validation layer, tests/vk-checks.sh):
// - see gemm_tile.glsl (workgroup NT x 1 x 1 within the device's
//   limits, shared-memory phases, no subgroup operations).
// - fp16: w and bias may be fp16 (-DW_F16 / has_bias 2), widened to fp32 on
//   load; x and out fp32; fp32 fma accumulation.
#include "common.glsl"
#include "gemm_tile.glsl"

layout(constant_id = 6) const uint KH = 3;
layout(constant_id = 7) const uint KW = 3;
layout(constant_id = 8) const uint STRIDE = 1;
layout(constant_id = 9) const uint PAD_T = 1;
layout(constant_id = 10) const uint PAD_L = 1;

layout(push_constant, scalar) uniform P {
    F32 x;
    WBUF w;
    F32 bias;
    F32 out_;
    uint Cin, H, W;
    uint Cout, OH, OW;
    uint K;   // Cin*KH*KW
    uint NPQ; // batch*OH*OW
    uint tiles_n, tiles;
    uint has_bias; // 0 none, 1 fp32 bias, 2 fp16 bias
} p;

uint m0, n0;
// The B column this invocation gathers (fixed for the whole K loop, NT % BN == 0).
bool b_valid;
uint b_xbase; // element offset of x[batch, 0, 0, 0]
int b_ih0, b_iw0;

void fetch_tiles(uint k0) {
    const uint tid = gl_LocalInvocationIndex;
    // A: weights, contiguous along K.
    [[unroll]] for (uint j = 0; j < LA; j++) {
        const uint i = tid + j * NT;
        const uint kk = i % BK, mm = i / BK;
        const uint gm = m0 + mm, gk = k0 + kk;
        float v = 0.0;
        if (gm < p.Cout && gk < p.K) v = load_w(p.w, gm * p.K + gk);
        ra[j] = v;
    }
    // B: gathered input, consecutive invocations walk along the output pixels.
    const uint HW = p.H * p.W;
    [[unroll]] for (uint j = 0; j < LB; j++) {
        const uint i = tid + j * NT;
        const uint kk = i / BN;
        const uint gk = k0 + kk;
        const uint ci = gk / (KH * KW);
        const uint r = gk % (KH * KW);
        const int ih = b_ih0 + int(r / KW);
        const int iw = b_iw0 + int(r % KW);
        float v = 0.0;
        if (b_valid && gk < p.K && uint(ih) < p.H && uint(iw) < p.W)
            v = p.x.v[b_xbase + ci * HW + uint(ih) * p.W + uint(iw)];
        rb[j] = v;
    }
}

void store_tiles() {
    const uint tid = gl_LocalInvocationIndex;
    [[unroll]] for (uint j = 0; j < LA; j++) {
        const uint i = tid + j * NT;
        store_a(i % BK, i / BK, ra[j]);
    }
    [[unroll]] for (uint j = 0; j < LB; j++) {
        const uint i = tid + j * NT;
        store_b(i / BN, i % BN, rb[j]);
    }
}

void main() {
    const uint id = gemm_tile_id();
    if (id >= p.tiles) return; // uniform per workgroup
    m0 = (id / p.tiles_n) * BM;
    n0 = (id % p.tiles_n) * BN;

    const uint tid = gl_LocalInvocationIndex;
    const uint OHW = p.OH * p.OW;
    {
        const uint gn = n0 + tid % BN;
        b_valid = gn < p.NPQ;
        const uint bb = gn / OHW, q = gn % OHW;
        const uint oh = q / p.OW, ow = q % p.OW;
        b_xbase = bb * p.Cin * p.H * p.W;
        b_ih0 = int(oh * STRIDE) - int(PAD_T);
        b_iw0 = int(ow * STRIDE) - int(PAD_L);
    }

    gemm_mainloop(p.K);

    const uint tx = tid % TX, ty = tid / TX;
    // (No break/continue in these loops: they must fully unroll so that acc
    // stays in registers; on lavapipe an indirectly indexed acc goes to memory.)
    [[unroll]] for (uint j = 0; j < TN; j++) {
        const uint gn = n0 + gemm_col(tx, j);
        if (gn < p.NPQ) {
            const uint bb = gn / OHW, q = gn % OHW;
            const uint obase = bb * p.Cout * OHW + q;
            [[unroll]] for (uint i = 0; i < TM; i++) {
                const uint gm = m0 + gemm_row(ty, i);
                if (gm < p.Cout) {
                    float bv = 0.0;
                    if (p.has_bias == 1) bv = p.bias.v[gm];
                    else if (p.has_bias == 2) bv = float(F16(p.bias).v[gm]);
                    p.out_.v[obase + gm * OHW] = gemm_acc(i, j) + bv;
                }
            }
        }
    }
}
