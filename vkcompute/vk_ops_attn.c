/* Vulkan attention. STUB: being written. */
#include "vk_ops.h"

ie_status vk_op_attention(ie_backend *be, ie_tensor *out, const ie_tensor *q, const ie_tensor *k,
                          const ie_tensor *v, int heads, float scale, bool causal) {
    return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "attention: not implemented on vulkan yet");
}
ie_status vk_op_attention_probs(ie_backend *be, ie_tensor *probs, const ie_tensor *q,
                                const ie_tensor *k, int heads, float scale, bool causal) {
    return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "attention_probs: not implemented on vulkan yet");
}
ie_status vk_op_attention_apply(ie_backend *be, ie_tensor *out, const ie_tensor *probs,
                                const ie_tensor *v) {
    return ie_backend_set_error(be, IE_ERR_UNSUPPORTED, "attention_apply: not implemented on vulkan yet");
}
