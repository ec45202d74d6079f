/* The SD 1.x VAE (diffusers AutoencoderKL): image <-> latent.
 *
 *     vae *v;
 *     vae_load(be, weights, &cfg.vae, VAE_ENCODER | VAE_DECODER, SD_WTYPE_AUTO, &v, err, n);
 *     vae_encode(v, latent, image, NULL);   // image [B, 3, 512, 512] in [-1, 1]
 *                                           //   -> latent [B, 4, 64, 64] = mean · scaling_factor
 *     vae_decode(v, image, latent);         // latent (UNet space) -> image in ~[-1, 1]
 *
 * Encoder (diffusers' vae.Encoder): conv_in; per level, layers_per_block
 * ResNets, then (but the last level) pad (0, 1, 0, 1) and a 3x3 stride-2
 * conv; mid (ResNet, single-head attention over the h·w tokens, ResNet);
 * GroupNorm + SiLU + conv_out -> 2·Cl channels; quant_conv (1x1).
 * mean = channels [0, Cl), logvar = channels [Cl, 2Cl) clamped to [-30, 20].
 * Decoder: z / scaling_factor; post_quant_conv (1x1); conv_in; mid; per level
 * (reversed channels) layers_per_block + 1 ResNets (1x1 shortcut where the
 * width changes), nearest x2 + conv (but the last); GroupNorm + SiLU +
 * conv_out. Every GroupNorm has eps 1e-6. The output is not clamped.
 * H and W must be divisible by 2^(levels-1) (8 for SD).
 */
#ifndef INVEDIT_VAE_H
#define INVEDIT_VAE_H

#include <stdint.h>

#include "model/config.h"
#include "model/nn.h"
#include "model/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

/* UNetMidBlock2D without time embedding: ResNet, Attention, ResNet (C channels). */
typedef struct vae_mid {
    nn_resnet resnets[2];
    bool has_attention;
    nn_norm group_norm; /* [C] */
    nn_lin to_q;        /* [C, C] + [C] */
    nn_lin to_k;        /* [C, C] + [C] */
    nn_lin to_v;        /* [C, C] + [C] */
    nn_lin to_out;      /* [C, C] + [C] */
} vae_mid;

typedef struct vae_encoder {
    nn_conv conv_in;                                        /* [C0, 3, 3, 3] */
    nn_resnet down[SD_MAX_LEVELS][SD_MAX_LAYERS_PER_BLOCK]; /* C_{i-1} -> C_i */
    nn_conv downsamplers[SD_MAX_LEVELS];                    /* [C_i, C_i, 3, 3]; not on the last */
    vae_mid mid;                                            /* C_last */
    nn_norm conv_norm_out;                                  /* [C_last] */
    nn_conv conv_out;                                       /* [2Cl, C_last, 3, 3] */
    nn_conv quant_conv;                                     /* [2Cl, 2Cl, 1, 1] (optional) */
} vae_encoder;

typedef struct vae_decoder {
    nn_conv post_quant_conv; /* [Cl, Cl, 1, 1] (optional) */
    nn_conv conv_in;         /* [C_last, Cl, 3, 3] */
    vae_mid mid;
    nn_resnet up[SD_MAX_LEVELS][SD_MAX_LAYERS_PER_BLOCK + 1]; /* up[i]: level n-1-i */
    nn_conv upsamplers[SD_MAX_LEVELS];                        /* [C, C, 3, 3]; not on the last */
    nn_norm conv_norm_out;                                    /* [C0] */
    nn_conv conv_out;                                         /* [3, C0, 3, 3] */
} vae_decoder;

typedef struct vae_state {
    nn_arena arena;
    int enc_B, enc_H, enc_W; /* shapes last planned for */
    int dec_B, dec_H, dec_W;
    nn_slab h[2];              /* [B, C, H, W] stream, ping-pong */
    nn_slab t1, t2;            /* ResNet / attention scratch */
    nn_slab tok, q, k, v, att; /* [B, L, C] mid attention */
    nn_slab moments;           /* [B, 2Cl, h, w] quant_conv output */
    nn_slab z;                 /* [B, Cl, h, w] latent / scaling_factor */
} vae_state;

enum { VAE_ENCODER = 1, VAE_DECODER = 2 };

typedef struct vae {
    sd_vae_config config;
    int parts; /* VAE_ENCODER | VAE_DECODER: what was loaded */
    vae_encoder enc;
    vae_decoder dec;
    vae_state state;
    ie_backend *be;
    sd_tensor_list mem;
    sd_tap tap; /* "encoder.conv_in", "encoder.down_blocks.i", "encoder.mid_block",
                                  "moments", "decoder.conv_in", "decoder.mid_block",
                                  "decoder.up_blocks.i", "decoder.out" */
    char err[1024];
} vae;

ie_status vae_load(ie_backend *be, const sd_weights *w, const sd_vae_config *cfg, int parts, sd_wtype wt, vae **out,
                   char *err, size_t errlen);
void vae_free(vae *m);
/* Frees the activation buffers (they are planned and allocated again by the
 * next encode or decode): the editing pipeline keeps them only while the VAE
 * runs, so they never sit next to the UNet's. */
void vae_release_activations(vae *m);
uint64_t vae_activation_bytes(const vae *m);
/* The activation bytes an encode (encode true) or decode of one H x W image
 * would allocate, and the largest single buffer: a dry run, see
 * unet_plan_activations. */
ie_status vae_plan_activations(vae *m, bool encode, int H, int W, uint64_t *total, uint64_t *largest);

/* image [B, in_channels, H, W] in [-1, 1] -> the posterior's mean and
 * (when logvar != NULL) logvar, each [B, Cl, H/f, W/f], unscaled. */
ie_status vae_encode_moments(vae *m, ie_tensor *mean, ie_tensor *logvar, const ie_tensor *image);

/* latent = (mean [+ exp(0.5·logvar) · noise]) · scaling_factor, in UNet
 * space. noise: B·Cl·h·w host floats (N(0, 1)), or NULL for the mean. */
ie_status vae_encode(vae *m, ie_tensor *latent, const ie_tensor *image, const float *noise);

/* latent [B, Cl, h, w] in UNet space -> image [B, out_channels, h·f, w·f]
 * (~[-1, 1], unclamped). */
ie_status vae_decode(vae *m, ie_tensor *image, const ie_tensor *latent);

/* The spatial factor 2^(levels-1) (8 for SD). */
int vae_factor(const vae *m);
uint64_t vae_weight_bytes(const vae *m);

#ifdef __cplusplus
}
#endif
#endif
