/* The CLIP text encoder on the op API. See clip.h. Comments quote
 * transformers' modeling_clip.py. */
#include "model/clip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ie_status clip_text_model_load(ie_backend *be, const sd_weights *w, const sd_clip_text_config *cfg, sd_wtype wt,
                               clip_text_model **out, char *err, size_t errlen) {
    *out = NULL;
    int D = cfg->hidden_size, I = cfg->intermediate_size, NL = cfg->num_hidden_layers;
    if (D < 1 || I < 1 || NL < 1 || cfg->num_attention_heads < 1 || D % cfg->num_attention_heads ||
        cfg->vocab_size < 1 || cfg->max_position_embeddings < 1) {
        if (err && errlen)
            snprintf(err, errlen, "text_encoder config: hidden_size %d, heads %d, layers %d are not usable", D,
                     cfg->num_attention_heads, NL);
        return IE_ERR_UNSUPPORTED;
    }
    clip_text_model *m = calloc(1, sizeof *m);
    if (!m) return IE_ERR_NOMEM;
    m->config = *cfg;
    m->be = be;
    m->weights.layers = calloc((size_t)NL, sizeof *m->weights.layers);
    if (!m->weights.layers) {
        free(m);
        return IE_ERR_NOMEM;
    }
    m->state.ids.dtype = IE_I32;
    sd_binder b;
    sd_binder_init(&b, be, wt, w, SD_TEXT_ENCODER, &m->mem);
    sd_clip_text_walk(&b.walk, cfg, &m->weights);
    ie_status s = sd_binder_finish(&b, "text_encoder", err, errlen);
    if (s) {
        clip_text_model_free(m);
        return s;
    }
    *out = m;
    return IE_OK;
}

void clip_text_model_free(clip_text_model *m) {
    if (!m) return;
    nn_arena_free(&m->state.arena);
    sd_tensor_list_free(&m->mem);
    free(m->weights.layers);
    free(m);
}

static void clip_run(clip_text_model *m, nn_ctx *c, ie_tensor *out, const int32_t *ids, int64_t B, int64_t L,
                     int n_run) {
    const sd_clip_text_config *p = &m->config;
    const clip_weights *W = &m->weights;
    clip_state *s = &m->state;
    int64_t D = p->hidden_size, I = p->intermediate_size;
    int heads = p->num_attention_heads;
    float eps = p->layer_norm_eps;

    ie_tensor id = nn_buf2(c, &s->ids, B, L); /* [B, L] i32 */
    ie_tensor x = nn_buf3(c, &s->x, B, L, D); /* [B, L, D] */
    ie_tensor n = nn_buf3(c, &s->n, B, L, D);
    ie_tensor q = nn_buf3(c, &s->q, B, L, D);
    ie_tensor k = nn_buf3(c, &s->k, B, L, D);
    ie_tensor v = nn_buf3(c, &s->v, B, L, D);
    ie_tensor a = nn_buf3(c, &s->att, B, L, D);
    ie_tensor o = nn_buf3(c, &s->o, B, L, D);
    ie_tensor f = nn_buf3(c, &s->mlp, B, L, I); /* [B, L, I] */

    nn_scope(c, "embeddings");
    nn_upload(c, &id, ids);
    // inputs_embeds = self.token_embedding(input_ids)
    nn_check(c, nn_live(c) ? ie_embedding(c->be, &x, &id, W->token_embedding) : IE_OK, "embedding");
    // embeddings = inputs_embeds + self.position_embedding(position_ids)   (positions 0..L-1)
    int64_t pshape[2] = {L, D};
    ie_tensor pos = nn_slice(W->position_embedding, 0, 2, pshape);
    nn_add(c, &x, &x, &pos);
    nn_tap(c, &x, "embeddings");

    for (int l = 0; l < n_run; l++) {
        const clip_layer *Ly = &W->layers[l];
        nn_scope(c, "encoder.layers.%d", l);
        // hidden_states = self.layer_norm1(hidden_states)
        nn_layer_norm(c, &n, &x, &Ly->layer_norm1, eps);
        // query/key/value = self.q_proj / k_proj / v_proj (hidden_states)   (scale head_dim**-0.5)
        nn_linear(c, &q, &n, &Ly->q_proj);
        nn_linear(c, &k, &n, &Ly->k_proj);
        nn_linear(c, &v, &n, &Ly->v_proj);
        // attn = softmax(q kᵀ · scale + causal_attention_mask) v
        nn_attention(c, &a, &q, &k, &v, heads, true);
        // hidden_states = residual + self.out_proj(attn)
        nn_linear(c, &o, &a, &Ly->out_proj);
        nn_add(c, &x, &x, &o);
        // hidden_states = residual + self.mlp(self.layer_norm2(hidden_states)):  fc2(act(fc1(x)))
        nn_layer_norm(c, &n, &x, &Ly->layer_norm2, eps);
        nn_linear(c, &f, &n, &Ly->fc1);
        nn_unary(c, &f, &f, p->hidden_act == SD_CLIP_GELU ? IE_UNARY_GELU : IE_UNARY_QUICK_GELU);
        nn_linear(c, &o, &f, &Ly->fc2);
        nn_add(c, &x, &x, &o);
        nn_tap(c, &x, "layers.%d", l);
    }
    // last_hidden_state = self.final_layer_norm(hidden_states)
    nn_scope(c, "final_layer_norm");
    nn_layer_norm(c, out, &x, &W->final_layer_norm, eps);
    nn_tap(c, out, "final_layer_norm");
}

ie_status clip_text_model_forward(clip_text_model *m, ie_tensor *out, const int32_t *ids, int B, int L, int clip_skip) {
    const sd_clip_text_config *p = &m->config;
    clip_state *s = &m->state;
    m->err[0] = 0;
    char b[96];
    if (B < 1 || L < 1 || L > p->max_position_embeddings) {
        snprintf(m->err, sizeof m->err, "clip_text_model_forward: %d x %d tokens (at most %d per prompt)", B, L,
                 p->max_position_embeddings);
        return IE_ERR_ARG;
    }
    if (!out || out->ndim != 3 || out->shape[0] != B || out->shape[1] != L || out->shape[2] != p->hidden_size) {
        snprintf(m->err, sizeof m->err, "clip_text_model_forward: out must be [%d, %d, %d] (got %s)", B, L,
                 p->hidden_size, out ? ie_tensor_shape_str(out, b, sizeof b) : "NULL");
        return IE_ERR_SHAPE;
    }
    for (int i = 0; i < B * L; i++)
        if (ids[i] < 0 || ids[i] >= p->vocab_size) {
            snprintf(m->err, sizeof m->err, "clip_text_model_forward: token id %d at %d is outside the vocabulary (%d)",
                     ids[i], i, p->vocab_size);
            return IE_ERR_ARG;
        }
    if (clip_skip < 1) clip_skip = 1;
    int n_run = p->num_hidden_layers - (clip_skip - 1);
    if (n_run < 1) {
        snprintf(m->err, sizeof m->err, "clip_text_model_forward: clip_skip %d with %d layers", clip_skip,
                 p->num_hidden_layers);
        return IE_ERR_ARG;
    }
    if (s->B != B || s->L != L) {
        nn_ctx plan = nn_ctx_make(m->be, &s->arena, true, "text_encoder", m->tap, m->err, sizeof m->err);
        clip_run(m, &plan, out, ids, B, L, n_run);
        if (plan.status) return plan.status;
        ie_status st = nn_arena_reserve(&s->arena, m->be, m->err, sizeof m->err);
        if (st) return st;
        s->B = B;
        s->L = L;
    }
    nn_ctx c = nn_ctx_make(m->be, &s->arena, false, "text_encoder", m->tap, m->err, sizeof m->err);
    clip_run(m, &c, out, ids, B, L, n_run);
    return c.status;
}
