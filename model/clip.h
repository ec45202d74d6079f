/* The CLIP text encoder (transformers CLIPTextModel, the SD 1.x conditioner).
 *
 *     clip_text_model *te;
 *     clip_text_model_load(be, weights, &cfg.text, SD_WTYPE_AUTO, &te, err, sizeof err);
 *     int32_t ids[2 * 77];                             // clip_tokenizer output, 2 prompts
 *     clip_text_model_forward(te, ctx, ids, 2, 77, 1); // ctx [2, 77, 768]
 *
 * Forward (transformers' CLIPTextTransformer), B prompts of L tokens, width D:
 *   x = token_embedding[ids] + position_embedding[0..L-1]      [B, L, D]
 *   per layer (pre-LN, causal self-attention, heads of D/heads):
 *     x = x + out_proj(attention(q_proj, k_proj, v_proj of layer_norm1(x)))
 *     x = x + fc2(act(fc1(layer_norm2(x))))          act = quick_gelu (or gelu)
 *   out = final_layer_norm(x)                        last_hidden_state [B, L, D]
 * The whole sequence is used (SD pads with EOS and the UNet attends to the
 * padding too); there is no attention mask beyond the causal one.
 *
 * clip_skip (A1111 convention): 1 = all layers; N >= 2 stops after layer
 * n_layers - N + 1, i.e. hidden state -N, and still applies final_layer_norm
 * (as diffusers' pipelines do).
 */
#ifndef INVEDIT_CLIP_H
#define INVEDIT_CLIP_H

#include <stdint.h>

#include "model/config.h"
#include "model/nn.h"
#include "model/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clip_layer {
    nn_norm layer_norm1; /* [D] */
    nn_lin q_proj;       /* [D, D] + [D] */
    nn_lin k_proj;       /* [D, D] + [D] */
    nn_lin v_proj;       /* [D, D] + [D] */
    nn_lin out_proj;     /* [D, D] + [D] */
    nn_norm layer_norm2; /* [D] */
    nn_lin fc1;          /* [I, D] + [I] */
    nn_lin fc2;          /* [D, I] + [D] */
} clip_layer;

typedef struct clip_weights {
    ie_tensor *token_embedding;    /* [V, D] */
    ie_tensor *position_embedding; /* [P, D] (P = max_position_embeddings = 77) */
    clip_layer *layers;            /* [n_layers] */
    nn_norm final_layer_norm;      /* [D] */
} clip_weights;

typedef struct clip_state {
    nn_arena arena;
    int B, L;        /* the shape last planned for */
    nn_slab ids;     /* [B, L] i32 */
    nn_slab x;       /* [B, L, D] the residual stream */
    nn_slab n;       /* [B, L, D] layer norm output */
    nn_slab q, k, v; /* [B, L, D] */
    nn_slab att;     /* [B, L, D] attention output */
    nn_slab o;       /* [B, L, D] out_proj / fc2 output */
    nn_slab mlp;     /* [B, L, I] fc1 output */
} clip_state;

typedef struct clip_text_model {
    sd_clip_text_config config;
    clip_weights weights;
    clip_state state;
    ie_backend *be;
    sd_tensor_list mem;
    sd_tap tap; /* "embeddings", "layers.i", "final_layer_norm" */
    char err[1024];
} clip_text_model;

ie_status clip_text_model_load(ie_backend *be, const sd_weights *w, const sd_clip_text_config *cfg, sd_wtype wt,
                               clip_text_model **out, char *err, size_t errlen);
void clip_text_model_free(clip_text_model *m);

/* ids [B, L] (host int32, L <= max_position_embeddings) -> out [B, L, D].
 * clip_skip: 1 (or 0) = last layer; N = hidden state -N (see above). */
ie_status clip_text_model_forward(clip_text_model *m, ie_tensor *out, const int32_t *ids, int B, int L, int clip_skip);

#ifdef __cplusplus
}
#endif
#endif
