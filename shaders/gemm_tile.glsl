// Shared-memory tiled GEMM core used by matmul.comp and conv2d.comp.
//
//   C[BM x BN tile] = sum over K of A[BM x BK] * B[BK x BN], fp32 accumulate.
//
// One workgroup computes one BM x BN tile of the output with NT = (BM/TM)*(BN/TN)
// invocations; each invocation accumulates a TM x TN block in registers (acc).
// Shared memory holds As[k][m] and Bs[k][n] as rows of vec4s, so one vec4 read
// feeds 4 rows (or columns) of FMAs; an invocation's rows and columns come in
// groups of 4 strided across invocations (gemm_row/gemm_col), so neighbouring
// invocations read neighbouring vec4s of Bs (no bank conflicts) and store
// neighbouring outputs.
//
// Per K step of BK: every invocation fetches LA = BM*BK/NT elements of A and
// LB = BN*BK/NT elements of B from global memory into registers (ra, rb), they
// are stored to shared memory, and the next step's global loads are issued
// before the FMAs on the current one (register double-buffering). Each output
// is reduced by one invocation in a fixed order: the result is deterministic.
//
// The includer defines, after including this file:
//   void fetch_tiles(uint k0);  // global -> ra/rb for K range [k0, k0+BK), 0 outside
//   void store_tiles();         // ra/rb -> shared, through store_a / store_b
// and calls gemm_mainloop(K), then reads gemm_acc(i, j) for the output at row
// gemm_row(ty, i), column gemm_col(tx, j) of the tile.
//
// Tile configuration is in specialization constants so it can be tuned per
// device; the host (vk_ops_gemm.c: cfg_valid) checks NT == (BM/TM)*(BN/TN),
// TM % 4 == TN % 4 == 0, BM % TM == BN % TN == 0, (BM*BK) % NT == 0,
// (BN*BK) % NT == 0 and NT % BN == 0.
//
// Loops over TM/TN/LA/LB carry [[unroll]]: acc, ra and rb must only ever be
// indexed by constants, or compilers (lavapipe in particular) keep them in
// memory instead of registers. No break/continue in those loops.
//
// Assumptions (checked by the tests at each subgroup size and under the
// validation layer, tests/vk-checks.sh):
// - workgroup NT x 1 x 1 (specialization constant 0); the host keeps
//   NT <= maxComputeWorkGroupInvocations and maxComputeWorkGroupSize.x and the
//   tiles within maxComputeSharedMemorySize (vk_ops_gemm.c: cfg_valid).
// - shared: As, Bs are rewritten whole every K step (NT*LA = BM*BK elements;
//   the padding vec4 of each row is never read), with a barrier after the
//   stores and one after the FMAs, before the next stores. The includers'
//   early return drops whole workgroups only (tile id past the grid).
// - no subgroup operations: independent of the subgroup size.
// - fp16: the includer's fetch_tiles widens fp16 weights to fp32; shared
//   memory and the accumulators are fp32.

#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint NT = 256; // invocations per workgroup
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 16;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;

const uint TX = BN / TN;      // invocations along N
const uint TY = BM / TM;      // invocations along M
const uint SA4 = BM / 4u + 1u; // padded shared row strides, in vec4s
const uint SB4 = BN / 4u + 1u;
const uint LA = BM * BK / NT; // A elements fetched per invocation per K step
const uint LB = BN * BK / NT;

// As[k][m] and Bs[k][n] as vec4 rows (one vec4 read per 4 FMAs per operand).
shared vec4 As[BK * SA4];
shared vec4 Bs[BK * SB4];

void store_a(uint k, uint m, float v) { As[k * SA4 + (m >> 2)][m & 3u] = v; }
void store_b(uint k, uint n, float v) { Bs[k * SB4 + (n >> 2)][n & 3u] = v; }

float ra[LA];
float rb[LB];
vec4 acc[TM * TN / 4]; // acc[(i * TN + j) / 4] holds rows i, columns j..j+3

void fetch_tiles(uint k0);
void store_tiles();

// Invocation (ty, tx) owns rows    m = (ty + iv*TY)*4 + c, iv < TM/4, c < 4
//                     and columns  n = (tx + jv*TX)*4 + c, jv < TN/4, c < 4:
// vec4 groups strided across invocations, so neighbouring invocations read
// neighbouring vec4s of Bs (no bank conflicts) and store neighbouring outputs.
uint gemm_row(uint ty, uint i) { return ((ty + (i >> 2) * TY) << 2) + (i & 3u); }
uint gemm_col(uint tx, uint j) { return ((tx + (j >> 2) * TX) << 2) + (j & 3u); }

void gemm_mainloop(uint K) {
    const uint tid = gl_LocalInvocationIndex;
    const uint tx = tid % TX;
    const uint ty = tid / TX;
    [[unroll]] for (uint i = 0; i < TM * TN / 4; i++) acc[i] = vec4(0.0);

    fetch_tiles(0);
    for (uint k0 = 0; k0 < K; k0 += BK) {
        store_tiles();
        barrier();
        if (k0 + BK < K) fetch_tiles(k0 + BK); // in flight during the FMAs below
        for (uint kk = 0; kk < BK; kk++) {
            vec4 a[TM / 4];
            vec4 b[TN / 4];
            [[unroll]] for (uint iv = 0; iv < TM / 4; iv++) a[iv] = As[kk * SA4 + ty + iv * TY];
            [[unroll]] for (uint jv = 0; jv < TN / 4; jv++) b[jv] = Bs[kk * SB4 + tx + jv * TX];
            [[unroll]] for (uint i = 0; i < TM; i++) {
                const float av = a[i >> 2][i & 3u];
                [[unroll]] for (uint jv = 0; jv < TN / 4; jv++)
                    acc[(i * TN) / 4 + jv] = fma(vec4(av), b[jv], acc[(i * TN) / 4 + jv]);
            }
        }
        barrier();
    }
}

// acc element for the i-th owned row and j-th owned column.
float gemm_acc(uint i, uint j) { return acc[(i * TN) / 4 + (j >> 2)][j & 3u]; }

// Linear tile id of this workgroup (groups folded into x/y by the host).
uint gemm_tile_id() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }
