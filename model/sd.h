/* The SD 1.x model in one include: tokenizer, CLIP text encoder, UNet, VAE
 * loaded from a diffusers folder or a single checkpoint.
 *
 *     sd_model *m;
 *     sd_load_options opt = {.wtype = SD_WTYPE_AUTO, .parts = SD_PART_ALL};
 *     if (sd_model_load(be, "models/demo", &opt, &m, err, sizeof err)) { ... }
 *     clip_encode(m->tokenizer, "a red circle", ids, 77, NULL);
 *     clip_text_model_forward(m->text, ctx, ids, 1, 77, 1);
 *     unet_forward(m->unet, eps, latents, t, ctx, NULL);
 *     vae_decode(m->vae, image, latents);
 *     sd_model_free(m);
 *
 * Loading: sd_weights_open (names.h) maps the files and gives canonical
 * diffusers names; sd_model_config_load (config.h) reads config.json or
 * detects the configuration from shapes; sd_weights_check lists every
 * missing or misshapen tensor by name; then each network uploads its
 * weights once (weights.h). The mapped files are closed afterwards, unless
 * keep_weights asks to keep them for loading networks again (the editing
 * session, edit/pipeline.c, does: it reloads the text encoder per edit).
 *
 * This is the one way a model is loaded: the CLI's tensor commands and the
 * editing session both come here, so both refuse the same models with the
 * same codes and messages (a model that is not SD 1.x text-to-image is
 * IE_ERR_UNSUPPORTED; missing or misshapen tensors IE_ERR_FORMAT, by name).
 *
 * Per-network headers: clip.h, unet.h (attention hook), vae.h; the
 * shared machinery (activation slabs, taps) is nn.h.
 */
#ifndef INVEDIT_SD_H
#define INVEDIT_SD_H

#include "model/clip.h"
#include "model/config.h"
#include "model/lora.h"
#include "model/names.h"
#include "model/nn.h"
#include "model/tokenizer.h"
#include "model/unet.h"
#include "model/vae.h"
#include "model/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SD_PART_TOKENIZER = 1 << 0,
    SD_PART_TEXT = 1 << 1,
    SD_PART_UNET = 1 << 2,
    SD_PART_VAE_ENCODER = 1 << 3,
    SD_PART_VAE_DECODER = 1 << 4,
    SD_PART_ALL = 0x1f,
};

typedef struct sd_load_options {
    sd_wtype wtype;    /* SD_WTYPE_AUTO: fp16 on both backends */
    int parts;         /* SD_PART_*; 0 = SD_PART_ALL */
    const char *vae;   /* optional separate VAE (names.h sd_source_options), else NULL */
    const char *lora;  /* optional LoRAs merged at load, "FILE[:SCALE];..." (lora.h), else NULL */
    sd_ema_mode ema;   /* a checkpoint's EMA copy (names.h) */
    bool keep_weights; /* keep the mapped weights (sd_model.weights) after loading */
} sd_load_options;

typedef struct sd_model {
    sd_model_config config;
    clip_tokenizer *tokenizer; /* NULL when not asked for */
    clip_text_model *text;
    unet *unet;
    vae *vae;                   /* encoder and/or decoder, as asked */
    char tokenizer_source[512]; /* "folder ..." or the built-in vocabulary (config.h sd_tokenizer_open) */
    sd_weights *weights;        /* with keep_weights: the mapped files, the LoRAs set on them; else NULL */
    sd_lora_set *lora;          /* with keep_weights: the LoRAs (NULL when none) */
} sd_model;

/* Loads the asked parts; every one must be present. On failure nothing is
 * kept and err says what was missing or wrong (tensors named). sd_model_free
 * frees everything the model holds, the kept weights included. */
ie_status sd_model_load(ie_backend *be, const char *path, const sd_load_options *opt, sd_model **out, char *err,
                        size_t errlen);
void sd_model_free(sd_model *m);

#ifdef __cplusplus
}
#endif
#endif
