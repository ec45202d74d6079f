/* Bad arguments at the op API: every shape mismatch returns IE_ERR_SHAPE with
 * a message naming the op and the shapes; impossible allocations return
 * IE_ERR_NOMEM with a message; nothing aborts. Runs on every backend. */
#include "vkcompute/ops.h"
#include "testutil.h"

#include <string.h>

static ie_tensor *T(ie_backend *be, ie_dtype dt, int n, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t s[4] = {a, b, c, d};
    ie_tensor *t = ie_tensor_new(be, dt, n, s);
    if (!t) {
        printf("FAIL could not allocate a small tensor: %s\n", ie_backend_errmsg(be));
        exit(1);
    }
    return t;
}

/* The call must fail with `want` and its message must contain every needle. */
static void expect(ie_backend *be, const char *what, ie_status got, ie_status want, const char *n1, const char *n2) {
    const char *msg = ie_backend_errmsg(be);
    int ok = got == want && (!n1 || strstr(msg, n1)) && (!n2 || strstr(msg, n2));
    TU_CHECK(ok, "%-34s -> %s: %s", what, ie_status_name(got), msg);
}

static void run(ie_backend *be) {
    printf("-- %s\n", ie_backend_description(be));
    ie_conv2d_params p = ie_conv2d_params_sym(1, 1);
    ie_tensor *x = T(be, IE_F32, 4, 1, 8, 7, 9), *w = T(be, IE_F32, 4, 4, 5, 3, 3);
    ie_tensor *o = T(be, IE_F32, 4, 1, 4, 7, 9), *w8 = T(be, IE_F32, 4, 4, 8, 3, 3);
    ie_tensor *o_bad = T(be, IE_F32, 4, 1, 4, 7, 8);
    expect(be, "conv2d channel mismatch", ie_conv2d(be, o, x, w, NULL, &p), IE_ERR_SHAPE, "conv2d", "[4, 5, 3, 3]");
    expect(be, "conv2d wrong output", ie_conv2d(be, o_bad, x, w8, NULL, &p), IE_ERR_SHAPE, "out must be [1, 4, 7, 9]",
           "[1, 4, 7, 8]");
    ie_conv2d_params neg = {1, -1, 0, 0, 0};
    expect(be, "conv2d negative pad", ie_conv2d(be, o, x, w8, NULL, &neg), IE_ERR_ARG, "conv2d", NULL);
    expect(be, "conv2d in place", ie_conv2d(be, x, x, w8, NULL, &p), IE_ERR_ARG, "conv2d: the output overlaps", NULL);

    ie_tensor *a = T(be, IE_F32, 2, 6, 5, 1, 1), *b = T(be, IE_F32, 2, 4, 5, 1, 1);
    ie_tensor *mo = T(be, IE_F32, 2, 6, 4, 1, 1);
    expect(be, "matmul inner mismatch", ie_matmul(be, mo, a, b, NULL, false, false), IE_ERR_SHAPE,
           "matmul: inner dimensions differ", "[4, 5] f32");
    expect(be, "linear ok then wrong w", ie_linear(be, mo, a, a, NULL), IE_ERR_SHAPE, "linear", "[6, 5]");

    ie_tensor *g = T(be, IE_F32, 1, 7, 1, 1, 1);
    expect(be, "group_norm groups", ie_group_norm(be, x, x, 3, 1e-5f, NULL, NULL, false), IE_ERR_ARG,
           "not divisible by 3 groups", NULL);
    expect(be, "group_norm gamma size", ie_group_norm(be, x, x, 4, 1e-5f, g, NULL, false), IE_ERR_SHAPE, "gamma",
           "[7] f32");
    expect(be, "layer_norm out shape", ie_layer_norm(be, o, x, 1e-5f, NULL, NULL), IE_ERR_SHAPE, "layer_norm",
           "[1, 4, 7, 9]");

    ie_tensor *q = T(be, IE_F32, 3, 2, 16, 40, 1), *k = T(be, IE_F32, 3, 2, 77, 32, 1);
    ie_tensor *ao = T(be, IE_F32, 3, 2, 16, 40, 1);
    expect(be, "attention channel mismatch", ie_attention(be, ao, q, k, k, 8, 0.1f, false), IE_ERR_SHAPE, "attention",
           "[2, 77, 32]");
    expect(be, "attention heads", ie_attention(be, ao, q, q, q, 3, 0.1f, false), IE_ERR_SHAPE, "divisible by heads",
           NULL);
    ie_tensor *pr = T(be, IE_F32, 4, 2, 8, 16, 16);
    expect(be, "attention_probs shape", ie_attention_probs(be, pr, q, q, 4, 0.1f, false), IE_ERR_SHAPE,
           "probs must be [B, H, Lq, Lk]", "[2, 8, 16, 16]");

    ie_tensor *c3 = T(be, IE_F32, 3, 1, 3, 1, 1), *c8 = T(be, IE_F32, 3, 8, 1, 1, 1);
    expect(be, "add broadcast", ie_add(be, x, x, c3), IE_ERR_SHAPE, "not broadcastable", "[1, 3, 1]");
    expect(be, "add broadcast ok", ie_add(be, x, x, c8), IE_OK, NULL, NULL);
    expect(be, "concat spatial mismatch", ie_concat_channels(be, o, x, o_bad), IE_ERR_SHAPE, "concat_channels",
           "[1, 4, 7, 8]");
    expect(be, "upsample", ie_upsample_nearest2x(be, o, x), IE_ERR_SHAPE, "[N, C, 2H, 2W]", NULL);
    expect(be, "transpose in place", ie_transpose(be, a, a), IE_ERR_ARG, "transpose: the output overlaps", NULL);
    expect(be, "geglu odd", ie_geglu(be, o, x), IE_ERR_SHAPE, "geglu", NULL);
    ie_tensor *ids = T(be, IE_F32, 2, 1, 4, 1, 1);
    ie_tensor *tab = T(be, IE_F32, 2, 10, 8, 1, 1), *eo = T(be, IE_F32, 3, 1, 4, 8, 1);
    expect(be, "embedding ids dtype", ie_embedding(be, eo, ids, tab), IE_ERR_SHAPE, "embedding", "[1, 4] f32");
    expect(be, "timestep dim", ie_timestep_embedding(be, eo, ids, 1, true, 0, 10000), IE_ERR_ARG, "timestep_embedding",
           NULL);

    /* an impossible allocation: a clear error, not an abort */
    int64_t huge[2] = {(int64_t)1 << 20, (int64_t)1 << 20}; /* 4 TiB of f32 */
    ie_tensor *h = ie_tensor_new(be, IE_F32, 2, huge);
    TU_CHECK(h == NULL && strlen(ie_backend_errmsg(be)) > 0, "a 4 TiB tensor is refused: %s", ie_backend_errmsg(be));
    ie_tensor_free(h);
    int64_t zero[1] = {0};
    TU_CHECK(ie_tensor_new(be, IE_F32, 1, zero) == NULL, "a zero-size tensor is refused: %s", ie_backend_errmsg(be));

    ie_tensor *all[] = {x, w, o, w8, o_bad, a, b, mo, g, q, k, ao, pr, c3, c8, ids, tab, eo};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ie_tensor_free(all[i]);
}

int main(void) {
    ie_backend *cpu = ie_backend_cpu_new(0);
    run(cpu);
    ie_backend_free(cpu);
    char err[256];
    ie_backend *vk = ie_backend_vulkan_new(-1, err, sizeof err);
    if (vk) {
        run(vk);
        ie_backend_free(vk);
    } else {
        printf("(no Vulkan device: %s)\n", err);
    }
    return tu_finish("test_op_errors");
}
