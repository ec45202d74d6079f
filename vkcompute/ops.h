/* invedit compute engine: tensors, backends and the op API.
 *
 * One API, two backends:
 *   - "cpu":    plain C + OpenBLAS sgemm. Always available; the reference every
 *               Vulkan shader is tested against.
 *   - "vulkan": one GLSL compute shader per op (shaders/), SPIR-V embedded in the
 *               binary. Runs on any Vulkan 1.2 device with bufferDeviceAddress
 *               (NVIDIA, AMD, Intel, Mesa lavapipe on a CPU). Not compiled in
 *               a -Dvulkan=disabled build (docs/vulkan.md).
 *
 * Conventions
 *   - Shapes are in PyTorch order, outermost first: an image batch is
 *     shape = {N, C, H, W}; a token sequence is {B, L, C}. Tensors are dense and
 *     row-major (the last dimension is contiguous).
 *   - Activations are fp32. Weights may be fp32 or fp16; every op accumulates in
 *     fp32 on both backends.
 *   - Output tensors are allocated by the caller; every op checks all shapes
 *     first and returns IE_ERR_SHAPE with a message naming the op and the shapes.
 *   - On Vulkan, ops are recorded and run asynchronously: ie_backend_sync() (or
 *     a download) waits for them. Errors that happen on the device (device lost,
 *     out of memory) come back from the next call that waits.
 *   - The same input on the same backend gives bit-identical output (fixed
 *     reduction orders everywhere); exact inversion depends on it.
 *
 * Errors follow SQLite: functions return an ie_status; ie_backend_errmsg()
 * names what was wrong.
 */
#ifndef INVEDIT_OPS_H
#define INVEDIT_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <invedit_status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ie_status and ie_status_name() are part of the public API (include/invedit_status.h). */


typedef enum ie_dtype {
    IE_F32 = 0,
    IE_F16 = 1,
    IE_I32 = 2, /* token ids */
} ie_dtype;

size_t ie_dtype_size(ie_dtype t);
const char *ie_dtype_name(ie_dtype t);

#define IE_MAX_DIMS 4

typedef struct ie_backend ie_backend;

typedef struct ie_tensor {
    ie_backend *be;
    ie_dtype dtype;
    int ndim;
    int64_t shape[IE_MAX_DIMS]; /* outermost first; unused entries are 1 */
    /* Storage, owned by the backend. A view shares its parent's storage. */
    void *storage;   /* backend-private allocation handle */
    uint64_t offset; /* byte offset of element 0 inside the storage */
    void *host;      /* CPU backend: pointer to element 0; NULL on Vulkan */
    bool is_view;
} ie_tensor;

int64_t ie_tensor_numel(const ie_tensor *t);
size_t ie_tensor_nbytes(const ie_tensor *t);
/* "[2, 320, 64, 64] f16" into buf; returns buf. */
const char *ie_tensor_shape_str(const ie_tensor *t, char *buf, size_t n);

/* --- backends ------------------------------------------------------------ */

typedef enum ie_backend_kind { IE_BACKEND_CPU = 0, IE_BACKEND_VULKAN = 1 } ie_backend_kind;

typedef enum ie_device_type {
    IE_DEVICE_DISCRETE = 0,
    IE_DEVICE_INTEGRATED = 1,
    IE_DEVICE_VIRTUAL = 2,
    IE_DEVICE_CPU = 3, /* lavapipe / llvmpipe / SwiftShader */
    IE_DEVICE_OTHER = 4,
} ie_device_type;

typedef struct ie_device_info {
    int index; /* Vulkan physical-device index */
    char name[256];
    ie_device_type type;
    uint32_t api_version;
    uint32_t vendor_id, device_id;
    char driver[128];
    uint64_t device_local_bytes;
    uint64_t max_storage_buffer_range;
    uint64_t max_buffer_size;
    uint64_t max_allocation_size;
    uint32_t max_shared_memory;
    uint32_t subgroup_size;           /* the size compute shaders get (forced by INVEDIT_VK_SUBGROUP_SIZE) */
    uint32_t min_subgroup_size;       /* the range a shader may see: VK_EXT_subgroup_size_control's */
    uint32_t max_subgroup_size;       /* min/max, else subgroup_size */
    bool subgroup_size_control;       /* sizes can be required per pipeline */
    uint32_t max_workgroup_subgroups; /* maxComputeWorkgroupSubgroups (0: unknown) */
    uint32_t max_workgroup_invocations;
    uint32_t max_workgroup_size[3];
    bool fp16;   /* shaderFloat16 + storageBuffer16BitAccess */
    bool usable; /* has everything invedit needs (Vulkan 1.2, bufferDeviceAddress) */
    char why_unusable[128];
} ie_device_info;

const char *ie_device_type_name(ie_device_type t);

/* Lists Vulkan devices. Returns the number found (may exceed max), or -1 with a
 * message in err when there is no loader/instance (or the Vulkan backend is not
 * compiled in: -Dvulkan=disabled). */
int ie_vulkan_list_devices(ie_device_info *out, int max, char *err, size_t errlen);

/* The device preference, decided here only: among devs[0..n-1], the first
 * usable device of the first type in the order discrete GPU, integrated GPU,
 * virtual GPU, other, CPU implementation (lavapipe, llvmpipe, SwiftShader).
 * With for_auto, CPU implementations are left out: on the same CPU the
 * OpenBLAS backend is faster, so "auto" takes the CPU backend instead.
 * Returns the device's index (ie_device_info.index), or -1 when none fits. */
int ie_vulkan_preferred_device(const ie_device_info *devs, int n, bool for_auto);

/* CPU backend on OpenBLAS; n_threads <= 0 means OpenBLAS's default
 * (OPENBLAS_NUM_THREADS, else the cores). The backend runs its own thread
 * pool of that size and sets OpenBLAS itself to one thread (process-wide). */
ie_backend *ie_backend_cpu_new(int n_threads);

/* Vulkan backend on one device (index from ie_vulkan_list_devices, or -1 for
 * the preferred one, CPU implementations included: ie_vulkan_preferred_device
 * with for_auto false). NULL on failure with the reason in err. */
ie_backend *ie_backend_vulkan_new(int device_index, char *err, size_t errlen);

/* True when request is auto, cpu, vulkan or vulkan:N (N decimal digits);
 * otherwise false with a message listing the valid forms. */
bool ie_device_request_valid(const char *request, char *err, size_t errlen);
/* Chooses a backend from a request string: "cpu", "vulkan" (the preferred
 * Vulkan device, a CPU implementation such as lavapipe included), "vulkan:N",
 * or "auto"/NULL (the INVEDIT_DEVICE environment variable when set, else the
 * preferred Vulkan GPU, else the CPU backend with a message in note). A Vulkan
 * request that fails also falls back to the CPU with a message. Never NULL. */
ie_backend *ie_backend_open(const char *request, char *note, size_t notelen);

void ie_backend_free(ie_backend *be);
ie_backend_kind ie_backend_kind_of(const ie_backend *be);
/* "cpu (OpenBLAS, 2 threads)" or "vulkan: NVIDIA H100 ...". */
const char *ie_backend_description(const ie_backend *be);
const char *ie_backend_errmsg(const ie_backend *be);
/* Waits for all recorded work; returns the first device error, if any. */
ie_status ie_backend_sync(ie_backend *be);
/* Device memory currently allocated and its high-water mark (bytes). */
void ie_backend_memory(const ie_backend *be, uint64_t *in_use, uint64_t *peak);
/* Starts the high-water mark again at what is in use now (per-phase peaks). */
void ie_backend_reset_peak(ie_backend *be);
/* Frees the backend's grow-only working memory (the CPU backend's scratch for
 * widened fp16 weights and im2col columns); the next op allocates what it
 * needs again. The editing pipeline calls it between phases. */
void ie_backend_trim(ie_backend *be);

/* Profiling (Vulkan timestamp queries; wall clock on the CPU). Between begin
 * and end, ops are timed; end returns elapsed device seconds. */
void ie_backend_timer_begin(ie_backend *be);
double ie_backend_timer_end(ie_backend *be);

/* Per-op profile: calls, seconds and counted FLOPs per kind of op. */
typedef struct ie_op_stats {
    const char *name; /* "conv2d 1x1", "conv2d kxk", "matmul", "linear", "attention", ... */
    long calls;
    double seconds; /* wall clock from the op's call to its completion */
    double flops;   /* 2 x multiply-adds of conv2d, matmul, linear and the attention
                       * products; 0 for the other ops (norms, elementwise, copies) */
} ie_op_stats;

/* The number of op kinds a profile reports (the size of its table). */
#define IE_OP_KINDS 20

/* Turns per-op timing on, with every count at zero. Until
 * ie_backend_profile_end, each op that passes its checks is timed and counted.
 * On Vulkan each timed op waits for its own device work (a sync per op), so a
 * profiled run is slower than a plain one; on the CPU ops are synchronous and
 * nothing changes. Meant for benchmarks (bench-networks --profile). */
void ie_backend_profile_begin(ie_backend *be);
/* Turns per-op timing off and copies the table into out (IE_OP_KINDS entries,
 * in a fixed order; kinds that did not run have calls == 0). Returns the number
 * of entries written: min(max, IE_OP_KINDS), 0 when profiling was not on. */
int ie_backend_profile_end(ie_backend *be, ie_op_stats *out, int max);

/* --- tensors ------------------------------------------------------------- */

/* New uninitialised tensor; NULL on failure (message in the backend). */
ie_tensor *ie_tensor_new(ie_backend *be, ie_dtype dtype, int ndim, const int64_t *shape);
ie_tensor *ie_tensor_new4(ie_backend *be, ie_dtype dtype, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
/* A tensor that shares storage with t, starting at element `elem_offset`
 * (counted in t's dtype), with a new shape whose size fits inside t. */
ie_tensor *ie_tensor_view(ie_tensor *t, int64_t elem_offset, int ndim, const int64_t *shape);
void ie_tensor_free(ie_tensor *t);

/* Host <-> tensor copies. `src`/`dst` hold numel elements of t's dtype. */
ie_status ie_tensor_upload(ie_tensor *t, const void *src);
ie_status ie_tensor_download(ie_tensor *t, void *dst); /* waits for pending work */
/* fp32 host data, converted to/from the tensor's dtype. */
ie_status ie_tensor_upload_f32(ie_tensor *t, const float *src);
ie_status ie_tensor_download_f32(ie_tensor *t, float *dst);

/* --- ops ----------------------------------------------------------------- */

/* 2-D convolution as in torch.nn.functional.conv2d (dilation 1, groups 1).
 * x [N, Cin, H, W] f32; w [Cout, Cin, KH, KW] f32|f16; b [Cout] or NULL;
 * out [N, Cout, OH, OW] f32 with OH = (H + pad_top + pad_bottom - KH)/stride + 1.
 * The VAE encoder's downsampler uses pad (top 0, bottom 1, left 0, right 1). */
typedef struct ie_conv2d_params {
    int stride;
    int pad_top, pad_bottom, pad_left, pad_right;
} ie_conv2d_params;
ie_status ie_conv2d(ie_backend *be, ie_tensor *out, const ie_tensor *x, const ie_tensor *w, const ie_tensor *b,
                    const ie_conv2d_params *p);
/* Symmetric padding helper: ie_conv2d_params_sym(stride, pad). */
ie_conv2d_params ie_conv2d_params_sym(int stride, int pad);

/* Batched matrix product out = op(a) · op(b) [+ bias], fp32 accumulation.
 *   a: [B, M, K] (or [B, K, M] with trans_a); b: [B, K, N] (or [B, N, K] with
 *   trans_b); a batch size of 1 broadcasts. bias [N] or NULL. out [B, M, N].
 * 2-D operands are treated as B = 1. Only b may be f16. */
ie_status ie_matmul(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, const ie_tensor *bias,
                    bool trans_a, bool trans_b);

/* torch.nn.Linear: x [..., K], w [N, K] f32|f16, b [N] or NULL -> out [..., N].
 * x's first dimension is a batch: each x[b] is computed on its own, so its
 * result does not depend on b or on the batch size (a 2-D x [B, K] is B
 * independent rows; give a big matrix as [1, M, K]). */
ie_status ie_linear(ie_backend *be, ie_tensor *out, const ie_tensor *x, const ie_tensor *w, const ie_tensor *b);

/* GroupNorm over x [N, C, ...spatial] with `groups` groups, affine gamma/beta [C]
 * (either may be NULL = identity), optional fused SiLU afterwards. */
ie_status ie_group_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, int groups, float eps,
                        const ie_tensor *gamma, const ie_tensor *beta, bool silu);

/* LayerNorm over the last dimension, affine gamma/beta [C] (NULL = identity). */
ie_status ie_layer_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, float eps, const ie_tensor *gamma,
                        const ie_tensor *beta);

/* Multi-head attention in the token-major layout diffusers uses:
 *   q [B, Lq, H*D], k [B, Lk, H*D], v [B, Lk, H*Dv] -> out [B, Lq, H*Dv],
 *   head h owns channels [h*D, (h+1)*D).
 *   out = softmax(q·kᵀ·scale [+ causal mask]) · v, per batch and head.
 * Fused flash-style kernel: online softmax, no Lq×Lk matrix in memory. */
ie_status ie_attention(ie_backend *be, ie_tensor *out, const ie_tensor *q, const ie_tensor *k, const ie_tensor *v,
                       int heads, float scale, bool causal);

/* The two halves of attention, for attention control:
 *   ie_attention_probs: probs [B, H, Lq, Lk] = softmax(q·kᵀ·scale [+ causal]);
 *   ie_attention_apply: out [B, Lq, H*Dv] = probs · v.
 * A hook may read or rewrite probs between the two calls. */
ie_status ie_attention_probs(ie_backend *be, ie_tensor *probs, const ie_tensor *q, const ie_tensor *k, int heads,
                             float scale, bool causal);
ie_status ie_attention_apply(ie_backend *be, ie_tensor *out, const ie_tensor *probs, const ie_tensor *v);

typedef enum ie_unary_op {
    IE_UNARY_SILU = 0,
    IE_UNARY_GELU = 1,       /* exact erf GELU */
    IE_UNARY_QUICK_GELU = 2, /* x * sigmoid(1.702 x) (CLIP) */
    IE_UNARY_RELU = 3,
    IE_UNARY_TANH = 4,
} ie_unary_op;

/* out = op(x) elementwise; out may equal x. */
ie_status ie_unary(ie_backend *be, ie_tensor *out, const ie_tensor *x, ie_unary_op op);
/* out = x * scale + bias (scalars); out may equal x. */
ie_status ie_scale(ie_backend *be, ie_tensor *out, const ie_tensor *x, float scale, float bias);

/* GEGLU: x [..., 2D] -> out [..., D] = x[..., :D] * gelu(x[..., D:]). */
ie_status ie_geglu(ie_backend *be, ie_tensor *out, const ie_tensor *x);

/* Elementwise with broadcasting (NumPy rules, b broadcast onto a's shape):
 * out = a + b / out = a * b. out has a's shape and may equal a. */
ie_status ie_add(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b);
ie_status ie_mul(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b);

/* Channel concat: a [N, Ca, ...], b [N, Cb, ...] -> out [N, Ca+Cb, ...]. */
ie_status ie_concat_channels(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b);

/* Nearest-neighbour ×2 upsampling: x [N, C, H, W] -> out [N, C, 2H, 2W]. */
ie_status ie_upsample_nearest2x(ie_backend *be, ie_tensor *out, const ie_tensor *x);

/* Batched 2-D transpose of the last two dims, e.g. NCHW viewed as [N, C, H*W]
 * <-> tokens [N, H*W, C]: x [B, R, C] -> out [B, C, R]. */
ie_status ie_transpose(ie_backend *be, ie_tensor *out, const ie_tensor *x);

/* Copy with dtype conversion (same numel; shapes may differ). */
ie_status ie_copy(ie_backend *be, ie_tensor *out, const ie_tensor *x);

/* Sinusoidal embedding as diffusers' get_timestep_embedding:
 *   half = dim/2, f_j = exp(-ln(max_period) * j / (half - shift)),
 *   emb = [sin(t f), cos(t f)], swapped to [cos, sin] when flip_sin_to_cos.
 * t [B] f32 -> out [B, dim]. SD UNet: flip=true, shift=0, max_period=10000.
 * LCM guidance embedding: flip=false, shift=1. */
ie_status ie_timestep_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *t, int dim, bool flip_sin_to_cos,
                                float shift, float max_period);

/* Embedding lookup: ids [B, L] i32, table [V, D] f32|f16 -> out [B, L, D]. */
ie_status ie_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *ids, const ie_tensor *table);

#ifdef __cplusplus
}
#endif
#endif
