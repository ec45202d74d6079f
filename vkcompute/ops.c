/* The op API of ops.h: tensors, backend selection, and argument/shape checks.
 * Each op checks everything here, then calls the backend's function table, so
 * both backends see only valid arguments and report errors the same way. */
#include "vkcompute/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- status, dtypes -------------------------------------------------------- */

const char *ie_status_name(ie_status s) {
    switch (s) {
        case IE_OK: return "ok";
        case IE_ERR_SHAPE: return "shape mismatch";
        case IE_ERR_ARG: return "invalid argument";
        case IE_ERR_NOMEM: return "out of memory";
        case IE_ERR_DEVICE: return "device error";
        case IE_ERR_NODEVICE: return "no Vulkan device";
        case IE_ERR_IO: return "I/O error";
        case IE_ERR_FORMAT: return "bad file format";
        case IE_ERR_CANCELLED: return "cancelled";
        case IE_ERR_UNSUPPORTED: return "unsupported";
        case IE_ERR_NONFINITE: return "non-finite values";
    }
    return "unknown error";
}

size_t ie_dtype_size(ie_dtype t) {
    switch (t) {
        case IE_F32: return 4;
        case IE_F16: return 2;
        case IE_I32: return 4;
    }
    return 0;
}

const char *ie_dtype_name(ie_dtype t) {
    switch (t) {
        case IE_F32: return "f32";
        case IE_F16: return "f16";
        case IE_I32: return "i32";
    }
    return "?";
}

const char *ie_device_type_name(ie_device_type t) {
    switch (t) {
        case IE_DEVICE_DISCRETE: return "discrete GPU";
        case IE_DEVICE_INTEGRATED: return "integrated GPU";
        case IE_DEVICE_VIRTUAL: return "virtual GPU";
        case IE_DEVICE_CPU: return "CPU";
        case IE_DEVICE_OTHER: return "other";
    }
    return "?";
}

ie_status ie_backend_set_error(ie_backend *be, ie_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(be->errmsg, sizeof be->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* --- tensors -------------------------------------------------------------- */

int64_t ie_tensor_numel(const ie_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t ie_tensor_nbytes(const ie_tensor *t) { return (size_t)ie_tensor_numel(t) * ie_dtype_size(t->dtype); }

const char *ie_tensor_shape_str(const ie_tensor *t, char *buf, size_t n) {
    if (!t) {
        snprintf(buf, n, "(none)");
        return buf;
    }
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (int i = 0; i < t->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (off < n) snprintf(buf + off, n - off, "] %s", ie_dtype_name(t->dtype));
    return buf;
}

static bool shape_valid(int ndim, const int64_t *shape) {
    if (ndim < 1 || ndim > IE_MAX_DIMS) return false;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || shape[i] > ((int64_t)1 << 40)) return false;
        n *= shape[i];
        if (n > ((int64_t)1 << 40)) return false;
    }
    return true;
}

ie_tensor *ie_tensor_new(ie_backend *be, ie_dtype dtype, int ndim, const int64_t *shape) {
    if (!shape_valid(ndim, shape)) {
        ie_backend_set_error(be, IE_ERR_ARG, "tensor_new: invalid shape (ndim %d)", ndim);
        return NULL;
    }
    ie_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        ie_backend_set_error(be, IE_ERR_NOMEM, "tensor_new: out of host memory");
        return NULL;
    }
    t->be = be;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < IE_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    if (be->ops->alloc(be, t, ie_tensor_nbytes(t)) != IE_OK) {
        free(t);
        return NULL;
    }
    return t;
}

ie_tensor *ie_tensor_new4(ie_backend *be, ie_dtype dtype, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int64_t s[4] = {d0, d1, d2, d3};
    return ie_tensor_new(be, dtype, 4, s);
}

ie_tensor *ie_tensor_view(ie_tensor *t, int64_t elem_offset, int ndim, const int64_t *shape) {
    ie_backend *be = t->be;
    if (!shape_valid(ndim, shape)) {
        ie_backend_set_error(be, IE_ERR_ARG, "tensor_view: invalid shape (ndim %d)", ndim);
        return NULL;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (elem_offset < 0 || elem_offset + n > ie_tensor_numel(t)) {
        char b[96];
        ie_backend_set_error(be, IE_ERR_ARG, "tensor_view: %lld elements at offset %lld do not fit in %s", (long long)n,
                             (long long)elem_offset, ie_tensor_shape_str(t, b, sizeof b));
        return NULL;
    }
    ie_tensor *v = calloc(1, sizeof *v);
    if (!v) {
        ie_backend_set_error(be, IE_ERR_NOMEM, "tensor_view: out of host memory");
        return NULL;
    }
    *v = *t;
    v->ndim = ndim;
    for (int i = 0; i < IE_MAX_DIMS; i++) v->shape[i] = i < ndim ? shape[i] : 1;
    size_t byte_off = (size_t)elem_offset * ie_dtype_size(t->dtype);
    v->offset = t->offset + byte_off;
    if (t->host) v->host = (char *)t->host + byte_off;
    v->is_view = true;
    return v;
}

void ie_tensor_free(ie_tensor *t) {
    if (!t) return;
    if (!t->is_view) t->be->ops->release(t->be, t);
    free(t);
}

ie_status ie_tensor_upload(ie_tensor *t, const void *src) {
    return t->be->ops->upload(t->be, t, src, ie_tensor_nbytes(t));
}

ie_status ie_tensor_download(ie_tensor *t, void *dst) {
    return t->be->ops->download(t->be, t, dst, ie_tensor_nbytes(t));
}

ie_status ie_tensor_upload_f32(ie_tensor *t, const float *src) {
    if (t->dtype == IE_F32) return ie_tensor_upload(t, src);
    if (t->dtype != IE_F16)
        return ie_backend_set_error(t->be, IE_ERR_ARG, "upload_f32: tensor is %s", ie_dtype_name(t->dtype));
    int64_t n = ie_tensor_numel(t);
    uint16_t *h = malloc((size_t)n * 2);
    if (!h) return ie_backend_set_error(t->be, IE_ERR_NOMEM, "upload_f32: out of host memory");
    for (int64_t i = 0; i < n; i++) h[i] = ie_fp32_to_fp16(src[i]);
    ie_status s = ie_tensor_upload(t, h);
    free(h);
    return s;
}

ie_status ie_tensor_download_f32(ie_tensor *t, float *dst) {
    if (t->dtype == IE_F32) return ie_tensor_download(t, dst);
    if (t->dtype != IE_F16)
        return ie_backend_set_error(t->be, IE_ERR_ARG, "download_f32: tensor is %s", ie_dtype_name(t->dtype));
    int64_t n = ie_tensor_numel(t);
    uint16_t *h = malloc((size_t)n * 2);
    if (!h) return ie_backend_set_error(t->be, IE_ERR_NOMEM, "download_f32: out of host memory");
    ie_status s = ie_tensor_download(t, h);
    if (s == IE_OK)
        for (int64_t i = 0; i < n; i++) dst[i] = ie_fp16_to_fp32(h[i]);
    free(h);
    return s;
}

/* --- backends ------------------------------------------------------------- */

ie_backend *ie_backend_cpu_new(int n_threads) { return ie_cpu_backend_create(n_threads); }

ie_backend *ie_backend_vulkan_new(int device_index, char *err, size_t errlen) {
    return ie_vk_backend_create(device_index, err, errlen);
}

int ie_vulkan_preferred_device(const ie_device_info *devs, int n, bool for_auto) {
    static const ie_device_type order[] = {IE_DEVICE_DISCRETE, IE_DEVICE_INTEGRATED, IE_DEVICE_VIRTUAL, IE_DEVICE_OTHER,
                                           IE_DEVICE_CPU};
    for (size_t o = 0; o < sizeof order / sizeof order[0]; o++) {
        if (for_auto && order[o] == IE_DEVICE_CPU) continue;
        for (int i = 0; i < n; i++)
            if (devs[i].usable && devs[i].type == order[o]) return devs[i].index;
    }
    return -1;
}

bool ie_device_request_valid(const char *request, char *err, size_t errlen) {
    if (request && (!strcmp(request, "auto") || !strcmp(request, "cpu") || !strcmp(request, "vulkan"))) return true;
    if (request && !strncmp(request, "vulkan:", 7)) {
        const char *d = request + 7;
        size_t n = strspn(d, "0123456789");
        if (n > 0 && n <= 4 && !d[n]) return true;
    }
    if (err && errlen)
        snprintf(err, errlen,
                 "unknown device \"%s\" (expected auto, cpu, vulkan or vulkan:N with N a device "
                 "number from 'invedit devices')",
                 request ? request : "");
    return false;
}

ie_backend *ie_backend_open(const char *request, char *note, size_t notelen) {
    if (note && notelen) note[0] = 0;
    if (!request || !*request || !strcmp(request, "auto")) {
        const char *env = getenv("INVEDIT_DEVICE");
        request = env && *env ? env : "auto";
    }
    char err[512] = "";
    if (!strcmp(request, "cpu")) return ie_backend_cpu_new(0);
    if (!strncmp(request, "vulkan", 6) && ie_device_request_valid(request, NULL, 0)) {
        int index = -1;
        if (request[6] == ':') index = atoi(request + 7);
        ie_backend *be = ie_backend_vulkan_new(index, err, sizeof err);
        if (be) return be;
        if (note) snprintf(note, notelen, "Vulkan backend unavailable (%s); using the CPU backend", err);
        return ie_backend_cpu_new(0);
    }
    if (strcmp(request, "auto") != 0) {
        if (note)
            snprintf(note, notelen,
                     "unknown device \"%s\" (expected auto, cpu, vulkan or vulkan:N); using the CPU backend", request);
        return ie_backend_cpu_new(0);
    }
    ie_device_info devs[16];
    int n = ie_vulkan_list_devices(devs, 16, err, sizeof err);
    if (n < 0) {
        if (note) snprintf(note, notelen, "no Vulkan (%s); using the CPU backend", err);
        return ie_backend_cpu_new(0);
    }
    if (n > 16) n = 16;
    int index = ie_vulkan_preferred_device(devs, n, true);
    if (index < 0) {
        if (note)
            snprintf(note, notelen, "no Vulkan GPU found%s; using the CPU backend",
                     n ? " (only a CPU implementation)" : "");
        return ie_backend_cpu_new(0);
    }
    ie_backend *be = ie_backend_vulkan_new(index, err, sizeof err);
    if (be) return be;
    if (note) snprintf(note, notelen, "Vulkan device %d failed (%s); using the CPU backend", index, err);
    return ie_backend_cpu_new(0);
}

void ie_backend_free(ie_backend *be) {
    if (be) be->ops->destroy(be);
}

ie_backend_kind ie_backend_kind_of(const ie_backend *be) { return be->kind; }
const char *ie_backend_description(const ie_backend *be) { return be->description; }
const char *ie_backend_errmsg(const ie_backend *be) { return be->errmsg; }
ie_status ie_backend_sync(ie_backend *be) { return be->ops->sync(be); }

void ie_backend_memory(const ie_backend *be, uint64_t *in_use, uint64_t *peak) {
    if (in_use) *in_use = be->mem_in_use;
    if (peak) *peak = be->mem_peak;
}

/* The Vulkan backend copies its runtime's high-water mark into mem_peak at
 * every allocation, so the runtime's own mark is reset too. */
void ie_backend_reset_peak(ie_backend *be) {
    if (be->ops->reset_peak) be->ops->reset_peak(be);
    be->mem_peak = be->mem_in_use;
}
void ie_backend_trim(ie_backend *be) {
    if (be && be->ops->trim) be->ops->trim(be);
}
void ie_backend_timer_begin(ie_backend *be) { be->ops->timer_begin(be); }
double ie_backend_timer_end(ie_backend *be) { return be->ops->timer_end(be); }

/* --- per-op profile ------------------------------------------------------------ */

/* The op kinds of a profile, in the order of its table. */
enum {
    OP_CONV2D_1X1,
    OP_CONV2D_KXK,
    OP_MATMUL,
    OP_LINEAR,
    OP_GROUP_NORM,
    OP_LAYER_NORM,
    OP_ATTENTION,
    OP_ATTENTION_PROBS,
    OP_ATTENTION_APPLY,
    OP_UNARY,
    OP_SCALE,
    OP_GEGLU,
    OP_ADD,
    OP_MUL,
    OP_CONCAT,
    OP_UPSAMPLE,
    OP_TRANSPOSE,
    OP_COPY,
    OP_TIMESTEP_EMBEDDING,
    OP_EMBEDDING,
    OP_COUNT
};
_Static_assert(OP_COUNT == IE_OP_KINDS, "IE_OP_KINDS in ops.h must count the op kinds");

static const char *const op_kind_names[OP_COUNT] = {
    "conv2d 1x1",
    "conv2d kxk",
    "matmul",
    "linear",
    "group_norm",
    "layer_norm",
    "attention",
    "attention_probs",
    "attention_apply",
    "unary",
    "scale",
    "geglu",
    "add",
    "mul",
    "concat_channels",
    "upsample_nearest2x",
    "transpose",
    "copy",
    "timestep_embedding",
    "embedding",
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void ie_backend_profile_begin(ie_backend *be) {
    memset(be->profile, 0, sizeof be->profile);
    for (int i = 0; i < OP_COUNT; i++) be->profile[i].name = op_kind_names[i];
    be->profiling = true;
}

int ie_backend_profile_end(ie_backend *be, ie_op_stats *out, int max) {
    if (!be->profiling) return 0;
    be->profiling = false;
    int n = max < OP_COUNT ? max : OP_COUNT;
    for (int i = 0; i < n; i++) out[i] = be->profile[i];
    return n > 0 ? n : 0;
}

/* Calls the backend (`call`, an expression) and returns its status. With
 * profiling on, the call is timed up to the end of its work (Vulkan records
 * asynchronously: a sync waits for it) and counted under op_kind with
 * op_flops (evaluated only then). */
#define DISPATCH(op_kind, op_flops, call)                                                                              \
    do {                                                                                                               \
        if (!be->profiling) return (call);                                                                             \
        double t0_ = now_seconds();                                                                                    \
        ie_status s_ = (call);                                                                                         \
        if (s_ == IE_OK) s_ = be->ops->sync(be);                                                                       \
        if (s_ == IE_OK) {                                                                                             \
            ie_op_stats *st_ = &be->profile[op_kind];                                                                  \
            st_->calls++;                                                                                              \
            st_->seconds += now_seconds() - t0_;                                                                       \
            st_->flops += (op_flops);                                                                                  \
        }                                                                                                              \
        return s_;                                                                                                     \
    } while (0)

/* --- argument checks -------------------------------------------------------- */

/* Appends " name=[shape]" for each tensor to a message. */
static ie_status shape_error(ie_backend *be, const char *op, const char *what, int n, const char *const *names,
                             const ie_tensor *const *ts) {
    char msg[768], b[96];
    size_t off = (size_t)snprintf(msg, sizeof msg, "%s: %s;", op, what);
    for (int i = 0; i < n && off < sizeof msg; i++)
        off +=
            (size_t)snprintf(msg + off, sizeof msg - off, " %s=%s", names[i], ie_tensor_shape_str(ts[i], b, sizeof b));
    return ie_backend_set_error(be, IE_ERR_SHAPE, "%s", msg);
}

#define SHAPE_ERR(op, what, ...)                                                                                       \
    do {                                                                                                               \
        const ie_tensor *ts_[] = {__VA_ARGS__};                                                                        \
        return shape_error(be, op, what, (int)(sizeof ts_ / sizeof ts_[0]), names_, ts_);                              \
    } while (0)

static bool same_shape(const ie_tensor *a, const ie_tensor *b) {
    if (ie_tensor_numel(a) != ie_tensor_numel(b) || a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

static ie_status check_backend(ie_backend *be, const char *op, int n, const ie_tensor *const *ts) {
    for (int i = 0; i < n; i++)
        if (ts[i] && ts[i]->be != be)
            return ie_backend_set_error(be, IE_ERR_ARG, "%s: tensor %d belongs to another backend", op, i);
    return IE_OK;
}

#define CHECK_BACKEND(op, ...)                                                                                         \
    do {                                                                                                               \
        const ie_tensor *bt_[] = {__VA_ARGS__};                                                                        \
        ie_status s_ = check_backend(be, op, (int)(sizeof bt_ / sizeof bt_[0]), bt_);                                  \
        if (s_) return s_;                                                                                             \
    } while (0)

/* True when two tensors share any byte of storage. */
static bool overlap(const ie_tensor *a, const ie_tensor *b) {
    if (!a || !b || a->storage != b->storage) return false;
    uint64_t a0 = a->offset, a1 = a0 + ie_tensor_nbytes(a), b0 = b->offset, b1 = b0 + ie_tensor_nbytes(b);
    return a0 < b1 && b0 < a1;
}

/* Ops that read inputs after writing parts of the output cannot run in place. */
#define CHECK_NO_ALIAS(op, out, ...)                                                                                   \
    do {                                                                                                               \
        const ie_tensor *in_[] = {__VA_ARGS__};                                                                        \
        for (size_t i_ = 0; i_ < sizeof in_ / sizeof in_[0]; i_++)                                                     \
            if (overlap(out, in_[i_]))                                                                                 \
                return ie_backend_set_error(be, IE_ERR_ARG, "%s: the output overlaps input %zu (not an in-place op)",  \
                                            op, i_);                                                                   \
    } while (0)

static bool is_f32(const ie_tensor *t) { return t->dtype == IE_F32; }
static bool is_weight_type(const ie_tensor *t) { return t->dtype == IE_F32 || t->dtype == IE_F16; }

/* --- ops ------------------------------------------------------------------ */

ie_conv2d_params ie_conv2d_params_sym(int stride, int pad) {
    ie_conv2d_params p = {stride, pad, pad, pad, pad};
    return p;
}

ie_status ie_conv2d(ie_backend *be, ie_tensor *out, const ie_tensor *x, const ie_tensor *w, const ie_tensor *b,
                    const ie_conv2d_params *p) {
    static const char *names_[] = {"out", "x", "w", "b"};
    CHECK_BACKEND("conv2d", out, x, w, b);
    CHECK_NO_ALIAS("conv2d", out, x, w, b);
    if (!p || p->stride < 1 || p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0)
        return ie_backend_set_error(be, IE_ERR_ARG, "conv2d: invalid stride/padding");
    if (x->ndim != 4 || w->ndim != 4 || out->ndim != 4 || !is_f32(x) || !is_f32(out) || !is_weight_type(w))
        SHAPE_ERR("conv2d", "expected 4-D f32 x/out and 4-D f32|f16 w", out, x, w, b);
    int64_t N = x->shape[0], Cin = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t Cout = w->shape[0], KH = w->shape[2], KW = w->shape[3];
    if (w->shape[1] != Cin) SHAPE_ERR("conv2d", "w's input channels differ from x's", out, x, w, b);
    if (b && (b->ndim != 1 || b->shape[0] != Cout || !is_weight_type(b)))
        SHAPE_ERR("conv2d", "bias must be [Cout]", out, x, w, b);
    int64_t hp = H + p->pad_top + p->pad_bottom, wp = W + p->pad_left + p->pad_right;
    if (hp < KH || wp < KW) SHAPE_ERR("conv2d", "kernel larger than the padded input", out, x, w, b);
    int64_t OH = (hp - KH) / p->stride + 1, OW = (wp - KW) / p->stride + 1;
    if (out->shape[0] != N || out->shape[1] != Cout || out->shape[2] != OH || out->shape[3] != OW) {
        char what[128];
        snprintf(what, sizeof what, "out must be [%lld, %lld, %lld, %lld]", (long long)N, (long long)Cout,
                 (long long)OH, (long long)OW);
        SHAPE_ERR("conv2d", what, out, x, w, b);
    }
    DISPATCH(w->shape[2] == 1 && w->shape[3] == 1 ? OP_CONV2D_1X1 : OP_CONV2D_KXK,
             2.0 * (double)ie_tensor_numel(out) * (double)(w->shape[1] * w->shape[2] * w->shape[3]),
             be->ops->conv2d(be, out, x, w, b, p));
}

ie_status ie_matmul(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b, const ie_tensor *bias,
                    bool trans_a, bool trans_b) {
    static const char *names_[] = {"out", "a", "b", "bias"};
    CHECK_BACKEND("matmul", out, a, b, bias);
    CHECK_NO_ALIAS("matmul", out, a, b, bias);
    if (a->ndim < 2 || a->ndim > 3 || b->ndim < 2 || b->ndim > 3 || out->ndim < 2 || out->ndim > 3 || !is_f32(a) ||
        !is_f32(out) || !is_weight_type(b))
        SHAPE_ERR("matmul", "expected 2-D or 3-D operands (a, out f32; b f32|f16)", out, a, b, bias);
    int64_t Ba = a->ndim == 3 ? a->shape[0] : 1, Bb = b->ndim == 3 ? b->shape[0] : 1;
    int64_t Bo = out->ndim == 3 ? out->shape[0] : 1;
    const int64_t *as = a->shape + (a->ndim - 2), *bs = b->shape + (b->ndim - 2);
    const int64_t *os = out->shape + (out->ndim - 2);
    int64_t M = trans_a ? as[1] : as[0], K = trans_a ? as[0] : as[1];
    int64_t Kb = trans_b ? bs[1] : bs[0], N = trans_b ? bs[0] : bs[1];
    if (K != Kb) SHAPE_ERR("matmul", "inner dimensions differ", out, a, b, bias);
    int64_t B = Ba > Bb ? Ba : Bb;
    if ((Ba != 1 && Ba != B) || (Bb != 1 && Bb != B) || Bo != B)
        SHAPE_ERR("matmul", "batch sizes differ", out, a, b, bias);
    if (os[0] != M || os[1] != N) SHAPE_ERR("matmul", "out must be [B, M, N]", out, a, b, bias);
    if (bias && (ie_tensor_numel(bias) != N || !is_weight_type(bias)))
        SHAPE_ERR("matmul", "bias must have N elements", out, a, b, bias);
    DISPATCH(OP_MATMUL, 2.0 * (double)B * (double)M * (double)N * (double)K,
             be->ops->matmul(be, out, a, b, bias, trans_a, trans_b, B, M, N, K, Ba > 1, Bb > 1));
}

ie_status ie_linear(ie_backend *be, ie_tensor *out, const ie_tensor *x, const ie_tensor *w, const ie_tensor *b) {
    static const char *names_[] = {"out", "x", "w", "b"};
    CHECK_BACKEND("linear", out, x, w, b);
    CHECK_NO_ALIAS("linear", out, x, w, b);
    if (w->ndim != 2 || !is_weight_type(w) || !is_f32(x) || !is_f32(out))
        SHAPE_ERR("linear", "w must be 2-D [N, K]; x and out f32", out, x, w, b);
    int64_t N = w->shape[0], K = w->shape[1];
    if (x->shape[x->ndim - 1] != K) SHAPE_ERR("linear", "x's last dim must equal w's K", out, x, w, b);
    if (out->ndim != x->ndim || out->shape[out->ndim - 1] != N)
        SHAPE_ERR("linear", "out must be x's shape with last dim N", out, x, w, b);
    for (int i = 0; i < x->ndim - 1; i++)
        if (out->shape[i] != x->shape[i]) SHAPE_ERR("linear", "out must be x's shape with last dim N", out, x, w, b);
    if (b && (b->ndim != 1 || b->shape[0] != N || !is_weight_type(b)))
        SHAPE_ERR("linear", "bias must be [N]", out, x, w, b);
    /* x's first dimension is the batch: x [B, ..., K] runs as B products of
     * [rows, K], so a batch row's result never depends on its position in
     * the batch or on the batch size (exact inversion relies on it; BLAS
     * kernels treat tail rows differently). A 2-D x [B, K] is B rows. */
    int64_t B = x->ndim >= 2 ? x->shape[0] : 1, rows = ie_tensor_numel(x) / K / B;
    DISPATCH(OP_LINEAR, 2.0 * (double)B * (double)rows * (double)N * (double)K,
             be->ops->matmul(be, out, x, w, b, false, true, B, rows, N, K, B > 1, false));
}

static ie_status check_affine(ie_backend *be, const char *op, const ie_tensor *out, const ie_tensor *x,
                              const ie_tensor *gamma, const ie_tensor *beta, int64_t C) {
    static const char *names_[] = {"out", "x", "gamma", "beta"};
    if (!is_f32(x) || !same_shape(out, x) || !is_f32(out))
        SHAPE_ERR(op, "out must be f32 with x's shape", out, x, gamma, beta);
    if ((gamma && (ie_tensor_numel(gamma) != C || !is_weight_type(gamma))) ||
        (beta && (ie_tensor_numel(beta) != C || !is_weight_type(beta))))
        SHAPE_ERR(op, "gamma and beta must have C elements", out, x, gamma, beta);
    return IE_OK;
}

ie_status ie_group_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, int groups, float eps,
                        const ie_tensor *gamma, const ie_tensor *beta, bool silu) {
    static const char *names_[] = {"x"};
    CHECK_BACKEND("group_norm", out, x, gamma, beta);
    if (x->ndim < 2) SHAPE_ERR("group_norm", "x must be [N, C, ...]", x);
    int64_t N = x->shape[0], C = x->shape[1], S = ie_tensor_numel(x) / (N * C);
    if (groups < 1 || C % groups)
        return ie_backend_set_error(be, IE_ERR_ARG, "group_norm: %lld channels not divisible by %d groups",
                                    (long long)C, groups);
    if (!(eps >= 0)) return ie_backend_set_error(be, IE_ERR_ARG, "group_norm: eps must be >= 0");
    ie_status s = check_affine(be, "group_norm", out, x, gamma, beta, C);
    if (s) return s;
    DISPATCH(OP_GROUP_NORM, 0, be->ops->group_norm(be, out, x, groups, eps, gamma, beta, silu, N, C, S));
}

ie_status ie_layer_norm(ie_backend *be, ie_tensor *out, const ie_tensor *x, float eps, const ie_tensor *gamma,
                        const ie_tensor *beta) {
    CHECK_BACKEND("layer_norm", out, x, gamma, beta);
    int64_t C = x->shape[x->ndim - 1];
    if (!(eps >= 0)) return ie_backend_set_error(be, IE_ERR_ARG, "layer_norm: eps must be >= 0");
    ie_status s = check_affine(be, "layer_norm", out, x, gamma, beta, C);
    if (s) return s;
    DISPATCH(OP_LAYER_NORM, 0, be->ops->layer_norm(be, out, x, eps, gamma, beta, ie_tensor_numel(x) / C, C));
}

static ie_status check_qk(ie_backend *be, const char *op, const ie_tensor *q, const ie_tensor *k, int heads) {
    static const char *names_[] = {"q", "k"};
    if (heads < 1) return ie_backend_set_error(be, IE_ERR_ARG, "%s: heads must be >= 1", op);
    if (q->ndim != 3 || k->ndim != 3 || !is_f32(q) || !is_f32(k))
        SHAPE_ERR(op, "q and k must be f32 [B, L, H*D]", q, k);
    if (q->shape[0] != k->shape[0] || q->shape[2] != k->shape[2] || q->shape[2] % heads)
        SHAPE_ERR(op, "q and k need equal batch and channels divisible by heads", q, k);
    return IE_OK;
}

ie_status ie_attention(ie_backend *be, ie_tensor *out, const ie_tensor *q, const ie_tensor *k, const ie_tensor *v,
                       int heads, float scale, bool causal) {
    static const char *names_[] = {"out", "q", "k", "v"};
    CHECK_BACKEND("attention", out, q, k, v);
    CHECK_NO_ALIAS("attention", out, q, k, v);
    ie_status s = check_qk(be, "attention", q, k, heads);
    if (s) return s;
    if (v->ndim != 3 || !is_f32(v) || v->shape[0] != k->shape[0] || v->shape[1] != k->shape[1] || v->shape[2] % heads)
        SHAPE_ERR("attention", "v must be [B, Lk, H*Dv]", out, q, k, v);
    if (out->ndim != 3 || !is_f32(out) || out->shape[0] != q->shape[0] || out->shape[1] != q->shape[1] ||
        out->shape[2] != v->shape[2])
        SHAPE_ERR("attention", "out must be [B, Lq, H*Dv]", out, q, k, v);
    DISPATCH(OP_ATTENTION,
             2.0 * (double)q->shape[0] * (double)q->shape[1] * (double)k->shape[1] *
                 (double)(q->shape[2] + v->shape[2]),
             be->ops->attention(be, out, q, k, v, heads, scale, causal));
}

ie_status ie_attention_probs(ie_backend *be, ie_tensor *probs, const ie_tensor *q, const ie_tensor *k, int heads,
                             float scale, bool causal) {
    static const char *names_[] = {"probs", "q", "k"};
    CHECK_BACKEND("attention_probs", probs, q, k);
    CHECK_NO_ALIAS("attention_probs", probs, q, k);
    ie_status s = check_qk(be, "attention_probs", q, k, heads);
    if (s) return s;
    if (probs->ndim != 4 || !is_f32(probs) || probs->shape[0] != q->shape[0] || probs->shape[1] != heads ||
        probs->shape[2] != q->shape[1] || probs->shape[3] != k->shape[1])
        SHAPE_ERR("attention_probs", "probs must be [B, H, Lq, Lk]", probs, q, k);
    DISPATCH(OP_ATTENTION_PROBS,
             2.0 * (double)q->shape[0] * (double)q->shape[1] * (double)k->shape[1] * (double)q->shape[2],
             be->ops->attention_probs(be, probs, q, k, heads, scale, causal));
}

ie_status ie_attention_apply(ie_backend *be, ie_tensor *out, const ie_tensor *probs, const ie_tensor *v) {
    static const char *names_[] = {"out", "probs", "v"};
    CHECK_BACKEND("attention_apply", out, probs, v);
    CHECK_NO_ALIAS("attention_apply", out, probs, v);
    if (probs->ndim != 4 || v->ndim != 3 || out->ndim != 3 || !is_f32(probs) || !is_f32(v) || !is_f32(out))
        SHAPE_ERR("attention_apply", "expected probs [B, H, Lq, Lk], v [B, Lk, H*Dv]", out, probs, v);
    int64_t B = probs->shape[0], H = probs->shape[1], Lq = probs->shape[2], Lk = probs->shape[3];
    if (v->shape[0] != B || v->shape[1] != Lk || v->shape[2] % H)
        SHAPE_ERR("attention_apply", "v must be [B, Lk, H*Dv]", out, probs, v);
    if (out->shape[0] != B || out->shape[1] != Lq || out->shape[2] != v->shape[2])
        SHAPE_ERR("attention_apply", "out must be [B, Lq, H*Dv]", out, probs, v);
    DISPATCH(OP_ATTENTION_APPLY, 2.0 * (double)ie_tensor_numel(probs) * (double)(v->shape[2] / H),
             be->ops->attention_apply(be, out, probs, v));
}

static ie_status check_same(ie_backend *be, const char *op, const ie_tensor *out, const ie_tensor *x) {
    static const char *names_[] = {"out", "x"};
    if (!is_f32(x) || !is_f32(out) || ie_tensor_numel(out) != ie_tensor_numel(x))
        SHAPE_ERR(op, "out and x must be f32 with the same number of elements", out, x);
    return IE_OK;
}

ie_status ie_unary(ie_backend *be, ie_tensor *out, const ie_tensor *x, ie_unary_op op) {
    CHECK_BACKEND("unary", out, x);
    if ((unsigned)op > IE_UNARY_TANH) return ie_backend_set_error(be, IE_ERR_ARG, "unary: unknown op %d", (int)op);
    ie_status s = check_same(be, "unary", out, x);
    if (s) return s;
    DISPATCH(OP_UNARY, 0, be->ops->unary(be, out, x, op));
}

ie_status ie_scale(ie_backend *be, ie_tensor *out, const ie_tensor *x, float scale, float bias) {
    CHECK_BACKEND("scale", out, x);
    ie_status s = check_same(be, "scale", out, x);
    if (s) return s;
    DISPATCH(OP_SCALE, 0, be->ops->scale(be, out, x, scale, bias));
}

ie_status ie_geglu(ie_backend *be, ie_tensor *out, const ie_tensor *x) {
    static const char *names_[] = {"out", "x"};
    CHECK_BACKEND("geglu", out, x);
    CHECK_NO_ALIAS("geglu", out, x);
    int64_t C2 = x->shape[x->ndim - 1];
    if (!is_f32(x) || !is_f32(out) || C2 % 2 || out->ndim != x->ndim || out->shape[out->ndim - 1] != C2 / 2 ||
        ie_tensor_numel(out) * 2 != ie_tensor_numel(x))
        SHAPE_ERR("geglu", "out must be x's shape with half the last dim", out, x);
    DISPATCH(OP_GEGLU, 0, be->ops->geglu(be, out, x, ie_tensor_numel(x) / C2, C2 / 2));
}

static ie_status binary(ie_backend *be, const char *op, int code, ie_tensor *out, const ie_tensor *a,
                        const ie_tensor *b) {
    static const char *names_[] = {"out", "a", "b"};
    CHECK_BACKEND(op, out, a, b);
    if (!is_f32(a) || !is_f32(out) || !is_weight_type(b) || !same_shape(out, a) || b->ndim > a->ndim)
        SHAPE_ERR(op, "out must be f32 with a's shape; b broadcastable to a", out, a, b);
    int64_t as[4] = {1, 1, 1, 1}, bs[4] = {1, 1, 1, 1};
    for (int i = 0; i < a->ndim; i++) as[4 - a->ndim + i] = a->shape[i];
    for (int i = 0; i < b->ndim; i++) bs[4 - b->ndim + i] = b->shape[i];
    for (int i = 0; i < 4; i++)
        if (bs[i] != as[i] && bs[i] != 1) SHAPE_ERR(op, "b is not broadcastable to a", out, a, b);
    DISPATCH(code ? OP_MUL : OP_ADD, 0, be->ops->binary(be, out, a, b, code, as, bs));
}

ie_status ie_add(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b) {
    return binary(be, "add", 0, out, a, b);
}

ie_status ie_mul(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b) {
    return binary(be, "mul", 1, out, a, b);
}

ie_status ie_concat_channels(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b) {
    static const char *names_[] = {"out", "a", "b"};
    CHECK_BACKEND("concat_channels", out, a, b);
    CHECK_NO_ALIAS("concat_channels", out, a, b);
    if (a->ndim < 2 || b->ndim != a->ndim || out->ndim != a->ndim || !is_f32(a) || !is_f32(b) || !is_f32(out))
        SHAPE_ERR("concat_channels", "expected f32 [N, C, ...] tensors of equal rank", out, a, b);
    for (int i = 0; i < a->ndim; i++) {
        if (i == 1) continue;
        if (b->shape[i] != a->shape[i] || out->shape[i] != a->shape[i])
            SHAPE_ERR("concat_channels", "all dims but channels must agree", out, a, b);
    }
    if (out->shape[1] != a->shape[1] + b->shape[1])
        SHAPE_ERR("concat_channels", "out channels must be Ca + Cb", out, a, b);
    int64_t N = a->shape[0], S = ie_tensor_numel(a) / (N * a->shape[1]);
    DISPATCH(OP_CONCAT, 0, be->ops->concat_channels(be, out, a, b, N, a->shape[1], b->shape[1], S));
}

ie_status ie_upsample_nearest2x(ie_backend *be, ie_tensor *out, const ie_tensor *x) {
    static const char *names_[] = {"out", "x"};
    CHECK_BACKEND("upsample_nearest2x", out, x);
    CHECK_NO_ALIAS("upsample_nearest2x", out, x);
    if (x->ndim != 4 || out->ndim != 4 || !is_f32(x) || !is_f32(out) || out->shape[0] != x->shape[0] ||
        out->shape[1] != x->shape[1] || out->shape[2] != 2 * x->shape[2] || out->shape[3] != 2 * x->shape[3])
        SHAPE_ERR("upsample_nearest2x", "out must be [N, C, 2H, 2W]", out, x);
    DISPATCH(OP_UPSAMPLE, 0, be->ops->upsample_nearest2x(be, out, x));
}

ie_status ie_transpose(ie_backend *be, ie_tensor *out, const ie_tensor *x) {
    static const char *names_[] = {"out", "x"};
    CHECK_BACKEND("transpose", out, x);
    CHECK_NO_ALIAS("transpose", out, x);
    if (x->ndim < 2 || out->ndim != x->ndim || !is_f32(x) || !is_f32(out))
        SHAPE_ERR("transpose", "expected f32 tensors of equal rank >= 2", out, x);
    int n = x->ndim;
    for (int i = 0; i < n - 2; i++)
        if (out->shape[i] != x->shape[i]) SHAPE_ERR("transpose", "batch dims must agree", out, x);
    if (out->shape[n - 2] != x->shape[n - 1] || out->shape[n - 1] != x->shape[n - 2])
        SHAPE_ERR("transpose", "out's last two dims must be x's swapped", out, x);
    int64_t R = x->shape[n - 2], C = x->shape[n - 1];
    DISPATCH(OP_TRANSPOSE, 0, be->ops->transpose(be, out, x, ie_tensor_numel(x) / (R * C), R, C));
}

ie_status ie_copy(ie_backend *be, ie_tensor *out, const ie_tensor *x) {
    static const char *names_[] = {"out", "x"};
    CHECK_BACKEND("copy", out, x);
    if (ie_tensor_numel(out) != ie_tensor_numel(x) || ((out->dtype == IE_I32) != (x->dtype == IE_I32)))
        SHAPE_ERR("copy", "same number of elements and compatible dtypes needed", out, x);
    DISPATCH(OP_COPY, 0, be->ops->copy(be, out, x));
}

ie_status ie_timestep_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *t, int dim, bool flip_sin_to_cos,
                                float shift, float max_period) {
    static const char *names_[] = {"out", "t"};
    CHECK_BACKEND("timestep_embedding", out, t);
    CHECK_NO_ALIAS("timestep_embedding", out, t);
    if (dim < 2 || !(max_period > 0) || !(shift < dim / 2))
        return ie_backend_set_error(be, IE_ERR_ARG, "timestep_embedding: bad dim/shift/max_period");
    if (t->ndim != 1 || !is_f32(t) || out->ndim != 2 || !is_f32(out) || out->shape[0] != t->shape[0] ||
        out->shape[1] != dim)
        SHAPE_ERR("timestep_embedding", "t must be [B] f32 and out [B, dim]", out, t);
    DISPATCH(OP_TIMESTEP_EMBEDDING, 0,
             be->ops->timestep_embedding(be, out, t, dim, flip_sin_to_cos, shift, max_period));
}

ie_status ie_embedding(ie_backend *be, ie_tensor *out, const ie_tensor *ids, const ie_tensor *table) {
    static const char *names_[] = {"out", "ids", "table"};
    CHECK_BACKEND("embedding", out, ids, table);
    CHECK_NO_ALIAS("embedding", out, ids, table);
    if (ids->dtype != IE_I32 || table->ndim != 2 || !is_weight_type(table) || !is_f32(out) ||
        out->ndim != ids->ndim + 1 || out->shape[out->ndim - 1] != table->shape[1] ||
        ie_tensor_numel(out) != ie_tensor_numel(ids) * table->shape[1])
        SHAPE_ERR("embedding", "expected ids i32 [B, L], table [V, D], out [B, L, D]", out, ids, table);
    DISPATCH(OP_EMBEDDING, 0, be->ops->embedding(be, out, ids, table));
}
