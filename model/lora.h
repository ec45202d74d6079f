/* LoRAs merged into the weights at load time.
 *
 * A LoRA file (safetensors) holds, per adapted layer, a pair of low-rank
 * factors down [r, in(, kh, kw)] and up [out, r(, 1, 1)] and optionally a
 * scalar alpha. Loading a model with LoRAs changes each adapted weight, on
 * the host before upload (weights.h asks the set for every tensor):
 *
 *     W += scale * (alpha / r) * up @ down      (alpha absent: alpha = r)
 *
 * for Linear weights [out, in] and 1x1 / 3x3 convolutions [out, in, k, k]
 * (down flattened to [r, in*k*k]); accumulated in fp32 (one SGEMM per
 * layer), then converted to the network's weight dtype. The files on disk
 * are never changed; another set of LoRAs means loading again.
 *
 * Key formats:
 *   kohya-ss (sd-scripts, most community files):
 *       lora_unet_<module with '_' for '.'>.lora_down.weight / .lora_up.weight / .alpha
 *       lora_te_<text_model... with '_'>.…
 *     e.g. lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight
 *   diffusers / PEFT:
 *       unet.<module>.lora_A.weight / .lora_B.weight      (PEFT; base_model.model. prefix allowed)
 *       unet.<module>.lora.down.weight / .lora.up.weight
 *       text_encoder.<module>.lora_linear_layer.down.weight / .up.weight
 *       unet.<...attn1>.processor.to_q_lora.down.weight   (old attention processors)
 *       <module>.alpha (optional)
 * Modules are resolved against the model's own canonical names (names.h),
 * so the '_' form of kohya names is never guessed back.
 *
 * Refused with a message: SDXL LoRAs (lora_te1_/lora_te2_, text_encoder_2.,
 * LDM-named UNet modules input_blocks_/output_blocks_/middle_block_),
 * factors that do not fit the layer (2048 / 1024 context: SDXL / SD 2.x),
 * mismatched ranks (up's r != down's r), a down or up without its partner,
 * LyCORIS variants (LoHa hada_*, LoKr lokr_*, Tucker lora_mid, DoRA), a
 * file where no key matches a layer. Keys naming no layer of the model are
 * listed in the set's notes.
 */
#ifndef INVEDIT_LORA_H
#define INVEDIT_LORA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/names.h"
#include "vkcompute/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sd_lora_part {
    SD_LORA_DOWN = 0,
    SD_LORA_UP = 1,
    SD_LORA_ALPHA = 2,
    SD_LORA_OTHER = 3, /* a tensor of a variant that is not supported (why in sd_lora_key.other) */
} sd_lora_part;

typedef enum sd_lora_naming {
    SD_LORA_KOHYA = 0,
    SD_LORA_DIFFUSERS = 1,
} sd_lora_naming;

/* One parsed key. */
typedef struct sd_lora_key {
    sd_lora_naming naming;
    char target[16];  /* "unet", "text_encoder"; "te1", "te2", "text_encoder_2" mark SDXL */
    char module[256]; /* kohya: the '_' form after lora_unet_ / lora_te_; diffusers: dotted */
    sd_lora_part part;
    const char *other; /* SD_LORA_OTHER: the variant ("LoHa", "LoKr", ...) or "unknown" */
} sd_lora_key;

/* Parses a LoRA tensor name; false when it is not a LoRA key at all. */
bool sd_lora_key_parse(const char *key, sd_lora_key *out);

/* "FILE[:SCALE]": the scale is the text after the last ':' when it is a
 * number (else the whole text is the file and the scale 1). false when the
 * file part is empty or the scale is not finite. */
bool sd_lora_spec_parse(const char *spec, char *path, size_t pathlen, double *scale);

typedef struct sd_lora_set sd_lora_set;

sd_lora_set *sd_lora_set_new(void);
void sd_lora_set_free(sd_lora_set *s);

/* Reads a LoRA file and matches it to w's weights (the file stays mapped
 * until the set is freed). IE_ERR_IO/IE_ERR_FORMAT/IE_ERR_UNSUPPORTED with
 * the file and the first problem named. */
ie_status sd_lora_set_add(sd_lora_set *s, const sd_weights *w, const char *path, double scale, char *err,
                          size_t errlen);
/* Every entry of a ';'- or newline-separated list of FILE[:SCALE]. */
ie_status sd_lora_set_add_list(sd_lora_set *s, const sd_weights *w, const char *list, char *err, size_t errlen);

int sd_lora_set_file_count(const sd_lora_set *s);
/* Adapted weights (canonical names) over all files. */
int sd_lora_set_target_count(const sd_lora_set *s);
bool sd_lora_set_has(const sd_lora_set *s, const char *canonical);
/* One line per file: "name.safetensors x0.8: kohya-ss, 64 layers (unet 56, text_encoder 8), rank 4; 2 keys
 * match no layer (...)". */
const char *sd_lora_set_summary(const sd_lora_set *s);

/* Adds the set's deltas for `canonical` to w (numel floats, the weight in
 * its canonical shape); IE_OK when it has none. */
ie_status sd_lora_set_apply(const sd_lora_set *s, const char *canonical, float *w, int64_t numel, char *err,
                            size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
