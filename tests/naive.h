/* Naive reference loops for every op of vkcompute/ops.h (header-only).
 *
 * The independent reference the CPU backend (test_cpu_ops) and the Vulkan
 * backend (test_vk_*) are checked against. Each function is the textbook
 * definition written as plain loops on plain float arrays, accumulating in
 * double, with no blocking, no BLAS and no shared code with vkcompute/: when a
 * backend and this file agree, they agree for independent reasons.
 * They are slow; keep test shapes small.
 *
 * Conventions (as ops.h): dense row-major arrays, PyTorch order, shapes passed
 * explicitly, outermost first. Optional arrays (bias, gamma, beta) may be NULL.
 * Weights that a backend stores as fp16 should be rounded through
 * naive_round_f16() before being passed here, so both sides see the same values.
 */
#ifndef INVEDIT_NAIVE_H
#define INVEDIT_NAIVE_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* --- fp16 ------------------------------------------------------------------- */

/* IEEE binary16 bits of f, round to nearest even (through frexp/nearbyint, not
 * bit tricks); NaN -> 0x7e00 with f's sign, overflow -> inf. */
static inline uint16_t naive_f32_to_f16(float f) {
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    if (isnan(f)) return (uint16_t)(sign | 0x7e00);
    if (isinf(f)) return (uint16_t)(sign | 0x7c00);
    double a = fabs((double)f);
    if (a < ldexp(1.0, -14)) /* subnormal: units of 2^-24 (1024 becomes the smallest normal) */
        return (uint16_t)(sign | (uint16_t)nearbyint(a * ldexp(1.0, 24)));
    int e;
    double fr = frexp(a, &e);          /* a = fr * 2^e, fr in [0.5, 1) */
    double m = nearbyint(fr * 2048.0); /* 1.mmmmmmmmmm * 1024, in [1024, 2048] */
    int E = e - 1;
    if (m == 2048.0) {
        m = 1024.0;
        E++;
    }
    if (E > 15) return (uint16_t)(sign | 0x7c00);
    return (uint16_t)(sign | (uint16_t)((E + 15) << 10) | (uint16_t)(m - 1024.0));
}

/* The float value of binary16 bits h (exact). */
static inline float naive_f16_to_f32(uint16_t h) {
    int sign = h >> 15, E = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (E == 0) v = ldexp((double)m, -24);
    else if (E == 31) v = m ? NAN : INFINITY;
    else v = ldexp(1024.0 + m, E - 25);
    return (float)(sign ? -v : v);
}

static inline float naive_round_f16(float f) { return naive_f16_to_f32(naive_f32_to_f16(f)); }

/* Rounds x[0..n) through fp16 in place. */
static inline void naive_round_f16_array(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = naive_round_f16(x[i]);
}

/* --- conv2d, matmul ------------------------------------------------------------ */

/* Output size of a conv along one axis: (in + pad_lo + pad_hi - k) / stride + 1. */
static inline int64_t naive_conv_out_size(int64_t in, int64_t k, int stride, int pad_lo, int pad_hi) {
    return (in + pad_lo + pad_hi - k) / stride + 1;
}

/* torch.nn.functional.conv2d, dilation 1, groups 1, zero padding:
 *   x [N, Cin, H, W], w [Cout, Cin, KH, KW], b [Cout] or NULL
 *   -> out [N, Cout, OH, OW], OH/OW from naive_conv_out_size(). */
static inline void naive_conv2d(float *out, const float *x, const float *w, const float *b, int64_t N, int64_t Cin,
                                int64_t H, int64_t W, int64_t Cout, int64_t KH, int64_t KW, int stride, int pad_top,
                                int pad_bottom, int pad_left, int pad_right) {
    const int64_t OH = naive_conv_out_size(H, KH, stride, pad_top, pad_bottom);
    const int64_t OW = naive_conv_out_size(W, KW, stride, pad_left, pad_right);
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Cout; co++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double acc = b ? b[co] : 0.0;
                    for (int64_t ci = 0; ci < Cin; ci++)
                        for (int64_t kh = 0; kh < KH; kh++)
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t ih = oh * stride - pad_top + kh;
                                int64_t iw = ow * stride - pad_left + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                acc += (double)x[((n * Cin + ci) * H + ih) * W + iw] *
                                       (double)w[((co * Cin + ci) * KH + kh) * KW + kw];
                            }
                    out[((n * Cout + co) * OH + oh) * OW + ow] = (float)acc;
                }
}

/* Batched out [B, M, N] = op(a) · op(b) (+ bias [N]):
 *   a [Ba, M, K], or [Ba, K, M] when trans_a; b [Bb, K, N], or [Bb, N, K] when
 *   trans_b; Ba = B when a_batched else 1 (broadcast), likewise Bb. */
static inline void naive_matmul(float *out, const float *a, const float *b, const float *bias, int64_t B, int64_t M,
                                int64_t N, int64_t K, bool trans_a, bool trans_b, bool a_batched, bool b_batched) {
    for (int64_t bi = 0; bi < B; bi++) {
        const float *a1 = a + (a_batched ? bi * M * K : 0);
        const float *b1 = b + (b_batched ? bi * K * N : 0);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = bias ? bias[j] : 0.0;
                for (int64_t k = 0; k < K; k++) {
                    double av = trans_a ? a1[k * M + i] : a1[i * K + k];
                    double bv = trans_b ? b1[j * K + k] : b1[k * N + j];
                    acc += av * bv;
                }
                out[(bi * M + i) * N + j] = (float)acc;
            }
    }
}

/* --- normalisation ---------------------------------------------------------------- */

static inline float naive_silu(double v) { return (float)(v / (1.0 + exp(-v))); }

/* torch.nn.GroupNorm(groups, C, eps) on x [N, C, S] (S = prod(spatial)),
 * biased variance, affine gamma/beta [C], then SiLU when silu. */
static inline void naive_group_norm(float *out, const float *x, const float *gamma, const float *beta, int64_t N,
                                    int64_t C, int64_t S, int groups, float eps, bool silu) {
    const int64_t cpg = C / groups, cnt = cpg * S;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < groups; g++) {
            const float *xg = x + (n * C + g * cpg) * S;
            double mean = 0, var = 0;
            for (int64_t i = 0; i < cnt; i++) mean += xg[i];
            mean /= (double)cnt;
            for (int64_t i = 0; i < cnt; i++) var += ((double)xg[i] - mean) * ((double)xg[i] - mean);
            var /= (double)cnt;
            for (int64_t c = g * cpg; c < (g + 1) * cpg; c++)
                for (int64_t s = 0; s < S; s++) {
                    int64_t idx = (n * C + c) * S + s;
                    double v = ((double)x[idx] - mean) / sqrt(var + (double)eps);
                    v = v * (gamma ? gamma[c] : 1.0) + (beta ? beta[c] : 0.0);
                    out[idx] = silu ? naive_silu(v) : (float)v;
                }
        }
}

/* torch.nn.LayerNorm(C, eps) over the last dim of x [rows, C], affine [C]. */
static inline void naive_layer_norm(float *out, const float *x, const float *gamma, const float *beta, int64_t rows,
                                    int64_t C, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        double mean = 0, var = 0;
        for (int64_t c = 0; c < C; c++) mean += xr[c];
        mean /= (double)C;
        for (int64_t c = 0; c < C; c++) var += ((double)xr[c] - mean) * ((double)xr[c] - mean);
        var /= (double)C;
        for (int64_t c = 0; c < C; c++) {
            double v = ((double)xr[c] - mean) / sqrt(var + (double)eps);
            out[r * C + c] = (float)(v * (gamma ? gamma[c] : 1.0) + (beta ? beta[c] : 0.0));
        }
    }
}

/* --- attention ----------------------------------------------------------------------- */

/* probs [B, H, Lq, Lk] = softmax_j(scale · q_i · k_j) per batch and head, with
 * q [B, Lq, H*D], k [B, Lk, H*D] (head h owns channels [h*D, (h+1)*D)).
 * causal: key j > query i gets probability 0. Scores in double. */
static inline void naive_attention_probs(float *probs, const float *q, const float *k, int64_t B, int64_t H, int64_t Lq,
                                         int64_t Lk, int64_t D, float scale, bool causal) {
    double *row = (double *)malloc((size_t)Lk * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Lq; i++) {
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < Lk; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < D; d++)
                        s += (double)q[(b * Lq + i) * H * D + h * D + d] * (double)k[(b * Lk + j) * H * D + h * D + d];
                    row[j] = (causal && j > i) ? -INFINITY : s * scale;
                    if (row[j] > mx) mx = row[j];
                }
                for (int64_t j = 0; j < Lk; j++) {
                    row[j] = row[j] == -INFINITY ? 0.0 : exp(row[j] - mx);
                    sum += row[j];
                }
                for (int64_t j = 0; j < Lk; j++) probs[((b * H + h) * Lq + i) * Lk + j] = (float)(row[j] / sum);
            }
    free(row);
}

/* out [B, Lq, H*Dv] = probs [B, H, Lq, Lk] · v [B, Lk, H*Dv] per batch and head. */
static inline void naive_attention_apply(float *out, const float *probs, const float *v, int64_t B, int64_t H,
                                         int64_t Lq, int64_t Lk, int64_t Dv) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Lq; i++)
                for (int64_t d = 0; d < Dv; d++) {
                    double acc = 0;
                    for (int64_t j = 0; j < Lk; j++)
                        acc += (double)probs[((b * H + h) * Lq + i) * Lk + j] *
                               (double)v[(b * Lk + j) * H * Dv + h * Dv + d];
                    out[(b * Lq + i) * H * Dv + h * Dv + d] = (float)acc;
                }
}

/* out [B, Lq, H*Dv] = softmax(scale · q · kᵀ [+ causal]) · v, the full Lq×Lk
 * score matrix of each head in double (q, k [B, L, H*D], v [B, Lk, H*Dv]). */
static inline void naive_attention(float *out, const float *q, const float *k, const float *v, int64_t B, int64_t H,
                                   int64_t Lq, int64_t Lk, int64_t D, int64_t Dv, float scale, bool causal) {
    double *P = (double *)malloc((size_t)(Lq * Lk) * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            for (int64_t i = 0; i < Lq; i++) {
                double mx = -INFINITY, sum = 0;
                double *row = P + i * Lk;
                for (int64_t j = 0; j < Lk; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < D; d++)
                        s += (double)q[(b * Lq + i) * H * D + h * D + d] * (double)k[(b * Lk + j) * H * D + h * D + d];
                    row[j] = (causal && j > i) ? -INFINITY : s * scale;
                    if (row[j] > mx) mx = row[j];
                }
                for (int64_t j = 0; j < Lk; j++) {
                    row[j] = row[j] == -INFINITY ? 0.0 : exp(row[j] - mx);
                    sum += row[j];
                }
                for (int64_t j = 0; j < Lk; j++) row[j] /= sum;
            }
            for (int64_t i = 0; i < Lq; i++)
                for (int64_t d = 0; d < Dv; d++) {
                    double acc = 0;
                    for (int64_t j = 0; j < Lk; j++)
                        acc += P[i * Lk + j] * (double)v[(b * Lk + j) * H * Dv + h * Dv + d];
                    out[(b * Lq + i) * H * Dv + h * Dv + d] = (float)acc;
                }
        }
    free(P);
}

/* --- elementwise ----------------------------------------------------------------------- */

static inline double naive_gelu(double v) { return 0.5 * v * (1.0 + erf(v / sqrt(2.0))); }

/* out[i] = op(x[i]), i < n; op is an ie_unary_op value:
 * 0 silu x·σ(x), 1 gelu 0.5x(1+erf(x/√2)), 2 quick_gelu x·σ(1.702x), 3 relu, 4 tanh. */
static inline void naive_unary(float *out, const float *x, int64_t n, int op) {
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], r = 0;
        switch (op) {
            case 0: r = v / (1.0 + exp(-v)); break;
            case 1: r = naive_gelu(v); break;
            case 2: r = v / (1.0 + exp(-1.702 * v)); break;
            case 3: r = v > 0 ? v : 0; break;
            case 4: r = tanh(v); break;
            default: r = NAN; break;
        }
        out[i] = (float)r;
    }
}

/* out[i] = x[i] * scale + bias. */
static inline void naive_scale(float *out, const float *x, int64_t n, float scale, float bias) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)((double)x[i] * scale + bias);
}

/* diffusers GEGLU: x [rows, 2D] -> out [rows, D] = x[:, :D] * gelu(x[:, D:]). */
static inline void naive_geglu(float *out, const float *x, int64_t rows, int64_t D) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t d = 0; d < D; d++)
            out[r * D + d] = (float)((double)x[r * 2 * D + d] * naive_gelu(x[r * 2 * D + D + d]));
}

/* NumPy-broadcast elementwise, in float (bit-exact for add and mul):
 * a, out [A0, A1, A2, A3]; b [B0..B3] with Bi == Ai or 1. op 0 add, 1 mul. */
static inline void naive_binary(float *out, const float *a, const float *b, const int64_t ashape[4],
                                const int64_t bshape[4], int op) {
    for (int64_t i0 = 0; i0 < ashape[0]; i0++)
        for (int64_t i1 = 0; i1 < ashape[1]; i1++)
            for (int64_t i2 = 0; i2 < ashape[2]; i2++)
                for (int64_t i3 = 0; i3 < ashape[3]; i3++) {
                    int64_t ia = ((i0 * ashape[1] + i1) * ashape[2] + i2) * ashape[3] + i3;
                    int64_t j0 = bshape[0] == 1 ? 0 : i0, j1 = bshape[1] == 1 ? 0 : i1;
                    int64_t j2 = bshape[2] == 1 ? 0 : i2, j3 = bshape[3] == 1 ? 0 : i3;
                    int64_t ib = ((j0 * bshape[1] + j1) * bshape[2] + j2) * bshape[3] + j3;
                    out[ia] = op == 0 ? a[ia] + b[ib] : a[ia] * b[ib];
                }
}

/* --- data movement --------------------------------------------------------------------- */

/* torch.cat([a, b], dim=1): a [N, Ca, S], b [N, Cb, S] -> out [N, Ca+Cb, S]. */
static inline void naive_concat_channels(float *out, const float *a, const float *b, int64_t N, int64_t Ca, int64_t Cb,
                                         int64_t S) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < Ca + Cb; c++)
            for (int64_t s = 0; s < S; s++)
                out[(n * (Ca + Cb) + c) * S + s] = c < Ca ? a[(n * Ca + c) * S + s] : b[(n * Cb + (c - Ca)) * S + s];
}

/* F.interpolate(x, scale_factor=2, mode="nearest"): [N, C, H, W] -> [N, C, 2H, 2W]. */
static inline void naive_upsample_nearest2x(float *out, const float *x, int64_t N, int64_t C, int64_t H, int64_t W) {
    for (int64_t p = 0; p < N * C; p++)
        for (int64_t y = 0; y < 2 * H; y++)
            for (int64_t xx = 0; xx < 2 * W; xx++) out[(p * 2 * H + y) * 2 * W + xx] = x[(p * H + y / 2) * W + xx / 2];
}

/* x [B, R, C] -> out [B, C, R]. */
static inline void naive_transpose(float *out, const float *x, int64_t B, int64_t R, int64_t C) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t r = 0; r < R; r++)
            for (int64_t c = 0; c < C; c++) out[(b * C + c) * R + r] = x[(b * R + r) * C + c];
}

/* diffusers get_timestep_embedding(t, dim, flip_sin_to_cos, shift, scale=1,
 * max_period), transcribed op by op in fp32 as torch evaluates it:
 *   exponent = -math.log(max_period) * arange(half, float32)   (fp32)
 *   exponent = exponent / (half - shift)                       (fp32)
 *   emb = t[:, None] * exp(exponent)[None, :]                  (fp32)
 *   emb = cat([sin(emb), cos(emb)]); flip -> cat([cos, sin]); odd dim pads 0.
 * t [B] -> out [B, dim]. sin/cos/exp in double, rounded once. */
static inline void naive_timestep_embedding(float *out, const float *t, int64_t B, int dim, bool flip_sin_to_cos,
                                            float shift, float max_period) {
    const int half = dim / 2;
    for (int64_t b = 0; b < B; b++) {
        for (int j = 0; j < half; j++) {
            float exponent = (float)(-log((double)max_period)) * (float)j;
            exponent = exponent / (float)((double)half - (double)shift);
            float freq = (float)exp((double)exponent);
            float arg = t[b] * freq;
            float s = (float)sin((double)arg), c = (float)cos((double)arg);
            out[b * dim + j] = flip_sin_to_cos ? c : s;
            out[b * dim + half + j] = flip_sin_to_cos ? s : c;
        }
        if (dim % 2) out[b * dim + dim - 1] = 0.0f;
    }
}

/* out [n, D] = table [V, D] rows ids[0..n). Returns the index of the first id
 * outside [0, V) (nothing written), or -1 when all are valid. */
static inline int64_t naive_embedding(float *out, const int32_t *ids, const float *table, int64_t n, int64_t V,
                                      int64_t D) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V) return i;
    for (int64_t i = 0; i < n; i++)
        for (int64_t d = 0; d < D; d++) out[i * D + d] = table[(int64_t)ids[i] * D + d];
    return -1;
}

#endif
