/* Binding checkpoint tensors to ie_tensors on a backend.
 *
 * A network's loader (unet_load, vae_load, ...) runs the network's walk
 * (tensors.h) with a binder, which is asked for each tensor by name with the
 * shape the configuration implies:
 *
 *     sd_binder b;
 *     sd_binder_init(&b, be, wt, w, SD_UNET, &u->mem);
 *     sd_unet_walk(&b.walk, cfg, &u->weights);
 *     s = sd_binder_finish(&b, "unet", err, errlen);
 *
 * The binder finds the tensor (canonical diffusers names through the
 * loader's sd_weights, after the component's prefix such as "unet."), checks
 * its shape, creates an ie_tensor of the weight dtype on the backend,
 * converts the file data (F32,
 * F16, BF16, F64) and uploads it once. Missing or misshapen tensors do not
 * stop the walk: every problem is collected, and sd_binder_finish() reports
 * them by name with expected vs found shapes:
 *     unet.down_blocks.1.resnets.0.conv1.weight: expected [64, 32, 3, 3], found [64, 33, 3, 3]
 *     unet.time_embedding.cond_proj.weight: missing (expected [32, 16])
 * (Tensors a file has but the configuration does not use are listed by the
 * loader's sd_weights_check, config.h.)
 *
 * Weight dtype: matrices and kernels (ndim >= 2) take the binder's dtype;
 * 1-D tensors (biases, norm parameters) are always fp32 (tiny, and exact).
 * SD_WTYPE_AUTO is fp16 on both backends (the CPU backend widens fp16
 * weights to fp32 inside each op; docs/memory.md).
 */
#ifndef INVEDIT_WEIGHTS_H
#define INVEDIT_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/names.h"
#include "model/nn.h"
#include "vkcompute/ops.h"
#include "model/safetensors.h"
#include "model/tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sd_wtype {
    SD_WTYPE_AUTO = 0, /* fp16 on both backends */
    SD_WTYPE_F32 = 1,
    SD_WTYPE_F16 = 2,
} sd_wtype;

ie_dtype sd_wtype_resolve(sd_wtype t, ie_backend *be);
const char *sd_wtype_name(sd_wtype t);

/* The weights a network owns (freed together). */
typedef struct sd_tensor_list {
    ie_tensor **t;
    int n, cap;
    uint64_t bytes; /* device bytes of all tensors */
} sd_tensor_list;

void sd_tensor_list_free(sd_tensor_list *l);

typedef struct sd_binder {
    sd_walk walk; /* first: the walks call back through it */
    ie_backend *be;
    ie_dtype dtype;        /* for tensors with ndim >= 2 */
    const sd_weights *src; /* canonical names: prefix + name (e.g. "unet." + ...) */
    char prefix[64];
    sd_tensor_list *owner; /* bound tensors are appended here */
    /* results */
    ie_status status; /* first hard error (out of memory, upload failure) */
    int n_bound, n_missing, n_mismatched, n_unreadable;
    char *problems; /* one line per problem (malloc'ed) */
    size_t problems_len;
} sd_binder;

/* From the loader's model source; prefix = the component's canonical prefix
 * ("unet." etc.). */
void sd_binder_init(sd_binder *b, ie_backend *be, sd_wtype wt, const sd_weights *src, sd_component comp,
                    sd_tensor_list *owner);

/* IE_OK when every tensor was bound; else IE_ERR_FORMAT (or the hard error)
 * with "<what>: N missing, M misshapen:\n<first problems>" in err. Frees the
 * binder's bookkeeping (not the bound tensors). */
ie_status sd_binder_finish(sd_binder *b, const char *what, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
