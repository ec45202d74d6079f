/* TAESD, the tiny autoencoder (madebyollin/taesd; diffusers AutoencoderTiny).
 *
 *     taesd *t;
 *     taesd_load(be, "models/taesd", SD_WTYPE_AUTO, &t, err, sizeof err);
 *     taesd_decode(t, image, latent);   // latent [B, 4, h, w] (UNet space) -> image [B, 3, 8h, 8w]
 *     taesd_encode(t, latent, image);   // image in [-1, 1] -> latent (UNet space)
 *
 * Images are in [-1, 1] both ways, as diffusers' AutoencoderTiny (and the
 * VAE) use: internally TAESD works on [0, 1]. Latents are UNet-space
 * (scaling_factor 1: no division by 0.18215).
 *
 * Decoder (madebyollin's taesd.py):
 *   x = tanh(z / 3) · 3; conv_in (4 -> C) + ReLU;
 *   per level: n Blocks, then nearest x2 + conv (no bias), or conv_out (C -> 3) at the end;
 *   image = x · 2 - 1.
 * Encoder: x = (image + 1) / 2; conv_in (3 -> C) + n Blocks; per further
 *   level: conv 3x3 stride 2 (no bias) + n Blocks; conv_out (C -> 4).
 * Block(x) = relu(conv(relu(conv(relu(conv(x))))) + skip(x)), skip = identity
 *   (or a 1x1 conv without bias when the widths differ).
 *
 * Files: a diffusers AutoencoderTiny folder or file (diffusion_pytorch_model
 * .safetensors with encoder.layers.N / decoder.layers.N), or madebyollin's
 * taesd_encoder.safetensors / taesd_decoder.safetensors (no prefix; the
 * decoder's indices are +1, index 0 being its Clamp) — given as a file, or a
 * folder holding both. The structure (levels, blocks per level, widths) is
 * read from the tensors' indices and shapes.
 */
#ifndef INVEDIT_TAESD_H
#define INVEDIT_TAESD_H

#include "model/nn.h"
#include "model/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TAESD_MAX_LEVELS 8
#define TAESD_MAX_BLOCKS 8

typedef struct taesd_block {
    nn_conv conv[3];   /* conv.0, conv.2, conv.4: [C, C, 3, 3] + [C] */
    nn_conv skip;      /* [Cout, Cin, 1, 1], no bias; .w NULL = identity */
    int index;         /* layers.N (diffusers numbering) */
} taesd_block;

typedef struct taesd_level {
    int n_blocks;
    taesd_block blocks[TAESD_MAX_BLOCKS];
    nn_conv conv;      /* encoder: the conv before the blocks (conv_in, then stride-2 convs);
                          decoder: the conv after (upsample conv, or conv_out on the last level) */
    int conv_index;
    int channels;      /* the blocks' width */
} taesd_level;

typedef struct taesd_coder {
    int n_levels;
    taesd_level levels[TAESD_MAX_LEVELS];
    nn_conv conv_in;   /* decoder: [C, Cl, 3, 3] (encoder: levels[0].conv is its conv_in) */
    nn_conv conv_out;  /* encoder: [Cl, C, 3, 3] (decoder: the last level's conv) */
    int conv_out_index;
} taesd_coder;

typedef struct taesd_state {
    nn_arena arena;
    int enc_B, enc_H, enc_W, dec_B, dec_H, dec_W;
    nn_slab h[2];      /* [B, C, H, W] stream, ping-pong */
    nn_slab t1, t2;    /* block scratch */
    nn_slab ups;       /* [B, C, 2h, 2w] */
    nn_slab in;        /* the rescaled input */
} taesd_state;

typedef struct taesd {
    bool has_encoder, has_decoder;
    int latent_channels, image_channels;
    taesd_coder enc, dec;
    taesd_state state;
    ie_backend *be;
    sd_tensor_list mem;
    sd_tap tap;        /* "encoder.layers.N" / "decoder.layers.N" (diffusers numbering) */
    char err[1024];
} taesd;

/* path: a folder (diffusers AutoencoderTiny, or madebyollin's two files) or
 * one .safetensors file. At least one of encoder/decoder must be found. */
ie_status taesd_load(ie_backend *be, const char *path, sd_wtype wt, taesd **out, char *err, size_t errlen);
void taesd_free(taesd *t);

/* latent [B, Cl, h, w] -> image [B, 3, 2^(levels-1)·h, ...] in ~[-1, 1]. */
ie_status taesd_decode(taesd *t, ie_tensor *image, const ie_tensor *latent);
/* image [B, 3, H, W] in [-1, 1] -> latent [B, Cl, H/f, W/f]. */
ie_status taesd_encode(taesd *t, ie_tensor *latent, const ie_tensor *image);

#ifdef __cplusplus
}
#endif
#endif
