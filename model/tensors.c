/* The tensors each network needs: the walks and the expected-tensor list
 * drawn from them. See tensors.h. */
#include "model/tensors.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"

/* --- one tensor, and the common layers ------------------------------------------------ */

ie_tensor *sd_bind(sd_walk *w, int ndim, const int64_t *shape, const char *fmt, ...) {
    char name[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return w->tensor(w, ndim, shape, name);
}

#define FORMAT_NAME(buf, fmt)                                                                                          \
    char buf[200];                                                                                                     \
    do {                                                                                                               \
        va_list ap_;                                                                                                   \
        va_start(ap_, fmt);                                                                                            \
        vsnprintf(buf, sizeof buf, fmt, ap_);                                                                          \
        va_end(ap_);                                                                                                   \
    } while (0)

void sd_bind_conv(sd_walk *w, nn_conv *c, int cout, int cin, int k, bool bias, const char *fmt, ...) {
    FORMAT_NAME(name, fmt);
    int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
    c->w = sd_bind(w, 4, ws, "%s.weight", name);
    c->b = bias ? sd_bind(w, 1, bs, "%s.bias", name) : NULL;
}

void sd_bind_linear(sd_walk *w, nn_lin *l, int n, int k, bool bias, const char *fmt, ...) {
    FORMAT_NAME(name, fmt);
    int64_t ws[2] = {n, k}, bs[1] = {n};
    l->w = sd_bind(w, 2, ws, "%s.weight", name);
    l->b = bias ? sd_bind(w, 1, bs, "%s.bias", name) : NULL;
}

void sd_bind_norm(sd_walk *w, nn_norm *nm, int c, const char *fmt, ...) {
    FORMAT_NAME(name, fmt);
    int64_t s[1] = {c};
    nm->w = sd_bind(w, 1, s, "%s.weight", name);
    nm->b = sd_bind(w, 1, s, "%s.bias", name);
}

void sd_bind_resnet(sd_walk *w, nn_resnet *r, int cin, int cout, int temb, const char *fmt, ...) {
    FORMAT_NAME(name, fmt);
    memset(r, 0, sizeof *r);
    r->cin = cin;
    r->cout = cout;
    sd_bind_norm(w, &r->norm1, cin, "%s.norm1", name);
    sd_bind_conv(w, &r->conv1, cout, cin, 3, true, "%s.conv1", name);
    if (temb > 0) sd_bind_linear(w, &r->time_emb_proj, cout, temb, true, "%s.time_emb_proj", name);
    sd_bind_norm(w, &r->norm2, cout, "%s.norm2", name);
    sd_bind_conv(w, &r->conv2, cout, cout, 3, true, "%s.conv2", name);
    if (cin != cout) sd_bind_conv(w, &r->conv_shortcut, cout, cin, 1, true, "%s.conv_shortcut", name);
}

/* --- the UNet (diffusers UNet2DConditionModel) ----------------------------------------------- */

/* proj_in / proj_out: a 1x1 conv [C, C, 1, 1], or with use_linear_projection a
 * Linear [C, C] (kept in the same struct: w is then 2-D). */
static void bind_proj(sd_walk *w, nn_conv *pr, int C, bool linear, const char *name, const char *which) {
    if (linear) {
        nn_lin l;
        sd_bind_linear(w, &l, C, C, true, "%s.%s", name, which);
        pr->w = l.w;
        pr->b = l.b;
    } else {
        sd_bind_conv(w, pr, C, C, 1, true, "%s.%s", name, which);
    }
}

/* Transformer2DModel (SD 1.x: GEGLU feed-forward, inner dim 4C). */
static void bind_transformer(sd_walk *w, unet_transformer *tf, int C, int heads, int D, bool linear, const char *name) {
    tf->channels = C;
    tf->heads = heads;
    sd_bind_norm(w, &tf->norm, C, "%s.norm", name);
    bind_proj(w, &tf->proj_in, C, linear, name, "proj_in");
    char blk[160];
    snprintf(blk, sizeof blk, "%s.transformer_blocks.0", name);
    sd_bind_norm(w, &tf->norm1, C, "%s.norm1", blk);
    sd_bind_linear(w, &tf->attn1_q, C, C, false, "%s.attn1.to_q", blk);
    sd_bind_linear(w, &tf->attn1_k, C, C, false, "%s.attn1.to_k", blk);
    sd_bind_linear(w, &tf->attn1_v, C, C, false, "%s.attn1.to_v", blk);
    sd_bind_linear(w, &tf->attn1_out, C, C, true, "%s.attn1.to_out.0", blk);
    sd_bind_norm(w, &tf->norm2, C, "%s.norm2", blk);
    sd_bind_linear(w, &tf->attn2_q, C, C, false, "%s.attn2.to_q", blk);
    sd_bind_linear(w, &tf->attn2_k, C, D, false, "%s.attn2.to_k", blk);
    sd_bind_linear(w, &tf->attn2_v, C, D, false, "%s.attn2.to_v", blk);
    sd_bind_linear(w, &tf->attn2_out, C, C, true, "%s.attn2.to_out.0", blk);
    sd_bind_norm(w, &tf->norm3, C, "%s.norm3", blk);
    sd_bind_linear(w, &tf->ff_proj, 8 * C, C, true, "%s.ff.net.0.proj", blk);
    sd_bind_linear(w, &tf->ff_out, C, 4 * C, true, "%s.ff.net.2", blk);
    bind_proj(w, &tf->proj_out, C, linear, name, "proj_out");
}

int sd_unet_walk(sd_walk *w, const sd_unet_config *p, unet_weights *W) {
    int n = p->n_levels, lpb = p->layers_per_block;
    if (n < 1 || n > SD_MAX_LEVELS || lpb < 1 || lpb > SD_MAX_LAYERS_PER_BLOCK) return 0;
    int C0 = p->block_out_channels[0], T = 4 * C0, D = p->cross_attention_dim, n_attn = 0;
    bool lin = p->use_linear_projection;
    char name[128];

    sd_bind_conv(w, &W->conv_in, C0, p->in_channels, 3, true, "conv_in");
    if (p->time_cond_proj_dim > 0)
        sd_bind_linear(w, &W->time_cond_proj, C0, p->time_cond_proj_dim, false, "time_embedding.cond_proj");
    sd_bind_linear(w, &W->time_linear_1, T, C0, true, "time_embedding.linear_1");
    sd_bind_linear(w, &W->time_linear_2, T, T, true, "time_embedding.linear_2");

    int cin = C0;
    for (int i = 0; i < n; i++) {
        int C = p->block_out_channels[i];
        for (int j = 0; j < lpb; j++) {
            sd_bind_resnet(w, &W->down[i].resnets[j], j == 0 ? cin : C, C, T, "down_blocks.%d.resnets.%d", i, j);
            if (p->down_cross_attn[i]) {
                snprintf(name, sizeof name, "down_blocks.%d.attentions.%d", i, j);
                bind_transformer(w, &W->down[i].attentions[j], C, p->heads[i], D, lin, name);
                n_attn++;
            }
        }
        if (i < n - 1) sd_bind_conv(w, &W->down[i].downsampler, C, C, 3, true, "down_blocks.%d.downsamplers.0.conv", i);
        cin = C;
    }

    int Cl = p->block_out_channels[n - 1];
    sd_bind_resnet(w, &W->mid_resnets[0], Cl, Cl, T, "mid_block.resnets.0");
    bind_transformer(w, &W->mid_attention, Cl, p->heads[n - 1], D, lin, "mid_block.attentions.0");
    sd_bind_resnet(w, &W->mid_resnets[1], Cl, Cl, T, "mid_block.resnets.1");
    n_attn++;

    int prev = Cl;
    for (int i = 0; i < n; i++) {
        int lvl = n - 1 - i, C = p->block_out_channels[lvl];
        int skip_in = p->block_out_channels[lvl > 0 ? lvl - 1 : 0]; /* the level's input channels */
        for (int j = 0; j <= lpb; j++) {
            int res_in = j == 0 ? prev : C, skip_ch = j == lpb ? skip_in : C;
            sd_bind_resnet(w, &W->up[i].resnets[j], res_in + skip_ch, C, T, "up_blocks.%d.resnets.%d", i, j);
            if (p->up_cross_attn[i]) {
                snprintf(name, sizeof name, "up_blocks.%d.attentions.%d", i, j);
                bind_transformer(w, &W->up[i].attentions[j], C, p->heads[lvl], D, lin, name);
                n_attn++;
            }
        }
        if (i < n - 1) sd_bind_conv(w, &W->up[i].upsampler, C, C, 3, true, "up_blocks.%d.upsamplers.0.conv", i);
        prev = C;
    }
    sd_bind_norm(w, &W->conv_norm_out, C0, "conv_norm_out");
    sd_bind_conv(w, &W->conv_out, p->out_channels, C0, 3, true, "conv_out");
    return n_attn;
}

/* --- the VAE (diffusers AutoencoderKL) -------------------------------------------------------- */

static void bind_mid(sd_walk *w, vae_mid *m, int C, bool attn, const char *part) {
    sd_bind_resnet(w, &m->resnets[0], C, C, 0, "%s.mid_block.resnets.0", part);
    m->has_attention = attn;
    if (attn) {
        sd_bind_norm(w, &m->group_norm, C, "%s.mid_block.attentions.0.group_norm", part);
        sd_bind_linear(w, &m->to_q, C, C, true, "%s.mid_block.attentions.0.to_q", part);
        sd_bind_linear(w, &m->to_k, C, C, true, "%s.mid_block.attentions.0.to_k", part);
        sd_bind_linear(w, &m->to_v, C, C, true, "%s.mid_block.attentions.0.to_v", part);
        sd_bind_linear(w, &m->to_out, C, C, true, "%s.mid_block.attentions.0.to_out.0", part);
    }
    sd_bind_resnet(w, &m->resnets[1], C, C, 0, "%s.mid_block.resnets.1", part);
}

void sd_vae_walk(sd_walk *w, const sd_vae_config *cfg, vae_encoder *E, vae_decoder *Dd) {
    int n = cfg->n_levels, lpb = cfg->layers_per_block;
    if (n < 1 || n > SD_MAX_LEVELS || lpb < 1 || lpb > SD_MAX_LAYERS_PER_BLOCK) return;
    const int *ch = cfg->block_out_channels;
    int Cl = cfg->latent_channels, Clast = ch[n - 1];
    if (E) {
        sd_bind_conv(w, &E->conv_in, ch[0], cfg->in_channels, 3, true, "encoder.conv_in");
        int cin = ch[0];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < lpb; j++)
                sd_bind_resnet(w, &E->down[i][j], j == 0 ? cin : ch[i], ch[i], 0, "encoder.down_blocks.%d.resnets.%d",
                               i, j);
            if (i < n - 1)
                sd_bind_conv(w, &E->downsamplers[i], ch[i], ch[i], 3, true,
                             "encoder.down_blocks.%d.downsamplers.0.conv", i);
            cin = ch[i];
        }
        bind_mid(w, &E->mid, Clast, cfg->mid_block_add_attention, "encoder");
        sd_bind_norm(w, &E->conv_norm_out, Clast, "encoder.conv_norm_out");
        sd_bind_conv(w, &E->conv_out, 2 * Cl, Clast, 3, true, "encoder.conv_out");
        if (cfg->use_quant_conv) sd_bind_conv(w, &E->quant_conv, 2 * Cl, 2 * Cl, 1, true, "quant_conv");
    }
    if (Dd) {
        if (cfg->use_post_quant_conv) sd_bind_conv(w, &Dd->post_quant_conv, Cl, Cl, 1, true, "post_quant_conv");
        sd_bind_conv(w, &Dd->conv_in, Clast, Cl, 3, true, "decoder.conv_in");
        bind_mid(w, &Dd->mid, Clast, cfg->mid_block_add_attention, "decoder");
        int prev = Clast;
        for (int i = 0; i < n; i++) {
            int C = ch[n - 1 - i];
            for (int j = 0; j <= lpb; j++)
                sd_bind_resnet(w, &Dd->up[i][j], j == 0 ? prev : C, C, 0, "decoder.up_blocks.%d.resnets.%d", i, j);
            if (i < n - 1)
                sd_bind_conv(w, &Dd->upsamplers[i], C, C, 3, true, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            prev = C;
        }
        sd_bind_norm(w, &Dd->conv_norm_out, ch[0], "decoder.conv_norm_out");
        sd_bind_conv(w, &Dd->conv_out, cfg->out_channels, ch[0], 3, true, "decoder.conv_out");
    }
}

/* --- the CLIP text encoder -------------------------------------------------------------------- */

void sd_clip_text_walk(sd_walk *w, const sd_clip_text_config *cfg, clip_weights *W) {
    int D = cfg->hidden_size, I = cfg->intermediate_size;
    int64_t tok[2] = {cfg->vocab_size, D}, pos[2] = {cfg->max_position_embeddings, D};
    W->token_embedding = sd_bind(w, 2, tok, "text_model.embeddings.token_embedding.weight");
    W->position_embedding = sd_bind(w, 2, pos, "text_model.embeddings.position_embedding.weight");
    for (int l = 0; l < cfg->num_hidden_layers; l++) {
        clip_layer *L = &W->layers[l];
#define LAYER "text_model.encoder.layers.%d."
        sd_bind_norm(w, &L->layer_norm1, D, LAYER "layer_norm1", l);
        sd_bind_linear(w, &L->q_proj, D, D, true, LAYER "self_attn.q_proj", l);
        sd_bind_linear(w, &L->k_proj, D, D, true, LAYER "self_attn.k_proj", l);
        sd_bind_linear(w, &L->v_proj, D, D, true, LAYER "self_attn.v_proj", l);
        sd_bind_linear(w, &L->out_proj, D, D, true, LAYER "self_attn.out_proj", l);
        sd_bind_norm(w, &L->layer_norm2, D, LAYER "layer_norm2", l);
        sd_bind_linear(w, &L->fc1, I, D, true, LAYER "mlp.fc1", l);
        sd_bind_linear(w, &L->fc2, D, I, true, LAYER "mlp.fc2", l);
#undef LAYER
    }
    sd_bind_norm(w, &W->final_layer_norm, D, "text_model.final_layer_norm");
}

/* --- the expected tensors (config.h): the walks with a recorder ------------------------------ */

typedef struct recorder {
    sd_walk walk;  /* first: the walks call back through it */
    GArray *specs; /* sd_tensor_spec */
    char prefix[32];
} recorder;

static ie_tensor *record(sd_walk *w, int ndim, const int64_t *shape, const char *name) {
    recorder *r = (recorder *)(void *)w;
    sd_tensor_spec s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "%s%s", r->prefix, name);
    s.ndim = ndim;
    for (int i = 0; i < 4; i++) s.shape[i] = i < ndim ? shape[i] : 1;
    g_array_append_val(r->specs, s);
    return NULL;
}

int sd_expected_tensors(const sd_model_config *cfg, sd_component comp, sd_tensor_spec **out) {
    recorder r = {{record}, g_array_new(FALSE, TRUE, sizeof(sd_tensor_spec)), ""};
    snprintf(r.prefix, sizeof r.prefix, "%s.", sd_component_name(comp));
    /* the walks store what the recorder returns (NULL) into weight structs:
     * scratch ones, dropped afterwards */
    if (comp == SD_UNET) {
        unet_weights *W = g_new0(unet_weights, 1);
        sd_unet_walk(&r.walk, &cfg->unet, W);
        g_free(W);
    } else if (comp == SD_VAE) {
        vae_encoder *E = g_new0(vae_encoder, 1);
        vae_decoder *D = g_new0(vae_decoder, 1);
        sd_vae_walk(&r.walk, &cfg->vae, E, D);
        g_free(E);
        g_free(D);
    } else if (comp == SD_TEXT_ENCODER && cfg->text.num_hidden_layers >= 0) {
        clip_weights W = {0};
        W.layers = g_new0(clip_layer, cfg->text.num_hidden_layers + 1);
        sd_clip_text_walk(&r.walk, &cfg->text, &W);
        g_free(W.layers);
    }
    int n = (int)r.specs->len;
    *out = (sd_tensor_spec *)(void *)g_array_free(r.specs, FALSE);
    return n;
}
