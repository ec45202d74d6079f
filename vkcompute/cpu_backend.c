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
 * same input gives the same bits (OpenBLAS splits sgemm over M and N between
 * its threads, never over K).
 *
 * Scratch: one grow-only buffer per backend, carved up by each op. The parts
 * that scale with the activations (im2col columns, attention scores) are kept
 * under `scratch_limit` (32 MiB; INVEDIT_CPU_SCRATCH_BYTES overrides it, which
 * the tests use to force the chunked paths at small sizes).
 */
#include "backend.h"

#include <assert.h>
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CPU_ALIGN 64
#define CPU_SCRATCH_LIMIT_DEFAULT ((size_t)32 << 20)
#define CPU_ATTN_QBLOCK 256 /* query rows per attention block */

typedef struct cpu_impl {
    int n_threads;         /* as reported by OpenBLAS */
    size_t scratch_limit;  /* bytes, bound on im2col columns and attention scores */
    void *scratch;         /* grow-only, CPU_ALIGN aligned */
    size_t scratch_cap;
    struct timespec timer_start;
    float f16_to_f32[65536]; /* ie_fp16_to_fp32 of every half, for fast row conversion */
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

static void cpu_f16_row_to_f32(const cpu_impl *c, float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = c->f16_to_f32[src[i]];
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
    cpu_f16_row_to_f32(cpu_impl_of(be), dst, (const uint16_t *)t->host, n);
    return dst;
}

/* A tensor of any rank seen as [B, L, C]: C the last dim, L the one before. */
static void cpu_dims3(const ie_tensor *t, int64_t *B, int64_t *L, int64_t *C) {
    *C = t->shape[t->ndim - 1];
    *L = t->ndim >= 2 ? t->shape[t->ndim - 2] : 1;
    *B = ie_tensor_numel(t) / cpu_max(1, *L * *C);
}

static inline float cpu_silu(float v) { return v / (1.0f + expf(-v)); }
static inline float cpu_gelu(float v) { return 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2)); }

/* --- lifetime, memory, timer ---------------------------------------------- */

static void cpu_destroy(ie_backend *be) {
    cpu_impl *c = cpu_impl_of(be);
    if (c) free(c->scratch);
    free(c);
    free(be);
}

static ie_status cpu_sync(ie_backend *be) { return IE_OK; }

/* Each block starts with a CPU_ALIGN-byte header holding its size, so release
 * can account for it; storage and host both point just past the header. */
static ie_status cpu_alloc(ie_backend *be, ie_tensor *t, size_t nbytes) {
    assert(!t->is_view);
    char *block = aligned_alloc(CPU_ALIGN, CPU_ALIGN + cpu_round_up(nbytes ? nbytes : 1));
    if (!block)
        return ie_backend_set_error(be, IE_ERR_NOMEM, "cpu: cannot allocate %zu bytes", nbytes);
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

static void cpu_timer_begin(ie_backend *be) {
    clock_gettime(CLOCK_MONOTONIC, &cpu_impl_of(be)->timer_start);
}

static double cpu_timer_end(ie_backend *be) {
    struct timespec now, *t0 = &cpu_impl_of(be)->timer_start;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + 1e-9 * (double)(now.tv_nsec - t0->tv_nsec);
}

/* --- conv2d ---------------------------------------------------------------- */

/* Output columns [ow_lo, ow_hi) read inside the input row for kernel column kw:
 * iw = ow*stride - pad_left + kw in [0, W). */
static void cpu_conv_valid_cols(int64_t W, int64_t OW, int stride, int pad_left, int64_t kw,
                                int64_t *ow_lo, int64_t *ow_hi) {
    int64_t first = pad_left - kw;         /* ow*stride >= first */
    int64_t last = W - 1 + pad_left - kw;  /* ow*stride <= last */
    *ow_lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    *ow_hi = last < 0 ? 0 : cpu_min(OW, last / stride + 1);
    if (*ow_hi < *ow_lo) *ow_hi = *ow_lo;
}

/* im2col for output rows [oh0, oh0+nrows) of one image:
 * x1 [Cin, H, W] -> col [Cin*KH*KW, nrows*OW], row k = (ci*KH + kh)*KW + kw,
 * matching w [Cout, Cin, KH, KW] seen as [Cout, K]. */
static void cpu_im2col(float *col, const float *x1, int64_t Cin, int64_t H, int64_t W,
                       int64_t KH, int64_t KW, int64_t OW, int64_t oh0, int64_t nrows,
                       const ie_conv2d_params *p) {
    const int s = p->stride;
    const int64_t ncols = nrows * OW;
    for (int64_t ci = 0; ci < Cin; ci++) {
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

/* x [N, Cin, H, W], w [Cout, Cin, KH, KW] f32|f16, b [Cout] or NULL
 * -> out [N, Cout, OH, OW].
 * Per image: out1 [Cout, OH*OW] = w [Cout, K] · col [K, OH*OW], K = Cin*KH*KW,
 * with col built by im2col in chunks of whole output rows (bounded scratch).
 * A 1×1 stride-1 unpadded conv is the sgemm w · x1 directly. */
static ie_status cpu_conv2d(ie_backend *be, ie_tensor *out, const ie_tensor *x, const ie_tensor *w,
                            const ie_tensor *b, const ie_conv2d_params *p) {
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

    const bool direct = KH == 1 && KW == 1 && p->stride == 1 && p->pad_top == 0 &&
                        p->pad_bottom == 0 && p->pad_left == 0 && p->pad_right == 0;

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
    size_t need = cpu_f32_scratch_bytes(w) + cpu_f32_scratch_bytes(b) + col_bytes;
    char *cur = need ? cpu_scratch(be, need) : NULL;
    if (need && !cur) return IE_ERR_NOMEM;

    const float *wf = cpu_as_f32(be, w, &cur); /* [Cout, K] */
    const float *bf = cpu_as_f32(be, b, &cur); /* [Cout] */
    float *col = direct ? NULL : cpu_carve(&cur, col_bytes); /* [K, rows*OW] */
    const float beta = bf ? 1.0f : 0.0f;

    for (int64_t n = 0; n < N; n++) {
        const float *x1 = (const float *)x->host + n * Cin * H * W; /* [Cin, H, W] */
        float *o1 = (float *)out->host + n * Cout * P;              /* [Cout, OH*OW] */
        for (int64_t oh0 = 0; oh0 < OH; oh0 += rows) {
            const int64_t nr = cpu_min(rows, OH - oh0), ncols = nr * OW;
            float *o = o1 + oh0 * OW; /* columns [oh0*OW, oh0*OW + ncols) of o1 */
            if (bf) {                 /* out = bias, then sgemm adds w·col (beta 1) */
                for (int64_t co = 0; co < Cout; co++)
                    for (int64_t j = 0; j < ncols; j++) o[co * P + j] = bf[co];
            }
            const float *rhs = x1 + oh0 * OW; /* direct: x1 is [Cin, P] */
            blasint ldb = cpu_blas_int(P);
            if (!direct) {
                cpu_im2col(col, x1, Cin, H, W, KH, KW, OW, oh0, nr, p);
                rhs = col;
                ldb = cpu_blas_int(ncols);
            }
            if (K == 0) {
                if (!bf)
                    for (int64_t co = 0; co < Cout; co++)
                        memset(o + co * P, 0, (size_t)ncols * sizeof(float));
                continue;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cpu_blas_int(Cout),
                        cpu_blas_int(ncols), cpu_blas_int(K), 1.0f, wf, cpu_blas_int(K), rhs, ldb,
                        beta, o, cpu_blas_int(P));
        }
    }
    return IE_OK;
}

/* --- matmul ---------------------------------------------------------------- */

/* out [B, M, N] = op(a) · op(b) + bias.
 * a [B|1, M, K] ([B|1, K, M] with trans_a) f32; b [B|1, K, N] ([B|1, N, K] with
 * trans_b) f32|f16; bias [N] or NULL. One sgemm per batch; when only a is
 * batched (a Linear layer over tokens) the batches fold into one [B*M, K] sgemm. */
static ie_status cpu_matmul(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b,
                            const ie_tensor *bias, bool trans_a, bool trans_b, int64_t B, int64_t M,
                            int64_t N, int64_t K, bool a_batched, bool b_batched) {
    assert(a->dtype == IE_F32 && out->dtype == IE_F32);
    assert(ie_tensor_numel(out) == B * M * N);
    assert(ie_tensor_numel(a) == (a_batched ? B : 1) * M * K);
    assert(ie_tensor_numel(b) == (b_batched ? B : 1) * K * N);
    assert(!bias || ie_tensor_numel(bias) == N);
    if (B == 0 || M == 0 || N == 0) return IE_OK;

    /* f16 b is converted one batch at a time into scratch */
    size_t b_bytes = b->dtype == IE_F32 ? 0 : cpu_round_up((size_t)(K * N) * sizeof(float));
    size_t need = b_bytes + cpu_f32_scratch_bytes(bias);
    char *cur = need ? cpu_scratch(be, need) : NULL;
    if (need && !cur) return IE_ERR_NOMEM;
    float *bconv = b_bytes ? cpu_carve(&cur, b_bytes) : NULL;
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
        const float *b1;
        if (b->dtype == IE_F32) {
            b1 = (const float *)b->host + (b_batched ? i * K * N : 0);
        } else {
            if (i == 0 || b_batched)
                cpu_f16_row_to_f32(cpu_impl_of(be), bconv,
                                   (const uint16_t *)b->host + (b_batched ? i * K * N : 0), K * N);
            b1 = bconv;
        }
        if (biasf)
            for (int64_t r = 0; r < rows; r++) memcpy(o1 + r * N, biasf, (size_t)N * sizeof(float));
        if (K == 0) {
            if (!biasf) memset(o1, 0, (size_t)(rows * N) * sizeof(float));
            continue;
        }
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, cpu_blas_int(rows), cpu_blas_int(N),
                    cpu_blas_int(K), 1.0f, a1, cpu_blas_int(lda), b1, cpu_blas_int(ldb),
                    biasf ? 1.0f : 0.0f, o1, cpu_blas_int(N));
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
 * and SiLU when asked. out may equal x.
 * TODO: threads (one (n, group) per thread; each group's sums stay serial). */
static ie_status cpu_group_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, int groups,
                                float eps, const ie_tensor *gamma, const ie_tensor *beta, bool silu,
                                int64_t N, int64_t C, int64_t S) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(groups > 0 && C % groups == 0);
    assert(ie_tensor_numel(x) == N * C * S && ie_tensor_numel(out) == N * C * S);
    size_t need = cpu_f32_scratch_bytes(gamma) + cpu_f32_scratch_bytes(beta);
    char *cur = need ? cpu_scratch(be, need) : NULL;
    if (need && !cur) return IE_ERR_NOMEM;
    const float *g = cpu_as_f32(be, gamma, &cur), *bt = cpu_as_f32(be, beta, &cur);

    const int64_t cpg = C / groups; /* channels per group */
    for (int64_t n = 0; n < N; n++) {
        for (int64_t gi = 0; gi < groups; gi++) {
            const int64_t c0 = gi * cpg;
            const float *xg = (const float *)x->host + (n * C + c0) * S; /* [cpg, S] */
            float *og = (float *)out->host + (n * C + c0) * S;
            double mean, rstd;
            cpu_mean_rstd(xg, cpg * S, eps, &mean, &rstd);
            /* mean as a float pair: (x - m_hi) - m_lo keeps the deviation
             * accurate when |mean| >> std, where x - (float)mean would not */
            const float m_hi = (float)mean, m_lo = (float)(mean - (double)m_hi);
            for (int64_t c = 0; c < cpg; c++) {
                /* (x - mean) * (rstd * gamma) + beta */
                const float sc = (float)(rstd * (g ? g[c0 + c] : 1.0f));
                const float sh = bt ? bt[c0 + c] : 0.0f;
                const float *xc = xg + c * S;
                float *oc = og + c * S;
                if (silu) {
                    for (int64_t i = 0; i < S; i++)
                        oc[i] = cpu_silu(((xc[i] - m_hi) - m_lo) * sc + sh);
                } else {
                    for (int64_t i = 0; i < S; i++) oc[i] = ((xc[i] - m_hi) - m_lo) * sc + sh;
                }
            }
        }
    }
    return IE_OK;
}

/* x [rows, C] -> out [rows, C], normalised over C, affine gamma/beta [C].
 * TODO: threads over rows. */
static ie_status cpu_layer_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, float eps,
                                const ie_tensor *gamma, const ie_tensor *beta, int64_t rows,
                                int64_t C) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(ie_tensor_numel(x) == rows * C && ie_tensor_numel(out) == rows * C);
    size_t need = cpu_f32_scratch_bytes(gamma) + cpu_f32_scratch_bytes(beta);
    char *cur = need ? cpu_scratch(be, need) : NULL;
    if (need && !cur) return IE_ERR_NOMEM;
    const float *g = cpu_as_f32(be, gamma, &cur), *bt = cpu_as_f32(be, beta, &cur);

    for (int64_t r = 0; r < rows; r++) {
        const float *xr = (const float *)x->host + r * C;
        float *orow = (float *)out->host + r * C;
        double mean, rstd;
        cpu_mean_rstd(xr, C, eps, &mean, &rstd);
        const float m_hi = (float)mean, m_lo = (float)(mean - (double)m_hi), s = (float)rstd;
        for (int64_t c = 0; c < C; c++) {
            float v = ((xr[c] - m_hi) - m_lo) * s; /* see cpu_group_norm */
            if (g) v *= g[c];
            if (bt) v += bt[c];
            orow[c] = v;
        }
    }
    return IE_OK;
}

/* --- attention --------------------------------------------------------------- */

/* Softmax of one score row s[0..n) in place, over keys [0, nvalid); keys
 * [nvalid, n) (the causal mask) get probability 0. Max-subtracted, fp32. */
static void cpu_softmax_row(float *s, int64_t n, int64_t nvalid) {
    assert(nvalid >= 1 && nvalid <= n);
    float m = s[0];
    for (int64_t j = 1; j < nvalid; j++) m = s[j] > m ? s[j] : m;
    float sum = 0.0f;
    for (int64_t j = 0; j < nvalid; j++) {
        float e = expf(s[j] - m);
        s[j] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < nvalid; j++) s[j] *= inv;
    for (int64_t j = nvalid; j < n; j++) s[j] = 0.0f;
}

/* q [B, Lq, H*D], k [B, Lk, H*D], v [B, Lk, H*Dv] -> out [B, Lq, H*Dv].
 * Per (batch, head), blocks of query rows:
 *   S [nq, Lk] = scale · Q_blk [nq, D] · Kᵀ   (sgemm on strided head slices)
 *   row softmax (causal: key j > query i masked)
 *   O_blk [nq, Dv] = S · V [Lk, Dv], written straight into out.
 * Scratch is one score block, at most max(scratch_limit, Lk floats).
 * With the causal mask, keys past the block's last query are skipped.
 * TODO: threads over (batch, head) for the softmax. */
static ie_status cpu_attention(ie_backend *be, ie_tensor *out, const ie_tensor *q,
                               const ie_tensor *k, const ie_tensor *v, int heads, float scale,
                               bool causal) {
    int64_t B, Lq, HD, Bk, Lk, HDk, Bv, Lv, HDv;
    cpu_dims3(q, &B, &Lq, &HD);
    cpu_dims3(k, &Bk, &Lk, &HDk);
    cpu_dims3(v, &Bv, &Lv, &HDv);
    assert(q->dtype == IE_F32 && k->dtype == IE_F32 && v->dtype == IE_F32);
    assert(Bk == B && Bv == B && HDk == HD && Lv == Lk && heads > 0);
    assert(HD % heads == 0 && HDv % heads == 0 && ie_tensor_numel(out) == B * Lq * HDv);
    const int64_t H = heads, D = HD / H, Dv = HDv / H;
    if (B == 0 || Lq == 0 || Lk == 0) return IE_OK;

    int64_t qblock = cpu_min(Lq, CPU_ATTN_QBLOCK);
    const int64_t limit = (int64_t)(cpu_impl_of(be)->scratch_limit / sizeof(float));
    qblock = cpu_min(qblock, cpu_max(1, limit / Lk));
    float *S = cpu_scratch(be, (size_t)(qblock * Lk) * sizeof(float)); /* [qblock, Lk] */
    if (!S) return IE_ERR_NOMEM;

    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            const float *kh = (const float *)k->host + b * Lk * HD + h * D;   /* [Lk, D], ld HD */
            const float *vh = (const float *)v->host + b * Lk * HDv + h * Dv; /* [Lk, Dv], ld HDv */
            for (int64_t q0 = 0; q0 < Lq; q0 += qblock) {
                const int64_t nq = cpu_min(qblock, Lq - q0);
                /* keys any row of this block can see */
                const int64_t nk = causal ? cpu_min(Lk, q0 + nq) : Lk;
                const float *qh = (const float *)q->host + (b * Lq + q0) * HD + h * D;
                float *oh = (float *)out->host + (b * Lq + q0) * HDv + h * Dv;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cpu_blas_int(nq),
                            cpu_blas_int(nk), cpu_blas_int(D), scale, qh, cpu_blas_int(HD), kh,
                            cpu_blas_int(HD), 0.0f, S, cpu_blas_int(nk));
                for (int64_t r = 0; r < nq; r++)
                    cpu_softmax_row(S + r * nk, nk, causal ? cpu_min(nk, q0 + r + 1) : nk);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cpu_blas_int(nq),
                            cpu_blas_int(Dv), cpu_blas_int(nk), 1.0f, S, cpu_blas_int(nk), vh,
                            cpu_blas_int(HDv), 0.0f, oh, cpu_blas_int(HDv));
            }
        }
    }
    return IE_OK;
}

/* q [B, Lq, H*D], k [B, Lk, H*D] -> probs [B, H, Lq, Lk] = softmax(scale·q·kᵀ
 * [+ causal]); the scores are computed straight into probs. */
static ie_status cpu_attention_probs(ie_backend *be, ie_tensor *probs, const ie_tensor *q,
                                     const ie_tensor *k, int heads, float scale, bool causal) {
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
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cpu_blas_int(Lq),
                        cpu_blas_int(Lk), cpu_blas_int(D), scale, qh, cpu_blas_int(HD), kh,
                        cpu_blas_int(HD), 0.0f, P, cpu_blas_int(Lk));
            for (int64_t i = 0; i < Lq; i++)
                cpu_softmax_row(P + i * Lk, Lk, causal ? cpu_min(Lk, i + 1) : Lk);
        }
    }
    return IE_OK;
}

/* probs [B, H, Lq, Lk], v [B, Lk, H*Dv] -> out [B, Lq, H*Dv] = probs · v. */
static ie_status cpu_attention_apply(ie_backend *be, ie_tensor *out, const ie_tensor *probs,
                                     const ie_tensor *v) {
    assert(probs->ndim == 4 && probs->dtype == IE_F32 && v->dtype == IE_F32);
    const int64_t B = probs->shape[0], H = probs->shape[1], Lq = probs->shape[2],
                  Lk = probs->shape[3];
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
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cpu_blas_int(Lq),
                        cpu_blas_int(Dv), cpu_blas_int(Lk), 1.0f, P, cpu_blas_int(cpu_max(1, Lk)),
                        vh, cpu_blas_int(HDv), 0.0f, oh, cpu_blas_int(HDv));
        }
    }
    return IE_OK;
}

/* --- elementwise --------------------------------------------------------------- */

/* out = op(x); out may equal x. */
static ie_status cpu_unary(ie_backend *be, ie_tensor *out, const ie_tensor *x, ie_unary_op op) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(ie_tensor_numel(out) == ie_tensor_numel(x));
    const int64_t n = ie_tensor_numel(x);
    const float *xp = (const float *)x->host;
    float *o = (float *)out->host;
    switch (op) {
    case IE_UNARY_SILU:
        for (int64_t i = 0; i < n; i++) o[i] = cpu_silu(xp[i]);
        break;
    case IE_UNARY_GELU: /* 0.5 x (1 + erf(x / sqrt 2)) */
        for (int64_t i = 0; i < n; i++) o[i] = cpu_gelu(xp[i]);
        break;
    case IE_UNARY_QUICK_GELU: /* x * sigmoid(1.702 x) */
        for (int64_t i = 0; i < n; i++) o[i] = xp[i] / (1.0f + expf(-1.702f * xp[i]));
        break;
    case IE_UNARY_RELU:
        for (int64_t i = 0; i < n; i++) o[i] = xp[i] > 0.0f ? xp[i] : 0.0f;
        break;
    case IE_UNARY_TANH:
        for (int64_t i = 0; i < n; i++) o[i] = tanhf(xp[i]);
        break;
    default:
        return ie_backend_set_error(be, IE_ERR_ARG, "unary: unknown op %d", (int)op);
    }
    return IE_OK;
}

/* out = x * scale + bias; out may equal x. */
static ie_status cpu_scale(ie_backend *be, ie_tensor *out, const ie_tensor *x, float scale,
                           float bias) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(ie_tensor_numel(out) == ie_tensor_numel(x));
    const int64_t n = ie_tensor_numel(x);
    const float *xp = (const float *)x->host;
    float *o = (float *)out->host;
    for (int64_t i = 0; i < n; i++) o[i] = xp[i] * scale + bias;
    return IE_OK;
}

/* x [rows, 2D] -> out [rows, D] = x[:, :D] * gelu(x[:, D:]). */
static ie_status cpu_geglu(ie_backend *be, ie_tensor *out, const ie_tensor *x, int64_t rows,
                           int64_t D) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(ie_tensor_numel(x) == rows * 2 * D && ie_tensor_numel(out) == rows * D);
    for (int64_t r = 0; r < rows; r++) {
        const float *a = (const float *)x->host + r * 2 * D, *gate = a + D;
        float *o = (float *)out->host + r * D;
        for (int64_t d = 0; d < D; d++) o[d] = a[d] * cpu_gelu(gate[d]);
    }
    return IE_OK;
}

/* out = a (op) b, a and out [A0, A1, A2, A3], b [B0, B1, B2, B3] with each
 * Bi equal to Ai or 1 (broadcast); b f32|f16. op 0 add, 1 mul. out may equal a. */
static ie_status cpu_binary(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b,
                            int op, const int64_t ashape[4], const int64_t bshape[4]) {
    assert(a->dtype == IE_F32 && out->dtype == IE_F32);
    assert(op == 0 || op == 1);
    int64_t bstride[4], s = 1; /* b's element strides, 0 along broadcast dims */
    for (int d = 3; d >= 0; d--) {
        assert(bshape[d] == ashape[d] || bshape[d] == 1);
        bstride[d] = bshape[d] == 1 ? 0 : s;
        s *= bshape[d];
    }
    assert(ie_tensor_numel(a) == ashape[0] * ashape[1] * ashape[2] * ashape[3]);
    assert(ie_tensor_numel(b) == s);
    size_t need = cpu_f32_scratch_bytes(b);
    char *cur = need ? cpu_scratch(be, need) : NULL;
    if (need && !cur) return IE_ERR_NOMEM;
    const float *ap = (const float *)a->host, *bp = cpu_as_f32(be, b, &cur);
    float *o = (float *)out->host;
    const int64_t n3 = ashape[3];
    for (int64_t i0 = 0; i0 < ashape[0]; i0++) {
        for (int64_t i1 = 0; i1 < ashape[1]; i1++) {
            for (int64_t i2 = 0; i2 < ashape[2]; i2++) {
                const int64_t row = ((i0 * ashape[1] + i1) * ashape[2] + i2) * n3;
                const float *ar = ap + row;
                const float *br = bp + i0 * bstride[0] + i1 * bstride[1] + i2 * bstride[2];
                float *orow = o + row;
                if (bstride[3] == 0) { /* one b value for the whole row */
                    const float bv = br[0];
                    if (op == 0) for (int64_t i = 0; i < n3; i++) orow[i] = ar[i] + bv;
                    else         for (int64_t i = 0; i < n3; i++) orow[i] = ar[i] * bv;
                } else {
                    if (op == 0) for (int64_t i = 0; i < n3; i++) orow[i] = ar[i] + br[i];
                    else         for (int64_t i = 0; i < n3; i++) orow[i] = ar[i] * br[i];
                }
            }
        }
    }
    return IE_OK;
}

/* --- data movement --------------------------------------------------------------- */

/* a [N, Ca, S], b [N, Cb, S] -> out [N, Ca+Cb, S]. */
static ie_status cpu_concat_channels(ie_backend *be, ie_tensor *out, const ie_tensor *a,
                                     const ie_tensor *b, int64_t N, int64_t Ca, int64_t Cb,
                                     int64_t S) {
    assert(a->dtype == out->dtype && b->dtype == out->dtype);
    assert(ie_tensor_numel(out) == N * (Ca + Cb) * S);
    const size_t es = ie_dtype_size(out->dtype);
    const size_t abytes = (size_t)(Ca * S) * es, bbytes = (size_t)(Cb * S) * es;
    for (int64_t n = 0; n < N; n++) {
        char *o = (char *)out->host + (size_t)n * (abytes + bbytes);
        memcpy(o, (const char *)a->host + (size_t)n * abytes, abytes);
        memcpy(o + abytes, (const char *)b->host + (size_t)n * bbytes, bbytes);
    }
    return IE_OK;
}

/* x [N, C, H, W] -> out [N, C, 2H, 2W], out[.., y, x] = x[.., y/2, x/2]. */
static ie_status cpu_upsample_nearest2x(ie_backend *be, ie_tensor *out, const ie_tensor *x) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32 && x->ndim == 4);
    const int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    assert(ie_tensor_numel(out) == NC * 4 * H * W);
    for (int64_t p = 0; p < NC; p++) {
        for (int64_t y = 0; y < H; y++) {
            const float *src = (const float *)x->host + (p * H + y) * W;
            float *d0 = (float *)out->host + (p * 2 * H + 2 * y) * 2 * W; /* row 2y */
            for (int64_t i = 0; i < W; i++) d0[2 * i] = d0[2 * i + 1] = src[i];
            memcpy(d0 + 2 * W, d0, (size_t)(2 * W) * sizeof(float)); /* row 2y+1 */
        }
    }
    return IE_OK;
}

/* x [B, R, C] -> out [B, C, R], in 32×32 tiles so both sides stay in cache. */
static ie_status cpu_transpose(ie_backend *be, ie_tensor *out, const ie_tensor *x, int64_t B,
                               int64_t R, int64_t C) {
    assert(x->dtype == IE_F32 && out->dtype == IE_F32);
    assert(ie_tensor_numel(x) == B * R * C && ie_tensor_numel(out) == B * R * C);
    enum { T = 32 };
    for (int64_t b = 0; b < B; b++) {
        const float *xb = (const float *)x->host + b * R * C;
        float *ob = (float *)out->host + b * R * C;
        for (int64_t r0 = 0; r0 < R; r0 += T) {
            const int64_t r1 = cpu_min(R, r0 + T);
            for (int64_t c0 = 0; c0 < C; c0 += T) {
                const int64_t c1 = cpu_min(C, c0 + T);
                for (int64_t c = c0; c < c1; c++)
                    for (int64_t r = r0; r < r1; r++) ob[c * R + r] = xb[r * C + c];
            }
        }
    }
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
        return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "copy: %s -> %s is not supported",
                                    ie_dtype_name(x->dtype), ie_dtype_name(out->dtype));
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
static ie_status cpu_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *ids,
                               const ie_tensor *table) {
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
        if (table->dtype == IE_F32)
            memcpy(o, (const float *)table->host + id[i] * D, (size_t)D * sizeof(float));
        else
            cpu_f16_row_to_f32(cpu_impl_of(be), o, (const uint16_t *)table->host + id[i] * D, D);
    }
    return IE_OK;
}

/* --- the backend ------------------------------------------------------------- */

static const ie_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
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

/* n_threads > 0 sets OpenBLAS's thread count (process-wide); else OpenBLAS's
 * default (OPENBLAS_NUM_THREADS or the core count). */
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

    if (n_threads > 0) openblas_set_num_threads(n_threads);
    c->n_threads = openblas_get_num_threads();
    c->scratch_limit = CPU_SCRATCH_LIMIT_DEFAULT;
    const char *env = getenv("INVEDIT_CPU_SCRATCH_BYTES");
    if (env && atoll(env) > 0) c->scratch_limit = (size_t)atoll(env);
    for (uint32_t h = 0; h < 65536; h++) c->f16_to_f32[h] = ie_fp16_to_fp32((uint16_t)h);

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
    snprintf(be->description, sizeof be->description, "cpu (%s, %d thread%s)", blas, c->n_threads,
             c->n_threads == 1 ? "" : "s");
    return be;
}
