/* Vulkan conv2d (implicit GEMM) and matmul. STUB: being written. */
#include "vk_ops.h"

ie_status vk_op_conv2d(ie_backend *be, ie_tensor *out, const ie_tensor *x, const ie_tensor *w,
                       const ie_tensor *b, const ie_conv2d_params *p) {
    return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "conv2d: not implemented on vulkan yet");
}

ie_status vk_op_matmul(ie_backend *be, ie_tensor *out, const ie_tensor *a, const ie_tensor *b,
                       const ie_tensor *bias, bool trans_a, bool trans_b, int64_t B, int64_t M,
                       int64_t N, int64_t K, bool a_batched, bool b_batched) {
    return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "matmul: not implemented on vulkan yet");
}
