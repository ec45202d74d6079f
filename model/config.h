/* SD 1.x model configuration: config.json parsing, detection from tensor
 * shapes, and the list of tensors a configuration needs.
 *
 * The structs hold the diffusers config.json fields invedit uses
 * (docs/formats.md, "The configuration"). A diffusers folder's unet/, vae/ and
 * text_encoder/config.json are parsed with json-glib; fields that are absent
 * take diffusers' defaults (the *_default functions, which are SD 1.5). Where
 * config.json is absent (a single-file checkpoint, or a folder without it)
 * the architecture is detected from the tensors: channel counts from conv_in
 * and the resnets, the number of levels from which down_blocks exist, the
 * cross-attention width from attn2.to_k, LCM from time_embedding.cond_proj,
 * the CLIP depth by counting layers. Head counts cannot be seen in shapes:
 * SD 1.x values are assumed (UNet 8 heads, CLIP head size 64).
 *
 * sd_weights_check() then compares every tensor the configuration needs with
 * the weights and reports by name, e.g.
 *   unet.down_blocks.1.resnets.0.conv1.weight: expected [640, 320, 3, 3], found [640, 321, 3, 3]
 *   unet.conv_in.weight: missing
 */
#ifndef INVEDIT_CONFIG_H
#define INVEDIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/names.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SD_MAX_LEVELS 8
#define SD_MAX_LAYERS_PER_BLOCK 16

typedef struct sd_unet_config {
    int in_channels, out_channels;         /* 4, 4 */
    int n_levels;                          /* len(block_out_channels) = 4 */
    int block_out_channels[SD_MAX_LEVELS]; /* 320, 640, 1280, 1280 */
    int layers_per_block;                  /* 2 (up blocks have one more) */
    /* config "attention_head_dim": in SD 1.x this is the NUMBER OF HEADS
     * (diffusers naming bug), per level; head size = channels / heads.
     * "num_attention_heads", when set, takes precedence (as in diffusers). */
    int heads[SD_MAX_LEVELS];            /* 8 each */
    bool down_cross_attn[SD_MAX_LEVELS]; /* CrossAttnDownBlock2D (else DownBlock2D) */
    bool up_cross_attn[SD_MAX_LEVELS];   /* CrossAttnUpBlock2D (else UpBlock2D) */
    int transformer_layers_per_block;    /* 1 */
    int cross_attention_dim;             /* 768 */
    int norm_num_groups;                 /* 32 */
    float norm_eps;                      /* 1e-5 */
    int time_cond_proj_dim;              /* 0 = none; 256 for LCM */
    int sample_size;                     /* 64 (96 for LCM_Dreamshaper_v7) */
    bool use_linear_projection;          /* false: proj_in/out are 1x1 convs */
    bool flip_sin_to_cos;                /* true */
    float freq_shift;                    /* 0 */
    int downsample_padding;              /* 1 */
} sd_unet_config;

typedef struct sd_vae_config {
    int in_channels, out_channels;            /* 3, 3 */
    int n_levels;                             /* 4 */
    int block_out_channels[SD_MAX_LEVELS];    /* 128, 256, 512, 512 */
    int layers_per_block;                     /* 2 (decoder blocks have one more) */
    int latent_channels;                      /* 4 */
    int norm_num_groups;                      /* 32 (eps is always 1e-6) */
    float scaling_factor;                     /* 0.18215 */
    int sample_size;                          /* 512 */
    bool mid_block_add_attention;             /* true */
    bool use_quant_conv, use_post_quant_conv; /* true, true */
} sd_vae_config;

typedef enum sd_clip_act { SD_CLIP_QUICK_GELU = 0, SD_CLIP_GELU = 1 } sd_clip_act;

typedef struct sd_clip_text_config {
    int hidden_size;             /* 768 */
    int intermediate_size;       /* 3072 */
    int num_attention_heads;     /* 12 */
    int num_hidden_layers;       /* 12 */
    int max_position_embeddings; /* 77 */
    int vocab_size;              /* 49408 */
    sd_clip_act hidden_act;      /* quick_gelu */
    float layer_norm_eps;        /* 1e-5 */
} sd_clip_text_config;

/* SD 1.5 values (= diffusers' defaults for absent fields, except where SD 1.5
 * differs: those come from the published config files). */
void sd_unet_config_default(sd_unet_config *c);
void sd_vae_config_default(sd_vae_config *c);
void sd_clip_text_config_default(sd_clip_text_config *c);

/* Parse config.json text (`label` names it in messages). Unknown fields are
 * ignored; wrong types, out-of-range values and unsupported block types are
 * IE_ERR_FORMAT / IE_ERR_UNSUPPORTED with the field named. */
ie_status sd_unet_config_parse(const char *json, size_t len, const char *label, sd_unet_config *c, char *err,
                               size_t errlen);
ie_status sd_vae_config_parse(const char *json, size_t len, const char *label, sd_vae_config *c, char *err,
                              size_t errlen);
ie_status sd_clip_text_config_parse(const char *json, size_t len, const char *label, sd_clip_text_config *c, char *err,
                                    size_t errlen);

/* Detect from the weights' shapes (see the top of this file). */
ie_status sd_unet_config_detect(const sd_weights *w, sd_unet_config *c, char *err, size_t errlen);
ie_status sd_vae_config_detect(const sd_weights *w, sd_vae_config *c, char *err, size_t errlen);
ie_status sd_clip_text_config_detect(const sd_weights *w, sd_clip_text_config *c, char *err, size_t errlen);

typedef enum sd_variant {
    SD_VARIANT_SD1 = 0,     /* text-to-image SD 1.x (4 input channels) */
    SD_VARIANT_SD1_INPAINT, /* 9 input channels */
    SD_VARIANT_SD1_PIX2PIX, /* 8 input channels */
    SD_VARIANT_SD2,         /* 1024-wide text encoder / cross-attention: unsupported */
    SD_VARIANT_UNKNOWN,
} sd_variant;

const char *sd_variant_name(sd_variant v);

typedef struct sd_model_config {
    bool has[SD_COMPONENT_COUNT];      /* components present in the weights */
    bool detected[SD_COMPONENT_COUNT]; /* true: from shapes, false: from config.json */
    sd_unet_config unet;
    sd_vae_config vae;
    sd_clip_text_config text;
    sd_variant variant;
    bool lcm;         /* unet.time_cond_proj_dim > 0 */
    char notes[1024]; /* e.g. "unet/config.json absent: detected from shapes" */
} sd_model_config;

/* Reads each present component's config.json (diffusers folders), or detects
 * it from the shapes, then classifies the variant. */
ie_status sd_model_config_load(const sd_weights *w, sd_model_config *cfg, char *err, size_t errlen);

/* One line: "SD 1.x (LCM): UNet [320, 640, 1280, 1280] ..." */
const char *sd_model_config_describe(const sd_model_config *cfg, char *buf, size_t n);

/* --- expected tensors ------------------------------------------------------ */

typedef struct sd_tensor_spec {
    char name[128]; /* canonical */
    int ndim;
    int64_t shape[4];
} sd_tensor_spec;

/* Every tensor the component needs under this configuration, in module order:
 * the network's walk (tensors.h) that the loader binds with, here only
 * recording names and shapes. Returns the count; *out is g_malloc'ed (g_free it). */
int sd_expected_tensors(const sd_model_config *cfg, sd_component comp, sd_tensor_spec **out);

typedef struct sd_check_report {
    int n_absent; /* components without weights (each one problem line) */
    int n_expected, n_missing, n_mismatched, n_not_float, n_unused;
    int n_problems;
    char **problems; /* "name: missing", "name: expected [..], found [..]", ... */
    int n_unused_names;
    char **unused; /* canonical names present but not needed, then unmapped file names */
} sd_check_report;

/* Checks all three components. IE_OK when no component is absent and no
 * tensor is missing, misshapen or of a non-float dtype (unused tensors are
 * reported but fine); else IE_ERR_FORMAT, the problems listed in rep (and
 * the first few in err). */
ie_status sd_weights_check(const sd_weights *w, const sd_model_config *cfg, sd_check_report *rep, char *err,
                           size_t errlen);
void sd_check_report_free(sd_check_report *rep);

/* The model's tokenizer: its tokenizer/ folder when there is one, else the
 * CLIP vocabulary built into the library (tokenizer.h) when the text
 * encoder has its 49,408 token embeddings (otherwise IE_ERR_FORMAT saying
 * the folder is needed). source (may be NULL) receives "folder <path>" or
 * "built-in CLIP ViT-L/14 vocabulary (49408 tokens)". (tokenizer_builtin.c) */
struct clip_tokenizer;
ie_status sd_tokenizer_open(const sd_weights *w, const sd_model_config *cfg, struct clip_tokenizer **out, char *source,
                            size_t source_len, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
