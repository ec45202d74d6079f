/* The CPU backend: plain C loops plus OpenBLAS sgemm.
 *
 * It is the reference every Vulkan shader is tested against, and the fallback
 * when there is no usable Vulkan device. Arguments arrive checked by ops.c
 * (backend.h); the asserts below state the invariants each op relies on.
 *
 * Layout: tensors are dense, row-major, PyTorch order (NCHW, [B, L, C]).
 * Activations are fp32; weights (conv w, matmul b, embedding table) and the
 * small parameter vectors (bias, gamma, beta) may be fp16 and are converted
 * into fp32 scratch before use. Every reduction runs in a fixed order, so the
 * same input gives the same bits (sgemm is split over row or column blocks
 * of C; over K only in fixed panels accumulated in order, see cpu_wgemm).
 *
 * Scratch: one grow-only buffer per backend, carved up by each op. The parts
 * that scale with the activations (im2col columns, attention scores) are kept
 * under `scratch_limit` (32 MiB; INVEDIT_CPU_SCRATCH_BYTES overrides it, which
 * the tests use to force the chunked paths at small sizes).
 *
 * Threads: one small pool (cpu_parallel) runs everything: sgemm as row or column
 * blocks of single-threaded OpenBLAS calls (cpu_sgemm), and softmax, norms,
 * elementwise ops, im2col and data movement as contiguous ranges of
 * independent items. No accumulator is shared between items, so those loops
 * give the bits a single thread would, whatever the thread count; sgemm's
 * blocks depend on the thread count, so its bits are fixed per thread count.
 * Exponentials (softmax, SiLU, GELU, quick GELU) use a vector exp (cpu_exp8,
 * within 1 ulp; AVX2 where the CPU has it, 16 lanes with AVX-512 in the
 * attention kernels, the same bits in every variant); lane sums in softmax
 * are combined in a fixed order.
 */
#include "vkcompute/backend.h"

#include <assert.h>
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CPU_ALIGN 64
#define CPU_SCRATCH_LIMIT_DEFAULT ((size_t)32 << 20)
#define CPU_ATTN_QBLOCK 256 /* query rows per attention block */
#define CPU_PAR_MIN 16384   /* elements of work (about) below which a loop is not split */

/* --- vector math ----------------------------------------------------------------
 * The exponential-heavy loops (softmax rows; SiLU, GELU, quick GELU, with
 * or without GroupNorm's affine) are written once on 8-lane float vectors (GCC /
 * Clang vector extensions) as always-inline bodies, and compiled twice: for
 * the baseline ISA and, on x86, for AVX2 (without FMA), chosen at run time.
 * Both variants do the same IEEE operations in the same order in every lane,
 * so they give the same bits; every lane is computed independently, so a
 * value does not depend on its position (vector body or padded tail).
 * 32-byte vectors only cross always-inline calls, so the baseline build's
 * "AVX vector ... changes the ABI" warning does not apply (vkcompute/meson.build
 * passes -Wno-psabi). */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CPU_AVX2_CLONES 1
#include <immintrin.h>
#endif

#define CPU_INLINE static inline __attribute__((always_inline))
/* Vectors of N floats (and of N int32 lane masks) with unaligned load and
 * store, broadcast, and select: a where m is set (a lane comparison
 * result), else b. Defined for 8 lanes here and 16 for AVX-512 below. */
#define CPU_DEFINE_VEC(N)                                                                                              \
    typedef float cpu_v##N __attribute__((vector_size(4 * N)));                                                        \
    typedef int32_t cpu_v##N##i __attribute__((vector_size(4 * N)));                                                   \
    CPU_INLINE cpu_v##N cpu_load##N(const float *p) {                                                                  \
        cpu_v##N v;                                                                                                    \
        memcpy(&v, p, sizeof v);                                                                                       \
        return v;                                                                                                      \
    }                                                                                                                  \
    CPU_INLINE void cpu_store##N(float *p, cpu_v##N v) { memcpy(p, &v, sizeof v); }                                    \
    CPU_INLINE cpu_v##N cpu_splat##N(float x) {                                                                        \
        cpu_v##N v;                                                                                                    \
        for (int i = 0; i < N; i++) v[i] = x;                                                                          \
        return v;                                                                                                      \
    }                                                                                                                  \
    CPU_INLINE cpu_v##N cpu_select##N(cpu_v##N##i m, cpu_v##N a, cpu_v##N b) {                                         \
        return (cpu_v##N)((m & (cpu_v##N##i)a) | (~m & (cpu_v##N##i)b));                                               \
    }
CPU_DEFINE_VEC(8)

/* e^x per lane: Cephes' expf (x = n·ln2 + r with ln2 split in two,
 * |r| <= ln2/2, a degree-6 polynomial for e^r, 2^n through the exponent
 * bits); within 1 ulp of the correctly rounded e^x on [-87.33, 88] (checked
 * on every 32nd float there). x < -87.34 (a subnormal or zero result) gives
 * 0; x > 88 gives e^88 (not inf); NaN stays NaN. */
#define CPU_DEFINE_EXP(name, V, VI, splat, select)                                                                     \
    CPU_INLINE V name(V x) {                                                                                           \
        const VI under = x < -87.33654f;                                                                               \
        x = select(x > 88.0f, splat(88.0f), x);                                                                        \
        const V magic = splat(12582912.0f); /* 1.5·2^23: adding it rounds to an integer */                            \
        const V t = x * 1.44269504088896341f + magic;                                                                  \
        const V n = t - magic; /* round(x / ln2) */                                                                    \
        V r = x - n * 0.693359375f;                                                                                    \
        r = r - n * -2.12194440e-4f;                                                                                   \
        V p = r * 1.9875691500e-4f + 1.3981999507e-3f;                                                                 \
        p = p * r + 8.3334519073e-3f;                                                                                  \
        p = p * r + 4.1665795894e-2f;                                                                                  \
        p = p * r + 1.6666665459e-1f;                                                                                  \
        p = p * r + 5.0000001201e-1f;                                                                                  \
        p = p * (r * r) + r + 1.0f;                                                                                    \
        /* t's low mantissa bits hold n: 2^n = (n + 127) << 23 */                                                      \
        const VI e = (((VI)t - 0x4B400000) + 127) << 23;                                                               \
        const V y = p * (V)e;                                                                                          \
        return (V)((VI)y & ~under);                                                                                    \
    }
CPU_DEFINE_EXP(cpu_exp8, cpu_v8, cpu_v8i, cpu_splat8, cpu_select8)

/* The part after the max and the first j exponentials (j a multiple of 8,
 * their lane sums in sum8): the rest 8 at a time, the padded tail, the sum,
 * the optional normalisation and the masked zeros. */
CPU_INLINE float cpu_softmax_finish(float *s, int64_t n, int64_t nvalid, bool normalise, int64_t j, float m,
                                    cpu_v8 sum8) {
    for (; j + 8 <= nvalid; j += 8) {
        const cpu_v8 e = cpu_exp8(cpu_load8(s + j) - m);
        cpu_store8(s + j, e);
        sum8 += e;
    }
    if (j < nvalid) {
        float t[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
        memcpy(t, s + j, sizeof(float) * (size_t)(nvalid - j));
        const cpu_v8 e = cpu_exp8(cpu_load8(t) - m);
        cpu_store8(t, e);
        memcpy(s + j, t, sizeof(float) * (size_t)(nvalid - j));
        sum8 += e;
    }
    const float sum = ((sum8[0] + sum8[4]) + (sum8[1] + sum8[5])) + ((sum8[2] + sum8[6]) + (sum8[3] + sum8[7]));
    const float inv = 1.0f / sum;
    j = 0;
    if (normalise) {
        for (; j + 8 <= nvalid; j += 8) cpu_store8(s + j, cpu_load8(s + j) * inv);
        for (; j < nvalid; j++) s[j] *= inv;
    }
    for (j = nvalid; j < n; j++) s[j] = 0.0f;
    return inv;
}

/* Softmax of one score row s[0..n) in place, over keys [0, nvalid); keys
 * [nvalid, n) (the causal mask) get probability 0. Max-subtracted, fp32; the
 * exponentials summed in 8 lane sums (the tail padded with e^-inf = 0),
 * combined pairwise in a fixed order. Returns 1/sum; with normalise false
 * the row is left as the exponentials (the caller scales later: attention
 * scales its output rows, Dv values, instead of the Lk probabilities). */
CPU_INLINE float cpu_softmax_body(float *s, int64_t n, int64_t nvalid, bool normalise) {
    int64_t j = 0;
    cpu_v8 m8 = cpu_splat8(s[0]);
    for (; j + 8 <= nvalid; j += 8) {
        const cpu_v8 v = cpu_load8(s + j);
        m8 = cpu_select8(v > m8, v, m8);
    }
    float m = s[0];
    for (int k = 0; k < 8; k++) m = m8[k] > m ? m8[k] : m;
    for (; j < nvalid; j++) m = s[j] > m ? s[j] : m;
    return cpu_softmax_finish(s, n, nvalid, normalise, 0, m, cpu_splat8(0.0f));
}

/* GELU, 0.5·x·erfc(-x/√2), with erfc from Numerical Recipes' erfcc
 * (Chebyshev fit, fractional error < 1.2e-7: relative accuracy in the
 * negative tail too): z = |x|/√2, t = 1/(1 + z/2),
 * erfc(z) = t·e^(-z² - 1.26551223 + t·(1.00002368 + t·(...))). Then
 * x >= 0: x·(1 - erfc(z)/2); x < 0: x·erfc(z)/2. */
CPU_INLINE cpu_v8 cpu_gelu8(cpu_v8 x) {
    const cpu_v8i neg = x < 0.0f;
    const cpu_v8 z = (cpu_v8)((cpu_v8i)x & ~(cpu_v8i)cpu_splat8(-0.0f)) * 0.70710678118654752f;
    const cpu_v8 t = 1.0f / (z * 0.5f + 1.0f);
    cpu_v8 p = t * 0.17087277f - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    const cpu_v8 half_erfc = t * cpu_exp8(p - z * z) * 0.5f;
    return cpu_select8(neg, x * half_erfc, x * (1.0f - half_erfc));
}

/* Activation rows: out[i] = act(v) [* mul[i]], v = x[i], or with an affine
 * aff = {m_hi, m_lo, scale, shift}: v = ((x[i] - m_hi) - m_lo) * scale + shift
 * (GroupNorm). out may equal x. */
typedef enum cpu_act { CPU_ACT_NONE = 0, CPU_ACT_SILU, CPU_ACT_QUICK_GELU, CPU_ACT_GELU } cpu_act;

CPU_INLINE cpu_v8 cpu_act8(const float *x, cpu_act act, const float *aff) {
    cpu_v8 v = cpu_load8(x);
    if (aff) v = ((v - aff[0]) - aff[1]) * aff[2] + aff[3];
    if (act == CPU_ACT_SILU) v = v / (1.0f + cpu_exp8(-v));                     /* x * sigmoid(x) */
    else if (act == CPU_ACT_QUICK_GELU) v = v / (1.0f + cpu_exp8(v * -1.702f)); /* x * sigmoid(1.702 x) */
    else if (act == CPU_ACT_GELU) v = cpu_gelu8(v);
    return v;
}

CPU_INLINE void cpu_act_body(float *o, const float *x, int64_t n, cpu_act act, const float *aff, const float *mul) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        cpu_v8 v = cpu_act8(x + i, act, aff);
        if (mul) v *= cpu_load8(mul + i);
        cpu_store8(o + i, v);
    }
    if (i < n) {
        float t[8] = {0, 0, 0, 0, 0, 0, 0, 0}, m[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        cpu_v8 v = cpu_act8(t, act, aff);
        if (mul) {
            memcpy(m, mul + i, sizeof(float) * (size_t)(n - i));
            v *= cpu_load8(m);
        }
        cpu_store8(t, v);
        memcpy(o + i, t, sizeof(float) * (size_t)(n - i));
    }
}

/* Both attention products, one register tile: out[r][0..8·nv) =
 * mul[r·mul_step] · Σ_t x[r·ldx + t] · y[t·8·nv .. t·8·nv + 8·nv) for rows
 * r < rows (at most 6; nv = 1 or 2 vectors of 8 per row), t ascending, one
 * multiply and one add per term (no fused multiply-add), so the vector and
 * the baseline builds give the same bits; ncols <= 8·nv of a row are stored.
 * Scores S [nq, nk] = scale · Q · Kᵀ: x = Q's rows (row stride ldq), y = a
 * block of 16 keys packed by cpu_qk_pack as [D][16], mul = &scale (step 0).
 * Output O [nq, Dv] = diag(inv) · S · V: x = the score rows, y = a value
 * panel packed by cpu_pv_pack as [nk][8 or 16], mul = the rows' 1/sum
 * (step 1). The tile stays in registers for the whole sum (OpenBLAS, at
 * D = 40..160, spent more time clearing, reloading and storing its output
 * and packing than on the scores, and ran the 40-column output product at
 * half this speed). */
#define CPU_TILE8_ROWS 6
CPU_INLINE void cpu_rowtile8(const int rows, const int nv, float *out, int64_t ldo, const float *x, int64_t ldx,
                             const float *y, int64_t T, const float *mul, int64_t mul_step, int64_t ncols) {
    cpu_v8 acc[CPU_TILE8_ROWS][2];
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = cpu_splat8(0.0f);
    const int64_t w = 8 * nv;
    for (int64_t t = 0; t < T; t++) {
        const cpu_v8 v0 = cpu_load8(y + t * w), v1 = nv == 2 ? cpu_load8(y + t * w + 8) : v0;
#pragma GCC unroll 6
        for (int r = 0; r < rows; r++) {
            const float xv = x[r * ldx + t];
            acc[r][0] += v0 * xv;
            if (nv == 2) acc[r][1] += v1 * xv;
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) {
        float *o = out + r * ldo;
        const float m = mul[r * mul_step];
        if (ncols == w) {
            cpu_store8(o, acc[r][0] * m);
            if (nv == 2) cpu_store8(o + 8, acc[r][1] * m);
        } else {
            float t[16];
            cpu_store8(t, acc[r][0] * m);
            if (nv == 2) cpu_store8(t + 8, acc[r][1] * m);
            memcpy(o, t, (size_t)ncols * sizeof(float));
        }
    }
}

/* The tile over nrows rows, 6 at a time (the rest with a constant row count) */
CPU_INLINE void cpu_rowtiles8(const int nv, float *out, int64_t ldo, const float *x, int64_t ldx, const float *y,
                              int64_t T, const float *mul, int64_t mul_step, int64_t nrows, int64_t ncols) {
    int64_t i = 0;
    for (; i + CPU_TILE8_ROWS <= nrows; i += CPU_TILE8_ROWS)
        cpu_rowtile8(CPU_TILE8_ROWS, nv, out + i * ldo, ldo, x + i * ldx, ldx, y, T, mul + i * mul_step, mul_step,
                     ncols);
    float *o = out + i * ldo;
    const float *xi = x + i * ldx, *mi = mul + i * mul_step;
    switch (nrows - i) {
        case 5: cpu_rowtile8(5, nv, o, ldo, xi, ldx, y, T, mi, mul_step, ncols); break;
        case 4: cpu_rowtile8(4, nv, o, ldo, xi, ldx, y, T, mi, mul_step, ncols); break;
        case 3: cpu_rowtile8(3, nv, o, ldo, xi, ldx, y, T, mi, mul_step, ncols); break;
        case 2: cpu_rowtile8(2, nv, o, ldo, xi, ldx, y, T, mi, mul_step, ncols); break;
        case 1: cpu_rowtile8(1, nv, o, ldo, xi, ldx, y, T, mi, mul_step, ncols); break;
        default: break;
    }
}

CPU_INLINE void cpu_qk_body(float *S, const float *q, int64_t ldq, const float *kp, int64_t nq, int64_t nk, int64_t D,
                            float scale) {
    for (int64_t jb = 0; jb * 16 < nk; jb++)
        cpu_rowtiles8(2, S + jb * 16, nk, q, ldq, kp + jb * D * 16, D, &scale, 0, nq,
                      nk - jb * 16 < 16 ? nk - jb * 16 : 16);
}

CPU_INLINE void cpu_pv_body(float *O, int64_t ldo, const float *S, const float *vp, const float *inv, int64_t nq,
                            int64_t nk, int64_t Dv) {
    for (int64_t c0 = 0; c0 < Dv; c0 += 16) {
        const int64_t ncols = Dv - c0 < 16 ? Dv - c0 : 16;
        cpu_rowtiles8(ncols > 8 ? 2 : 1, O + c0, ldo, S, nk, vp + c0 * nk, nk, inv, 1, nq, ncols);
    }
}

typedef struct cpu_kernels {
    void (*qk_block)(float *S, const float *q, int64_t ldq, const float *kp, int64_t nq, int64_t nk, int64_t D,
                     float scale);
    void (*pv_block)(float *O, int64_t ldo, const float *S, const float *vp, const float *inv, int64_t nq, int64_t nk,
                     int64_t Dv);
    void (*softmax_row)(float *s, int64_t n, int64_t nvalid);
    float (*softmax_exp_row)(float *s, int64_t n, int64_t nvalid); /* unnormalised; returns 1/sum */
    void (*act_row)(float *o, const float *x, int64_t n, cpu_act act, const float *aff, const float *mul);
    const char *isa; /* for the description */
} cpu_kernels;

static void cpu_qk_block_base(float *S, const float *q, int64_t ldq, const float *kp, int64_t nq, int64_t nk, int64_t D,
                              float scale) {
    cpu_qk_body(S, q, ldq, kp, nq, nk, D, scale);
}
static void cpu_pv_block_base(float *O, int64_t ldo, const float *S, const float *vp, const float *inv, int64_t nq,
                              int64_t nk, int64_t Dv) {
    cpu_pv_body(O, ldo, S, vp, inv, nq, nk, Dv);
}
static void cpu_softmax_row_base(float *s, int64_t n, int64_t nvalid) { cpu_softmax_body(s, n, nvalid, true); }
static float cpu_softmax_exp_row_base(float *s, int64_t n, int64_t nvalid) {
    return cpu_softmax_body(s, n, nvalid, false);
}
static void cpu_act_row_base(float *o, const float *x, int64_t n, cpu_act act, const float *aff, const float *mul) {
    cpu_act_body(o, x, n, act, aff, mul);
}
#ifdef CPU_AVX2_CLONES
__attribute__((target("avx2"))) static void cpu_qk_block_avx2(float *S, const float *q, int64_t ldq, const float *kp,
                                                              int64_t nq, int64_t nk, int64_t D, float scale) {
    cpu_qk_body(S, q, ldq, kp, nq, nk, D, scale);
}
__attribute__((target("avx2"))) static void cpu_pv_block_avx2(float *O, int64_t ldo, const float *S, const float *vp,
                                                              const float *inv, int64_t nq, int64_t nk, int64_t Dv) {
    cpu_pv_body(O, ldo, S, vp, inv, nq, nk, Dv);
}
__attribute__((target("avx2"))) static void cpu_softmax_row_avx2(float *s, int64_t n, int64_t nvalid) {
    cpu_softmax_body(s, n, nvalid, true);
}
__attribute__((target("avx2"))) static float cpu_softmax_exp_row_avx2(float *s, int64_t n, int64_t nvalid) {
    return cpu_softmax_body(s, n, nvalid, false);
}
__attribute__((target("avx2"))) static void cpu_act_row_avx2(float *o, const float *x, int64_t n, cpu_act act,
                                                             const float *aff, const float *mul) {
    cpu_act_body(o, x, n, act, aff, mul);
}


/* AVX-512: the scores, the softmax's exponentials and the output product on
 * 16 lanes (one vector per packed block of 16 keys or value columns), twice
 * the work per instruction where the CPU runs 512-bit vectors at full width.
 * Every value is computed by the same IEEE operations in the same order as in
 * the 8-lane bodies: a score or output sums its terms in the same order, the
 * exponential is the same function of each lane, and the softmax adds each
 * 16-lane vector of exponentials into the 8 lane sums as its low then its
 * high half, the 8-lane order. So all three variants give the same bits. */
#define CPU_AVX512_TARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
CPU_DEFINE_VEC(16)
CPU_DEFINE_EXP(cpu_exp16, cpu_v16, cpu_v16i, cpu_splat16, cpu_select16)

CPU_AVX512_TARGET static float cpu_softmax16(float *s, int64_t n, int64_t nvalid, bool normalise) {
    int64_t j = 0;
    float m = s[0];
    if (nvalid >= 16) {
        cpu_v16 m16 = cpu_splat16(s[0]);
        for (; j + 16 <= nvalid; j += 16) {
            const cpu_v16 v = cpu_load16(s + j);
            m16 = cpu_select16(v > m16, v, m16);
        }
        for (int k = 0; k < 16; k++) m = m16[k] > m ? m16[k] : m;
    }
    for (; j < nvalid; j++) m = s[j] > m ? s[j] : m;
    cpu_v8 sum8 = cpu_splat8(0.0f);
    for (j = 0; j + 16 <= nvalid; j += 16) {
        const cpu_v16 e = cpu_exp16(cpu_load16(s + j) - m);
        cpu_store16(s + j, e);
        cpu_v8 lo, hi;
        memcpy(&lo, &e, sizeof lo);
        memcpy(&hi, (const char *)&e + sizeof lo, sizeof hi);
        sum8 += lo;
        sum8 += hi;
    }
    return cpu_softmax_finish(s, n, nvalid, normalise, j, m, sum8);
}
CPU_AVX512_TARGET static void cpu_softmax_row_avx512(float *s, int64_t n, int64_t nvalid) {
    cpu_softmax16(s, n, nvalid, true);
}
CPU_AVX512_TARGET static float cpu_softmax_exp_row_avx512(float *s, int64_t n, int64_t nvalid) {
    return cpu_softmax16(s, n, nvalid, false);
}

/* Both attention products on 16 lanes, one tile shape: out[r][0..16) =
 * mul[r·mul_step] · Σ_t x[r·ldx + t] · y[t·16 .. t·16 + 16) for rows r < rows
 * (at most 8, one vector each), t ascending, one multiply and one add per
 * term; ncols <= 16 of the row are stored. Scores: x = Q's rows, y = a packed
 * key block, mul = &scale (step 0); output: x = the score rows, y = a packed
 * value panel, mul = the rows' 1/sum (step 1). */
#define CPU_TILE16_ROWS 8
CPU_INLINE void cpu_rowtile16(const int rows, float *out, int64_t ldo, const float *x, int64_t ldx, const float *y,
                              int64_t T, const float *mul, int64_t mul_step, int64_t ncols) {
    cpu_v16 acc[CPU_TILE16_ROWS];
#pragma GCC unroll 8
    for (int r = 0; r < rows; r++) acc[r] = cpu_splat16(0.0f);
    for (int64_t t = 0; t < T; t++) {
        const cpu_v16 v = cpu_load16(y + t * 16);
#pragma GCC unroll 8
        for (int r = 0; r < rows; r++) acc[r] += v * x[r * ldx + t];
    }
#pragma GCC unroll 8
    for (int r = 0; r < rows; r++) {
        const cpu_v16 o = acc[r] * mul[r * mul_step];
        if (ncols == 16) {
            cpu_store16(out + r * ldo, o);
        } else {
            float t[16];
            cpu_store16(t, o);
            memcpy(out + r * ldo, t, (size_t)ncols * sizeof(float));
        }
    }
}

CPU_AVX512_TARGET static void cpu_qk_block_avx512(float *S, const float *q, int64_t ldq, const float *kp, int64_t nq,
                                                  int64_t nk, int64_t D, float scale) {
    for (int64_t jb = 0; jb * 16 < nk; jb++) {
        const float *kb = kp + jb * D * 16;
        const int64_t ncols = nk - jb * 16 < 16 ? nk - jb * 16 : 16;
        int64_t i = 0;
        for (; i + CPU_TILE16_ROWS <= nq; i += CPU_TILE16_ROWS)
            cpu_rowtile16(CPU_TILE16_ROWS, S + i * nk + jb * 16, nk, q + i * ldq, ldq, kb, D, &scale, 0, ncols);
        for (; i < nq; i++) cpu_rowtile16(1, S + i * nk + jb * 16, nk, q + i * ldq, ldq, kb, D, &scale, 0, ncols);
    }
}

CPU_AVX512_TARGET static void cpu_pv_block_avx512(float *O, int64_t ldo, const float *S, const float *vp,
                                                  const float *inv, int64_t nq, int64_t nk, int64_t Dv) {
    for (int64_t c0 = 0; c0 < Dv; c0 += 16) {
        const int64_t ncols = Dv - c0 < 16 ? Dv - c0 : 16;
        const float *vb = vp + c0 * nk;
        if (ncols <= 8) {
            cpu_rowtiles8(1, O + c0, ldo, S, nk, vb, nk, inv, 1, nq, ncols);
            continue;
        }
        int64_t i = 0;
        for (; i + CPU_TILE16_ROWS <= nq; i += CPU_TILE16_ROWS)
            cpu_rowtile16(CPU_TILE16_ROWS, O + i * ldo + c0, ldo, S + i * nk, nk, vb, nk, inv + i, 1, ncols);
        for (; i < nq; i++) cpu_rowtile16(1, O + i * ldo + c0, ldo, S + i * nk, nk, vb, nk, inv + i, 1, ncols);
    }
}
#endif

/* The variant for this CPU (INVEDIT_CPU_NO_AVX2=1 forces the baseline one,
 * for comparing the two). */
static cpu_kernels cpu_kernels_pick(void) {
    cpu_kernels k = {cpu_qk_block_base,        cpu_pv_block_base, cpu_softmax_row_base,
                     cpu_softmax_exp_row_base, cpu_act_row_base,  ""};
#ifdef CPU_AVX2_CLONES
    const char *off = getenv("INVEDIT_CPU_NO_AVX2");
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && !(off && atoi(off))) {
        k.qk_block = cpu_qk_block_avx2;
        k.pv_block = cpu_pv_block_avx2;
        k.softmax_row = cpu_softmax_row_avx2;
        k.softmax_exp_row = cpu_softmax_exp_row_avx2;
        k.act_row = cpu_act_row_avx2;
        k.isa = ", AVX2";
        const char *off512 = getenv("INVEDIT_CPU_NO_AVX512");
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") && !(off512 && atoi(off512))) {
            k.qk_block = cpu_qk_block_avx512;
            k.pv_block = cpu_pv_block_avx512;
            k.softmax_row = cpu_softmax_row_avx512;
            k.softmax_exp_row = cpu_softmax_exp_row_avx512;
            k.isa = ", AVX2, AVX-512";
        }
    }
#endif
    return k;
}

/* --- threads ------------------------------------------------------------------
 * A pool of n_threads - 1 workers plus the calling thread. A job
 * cpu_parallel(be, n, per_item, fn, ctx) covers the items [0, n), each about
 * per_item elements of work: they are cut into chunks
 * [n·i/chunks, n·(i+1)/chunks), chunks = min(4·threads, n·per_item / par_min)
 * (par_min = CPU_PAR_MIN, or INVEDIT_CPU_PAR_MIN, which a test sets to 1 to
 * split every loop), and the threads claim chunks from a shared counter
 * until none is left. Which thread runs a chunk varies; what a chunk
 * computes does not (items share no accumulator). The caller works too and
 * never waits for a worker that has not started, so a busy machine costs at
 * most the serial time. Workers sleep on a condition variable between jobs. */
typedef void (*cpu_range_fn)(void *ctx, int64_t begin, int64_t end);

typedef struct cpu_pool {
    int n_workers;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    bool quit;
    /* the current job (set under mu, before job is incremented) */
    uint32_t job;
    cpu_range_fn fn;
    void *ctx;
    int64_t n, chunks;
    _Atomic uint64_t claim; /* job << 32 | next chunk to claim */
    _Atomic int64_t done;   /* chunks finished in the current job */
} cpu_pool;

typedef struct cpu_impl {
    int n_threads;   /* as reported by OpenBLAS; also the pool's size + 1 */
    int64_t par_min; /* elements of work per chunk, at least (cpu_parallel) */
    cpu_pool pool;
    cpu_kernels kern;     /* softmax / activation rows for this CPU */
    size_t scratch_limit; /* bytes, bound on im2col columns and attention scores */
    void *scratch;        /* grow-only, CPU_ALIGN aligned */
    size_t scratch_cap;
    struct timespec timer_start;
    float f16_to_f32[65536]; /* ie_fp16_to_fp32 of every half, for fast row conversion */
    void (*f16_row)(const float *table, float *dst, const uint16_t *src, int64_t n);
} cpu_impl;

static cpu_impl *cpu_impl_of(ie_backend *be) { return (cpu_impl *)be->impl; }

static size_t cpu_round_up(size_t n) { return (n + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN; }

static inline blasint cpu_blas_int(int64_t v) {
    assert(v >= 0 && v <= INT_MAX);
    return (blasint)v;
}

static inline int64_t cpu_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t cpu_max(int64_t a, int64_t b) { return a > b ? a : b; }

/* Scratch of at least nbytes (contents undefined); NULL with the error set. */
static void *cpu_scratch(ie_backend *be, size_t nbytes) {
    cpu_impl *c = cpu_impl_of(be);
    if (nbytes <= c->scratch_cap) return c->scratch;
    size_t cap = cpu_round_up(nbytes);
    void *p = aligned_alloc(CPU_ALIGN, cap);
    if (!p) {
        ie_backend_set_error(be, IE_ERR_NOMEM, "cpu: cannot allocate %zu bytes of scratch", cap);
        return NULL;
    }
    free(c->scratch);
    c->scratch = p;
    c->scratch_cap = cap;
    return p;
}

/* Takes `nbytes` (rounded up to CPU_ALIGN) from a scratch cursor. */
static void *cpu_carve(char **cursor, size_t nbytes) {
    void *p = *cursor;
    *cursor += cpu_round_up(nbytes);
    return p;
}

/* fp16 -> fp32 of n values: F16C's vcvtph2ps where the CPU has it (8 at a
 * time), else the table. Both are exact (every half is a float), so the
 * bits do not depend on which one ran. */
#ifdef CPU_AVX2_CLONES
__attribute__((target("avx,f16c"))) static void cpu_f16_to_f32_f16c(const float *table, float *dst, const uint16_t *src,
                                                                    int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = table[src[i]];
}
#endif

static void cpu_f16_to_f32_table(const float *table, float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = table[src[i]];
}

static void cpu_f16_row_to_f32(const cpu_impl *c, float *dst, const uint16_t *src, int64_t n) {
    c->f16_row(c->f16_to_f32, dst, src, n);
}

/* The same on the pool, in blocks of 64 Ki values (a whole weight matrix). */
typedef struct cpu_f16_job {
    const cpu_impl *c;
    float *dst;
    const uint16_t *src;
    int64_t n;
} cpu_f16_job;

#define CPU_F16_BLOCK ((int64_t)1 << 16)
static void cpu_f16_blocks(void *ctx, int64_t b0, int64_t b1) {
    const cpu_f16_job *j = ctx;
    int64_t i0 = b0 * CPU_F16_BLOCK, i1 = b1 * CPU_F16_BLOCK < j->n ? b1 * CPU_F16_BLOCK : j->n;
    if (i1 > i0) cpu_f16_row_to_f32(j->c, j->dst + i0, j->src + i0, i1 - i0);
}

static void cpu_parallel(ie_backend *be, int64_t n, int64_t per_item, cpu_range_fn fn, void *ctx);

static void cpu_f16_to_f32_par(ie_backend *be, float *dst, const uint16_t *src, int64_t n) {
    cpu_f16_job j = {cpu_impl_of(be), dst, src, n};
    cpu_parallel(be, (n + CPU_F16_BLOCK - 1) / CPU_F16_BLOCK, CPU_F16_BLOCK, cpu_f16_blocks, &j);
}

/* Bytes of fp32 scratch needed to read t as fp32 (0 when t is NULL or f32). */
static size_t cpu_f32_scratch_bytes(const ie_tensor *t) {
    if (!t || t->dtype == IE_F32) return 0;
    return cpu_round_up((size_t)ie_tensor_numel(t) * sizeof(float));
}

/* t as fp32: its own data when f32, else converted into the scratch at
 * *cursor (cpu_f32_scratch_bytes(t) bytes). NULL stays NULL. */
static const float *cpu_as_f32(ie_backend *be, const ie_tensor *t, char **cursor) {
    if (!t) return NULL;
    if (t->dtype == IE_F32) return (const float *)t->host;
    assert(t->dtype == IE_F16);
    int64_t n = ie_tensor_numel(t);
    float *dst = cpu_carve(cursor, (size_t)n * sizeof(float));
    cpu_f16_to_f32_par(be, dst, (const uint16_t *)t->host, n);
    return dst;
}

/* A tensor of any rank seen as [B, L, C]: C the last dim, L the one before. */
static void cpu_dims3(const ie_tensor *t, int64_t *B, int64_t *L, int64_t *C) {
    *C = t->shape[t->ndim - 1];
    *L = t->ndim >= 2 ? t->shape[t->ndim - 2] : 1;
    *B = ie_tensor_numel(t) / cpu_max(1, *L * *C);
}

/* The next unclaimed chunk of job `job`, or -1 when there is none (or the
 * pool has moved on to another job). */
static int64_t cpu_claim(cpu_pool *p, uint32_t job, int64_t chunks) {
    uint64_t v = atomic_load(&p->claim);
    for (;;) {
        if ((uint32_t)(v >> 32) != job || (int64_t)(v & 0xffffffffu) >= chunks) return -1;
        if (atomic_compare_exchange_weak(&p->claim, &v, v + 1)) return (int64_t)(v & 0xffffffffu);
    }
}

/* Runs chunks of the job until none is left. */
static void cpu_run_chunks(cpu_pool *p, uint32_t job, cpu_range_fn fn, void *ctx, int64_t n, int64_t chunks) {
    int64_t c;
    while ((c = cpu_claim(p, job, chunks)) >= 0) {
        fn(ctx, n * c / chunks, n * (c + 1) / chunks);
        if (atomic_fetch_add(&p->done, 1) + 1 == chunks) { /* the last one: wake the caller */
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->idle);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void *cpu_worker_main(void *arg) {
    cpu_pool *p = arg;
    uint32_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->job == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) break;
        seen = p->job;
        const cpu_range_fn fn = p->fn;
        void *ctx = p->ctx;
        const int64_t n = p->n, chunks = p->chunks;
        pthread_mutex_unlock(&p->mu);
        cpu_run_chunks(p, seen, fn, ctx, n, chunks);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Starts up to `workers` threads (fewer if the system refuses). */
static void cpu_pool_start(cpu_pool *p, int workers) {
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->idle, NULL);
    atomic_init(&p->claim, 0);
    atomic_init(&p->done, 0);
    p->threads = workers > 0 ? calloc((size_t)workers, sizeof *p->threads) : NULL;
    for (int i = 0; p->threads && i < workers; i++) {
        if (pthread_create(&p->threads[i], NULL, cpu_worker_main, p)) break;
        p->n_workers++;
    }
}

static void cpu_pool_stop(cpu_pool *p) {
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->idle);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
}

/* fn(ctx, begin, end) over the items [0, n) (per_item elements of work
 * each) on the pool; returns when all are done. */
static void cpu_parallel(ie_backend *be, int64_t n, int64_t per_item, cpu_range_fn fn, void *ctx) {
    cpu_impl *c = cpu_impl_of(be);
    cpu_pool *p = &c->pool;
    const int64_t grain = cpu_max(1, c->par_min / cpu_max(1, per_item)); /* items per chunk, at least */
    const int64_t chunks = cpu_min(cpu_min(n / grain, 4 * (int64_t)(p->n_workers + 1)), 0x7fffffff);
    if (p->n_workers == 0 || chunks <= 1) {
        if (n > 0) fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&p->mu);
    const uint32_t job = ++p->job;
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->chunks = chunks;
    atomic_store(&p->done, 0);
    atomic_store(&p->claim, (uint64_t)job << 32);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    cpu_run_chunks(p, job, fn, ctx, n, chunks);
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->done) < chunks) pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* --- per-thread scratch slots ------------------------------------------------
 * Jobs whose items each need a buffer of their own (attention's score
 * block, the fused fp16 weight panels) carve one slot per thread from the
 * scratch; an item takes a free slot for its whole range and gives it back.
 * At most one slot per thread is ever held and there are as many slots as
 * threads, so a free one always exists. */
typedef struct cpu_slots {
    char *base; /* n slots, `bytes` apart */
    size_t bytes;
    int64_t n;
    atomic_bool *busy; /* busy[i]: slot i in use */
} cpu_slots;

/* Bytes of scratch for n slots of `bytes` each. */
static size_t cpu_slots_bytes(int64_t n, size_t bytes) {
    return (size_t)n * cpu_round_up(bytes) + cpu_round_up((size_t)n * sizeof(atomic_bool));
}

static cpu_slots cpu_slots_carve(char **cursor, int64_t n, size_t bytes) {
    cpu_slots s = {NULL, cpu_round_up(bytes), n, NULL};
    s.base = cpu_carve(cursor, (size_t)n * s.bytes);
    s.busy = cpu_carve(cursor, (size_t)n * sizeof(atomic_bool));
    for (int64_t i = 0; i < n; i++) atomic_init(&s.busy[i], false);
    return s;
}

static int64_t cpu_slot_take(cpu_slots *s) {
    for (;;)
        for (int64_t i = 0; i < s->n; i++)
            if (!atomic_exchange(&s->busy[i], true)) return i;
}

static void cpu_slot_give(cpu_slots *s, int64_t i) { atomic_store(&s->busy[i], false); }

/* --- sgemm on the pool -----------------------------------------------------
 * OpenBLAS runs single-threaded (set at backend creation) and every sgemm is
 * cut into column blocks of C that the pool's threads claim: OpenBLAS's own
 * threading splits the work statically and waits for each thread, so on a
 * busy machine a descheduled thread stalls every call (a demo-model edit took
 * 9 s instead of 0.7 s next to another CPU job); here the caller takes over
 * any block a worker has not claimed. The blocks depend only on the shape and
 * the thread count, so results are deterministic for a thread count (as
 * before), and a batch element's rows get the same blocks whatever the batch.
 * Blocks are multiples of 16 rows or columns of at least
 * CPU_GEMM_CHUNK_FLOPS, so small products run in one call. */
#define CPU_GEMM_CHUNK_FLOPS 4.0e6

/* OpenBLAS's own thread count before the first backend set it to 1 */
static pthread_once_t cpu_blas_once = PTHREAD_ONCE_INIT;
static int cpu_blas_threads = 1;
static void cpu_blas_capture(void) { cpu_blas_threads = openblas_get_num_threads(); }

typedef struct cpu_gemm_job {
    bool ta, tb, split_m;                  /* split_m: blocks of rows of C, else of columns */
    int64_t M, N, K, lda, ldb, ldc, block; /* block: rows or columns per item */
    float alpha, beta;
    const float *a, *b;
    float *c;
    /* fused widening (cpu_wgemm): the split side's operand as fp16 lines
     * [len, K] (A's rows, or B's rows when tb), widened kc columns at a time
     * into a slot; NULL for a plain sgemm */
    const uint16_t *w16;
    int64_t ldw, kc;
    const cpu_impl *impl;
    cpu_slots *slots;
} cpu_gemm_job;

/* Lines [i0, i1) of the split side: for each panel of kc columns of K, the
 * fp16 lines are widened into this thread's slot (block x kc floats, which
 * stays in cache) and multiplied at once, accumulating into C (beta 1 after
 * the first panel). The full fp32 weight matrix is never written out. */
static void cpu_gemm_fused(const cpu_gemm_job *j, int64_t i0, int64_t i1) {
    const int64_t slot = cpu_slot_take(j->slots);
    float *buf = (float *)(j->slots->base + (size_t)slot * j->slots->bytes);
    const int64_t n = i1 - i0;
    for (int64_t k0 = 0; k0 < j->K; k0 += j->kc) {
        const int64_t kn = cpu_min(j->kc, j->K - k0);
        for (int64_t r = 0; r < n; r++)
            j->impl->f16_row(j->impl->f16_to_f32, buf + r * kn, j->w16 + (i0 + r) * j->ldw + k0, kn);
        const float beta = k0 == 0 ? j->beta : 1.0f;
        if (j->split_m) { /* C[i0:i1, :] += W[i0:i1, k0:k0+kn] · op(B)[k0:k0+kn, :] */
            const float *b = j->b + (j->tb ? k0 : k0 * j->ldb);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans, cpu_blas_int(n),
                        cpu_blas_int(j->N), cpu_blas_int(kn), j->alpha, buf, cpu_blas_int(kn), b, cpu_blas_int(j->ldb),
                        beta, j->c + i0 * j->ldc, cpu_blas_int(j->ldc));
        } else { /* C[:, i0:i1] += op(A)[:, k0:k0+kn] · W[i0:i1, k0:k0+kn]ᵀ */
            const float *a = j->a + (j->ta ? k0 * j->lda : k0);
            cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, CblasTrans, cpu_blas_int(j->M),
                        cpu_blas_int(n), cpu_blas_int(kn), j->alpha, a, cpu_blas_int(j->lda), buf, cpu_blas_int(kn),
                        beta, j->c + i0, cpu_blas_int(j->ldc));
        }
    }
    cpu_slot_give(j->slots, slot);
}

static void cpu_gemm_blocks(void *ctx, int64_t begin, int64_t end) {
    const cpu_gemm_job *j = ctx;
    const int64_t len = j->split_m ? j->M : j->N;
    const int64_t i0 = begin * j->block, i1 = cpu_min(len, end * j->block);
    if (i1 <= i0) return;
    if (j->w16) {
        for (int64_t b = begin; b < end; b++) {
            const int64_t l0 = b * j->block, l1 = cpu_min(len, l0 + j->block);
            if (l1 > l0) cpu_gemm_fused(j, l0, l1);
        }
        return;
    }
    const float *a = j->a, *b = j->b;
    float *c = j->c;
    int64_t m = j->M, n = j->N;
    if (j->split_m) { /* rows [i0, i1) of C = op(A)[i0:i1, :] op(B); A's rows are its columns when transposed */
        a += j->ta ? i0 : i0 * j->lda;
        c += i0 * j->ldc;
        m = i1 - i0;
    } else { /* columns [i0, i1) of C = op(A) op(B)[:, i0:i1] */
        b += j->tb ? i0 * j->ldb : i0;
        c += i0;
        n = i1 - i0;
    }
    cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans, cpu_blas_int(m),
                cpu_blas_int(n), cpu_blas_int(j->K), j->alpha, a, cpu_blas_int(j->lda), b, cpu_blas_int(j->ldb),
                j->beta, c, cpu_blas_int(j->ldc));
}

/* How C [M, N] is cut into blocks for the pool: along its longer side (each
 * block repacks the other operand: A for column blocks, B for row blocks, so
 * the shorter side keeps that cheap). */
static void cpu_gemm_split(const cpu_impl *ci, int64_t M, int64_t N, int64_t K, bool *split_m_out, int64_t *block_out) {
    const int threads = ci->pool.n_workers + 1;
    const bool split_m = M > N;
    const int64_t len = split_m ? M : N, other = split_m ? N : M;
    const double line_flops = 2.0 * (double)other * (double)K; /* per row or column of C */
    int64_t block = len;
    if (threads > 1 && line_flops * (double)len >= 2 * CPU_GEMM_CHUNK_FLOPS) {
        /* about 4 blocks per thread, each >= CPU_GEMM_CHUNK_FLOPS, a multiple of 16 lines */
        int64_t want = cpu_max(1, len / (4 * threads));
        int64_t min_lines = (int64_t)ceil(CPU_GEMM_CHUNK_FLOPS / cpu_max(1.0, line_flops));
        block = cpu_max(want, min_lines);
        block = cpu_min(len, (block + 15) / 16 * 16);
    }
    *split_m_out = split_m;
    *block_out = block;
}

/* Row-major C [M, N] = alpha op(A) op(B) + beta C, as cblas_sgemm, in the
 * blocks of cpu_gemm_split. */
static void cpu_sgemm(ie_backend *be, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *a,
                      int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    bool split_m;
    int64_t block;
    cpu_gemm_split(cpu_impl_of(be), M, N, K, &split_m, &block);
    const int64_t len = split_m ? M : N;
    cpu_gemm_job j = {ta, tb, split_m, M, N, K, lda, ldb, ldc, block, alpha, beta, a, b, c, NULL, 0, 0, NULL, NULL};
    const int64_t items = (len + block - 1) / block;
    if (items <= 1) cpu_gemm_blocks(&j, 0, 1);
    else cpu_parallel(be, items, cpu_max(1, cpu_impl_of(be)->par_min), cpu_gemm_blocks, &j);
}

/* --- sgemm with an fp16 weight operand ----------------------------------------
 * C = op(A) op(B) + beta C where one operand (the weights) is fp16: A as
 * [M, K] rows, or B as [N, K] rows (tb). When cpu_sgemm would cut C along
 * that operand's lines (rows of C for A, columns for B), which is the case
 * when the weights are the larger side (the low-resolution layers, where a
 * weight matrix is up to 118 MB as fp32 and the product is short), each
 * block widens its own lines panel by panel (cpu_gemm_fused): the fp32 copy
 * is never written to memory and read back. Otherwise the whole operand is
 * widened into the scratch first (it is then small next to the product).
 * Panels are CPU_WPANEL_FLOATS per thread; the K panels are a fixed
 * function of the shape and the thread count, so the bits are too. */
#define CPU_WPANEL_FLOATS ((int64_t)64 << 10) /* 256 KiB: half a Zen 3 L2 */
#define CPU_WPANEL_MIN_K 256

typedef struct cpu_wplan {
    bool split_m, fused;
    int64_t block, kc;
    size_t bytes; /* scratch: the slots when fused, else the widened operand */
} cpu_wplan;

static cpu_wplan cpu_wgemm_plan(const cpu_impl *ci, bool ta, bool tb, int64_t M, int64_t N, int64_t K, bool a16,
                                bool b16) {
    cpu_wplan p = {0};
    cpu_gemm_split(ci, M, N, K, &p.split_m, &p.block);
    p.fused = K > 0 && ((a16 && !ta && p.split_m) || (b16 && tb && !p.split_m));
    if (p.fused) {
        /* at most CPU_WPANEL_FLOATS / CPU_WPANEL_MIN_K lines per block, so that a panel is at
         * least CPU_WPANEL_MIN_K deep (with one thread cpu_gemm_split makes one block of all
         * 1280 lines, which left 48-deep panels: short sgemms that reload C each time) */
        p.block = cpu_max(16, cpu_min(p.block, CPU_WPANEL_FLOATS / CPU_WPANEL_MIN_K / 16 * 16));
        int64_t kc = cpu_max(16, CPU_WPANEL_FLOATS / p.block / 16 * 16);
        const int64_t panels = (K + kc - 1) / kc;
        p.kc = cpu_min(K, ((K + panels - 1) / panels + 15) / 16 * 16); /* evened out */
        p.bytes = cpu_slots_bytes(ci->pool.n_workers + 1, (size_t)(p.block * p.kc) * sizeof(float));
    } else if (a16 || b16) {
        p.bytes = cpu_round_up((size_t)((a16 ? M : N) * K) * sizeof(float));
    }
    return p;
}

/* As cpu_sgemm, with a16 (A's data as fp16, a unused) or b16 (B's) set,
 * along the plan from cpu_wgemm_plan; its scratch comes from *cursor. */
static void cpu_wgemm(ie_backend *be, const cpu_wplan *p, char **cursor, bool ta, bool tb, int64_t M, int64_t N,
                      int64_t K, float alpha, const float *a, const uint16_t *a16, int64_t lda, const float *b,
                      const uint16_t *b16, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (!a16 && !b16) {
        cpu_sgemm(be, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (!p->fused) { /* widen the whole operand, then a plain sgemm */
        float *wf = cpu_carve(cursor, p->bytes);
        const int64_t rows = a16 ? (ta ? K : M) : (tb ? N : K), cols = a16 ? (ta ? M : K) : (tb ? K : N);
        const int64_t ld = a16 ? lda : ldb;
        const uint16_t *src = a16 ? a16 : b16;
        if (ld == cols) {
            cpu_f16_to_f32_par(be, wf, src, rows * cols);
        } else {
            for (int64_t r = 0; r < rows; r++) cpu_f16_row_to_f32(cpu_impl_of(be), wf + r * cols, src + r * ld, cols);
        }
        if (a16) cpu_sgemm(be, ta, tb, M, N, K, alpha, wf, cols, b, ldb, beta, c, ldc);
        else cpu_sgemm(be, ta, tb, M, N, K, alpha, a, lda, wf, cols, beta, c, ldc);
        return;
    }
    cpu_slots slots =
        cpu_slots_carve(cursor, cpu_impl_of(be)->pool.n_workers + 1, (size_t)(p->block * p->kc) * sizeof(float));
    const int64_t len = p->split_m ? M : N;
    cpu_gemm_job j = {ta,
                      tb,
                      p->split_m,
                      M,
                      N,
                      K,
                      lda,
                      ldb,
                      ldc,
                      p->block,
                      alpha,
                      beta,
                      a,
                      b,
                      c,
                      a16 ? a16 : b16,
                      a16 ? lda : ldb,
                      p->kc,
                      cpu_impl_of(be),
                      &slots};
    const int64_t items = (len + p->block - 1) / p->block;
    if (items <= 1) cpu_gemm_blocks(&j, 0, 1);
    else cpu_parallel(be, items, cpu_max(1, cpu_impl_of(be)->par_min), cpu_gemm_blocks, &j);
}

/* --- lifetime, memory, timer ---------------------------------------------- */

static void cpu_destroy(ie_backend *be) {
    cpu_impl *c = cpu_impl_of(be);
    if (c) {
        cpu_pool_stop(&c->pool);
        free(c->scratch);
    }
    free(c);
    free(be);
}

static ie_status cpu_sync(ie_backend *be) { return IE_OK; }

static void cpu_trim(ie_backend *be) {
    cpu_impl *c = cpu_impl_of(be);
    free(c->scratch);
    c->scratch = NULL;
    c->scratch_cap = 0;
}

/* Each block starts with a CPU_ALIGN-byte header holding its size, so release
 * can account for it; storage and host both point just past the header. */
static ie_status cpu_alloc(ie_backend *be, ie_tensor *t, size_t nbytes) {
    assert(!t->is_view);
    char *block = aligned_alloc(CPU_ALIGN, CPU_ALIGN + cpu_round_up(nbytes ? nbytes : 1));
    if (!block) return ie_backend_set_error(be, IE_ERR_NOMEM, "cpu: cannot allocate %zu bytes", nbytes);
    memcpy(block, &nbytes, sizeof nbytes);
    t->storage = block + CPU_ALIGN;
    t->offset = 0;
    t->host = t->storage;
    be->mem_in_use += nbytes;
    if (be->mem_in_use > be->mem_peak) be->mem_peak = be->mem_in_use;
    return IE_OK;
}

static void cpu_release(ie_backend *be, ie_tensor *t) {
    if (t->is_view || !t->storage) return;
    char *block = (char *)t->storage - CPU_ALIGN;
    size_t nbytes;
    memcpy(&nbytes, block, sizeof nbytes);
    assert(be->mem_in_use >= nbytes);
    be->mem_in_use -= nbytes;
    free(block);
    t->storage = NULL;
    t->host = NULL;
}

static ie_status cpu_upload(ie_backend *be, ie_tensor *t, const void *src, size_t nbytes) {
    memcpy(t->host, src, nbytes);
    return IE_OK;
}

static ie_status cpu_download(ie_backend *be, ie_tensor *t, void *dst, size_t nbytes) {
    memcpy(dst, t->host, nbytes);
    return IE_OK;
}

static void cpu_timer_begin(ie_backend *be) { clock_gettime(CLOCK_MONOTONIC, &cpu_impl_of(be)->timer_start); }

static double cpu_timer_end(ie_backend *be) {
    struct timespec now, *t0 = &cpu_impl_of(be)->timer_start;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + 1e-9 * (double)(now.tv_nsec - t0->tv_nsec);
}

/* --- conv2d ---------------------------------------------------------------- */

/* Output columns [ow_lo, ow_hi) read inside the input row for kernel column kw:
 * iw = ow*stride - pad_left + kw in [0, W). */
static void cpu_conv_valid_cols(int64_t W, int64_t OW, int stride, int pad_left, int64_t kw, int64_t *ow_lo,
                                int64_t *ow_hi) {
    int64_t first = pad_left - kw;        /* ow*stride >= first */
    int64_t last = W - 1 + pad_left - kw; /* ow*stride <= last */
    *ow_lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    *ow_hi = last < 0 ? 0 : cpu_min(OW, last / stride + 1);
    if (*ow_hi < *ow_lo) *ow_hi = *ow_lo;
}

/* im2col for output rows [oh0, oh0+nrows) of one image:
 * x1 [Cin, H, W] -> col [Cin*KH*KW, nrows*OW], row k = (ci*KH + kh)*KW + kw,
 * matching w [Cout, Cin, KH, KW] seen as [Cout, K]. A job of input channels. */
typedef struct cpu_im2col_job {
    float *col;
    const float *x1;
    int64_t H, W, KH, KW, OW, oh0, nrows;
    const ie_conv2d_params *p;
} cpu_im2col_job;

static void cpu_im2col(void *ctx, int64_t ci0, int64_t ci1) {
    const cpu_im2col_job *j = ctx;
    float *col = j->col;
    const float *x1 = j->x1;
    const int64_t H = j->H, W = j->W, KH = j->KH, KW = j->KW, OW = j->OW, oh0 = j->oh0, nrows = j->nrows;
    const ie_conv2d_params *p = j->p;
    const int s = p->stride;
    const int64_t ncols = nrows * OW;
    for (int64_t ci = ci0; ci < ci1; ci++) {
        for (int64_t kh = 0; kh < KH; kh++) {
            for (int64_t kw = 0; kw < KW; kw++) {
                float *dst = col + ((ci * KH + kh) * KW + kw) * ncols;
                int64_t ow_lo, ow_hi;
                cpu_conv_valid_cols(W, OW, s, p->pad_left, kw, &ow_lo, &ow_hi);
                for (int64_t r = 0; r < nrows; r++) {
                    float *d = dst + r * OW;
                    int64_t ih = (oh0 + r) * s - p->pad_top + kh;
                    if (ih < 0 || ih >= H) {
                        memset(d, 0, (size_t)OW * sizeof(float));
                        continue;
                    }
                    const float *src = x1 + (ci * H + ih) * W + kw - p->pad_left;
                    for (int64_t ow = 0; ow < ow_lo; ow++) d[ow] = 0.0f;
                    if (s == 1) {
                        memcpy(d + ow_lo, src + ow_lo, (size_t)(ow_hi - ow_lo) * sizeof(float));
                    } else {
                        for (int64_t ow = ow_lo; ow < ow_hi; ow++) d[ow] = src[ow * s];
                    }
                    for (int64_t ow = ow_hi; ow < OW; ow++) d[ow] = 0.0f;
                }
            }
        }
    }
}

/* Rows [r0, r1) of o (row stride ld) set to their bias: o[r][j] = bias[r]
 * (per_row) or bias[j], j < ncols. */
typedef struct cpu_bias_job {
    float *o;
    const float *bias;
    int64_t ld, ncols;
    bool per_row;
} cpu_bias_job;

static void cpu_bias_fill(void *ctx, int64_t r0, int64_t r1) {
    const cpu_bias_job *j = ctx;
    for (int64_t r = r0; r < r1; r++) {
        float *o = j->o + r * j->ld;
        if (j->per_row)
            for (int64_t c = 0; c < j->ncols; c++) o[c] = j->bias[r];
        else memcpy(o, j->bias, (size_t)j->ncols * sizeof(float));
    }
}

/* --- conv2d as shifted GEMMs ----------------------------------------------------
 * A stride-1 KH×KW conv whose output is wider than the layer (the
 * high-resolution layers: OH·OW >= Cout) runs without im2col. The input
 * rows a chunk of output rows reads are copied once into a zero-padded
 * plane per channel, xp [Cin][(nr + KH - 1)·Wp + KW - 1] with
 * Wp = OW + KW - 1 (the padding columns made real zeros). Seen flat, the
 * input under kernel tap (kh, kw) for output (r, ow) is then
 * xp[ci][r·Wp + ow + kh·Wp + kw]: one row of Cin values at a fixed offset
 * per tap. So C [Cout, nr·Wp] = Σ_taps W_tap [Cout, Cin] · xp shifted by the
 * tap's offset (ldb the plane's length): KH·KW GEMMs of depth Cin, summed in
 * tap order, each column of C a padded output position; the KW - 1 padding
 * columns of each row are computed and dropped when C is copied into out
 * (with the bias). Against im2col this writes and rereads Cin·KH·KW·nr·OW
 * floats less per chunk (9× the input for a 3×3 conv), which at 64×64 and
 * 32×32 cost as much as a sixth of the conv's time. The weights are
 * rearranged (and widened) once per call into [tap][Cout][Cin]. Items are
 * column blocks of C, each running all taps on its block while the block
 * stays in cache; the blocks depend only on the shape and the thread count,
 * and each output's sum runs over the taps in order, so the bits are fixed
 * for a thread count, as for every sgemm here. */

/* xp for output rows [oh0, oh0 + nr): a job of input channels */
typedef struct cpu_shift_job {
    const float *x1;   /* [Cin, H, W] */
    float *xp, *c, *o; /* padded planes; C [Cout, nr*Wp]; out1 [Cout, OH*OW] */
    const float *wt, *bias;
    int64_t Cin, Cout, H, W, OW, KH, KW, Wp, plane, oh0, nr, ncols, block, P;
    int pad_top, pad_left;
} cpu_shift_job;

static void cpu_shift_pad(void *ctx, int64_t ci0, int64_t ci1) {
    const cpu_shift_job *j = ctx;
    const int64_t rows = j->nr + j->KH - 1, Wp = j->Wp;
    for (int64_t ci = ci0; ci < ci1; ci++) {
        float *dst = j->xp + ci * j->plane;
        for (int64_t r = 0; r < rows; r++) {
            float *d = dst + r * Wp;
            const int64_t ih = j->oh0 - j->pad_top + r;
            if (ih < 0 || ih >= j->H) {
                memset(d, 0, (size_t)Wp * sizeof(float));
                continue;
            }
            /* columns: iw = ow' - pad_left for ow' in [0, Wp) */
            const int64_t lo = cpu_min(Wp, cpu_max(0, (int64_t)j->pad_left));
            const int64_t hi = cpu_max(lo, cpu_min(Wp, j->W + j->pad_left));
            memset(d, 0, (size_t)lo * sizeof(float));
            memcpy(d + lo, j->x1 + (ci * j->H + ih) * j->W + (lo - j->pad_left), (size_t)(hi - lo) * sizeof(float));
            memset(d + hi, 0, (size_t)(Wp - hi) * sizeof(float));
        }
        memset(dst + rows * Wp, 0, (size_t)(j->plane - rows * Wp) * sizeof(float));
    }
}

static void cpu_shift_gemm(void *ctx, int64_t b0, int64_t b1) {
    const cpu_shift_job *j = ctx;
    const int64_t c0 = b0 * j->block, c1 = cpu_min(j->ncols, b1 * j->block);
    if (c1 <= c0) return;
    const int64_t taps = j->KH * j->KW;
    for (int64_t t = 0; t < taps; t++) {
        const int64_t off = (t / j->KW) * j->Wp + t % j->KW;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cpu_blas_int(j->Cout), cpu_blas_int(c1 - c0),
                    cpu_blas_int(j->Cin), 1.0f, j->wt + t * j->Cout * j->Cin, cpu_blas_int(j->Cin), j->xp + off + c0,
                    cpu_blas_int(j->plane), t == 0 ? 0.0f : 1.0f, j->c + c0, cpu_blas_int(j->ncols));
    }
}

static void cpu_shift_store(void *ctx, int64_t co0, int64_t co1) {
    const cpu_shift_job *j = ctx;
    for (int64_t co = co0; co < co1; co++) {
        const float *src = j->c + co * j->ncols;
        float *dst = j->o + co * j->P + j->oh0 * j->OW;
        const float bias = j->bias ? j->bias[co] : 0.0f;
        for (int64_t r = 0; r < j->nr; r++) {
            const float *s = src + r * j->Wp;
            float *d = dst + r * j->OW;
            if (j->bias)
                for (int64_t ow = 0; ow < j->OW; ow++) d[ow] = s[ow] + bias;
            else memcpy(d, s, (size_t)j->OW * sizeof(float));
        }
    }
}

/* w [Cout, Cin, KH, KW] (f32 or f16) -> wt [KH*KW][Cout][Cin] f32: a job of
 * output channels; an fp16 row is widened into the thread's slot first */
typedef struct cpu_wtap_job {
    const cpu_impl *ci;
    const ie_tensor *w;
    float *wt;
    int64_t Cout, Cin, taps;
    cpu_slots *slots; /* per thread: one widened row [Cin*taps] */
} cpu_wtap_job;

static void cpu_wtap_range(void *ctx, int64_t co0, int64_t co1) {
    const cpu_wtap_job *j = ctx;
    const int64_t rowlen = j->Cin * j->taps;
    const bool f16 = j->w->dtype == IE_F16;
    const int64_t slot = cpu_slot_take(j->slots);
    float *buf = (float *)(j->slots->base + (size_t)slot * j->slots->bytes);
    for (int64_t co = co0; co < co1; co++) {
        const float *row = (const float *)j->w->host + co * rowlen;
        if (f16) {
            cpu_f16_row_to_f32(j->ci, buf, (const uint16_t *)j->w->host + co * rowlen, rowlen);
            row = buf;
        }
        for (int64_t t = 0; t < j->taps; t++) {
            float *d = j->wt + (t * j->Cout + co) * j->Cin;
            for (int64_t c = 0; c < j->Cin; c++) d[c] = row[c * j->taps + t];
        }
    }
    cpu_slot_give(j->slots, slot);
}

/* Whether cpu_conv2d takes the shifted path: stride 1, a kernel wider than
 * 1×1, and more output positions than output channels (else the weights
 * dominate and the fused fp16 path, which never widens them whole, wins). */
static bool cpu_conv_shifted_fits(int64_t Cout, int64_t KH, int64_t KW, int64_t OH, int64_t OW,
                                  const ie_conv2d_params *p) {
    return p->stride == 1 && KH * KW > 1 && OH * OW >= Cout && OW >= 16;
}

static ie_status cpu_conv2d_shifted(ie_backend *be, ie_tensor *out, const ie_tensor *x, const ie_tensor *w,
                                    const ie_tensor *b, const ie_conv2d_params *p) {
    cpu_impl *ci = cpu_impl_of(be);
    const int64_t N = x->shape[0], Cin = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t Cout = w->shape[0], KH = w->shape[2], KW = w->shape[3];
    const int64_t OH = out->shape[2], OW = out->shape[3], P = OH * OW, taps = KH * KW;
    const int64_t Wp = OW + KW - 1;
    /* output rows per chunk: the padded planes and C under the scratch limit */
    const int64_t limit = (int64_t)(ci->scratch_limit / sizeof(float));
    const int64_t fixed = Cin * ((KH - 1) * Wp + KW - 1), per_row = (Cin + Cout) * Wp;
    int64_t rows = cpu_min(OH, cpu_max(1, (limit - fixed) / per_row));
    const int64_t nchunks = (OH + rows - 1) / rows;
    rows = (OH + nchunks - 1) / nchunks;
    const int64_t plane = (rows + KH - 1) * Wp + KW - 1;
    const int nslots = ci->pool.n_workers + 1;
    const size_t wt_bytes = cpu_round_up((size_t)(taps * Cout * Cin) * sizeof(float));
    const size_t row_slots = cpu_slots_bytes(nslots, (size_t)(Cin * taps) * sizeof(float));
    const size_t xp_bytes = cpu_round_up((size_t)(Cin * plane) * sizeof(float));
    const size_t c_bytes = cpu_round_up((size_t)(Cout * rows * Wp) * sizeof(float));
    char *cur = cpu_scratch(be, wt_bytes + row_slots + cpu_f32_scratch_bytes(b) + xp_bytes + c_bytes);
    if (!cur) return IE_ERR_NOMEM;
    float *wt = cpu_carve(&cur, wt_bytes);
    cpu_slots slots = cpu_slots_carve(&cur, nslots, (size_t)(Cin * taps) * sizeof(float));
    cpu_wtap_job wj = {ci, w, wt, Cout, Cin, taps, &slots};
    cpu_parallel(be, Cout, Cin * taps, cpu_wtap_range, &wj);
    const float *bf = cpu_as_f32(be, b, &cur);
    float *xp = cpu_carve(&cur, xp_bytes);
    float *c = cpu_carve(&cur, c_bytes);

    for (int64_t n = 0; n < N; n++) {
        for (int64_t oh0 = 0; oh0 < OH; oh0 += rows) {
            const int64_t nr = cpu_min(rows, OH - oh0), ncols = nr * Wp;
            /* column blocks: about 4 per thread, multiples of 16, at least 64 */
            int64_t block = cpu_max(64, ncols / (4 * nslots));
            block = cpu_min(ncols, (block + 15) / 16 * 16);
            cpu_shift_job j = {(const float *)x->host + n * Cin * H * W,
                               xp,
                               c,
                               (float *)out->host + n * Cout * P,
                               wt,
                               bf,
                               Cin,
                               Cout,
                               H,
                               W,
                               OW,
                               KH,
                               KW,
                               Wp,
                               (nr + KH - 1) * Wp + KW - 1,
                               oh0,
                               nr,
                               ncols,
                               block,
                               P,
                               p->pad_top,
                               p->pad_left};
            cpu_parallel(be, Cin, j.plane, cpu_shift_pad, &j);
            if (Cin > 0) cpu_parallel(be, (ncols + block - 1) / block, 1 << 30, cpu_shift_gemm, &j);
            else
                for (int64_t co = 0; co < Cout; co++) memset(c + co * ncols, 0, (size_t)ncols * sizeof(float));
            cpu_parallel(be, Cout, ncols, cpu_shift_store, &j);
        }
    }
    return IE_OK;
}

/* x [N, Cin, H, W], w [Cout, Cin, KH, KW] f32|f16, b [Cout] or NULL
 * -> out [N, Cout, OH, OW].
 * Per image: out1 [Cout, OH*OW] = w [Cout, K] · col [K, OH*OW], K = Cin*KH*KW,
 * with col built by im2col in chunks of whole output rows (bounded scratch).
 * A 1×1 stride-1 unpadded conv is the sgemm w · x1 directly. */
static ie_status cpu_conv2d(ie_backend *be, ie_tensor *out, const ie_tensor *x, const ie_tensor *w, const ie_tensor *b,
                            const ie_conv2d_params *p) {
    const int64_t N = x->shape[0], Cin = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t Cout = w->shape[0], KH = w->shape[2], KW = w->shape[3];
    const int64_t OH = out->shape[2], OW = out->shape[3];
    const int64_t K = Cin * KH * KW, P = OH * OW;
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(w->shape[1] == Cin && out->shape[0] == N && out->shape[1] == Cout);
    assert(OH == (H + p->pad_top + p->pad_bottom - KH) / p->stride + 1);
    assert(OW == (W + p->pad_left + p->pad_right - KW) / p->stride + 1);
    assert(!b || ie_tensor_numel(b) == Cout);
    if (N == 0 || Cout == 0 || P == 0) return IE_OK;

    const bool direct = KH == 1 && KW == 1 && p->stride == 1 && p->pad_top == 0 && p->pad_bottom == 0 &&
                        p->pad_left == 0 && p->pad_right == 0;
    if (cpu_conv_shifted_fits(Cout, KH, KW, OH, OW, p)) return cpu_conv2d_shifted(be, out, x, w, b, p);

    /* Rows per chunk: as many as fit the scratch limit, then evened out so
     * the last chunk is not a sliver. */
    int64_t rows = OH;
    if (!direct) {
        const int64_t limit = (int64_t)(cpu_impl_of(be)->scratch_limit / sizeof(float));
        int64_t max_cols = limit / cpu_max(1, K);
        rows = cpu_min(OH, cpu_max(1, max_cols / OW));
        int64_t nchunks = (OH + rows - 1) / rows;
        rows = (OH + nchunks - 1) / nchunks;
    }
    size_t col_bytes = direct ? 0 : cpu_round_up((size_t)(K * rows * OW) * sizeof(float));
    /* fp16 weights: widened panel by panel inside the sgemm when it cuts C
     * by rows (cpu_wgemm; the low-resolution layers), else once up front */
    const cpu_impl *ci = cpu_impl_of(be);
    const bool w16 = w->dtype == IE_F16;
    const int64_t last_cols = (OH - (OH - 1) / rows * rows) * OW;
    const cpu_wplan plan_full = cpu_wgemm_plan(ci, false, false, Cout, rows * OW, K, w16, false);
    const cpu_wplan plan_last = cpu_wgemm_plan(ci, false, false, Cout, last_cols, K, w16, false);
    const bool fuse = w16 && plan_full.fused;
    size_t w_bytes =
        fuse ? (plan_full.bytes > plan_last.bytes ? plan_full.bytes : plan_last.bytes) : cpu_f32_scratch_bytes(w);
    size_t need = w_bytes + cpu_f32_scratch_bytes(b) + col_bytes;
    char *cur = need ? cpu_scratch(be, need) : NULL;
    if (need && !cur) return IE_ERR_NOMEM;

    const float *wf = fuse ? NULL : cpu_as_f32(be, w, &cur); /* [Cout, K] */
    const uint16_t *wh = fuse ? (const uint16_t *)w->host : NULL;
    char *wcur = cur; /* the panels' slots (fuse) */
    if (fuse) cur += w_bytes;
    const float *bf = cpu_as_f32(be, b, &cur);               /* [Cout] */
    float *col = direct ? NULL : cpu_carve(&cur, col_bytes); /* [K, rows*OW] */
    const float beta = bf ? 1.0f : 0.0f;

    for (int64_t n = 0; n < N; n++) {
        const float *x1 = (const float *)x->host + n * Cin * H * W; /* [Cin, H, W] */
        float *o1 = (float *)out->host + n * Cout * P;              /* [Cout, OH*OW] */
        for (int64_t oh0 = 0; oh0 < OH; oh0 += rows) {
            const int64_t nr = cpu_min(rows, OH - oh0), ncols = nr * OW;
            float *o = o1 + oh0 * OW; /* columns [oh0*OW, oh0*OW + ncols) of o1 */
            if (bf) {                 /* out = bias, then sgemm adds w·col (beta 1) */
                cpu_bias_job bj = {o, bf, P, ncols, true};
                cpu_parallel(be, Cout, ncols, cpu_bias_fill, &bj);
            }
            const float *rhs = x1 + oh0 * OW; /* direct: x1 is [Cin, P] */
            int64_t ldb = P;
            if (!direct) {
                cpu_im2col_job ij = {col, x1, H, W, KH, KW, OW, oh0, nr, p};
                cpu_parallel(be, Cin, KH * KW * ncols, cpu_im2col, &ij);
                rhs = col;
                ldb = ncols;
            }
            if (K == 0) {
                if (!bf)
                    for (int64_t co = 0; co < Cout; co++) memset(o + co * P, 0, (size_t)ncols * sizeof(float));
                continue;
            }
            if (fuse) {
                const cpu_wplan plan = cpu_wgemm_plan(ci, false, false, Cout, ncols, K, true, false);
                char *wc = wcur;
                cpu_wgemm(be, &plan, &wc, false, false, Cout, ncols, K, 1.0f, NULL, wh, K, rhs, NULL, ldb, beta, o, P);
            } else {
                cpu_sgemm(be, false, false, Cout, ncols, K, 1.0f, wf, K, rhs, ldb, beta, o, P);
            }
        }
    }
    return IE_OK;
}

/* --- matmul ---------------------------------------------------------------- */

/* out [B, M, N] = op(a) · op(b) + bias.
 * a [B|1, M, K] ([B|1, K, M] with trans_a) f32; b [B|1, K, N] ([B|1, N, K] with
 * trans_b) f32|f16; bias [N] or NULL. One sgemm per batch, also when only a is
 * batched (a Linear layer over tokens): see the loop below for why. */
static ie_status cpu_matmul(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b,
                            const ie_tensor *bias, bool trans_a, bool trans_b, int64_t B, int64_t M, int64_t N,
                            int64_t K, bool a_batched, bool b_batched) {
    assert(a->dtype == IE_F32 && out->dtype == IE_F32);
    assert(ie_tensor_numel(out) == B * M * N);
    assert(ie_tensor_numel(a) == (a_batched ? B : 1) * M * K);
    assert(ie_tensor_numel(b) == (b_batched ? B : 1) * K * N);
    assert(!bias || ie_tensor_numel(bias) == N);
    if (B == 0 || M == 0 || N == 0) return IE_OK;

    /* f16 b is widened panel by panel inside the sgemm when that cuts C by
     * columns (cpu_wgemm: few rows, large weights), else converted one batch
     * at a time into scratch */
    const cpu_wplan plan = cpu_wgemm_plan(cpu_impl_of(be), trans_a, trans_b, M, N, K, false, b->dtype == IE_F16);
    const bool fuse = b->dtype == IE_F16 && plan.fused;
    size_t b_bytes = b->dtype == IE_F32 || fuse ? 0 : cpu_round_up((size_t)(K * N) * sizeof(float));
    size_t need = b_bytes + (fuse ? plan.bytes : 0) + cpu_f32_scratch_bytes(bias);
    char *cur = need ? cpu_scratch(be, need) : NULL;
    if (need && !cur) return IE_ERR_NOMEM;
    float *bconv = b_bytes ? cpu_carve(&cur, b_bytes) : NULL;
    char *wcur = cur; /* the panels' slots (fuse) */
    if (fuse) cur += plan.bytes;
    const float *biasf = cpu_as_f32(be, bias, &cur);

    const float *ap = (const float *)a->host;
    float *op = (float *)out->host;
    const int64_t lda = cpu_max(1, trans_a ? M : K), ldb = cpu_max(1, trans_b ? K : N);

    /* One sgemm per batch, never merged into one taller sgemm: OpenBLAS's
     * result for a row depends on where the row sits in the matrix, and the
     * editing methods need a batch row's result not to depend on its
     * position or on the batch size. */
    const int64_t nbatch = B, rows = M;
    for (int64_t i = 0; i < nbatch; i++) {
        const float *a1 = ap + (a_batched ? i * M * K : 0);
        float *o1 = op + i * M * N; /* [rows, N] */
        const float *b1 = NULL;
        if (fuse) {
            /* widened inside cpu_wgemm below */
        } else if (b->dtype == IE_F32) {
            b1 = (const float *)b->host + (b_batched ? i * K * N : 0);
        } else {
            if (i == 0 || b_batched)
                cpu_f16_to_f32_par(be, bconv, (const uint16_t *)b->host + (b_batched ? i * K * N : 0), K * N);
            b1 = bconv;
        }
        if (biasf) {
            cpu_bias_job bj = {o1, biasf, N, N, false};
            cpu_parallel(be, rows, N, cpu_bias_fill, &bj);
        }
        if (K == 0) {
            if (!biasf) memset(o1, 0, (size_t)(rows * N) * sizeof(float));
            continue;
        }
        if (fuse) {
            char *wc = wcur;
            cpu_wgemm(be, &plan, &wc, trans_a, trans_b, rows, N, K, 1.0f, a1, NULL, lda, NULL,
                      (const uint16_t *)b->host + (b_batched ? i * K * N : 0), ldb, biasf ? 1.0f : 0.0f, o1, N);
        } else {
            cpu_sgemm(be, trans_a, trans_b, rows, N, K, 1.0f, a1, lda, b1, ldb, biasf ? 1.0f : 0.0f, o1, N);
        }
    }
    return IE_OK;
}

/* --- normalisation ----------------------------------------------------------- */

/* Mean and 1/sqrt(var + eps) of n values, two passes in double, fixed order. */
static void cpu_mean_rstd(const float *v, int64_t n, float eps, double *mean, double *rstd) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += v[i];
    const double m = sum / (double)n;
    double sq = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)v[i] - m;
        sq += d * d;
    }
    *mean = m;
    *rstd = 1.0 / sqrt(sq / (double)n + (double)eps);
}

/* x [N, C, S] -> out [N, C, S]; groups of C/groups channels share mean and
 * variance (biased); then per channel out = (x - mean) * rstd * gamma + beta,
 * and SiLU when asked. out may equal x. The (n, group) pairs are split over
 * the threads; each group's sums stay serial (cpu_mean_rstd). */
typedef struct cpu_group_norm_job {
    const cpu_kernels *kern;
    float *out;
    const float *x, *g, *bt;
    int64_t C, S, cpg, groups;
    float eps;
    bool silu;
} cpu_group_norm_job;

static void cpu_group_norm_range(void *ctx, int64_t i0, int64_t i1) {
    const cpu_group_norm_job *j = ctx;
    const int64_t S = j->S, cpg = j->cpg;
    for (int64_t i = i0; i < i1; i++) { /* i = n * groups + group */
        const int64_t n = i / j->groups, c0 = (i % j->groups) * cpg;
        const float *xg = j->x + (n * j->C + c0) * S; /* [cpg, S] */
        float *og = j->out + (n * j->C + c0) * S;
        double mean, rstd;
        cpu_mean_rstd(xg, cpg * S, j->eps, &mean, &rstd);
        /* mean as a float pair: (x - m_hi) - m_lo keeps the deviation
         * accurate when |mean| >> std, where x - (float)mean would not */
        const float m_hi = (float)mean, m_lo = (float)(mean - (double)m_hi);
        for (int64_t c = 0; c < cpg; c++) {
            /* (x - mean) * (rstd * gamma) + beta */
            const float aff[4] = {m_hi, m_lo, (float)(rstd * (j->g ? j->g[c0 + c] : 1.0f)),
                                  j->bt ? j->bt[c0 + c] : 0.0f};
            j->kern->act_row(og + c * S, xg + c * S, S, j->silu ? CPU_ACT_SILU : CPU_ACT_NONE, aff, NULL);
        }
    }
}

static ie_status cpu_group_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, int groups, float eps,
                                const ie_tensor *gamma, const ie_tensor *beta, bool silu, int64_t N, int64_t C,
                                int64_t S) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(groups > 0 && C % groups == 0);
    assert(ie_tensor_numel(x) == N * C * S && ie_tensor_numel(out) == N * C * S);
    size_t need = cpu_f32_scratch_bytes(gamma) + cpu_f32_scratch_bytes(beta);
    char *cur = need ? cpu_scratch(be, need) : NULL;
    if (need && !cur) return IE_ERR_NOMEM;
    const float *g = cpu_as_f32(be, gamma, &cur), *bt = cpu_as_f32(be, beta, &cur);

    const int64_t cpg = C / groups; /* channels per group */
    cpu_group_norm_job j = {
        &cpu_impl_of(be)->kern, (float *)out->host, (const float *)x->host, g, bt, C, S, cpg, groups, eps, silu};
    cpu_parallel(be, N * groups, cpg * S, cpu_group_norm_range, &j);
    return IE_OK;
}

/* x [rows, C] -> out [rows, C], normalised over C, affine gamma/beta [C];
 * rows split over the threads. */
typedef struct cpu_layer_norm_job {
    float *out;
    const float *x, *g, *bt;
    int64_t C;
    float eps;
} cpu_layer_norm_job;

static void cpu_layer_norm_range(void *ctx, int64_t r0, int64_t r1) {
    const cpu_layer_norm_job *j = ctx;
    const int64_t C = j->C;
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = j->x + r * C;
        float *orow = j->out + r * C;
        double mean, rstd;
        cpu_mean_rstd(xr, C, j->eps, &mean, &rstd);
        const float m_hi = (float)mean, m_lo = (float)(mean - (double)m_hi), s = (float)rstd;
        for (int64_t c = 0; c < C; c++) {
            float v = ((xr[c] - m_hi) - m_lo) * s; /* see cpu_group_norm */
            if (j->g) v *= j->g[c];
            if (j->bt) v += j->bt[c];
            orow[c] = v;
        }
    }
}

static ie_status cpu_layer_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, float eps, const ie_tensor *gamma,
                                const ie_tensor *beta, int64_t rows, int64_t C) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(ie_tensor_numel(x) == rows * C && ie_tensor_numel(out) == rows * C);
    size_t need = cpu_f32_scratch_bytes(gamma) + cpu_f32_scratch_bytes(beta);
    char *cur = need ? cpu_scratch(be, need) : NULL;
    if (need && !cur) return IE_ERR_NOMEM;
    const float *g = cpu_as_f32(be, gamma, &cur), *bt = cpu_as_f32(be, beta, &cur);
    cpu_layer_norm_job j = {(float *)out->host, (const float *)x->host, g, bt, C, eps};
    cpu_parallel(be, rows, C, cpu_layer_norm_range, &j);
    return IE_OK;
}

/* --- attention --------------------------------------------------------------- */

/* Rows [r0, r1) of a score block S [rows, ld] (row r = query q0 + r),
 * softmax over its first nk keys (causal: keys past the query masked). */
typedef struct cpu_softmax_job {
    const cpu_kernels *kern;
    float *S;
    int64_t ld, nk, q0;
    bool causal;
} cpu_softmax_job;

static void cpu_softmax_rows(void *ctx, int64_t r0, int64_t r1) {
    const cpu_softmax_job *j = ctx;
    for (int64_t r = r0; r < r1; r++)
        j->kern->softmax_row(j->S + r * j->ld, j->nk, j->causal ? cpu_min(j->nk, j->q0 + r + 1) : j->nk);
}

/* q [B, Lq, H*D], k [B, Lk, H*D], v [B, Lk, H*Dv] -> out [B, Lq, H*Dv].
 * The work items are (batch, head, block of query rows); each runs on one
 * thread from start to end:
 *   S [nq, nk] = scale · Q_blk [nq, D] · Kᵀ   (cpu_qk_block on the head's keys,
 *                packed once per head and thread; strided head slices)
 *   row softmax's exponentials (causal: key j > query i masked; keys past
 *                the block's last query are not computed at all)
 *   O_blk [nq, Dv] = S · V [nk, Dv] (cpu_pv_block on the head's values,
 *                packed once per head and thread), written straight into
 *                out, each row times 1/sum (Dv products instead of Lk).
 * Each thread has its own score block (a slot of the scratch) and the
 * threads never wait for each other inside a head, which splitting every
 * product over the pool (the former scheme) did 3 times per block. Blocks
 * of CPU_ATTN_QBLOCK rows (64, 128 and 256 within the noise of bench-ops'
 * attention shape on 2 Zen 5 cores since both products are our own
 * kernels; with OpenBLAS for S · V, 64 was 15% slower).
 * The blocks depend only on Lk, the scratch limit and the thread count (only
 * when the limit binds), and no sum crosses items, so the bits do not depend
 * on which thread ran what; cpu_qk_block, cpu_pv_block and the softmax give
 * the same bits in their AVX-512, AVX2 and baseline builds. */

typedef struct cpu_attn_job {
    const cpu_kernels *kern;
    const float *q, *k, *v;
    float *out;
    int64_t Lq, Lk, H, D, Dv, qblock, nqb;
    float scale;
    bool causal;
    cpu_slots *slots; /* per thread: a score block [qblock, Lk], qblock row scales, packed keys */
} cpu_attn_job;

/* Keys [nk, D] (row stride ld) -> kp [ceil(nk/16)][D][16], missing keys 0. */
static void cpu_qk_pack(float *kp, const float *k, int64_t ld, int64_t nk, int64_t D) {
    for (int64_t jb = 0; jb * 16 < nk; jb++) {
        float *dst = kp + jb * D * 16;
        for (int64_t t = 0; t < 16; t++) {
            const int64_t key = jb * 16 + t;
            if (key < nk)
                for (int64_t d = 0; d < D; d++) dst[d * 16 + t] = k[key * ld + d];
            else
                for (int64_t d = 0; d < D; d++) dst[d * 16 + t] = 0.0f;
        }
    }
}

/* Values [nk, Dv] (row stride ld) -> vp in panels of 16 columns from column
 * 0, the last one 8 wide when at most 8 columns are left: panel c0 at
 * vp + c0·nk as [nk][width], columns past Dv 0 (cpu_pv_body). */
static void cpu_pv_pack(float *vp, const float *v, int64_t ld, int64_t nk, int64_t Dv) {
    for (int64_t c0 = 0; c0 < Dv; c0 += 16) {
        const int64_t w = Dv - c0 > 8 ? 16 : 8, n = cpu_min(w, Dv - c0);
        float *dst = vp + c0 * nk;
        for (int64_t key = 0; key < nk; key++) {
            memcpy(dst + key * w, v + key * ld + c0, (size_t)n * sizeof(float));
            for (int64_t t = n; t < w; t++) dst[key * w + t] = 0.0f;
        }
    }
}

/* Floats of cpu_pv_pack's panels for Dv columns of nk keys: Dv rounded up to 8. */
static int64_t cpu_pv_packed(int64_t nk, int64_t Dv) { return nk * ((Dv + 7) / 8 * 8); }

static void cpu_attn_items(void *ctx, int64_t i0, int64_t i1) {
    const cpu_attn_job *j = ctx;
    const int64_t slot = cpu_slot_take(j->slots);
    float *S = (float *)(j->slots->base + (size_t)slot * j->slots->bytes);
    float *inv = S + j->qblock * j->Lk;             /* 1/sum per row */
    float *kp = inv + j->qblock;                    /* the current head's keys, packed */
    float *vp = kp + (j->Lk + 15) / 16 * 16 * j->D; /* and its values */
    int64_t packed = -1, vpacked = -1;              /* (b * H + h) * (Lk + 1) + nk of what kp, vp hold */
    const int64_t H = j->H, D = j->D, Dv = j->Dv, HD = H * D, HDv = H * Dv, Lq = j->Lq, Lk = j->Lk;
    for (int64_t i = i0; i < i1; i++) { /* i = (b * H + h) * nqb + block */
        const int64_t qb = i % j->nqb, h = i / j->nqb % H, b = i / (j->nqb * H);
        const int64_t q0 = qb * j->qblock, nq = cpu_min(j->qblock, Lq - q0);
        const int64_t nk = j->causal ? cpu_min(Lk, q0 + nq) : Lk; /* keys any row of the block sees */
        const float *qh = j->q + (b * Lq + q0) * HD + h * D;
        const float *kh = j->k + b * Lk * HD + h * D;   /* [Lk, D], ld HD */
        const float *vh = j->v + b * Lk * HDv + h * Dv; /* [Lk, Dv], ld HDv */
        float *oh = j->out + (b * Lq + q0) * HDv + h * Dv;
        const int64_t key = (b * H + h) * (Lk + 1) + nk;
        if (D > 0) {
            if (packed != key) {
                cpu_qk_pack(kp, kh, HD, nk, D);
                packed = key;
            }
            j->kern->qk_block(S, qh, HD, kp, nq, nk, D, j->scale);
        } else {
            memset(S, 0, (size_t)(nq * nk) * sizeof(float));
        }
        /* exponentials only; the rows of O are scaled by 1/sum in the product */
        for (int64_t r = 0; r < nq; r++)
            inv[r] = j->kern->softmax_exp_row(S + r * nk, nk, j->causal ? cpu_min(nk, q0 + r + 1) : nk);
        if (Dv > 0) {
            if (vpacked != key) {
                cpu_pv_pack(vp, vh, HDv, nk, Dv);
                vpacked = key;
            }
            j->kern->pv_block(oh, HDv, S, vp, inv, nq, nk, Dv);
        }
    }
    cpu_slot_give(j->slots, slot);
}

static ie_status cpu_attention(ie_backend *be, ie_tensor *out, const ie_tensor *q, const ie_tensor *k,
                               const ie_tensor *v, int heads, float scale, bool causal) {
    int64_t B, Lq, HD, Bk, Lk, HDk, Bv, Lv, HDv;
    cpu_dims3(q, &B, &Lq, &HD);
    cpu_dims3(k, &Bk, &Lk, &HDk);
    cpu_dims3(v, &Bv, &Lv, &HDv);
    assert(q->dtype == IE_F32 && k->dtype == IE_F32 && v->dtype == IE_F32);
    assert(Bk == B && Bv == B && HDk == HD && Lv == Lk && heads > 0);
    assert(HD % heads == 0 && HDv % heads == 0 && ie_tensor_numel(out) == B * Lq * HDv);
    const int64_t H = heads, D = HD / H, Dv = HDv / H;
    if (B == 0 || Lq == 0 || Lk == 0) return IE_OK;

    cpu_impl *c = cpu_impl_of(be);
    const int64_t nslots = c->pool.n_workers + 1;
    const int64_t limit = (int64_t)(c->scratch_limit / sizeof(float));
    const int64_t qblock = cpu_min(cpu_min(CPU_ATTN_QBLOCK, Lq), cpu_max(1, limit / (nslots * Lk)));
    const size_t slot_bytes =
        (size_t)(qblock * (Lk + 1) + (Lk + 15) / 16 * 16 * D + cpu_pv_packed(Lk, Dv)) * sizeof(float);
    char *cur = cpu_scratch(be, cpu_slots_bytes(nslots, slot_bytes));
    if (!cur) return IE_ERR_NOMEM;
    cpu_slots slots = cpu_slots_carve(&cur, nslots, slot_bytes);

    cpu_attn_job j = {&c->kern,
                      (const float *)q->host,
                      (const float *)k->host,
                      (const float *)v->host,
                      (float *)out->host,
                      Lq,
                      Lk,
                      H,
                      D,
                      Dv,
                      qblock,
                      (Lq + qblock - 1) / qblock,
                      scale,
                      causal,
                      &slots};
    cpu_parallel(be, B * H * j.nqb, qblock * Lk * (D + Dv + 8), cpu_attn_items, &j);
    return IE_OK;
}

/* q [B, Lq, H*D], k [B, Lk, H*D] -> probs [B, H, Lq, Lk] = softmax(scale·q·kᵀ
 * [+ causal]); the scores are computed straight into probs. */
static ie_status cpu_attention_probs(ie_backend *be, ie_tensor *probs, const ie_tensor *q, const ie_tensor *k,
                                     int heads, float scale, bool causal) {
    int64_t B, Lq, HD, Bk, Lk, HDk;
    cpu_dims3(q, &B, &Lq, &HD);
    cpu_dims3(k, &Bk, &Lk, &HDk);
    assert(q->dtype == IE_F32 && k->dtype == IE_F32 && probs->dtype == IE_F32);
    assert(Bk == B && HDk == HD && heads > 0 && HD % heads == 0);
    assert(ie_tensor_numel(probs) == B * heads * Lq * Lk);
    const int64_t H = heads, D = HD / H;
    if (B == 0 || Lq == 0 || Lk == 0) return IE_OK;

    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            const float *qh = (const float *)q->host + b * Lq * HD + h * D; /* [Lq, D], ld HD */
            const float *kh = (const float *)k->host + b * Lk * HD + h * D; /* [Lk, D], ld HD */
            float *P = (float *)probs->host + (b * H + h) * Lq * Lk;        /* [Lq, Lk] */
            cpu_sgemm(be, false, true, Lq, Lk, D, scale, qh, HD, kh, HD, 0.0f, P, Lk);
            cpu_softmax_job sj = {&cpu_impl_of(be)->kern, P, Lk, Lk, 0, causal};
            cpu_parallel(be, Lq, Lk, cpu_softmax_rows, &sj);
        }
    }
    return IE_OK;
}

/* probs [B, H, Lq, Lk], v [B, Lk, H*Dv] -> out [B, Lq, H*Dv] = probs · v. */
static ie_status cpu_attention_apply(ie_backend *be, ie_tensor *out, const ie_tensor *probs, const ie_tensor *v) {
    assert(probs->ndim == 4 && probs->dtype == IE_F32 && v->dtype == IE_F32);
    const int64_t B = probs->shape[0], H = probs->shape[1], Lq = probs->shape[2], Lk = probs->shape[3];
    int64_t Bv, Lv, HDv;
    cpu_dims3(v, &Bv, &Lv, &HDv);
    assert(Bv == B && Lv == Lk && HDv % H == 0 && ie_tensor_numel(out) == B * Lq * HDv);
    const int64_t Dv = HDv / H;
    if (B == 0 || Lq == 0 || Dv == 0) return IE_OK;

    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            const float *P = (const float *)probs->host + (b * H + h) * Lq * Lk; /* [Lq, Lk] */
            const float *vh = (const float *)v->host + b * Lk * HDv + h * Dv;    /* [Lk, Dv] */
            float *oh = (float *)out->host + b * Lq * HDv + h * Dv;              /* [Lq, Dv] */
            cpu_sgemm(be, false, false, Lq, Dv, Lk, 1.0f, P, cpu_max(1, Lk), vh, HDv, 0.0f, oh, HDv);
        }
    }
    return IE_OK;
}

/* --- elementwise --------------------------------------------------------------- */

/* out = op(x); out may equal x. Elements split over the threads. */
typedef struct cpu_map_job {
    const cpu_kernels *kern;
    float *o;
    const float *x;
    int op; /* ie_unary_op, or -1: x * scale + bias */
    float scale, bias;
} cpu_map_job;

static void cpu_map_range(void *ctx, int64_t i0, int64_t i1) {
    const cpu_map_job *j = ctx;
    const float *x = j->x + i0;
    float *o = j->o + i0;
    const int64_t n = i1 - i0;
    switch (j->op) {
        case IE_UNARY_SILU: j->kern->act_row(o, x, n, CPU_ACT_SILU, NULL, NULL); break;
        case IE_UNARY_QUICK_GELU: j->kern->act_row(o, x, n, CPU_ACT_QUICK_GELU, NULL, NULL); break;
        case IE_UNARY_GELU: j->kern->act_row(o, x, n, CPU_ACT_GELU, NULL, NULL); break;
        case IE_UNARY_RELU:
            for (int64_t i = 0; i < n; i++) o[i] = x[i] > 0.0f ? x[i] : 0.0f;
            break;
        case IE_UNARY_TANH:
            for (int64_t i = 0; i < n; i++) o[i] = tanhf(x[i]);
            break;
        default: { /* scale */
            const float sc = j->scale, b = j->bias;
            for (int64_t i = 0; i < n; i++) o[i] = x[i] * sc + b;
        }
    }
}

static ie_status cpu_unary(ie_backend *be, ie_tensor *out, const ie_tensor *x, ie_unary_op op) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(ie_tensor_numel(out) == ie_tensor_numel(x));
    if (op < IE_UNARY_SILU || op > IE_UNARY_TANH)
        return ie_backend_set_error(be, IE_ERR_ARG, "unary: unknown op %d", (int)op);
    cpu_map_job j = {&cpu_impl_of(be)->kern, (float *)out->host, (const float *)x->host, (int)op, 0, 0};
    cpu_parallel(be, ie_tensor_numel(x), op == IE_UNARY_RELU ? 1 : 8, cpu_map_range, &j);
    return IE_OK;
}

/* out = x * scale + bias; out may equal x. */
static ie_status cpu_scale(ie_backend *be, ie_tensor *out, const ie_tensor *x, float scale, float bias) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(ie_tensor_numel(out) == ie_tensor_numel(x));
    cpu_map_job j = {NULL, (float *)out->host, (const float *)x->host, -1, scale, bias};
    cpu_parallel(be, ie_tensor_numel(x), 1, cpu_map_range, &j);
    return IE_OK;
}

/* x [rows, 2D] -> out [rows, D] = x[:, :D] * gelu(x[:, D:]); rows split over the threads. */
typedef struct cpu_geglu_job {
    const cpu_kernels *kern;
    float *out;
    const float *x;
    int64_t D;
} cpu_geglu_job;

static void cpu_geglu_rows(void *ctx, int64_t r0, int64_t r1) {
    const cpu_geglu_job *j = ctx;
    const int64_t D = j->D;
    for (int64_t r = r0; r < r1; r++) {
        const float *a = j->x + r * 2 * D, *gate = a + D;
        j->kern->act_row(j->out + r * D, gate, D, CPU_ACT_GELU, NULL, a); /* gelu(gate) * a */
    }
}

static ie_status cpu_geglu(ie_backend *be, ie_tensor *out, const ie_tensor *x, int64_t rows, int64_t D) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(ie_tensor_numel(x) == rows * 2 * D && ie_tensor_numel(out) == rows * D);
    cpu_geglu_job j = {&cpu_impl_of(be)->kern, (float *)out->host, (const float *)x->host, D};
    cpu_parallel(be, rows, 8 * D, cpu_geglu_rows, &j);
    return IE_OK;
}

/* out = a (op) b, a and out [A0, A1, A2, A3], b [B0, B1, B2, B3] with each
 * Bi equal to Ai or 1 (broadcast); b f32|f16. op 0 add, 1 mul. out may equal a.
 * The A0·A1·A2 rows are split over the threads. */
typedef struct cpu_binary_job {
    float *o;
    const float *a, *b;
    int64_t ashape[4], bstride[4];
    int op;
} cpu_binary_job;

static void cpu_binary_rows(void *ctx, int64_t r0, int64_t r1) {
    const cpu_binary_job *j = ctx;
    const int64_t n3 = j->ashape[3];
    for (int64_t r = r0; r < r1; r++) { /* r = (i0 * A1 + i1) * A2 + i2 */
        const int64_t i2 = r % j->ashape[2], i1 = r / j->ashape[2] % j->ashape[1],
                      i0 = r / (j->ashape[2] * j->ashape[1]);
        const float *ar = j->a + r * n3;
        const float *br = j->b + i0 * j->bstride[0] + i1 * j->bstride[1] + i2 * j->bstride[2];
        float *orow = j->o + r * n3;
        if (j->bstride[3] == 0) { /* one b value for the whole row */
            const float bv = br[0];
            if (j->op == 0)
                for (int64_t i = 0; i < n3; i++) orow[i] = ar[i] + bv;
            else
                for (int64_t i = 0; i < n3; i++) orow[i] = ar[i] * bv;
        } else {
            if (j->op == 0)
                for (int64_t i = 0; i < n3; i++) orow[i] = ar[i] + br[i];
            else
                for (int64_t i = 0; i < n3; i++) orow[i] = ar[i] * br[i];
        }
    }
}

static ie_status cpu_binary(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, int op,
                            const int64_t ashape[4], const int64_t bshape[4]) {
    assert(a->dtype == IE_F32 && out->dtype == IE_F32);
    assert(op == 0 || op == 1);
    cpu_binary_job j = {(float *)out->host, (const float *)a->host, NULL, {0}, {0}, op};
    int64_t s = 1; /* b's element strides, 0 along broadcast dims */
    for (int d = 3; d >= 0; d--) {
        assert(bshape[d] == ashape[d] || bshape[d] == 1);
        j.ashape[d] = ashape[d];
        j.bstride[d] = bshape[d] == 1 ? 0 : s;
        s *= bshape[d];
    }
    assert(ie_tensor_numel(a) == ashape[0] * ashape[1] * ashape[2] * ashape[3]);
    assert(ie_tensor_numel(b) == s);
    size_t need = cpu_f32_scratch_bytes(b);
    char *cur = need ? cpu_scratch(be, need) : NULL;
    if (need && !cur) return IE_ERR_NOMEM;
    j.b = cpu_as_f32(be, b, &cur);
    cpu_parallel(be, ashape[0] * ashape[1] * ashape[2], ashape[3], cpu_binary_rows, &j);
    return IE_OK;
}

/* --- data movement --------------------------------------------------------------- */

/* a [N, Ca, S], b [N, Cb, S] -> out [N, Ca+Cb, S]; the N·(Ca+Cb) output
 * rows split over the threads. */
typedef struct cpu_concat_job {
    char *out;
    const char *a, *b;
    int64_t Ca, Cb;
    size_t row; /* bytes per channel row */
} cpu_concat_job;

static void cpu_concat_rows(void *ctx, int64_t r0, int64_t r1) {
    const cpu_concat_job *j = ctx;
    const int64_t C = j->Ca + j->Cb;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t n = r / C, c = r % C;
        const char *src =
            c < j->Ca ? j->a + (size_t)(n * j->Ca + c) * j->row : j->b + (size_t)(n * j->Cb + c - j->Ca) * j->row;
        memcpy(j->out + (size_t)r * j->row, src, j->row);
    }
}

static ie_status cpu_concat_channels(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, int64_t N,
                                     int64_t Ca, int64_t Cb, int64_t S) {
    assert(a->dtype == out->dtype && b->dtype == out->dtype);
    assert(ie_tensor_numel(out) == N * (Ca + Cb) * S);
    const size_t es = ie_dtype_size(out->dtype);
    cpu_concat_job j = {(char *)out->host, (const char *)a->host, (const char *)b->host, Ca, Cb, (size_t)S * es};
    cpu_parallel(be, N * (Ca + Cb), S, cpu_concat_rows, &j);
    return IE_OK;
}

/* x [N, C, H, W] -> out [N, C, 2H, 2W], out[.., y, x] = x[.., y/2, x/2];
 * the N·C·H input rows split over the threads. */
typedef struct cpu_upsample_job {
    float *out;
    const float *x;
    int64_t W;
} cpu_upsample_job;

static void cpu_upsample_rows(void *ctx, int64_t r0, int64_t r1) {
    const cpu_upsample_job *j = ctx;
    const int64_t W = j->W;
    for (int64_t r = r0; r < r1; r++) { /* r = p * H + y: output rows 2y, 2y+1 of plane p */
        const float *src = j->x + r * W;
        float *d0 = j->out + r * 4 * W; /* row 2y of plane p starts at (p*2H + 2y) * 2W */
        for (int64_t i = 0; i < W; i++) d0[2 * i] = d0[2 * i + 1] = src[i];
        memcpy(d0 + 2 * W, d0, (size_t)(2 * W) * sizeof(float)); /* row 2y+1 */
    }
}

static ie_status cpu_upsample_nearest2x(ie_backend *be, ie_tensor *out, const ie_tensor *x) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32 && x->ndim == 4);
    const int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    assert(ie_tensor_numel(out) == NC * 4 * H * W);
    cpu_upsample_job j = {(float *)out->host, (const float *)x->host, W};
    cpu_parallel(be, NC * H, 4 * W, cpu_upsample_rows, &j);
    return IE_OK;
}

/* x [B, R, C] -> out [B, C, R], in 32×32 tiles so both sides stay in cache;
 * the B·ceil(R/32) strips of tiles split over the threads. */
enum { CPU_TILE = 32 };
typedef struct cpu_transpose_job {
    float *out;
    const float *x;
    int64_t R, C, strips; /* strips per batch */
} cpu_transpose_job;

static void cpu_transpose_strips(void *ctx, int64_t s0, int64_t s1) {
    const cpu_transpose_job *j = ctx;
    const int64_t R = j->R, C = j->C;
    for (int64_t s = s0; s < s1; s++) {
        const int64_t b = s / j->strips, r0 = s % j->strips * CPU_TILE, r1 = cpu_min(R, r0 + CPU_TILE);
        const float *xb = j->x + b * R * C;
        float *ob = j->out + b * R * C;
        for (int64_t c0 = 0; c0 < C; c0 += CPU_TILE) {
            const int64_t c1 = cpu_min(C, c0 + CPU_TILE);
            for (int64_t c = c0; c < c1; c++)
                for (int64_t r = r0; r < r1; r++) ob[c * R + r] = xb[r * C + c];
        }
    }
}

static ie_status cpu_transpose(ie_backend *be, ie_tensor *out, const ie_tensor *x, int64_t B, int64_t R, int64_t C) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(ie_tensor_numel(x) == B * R * C && ie_tensor_numel(out) == B * R * C);
    const int64_t strips = (R + CPU_TILE - 1) / CPU_TILE;
    cpu_transpose_job j = {(float *)out->host, (const float *)x->host, R, C, strips};
    cpu_parallel(be, B * strips, CPU_TILE * C, cpu_transpose_strips, &j);
    return IE_OK;
}

/* Same numel, any shapes: f32<->f16 conversions, same-dtype copies. */
static ie_status cpu_copy(ie_backend *be, ie_tensor *out, const ie_tensor *x) {
    const int64_t n = ie_tensor_numel(x);
    assert(ie_tensor_numel(out) == n);
    if (out->dtype == x->dtype) {
        if (out->host != x->host) memmove(out->host, x->host, (size_t)n * ie_dtype_size(x->dtype));
    } else if (x->dtype == IE_F16 && out->dtype == IE_F32) {
        cpu_f16_row_to_f32(cpu_impl_of(be), (float *)out->host, (const uint16_t *)x->host, n);
    } else if (x->dtype == IE_F32 && out->dtype == IE_F16) {
        const float *src = (const float *)x->host;
        uint16_t *dst = (uint16_t *)out->host;
        for (int64_t i = 0; i < n; i++) dst[i] = ie_fp32_to_fp16(src[i]);
    } else {
        return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "copy: %s -> %s is not supported", ie_dtype_name(x->dtype),
                                    ie_dtype_name(out->dtype));
    }
    return IE_OK;
}

/* t [B] -> out [B, dim], diffusers get_timestep_embedding in fp32 as torch does it:
 *   exponent = -ln(max_period) * arange(half) / (half - shift)
 *   emb = t[:, None] * exp(exponent)[None, :]
 *   emb = cat([sin(emb), cos(emb)]), flipped to [cos, sin]; odd dim pads a 0. */
static ie_status cpu_timestep_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *t, int dim,
                                        bool flip_sin_to_cos, float shift, float max_period) {
    assert(t->dtype == IE_F32 && out->dtype == IE_F32 && dim > 0);
    const int64_t B = ie_tensor_numel(t), half = dim / 2;
    assert(ie_tensor_numel(out) == B * dim);
    const float neg_log = (float)-log((double)max_period);
    const float denom = (float)((double)half - (double)shift);
    for (int64_t b = 0; b < B; b++) {
        const float tb = ((const float *)t->host)[b];
        float *o = (float *)out->host + b * dim;
        for (int64_t j = 0; j < half; j++) {
            const float exponent = neg_log * (float)j / denom;
            const float arg = tb * expf(exponent);
            const float s = sinf(arg), c = cosf(arg);
            o[j] = flip_sin_to_cos ? c : s;
            o[half + j] = flip_sin_to_cos ? s : c;
        }
        if (dim % 2) o[dim - 1] = 0.0f;
    }
    return IE_OK;
}

/* ids [B, L] i32, table [V, D] f32|f16 -> out [B, L, D]; every id is checked
 * before anything is written. */
static ie_status cpu_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *ids, const ie_tensor *table) {
    assert(ids->dtype == IE_I32 && out->dtype == IE_F32 && table->ndim == 2);
    const int64_t n = ie_tensor_numel(ids), V = table->shape[0], D = table->shape[1];
    assert(ie_tensor_numel(out) == n * D);
    const int32_t *id = (const int32_t *)ids->host;
    for (int64_t i = 0; i < n; i++) {
        if (id[i] < 0 || id[i] >= V)
            return ie_backend_set_error(be, IE_ERR_ARG,
                                        "embedding: id %d at position %lld is outside the table "
                                        "[0, %lld)",
                                        (int)id[i], (long long)i, (long long)V);
    }
    for (int64_t i = 0; i < n; i++) {
        float *o = (float *)out->host + i * D;
        if (table->dtype == IE_F32) memcpy(o, (const float *)table->host + id[i] * D, (size_t)D * sizeof(float));
        else cpu_f16_row_to_f32(cpu_impl_of(be), o, (const uint16_t *)table->host + id[i] * D, D);
    }
    return IE_OK;
}

/* --- the backend ------------------------------------------------------------- */

static const ie_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .trim = cpu_trim,
    .sync = cpu_sync,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_upload,
    .download = cpu_download,
    .timer_begin = cpu_timer_begin,
    .timer_end = cpu_timer_end,
    .conv2d = cpu_conv2d,
    .matmul = cpu_matmul,
    .group_norm = cpu_group_norm,
    .layer_norm = cpu_layer_norm,
    .attention = cpu_attention,
    .attention_probs = cpu_attention_probs,
    .attention_apply = cpu_attention_apply,
    .unary = cpu_unary,
    .scale = cpu_scale,
    .geglu = cpu_geglu,
    .binary = cpu_binary,
    .concat_channels = cpu_concat_channels,
    .upsample_nearest2x = cpu_upsample_nearest2x,
    .transpose = cpu_transpose,
    .copy = cpu_copy,
    .timestep_embedding = cpu_timestep_embedding,
    .embedding = cpu_embedding,
};

/* OpenBLAS's kernel set in use ("Haswell", "SkylakeX", ...: its own choice for
 * the CPU, or OPENBLAS_CORETYPE's), for the backend's description. */
static const char *cpu_blas_core(void) {
    const char *now = openblas_get_corename();
    return now ? now : "";
}

/* n_threads > 0 sizes the backend's thread pool; else OpenBLAS's default
 * does (OPENBLAS_NUM_THREADS or the core count). OpenBLAS itself is set to one
 * thread (process-wide): the pool runs its calls (cpu_sgemm). */
ie_backend *ie_cpu_backend_create(int n_threads) {
    ie_backend *be = calloc(1, sizeof *be);
    cpu_impl *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return NULL;
    }
    be->ops = &cpu_ops;
    be->kind = IE_BACKEND_CPU;
    be->impl = c;

    /* the thread count OpenBLAS would use (OPENBLAS_NUM_THREADS, else the cores) sizes our
     * pool; OpenBLAS itself then runs single-threaded inside it (cpu_sgemm) */
    pthread_once(&cpu_blas_once, cpu_blas_capture);
    c->n_threads = n_threads > 0 ? n_threads : cpu_blas_threads;
    openblas_set_num_threads(1);
    c->par_min = CPU_PAR_MIN;
    const char *pm = getenv("INVEDIT_CPU_PAR_MIN");
    if (pm && atoll(pm) > 0) c->par_min = atoll(pm);
    cpu_pool_start(&c->pool, c->n_threads - 1);
    c->kern = cpu_kernels_pick();
    c->scratch_limit = CPU_SCRATCH_LIMIT_DEFAULT;
    const char *env = getenv("INVEDIT_CPU_SCRATCH_BYTES");
    if (env && atoll(env) > 0) c->scratch_limit = (size_t)atoll(env);
    for (uint32_t h = 0; h < 65536; h++) c->f16_to_f32[h] = ie_fp16_to_fp32((uint16_t)h);
    c->f16_row = cpu_f16_to_f32_table;
#ifdef CPU_AVX2_CLONES
    if (__builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx")) c->f16_row = cpu_f16_to_f32_f16c;
#endif

    /* "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64" -> "OpenBLAS 0.3.21" */
    char blas[64] = "OpenBLAS";
    const char *cfg = openblas_get_config();
    if (cfg) {
        int words = 0;
        size_t i = 0;
        for (; cfg[i] && i + 1 < sizeof blas; i++) {
            if (cfg[i] == ' ' && ++words == 2) break;
            blas[i] = cfg[i];
        }
        blas[i] = 0;
    }
    snprintf(be->description, sizeof be->description, "cpu (%s %s kernels, %d thread%s%s)", blas, cpu_blas_core(),
             c->n_threads, c->n_threads == 1 ? "" : "s", c->kern.isa);
    return be;
}
