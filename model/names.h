/* SD 1.x weight names and the model source.
 *
 * One canonical naming for every weight, whatever the file layout: the
 * diffusers names prefixed by the component,
 *     unet.down_blocks.0.resnets.0.conv1.weight
 *     vae.decoder.up_blocks.0.resnets.0.conv1.weight
 *     text_encoder.text_model.encoder.layers.0.mlp.fc1.weight
 *
 * Two layouts are read (docs/formats.md):
 *   - a diffusers folder: unet/diffusion_pytorch_model[.fp16].safetensors,
 *     vae/diffusion_pytorch_model[.fp16].safetensors,
 *     text_encoder/model[.fp16].safetensors (+ config.json files, tokenizer/);
 *   - a single LDM checkpoint .safetensors: model.diffusion_model.* (UNet),
 *     first_stage_model.* (VAE), cond_stage_model.transformer.* (CLIP).
 * LDM names are converted by a data table (names.c: prefix rules, block index
 * formulas such as input_blocks.(3i+j+1).0 <-> down_blocks.i.resnets.j, the
 * decoder's up.(3-i) reversal, and per-block field renames). The LDM VAE
 * mid-attention stores q/k/v/proj_out as 1x1 convs [C, C, 1, 1]; they are
 * presented as the canonical Linear [C, C] (same bytes, flagged `reshaped`).
 *
 * Non-weight tensors of checkpoints (position_ids, model_ema.*, the
 * noise-schedule buffers betas/alphas_cumprod/...) are ignored.
 */
#ifndef INVEDIT_NAMES_H
#define INVEDIT_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sd_component { SD_UNET = 0, SD_VAE = 1, SD_TEXT_ENCODER = 2, SD_COMPONENT_COUNT } sd_component;

/* "unet", "vae", "text_encoder" (also the canonical prefixes, without '.'). */
const char *sd_component_name(sd_component c);

/* --- the name table ------------------------------------------------------ */

/* What the LDM block indices depend on. */
typedef struct sd_ldm_layout {
    int unet_layers_per_block; /* 2 for SD 1.x */
    int vae_levels;            /* 4: decoder up.(levels-1-i) <-> up_blocks.i */
    /* ldm -> canonical only needs the two above. canonical -> ldm also needs
     * to know which UNet up levels have attention (the upsampler then sits at
     * output_blocks.N.2 instead of .1). */
    bool unet_up_has_attn[8];
} sd_ldm_layout;

/* The SD 1.5 layout (lpb 2, 4 VAE levels, up levels 1..3 with attention). */
sd_ldm_layout sd_ldm_layout_default(void);

typedef enum sd_name_kind {
    SD_NAME_WEIGHT = 0,  /* mapped to a canonical name */
    SD_NAME_IGNORED = 1, /* a known non-weight tensor (see the top of this file) */
    SD_NAME_UNKNOWN = 2, /* not an SD 1.x UNet/VAE/CLIP name; out = the name unchanged */
} sd_name_kind;

/* A name from a single-file LDM checkpoint -> canonical name in out.
 * *squeeze is set when the file stores a 1x1 conv [C, C, 1, 1] whose canonical
 * form is Linear [C, C]. */
sd_name_kind sd_name_from_ldm(const char *ldm, const sd_ldm_layout *lay, char *out, size_t n, bool *squeeze);

/* A name inside a diffusers component file -> canonical name (adds the
 * component prefix; maps old diffusers VAE attention names query/key/value/
 * proj_attn to to_q/to_k/to_v/to_out.0). */
sd_name_kind sd_name_from_diffusers(sd_component c, const char *name, char *out, size_t n);

/* Canonical -> LDM single-file name (the inverse of sd_name_from_ldm), for
 * messages and tests. Returns false when the name has no LDM form. */
bool sd_name_to_ldm(const char *canonical, const sd_ldm_layout *lay, char *out, size_t n);

/* True for the non-weight tensors listed at the top (file names, either layout). */
bool sd_name_is_ignored(const char *name);

/* --- the model source ---------------------------------------------------- */

typedef enum sd_layout_kind {
    SD_LAYOUT_DIFFUSERS = 0,
    SD_LAYOUT_SINGLE_FILE = 1,
} sd_layout_kind;

typedef struct sd_weight {
    const char *name; /* canonical */
    sd_component component;
    const st_tensor *t; /* the stored tensor: t->name is the name in the file */
    int ndim;           /* canonical shape; differs from t's only if reshaped */
    int64_t shape[ST_MAX_DIMS];
    bool reshaped; /* [C, C, 1, 1] in the file, [C, C] here (same bytes) */
} sd_weight;

typedef struct sd_weights sd_weights;

/* Which UNet weights to take from a checkpoint that carries both the
 * trained weights (model.diffusion_model.*) and their EMA copy (model_ema.*,
 * LitEma's names: "model_ema." + the parameter name without dots). AUTO
 * takes the non-EMA weights when both are there, as diffusers'
 * from_single_file (extract_ema=False) and AUTOMATIC1111 (use_ema: False)
 * do, and the EMA copy when it is the only UNet in the file. */
typedef enum sd_ema_mode {
    SD_EMA_AUTO = 0,
    SD_EMA_OFF = 1, /* never the EMA copy */
    SD_EMA_ON = 2,  /* the EMA copy when the file has one */
} sd_ema_mode;

/* "auto", "no", "yes" (also off/on, false/true, 0/1). */
bool sd_ema_mode_from_name(const char *s, sd_ema_mode *out);
const char *sd_ema_mode_name(sd_ema_mode m);

typedef struct sd_source_options {
    const char *vae; /* a separate VAE: an LDM or diffusers-named .safetensors, a
                        diffusers vae/ folder or a diffusers model folder; NULL/"" = the model's */
    sd_ema_mode ema;
} sd_source_options;

/* sd_weights_open with options (NULL = defaults). The VAE's tensors are
 * taken from opt->vae instead of the model; a VAE file that holds another
 * network (a UNet, a text encoder, a whole checkpoint without VAE) is
 * refused with IE_ERR_FORMAT naming what it looks like. Checkpoints of
 * other families (SDXL, SD 2.x, SD 3, Flux) are refused with
 * IE_ERR_UNSUPPORTED naming the family. */
ie_status sd_weights_open_with(const char *path, const sd_source_options *opt, sd_weights **out, char *err,
                               size_t errlen);

/* Opens a diffusers folder or a single .safetensors checkpoint. Fails with
 * IE_ERR_IO when the path does not exist or a file cannot be read,
 * IE_ERR_FORMAT when a file is malformed or the folder holds no weights
 * at all. A folder with some components missing opens; sd_weights_has()
 * tells which are there, sd_weights_missing_reason() why not. */
ie_status sd_weights_open(const char *path, sd_weights **out, char *err, size_t errlen);
void sd_weights_close(sd_weights *w);

sd_layout_kind sd_weights_layout(const sd_weights *w);
const char *sd_weights_path(const sd_weights *w);
/* The LDM layout used to convert names (detected from the file's names). */
sd_ldm_layout sd_weights_ldm_layout(const sd_weights *w);

/* Whether the component's weights are present, and from which file. */
bool sd_weights_has(const sd_weights *w, sd_component c);
const char *sd_weights_file(const sd_weights *w, sd_component c); /* NULL if absent */
/* Why the component is absent ("no unet/diffusion_pytorch_model.safetensors"). */
const char *sd_weights_missing_reason(const sd_weights *w, sd_component c);
/* Diffusers folders: "<folder>/unet/config.json" etc. when that file exists;
 * single files: "<dir>/unet/config.json" etc. beside the file when it exists
 * (the architecture is otherwise detected from shapes, with SD 1.x's head
 * counts and scaling factor); else NULL. */
const char *sd_weights_config_path(const sd_weights *w, sd_component c);
/* "<folder>/tokenizer" when it exists; for a single file, a "tokenizer"
 * folder next to it when that exists; else NULL. */
const char *sd_weights_tokenizer_dir(const sd_weights *w);

/* The canonical tensor, or NULL. */
const sd_weight *sd_weights_get(const sd_weights *w, const char *canonical);

/* All mapped weights, sorted by canonical name. */
int sd_weights_count(const sd_weights *w);
const sd_weight *sd_weights_at(const sd_weights *w, int i);

/* File tensors that are not weights: known non-weights, unknown names, and
 * names that map onto a canonical name another tensor already provides. */
int sd_weights_unmapped_count(const sd_weights *w);
/* "cond_stage_model.model.ln_final.weight: unknown name" etc. */
const char *sd_weights_unmapped_at(const sd_weights *w, int i);
int sd_weights_ignored_count(const sd_weights *w);

/* "diffusers" or "LDM": how the component's tensors were named in their file. */
const char *sd_weights_naming(const sd_weights *w, sd_component c);
/* The EMA copy: how many model_ema.* UNet tensors the file has, and whether
 * they are the ones used (sd_weights_ema_note says why, one line). */
int sd_weights_ema_count(const sd_weights *w);
bool sd_weights_ema_used(const sd_weights *w);
const char *sd_weights_ema_note(const sd_weights *w);

/* LoRAs merged at load (lora.h): the binder (weights.h) asks this set for
 * every tensor it uploads. Borrowed: the caller keeps it alive while
 * networks load. NULL = none. */
struct sd_lora_set;
void sd_weights_set_lora(sd_weights *w, const struct sd_lora_set *lora);
const struct sd_lora_set *sd_weights_lora(const sd_weights *w);

#ifdef __cplusplus
}
#endif
#endif
