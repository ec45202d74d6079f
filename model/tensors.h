/* The tensors each network needs, written down once.
 *
 * One walk per network (sd_unet_walk, sd_vae_walk, sd_clip_text_walk) visits
 * every tensor its configuration needs, in module order, with the name after
 * the component's prefix ("down_blocks.1.resnets.0.conv1.weight") and the
 * shape the configuration implies, and stores what the visitor gives back in
 * the network's weight struct:
 *
 *     sd_bind_conv(w, &r->conv1, cout, cin, 3, true, "%s.conv1", name);
 *
 * Two visitors walk them:
 *   - the binder (weights.h): the loaders (unet_load, vae_load,
 *     clip_text_model_load) bind and upload each tensor;
 *   - a recorder: sd_expected_tensors (config.h) lists names and shapes only,
 *     for sd_weights_check and for tools that build models.
 * So the tensors the check asks for are the tensors the loaders bind.
 *
 * The walks need a configuration within the struct limits (levels up to
 * SD_MAX_LEVELS, layers per block up to SD_MAX_LAYERS_PER_BLOCK); outside
 * them they visit nothing (the loaders refuse such configurations first).
 * Only what the networks run is visited: one transformer block per
 * Transformer2D (unet_load refuses transformer_layers_per_block != 1).
 */
#ifndef INVEDIT_TENSORS_H
#define INVEDIT_TENSORS_H

#include <stdbool.h>
#include <stdint.h>

#include "model/config.h"
#include "model/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sd_walk sd_walk;
struct sd_walk {
    /* One tensor, name without the component prefix. Returns what the
     * weight struct keeps (NULL when only describing, or when the tensor is
     * missing or misshapen). */
    ie_tensor *(*tensor)(sd_walk *w, int ndim, const int64_t *shape, const char *name);
};

/* One tensor by a printf-style name. */
ie_tensor *sd_bind(sd_walk *w, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "<name>.weight" [Cout, Cin, k, k] and, when bias, "<name>.bias" [Cout]. */
void sd_bind_conv(sd_walk *w, nn_conv *c, int cout, int cin, int k, bool bias, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
/* "<name>.weight" [n, k] and, when bias, "<name>.bias" [n]. */
void sd_bind_linear(sd_walk *w, nn_lin *l, int n, int k, bool bias, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* "<name>.weight" and "<name>.bias", both [c]. */
void sd_bind_norm(sd_walk *w, nn_norm *nm, int c, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A diffusers ResnetBlock2D "<name>.{norm1,conv1,time_emb_proj,norm2,conv2,conv_shortcut}"
 * (time_emb_proj only when temb > 0; conv_shortcut only when cin != cout). */
void sd_bind_resnet(sd_walk *w, nn_resnet *r, int cin, int cout, int temb, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

struct unet_weights;
struct vae_encoder;
struct vae_decoder;
struct clip_weights;

/* The UNet (unet.h); returns the number of Transformer2D blocks. */
int sd_unet_walk(sd_walk *w, const sd_unet_config *p, struct unet_weights *W);
/* The VAE (vae.h): the encoder (with quant_conv) when E, the decoder (with
 * post_quant_conv) when D. */
void sd_vae_walk(sd_walk *w, const sd_vae_config *p, struct vae_encoder *E, struct vae_decoder *D);
/* The CLIP text encoder (clip.h); W->layers holds num_hidden_layers entries. */
void sd_clip_text_walk(sd_walk *w, const sd_clip_text_config *p, struct clip_weights *W);

#ifdef __cplusplus
}
#endif
#endif
