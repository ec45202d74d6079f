/* The SD 1.x UNet (diffusers UNet2DConditionModel) on the op API. See unet.h.
 * Comments quote the diffusers lines each call implements. */
#include "model/unet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * Loading: the UNet's walk (tensors.c) with a binder. */

/* proj_in / proj_out are kept as an nn_conv (tensors.c); with
 * use_linear_projection its w is a Linear [C, C]. */
static nn_lin as_linear(const nn_conv *pr) {
    nn_lin l = {pr->w, pr->b};
    return l;
}

static ie_status check_config(const sd_unet_config *p, char *err, size_t errlen) {
    const char *why = NULL;
    char buf[160];
    if (p->n_levels < 1 || p->n_levels > SD_MAX_LEVELS) why = "n_levels out of range";
    else if (p->layers_per_block < 1 || p->layers_per_block > SD_MAX_LAYERS_PER_BLOCK)
        why = "layers_per_block out of range";
    else if (p->transformer_layers_per_block != 1)
        why = "transformer_layers_per_block != 1 (only SD 1.x's single block is supported)";
    else if (p->norm_num_groups < 1) why = "norm_num_groups < 1";
    for (int i = 0; !why && i < p->n_levels; i++) {
        int C = p->block_out_channels[i];
        if (C < 1 || C % p->norm_num_groups || p->heads[i] < 1 || C % p->heads[i]) {
            snprintf(buf, sizeof buf, "level %d: %d channels must be divisible by norm_num_groups %d and heads %d", i,
                     C, p->norm_num_groups, p->heads[i]);
            why = buf;
        }
    }
    if (!why && p->block_out_channels[0] % p->norm_num_groups) why = "conv_in channels vs groups";
    if (!why) return IE_OK;
    if (err && errlen) snprintf(err, errlen, "unet config: %s", why);
    return IE_ERR_UNSUPPORTED;
}

ie_status unet_load(ie_backend *be, const sd_weights *w, const sd_unet_config *cfg, sd_wtype wt, unet **out, char *err,
                    size_t errlen) {
    *out = NULL;
    ie_status s = check_config(cfg, err, errlen);
    if (s) return s;
    unet *u = calloc(1, sizeof *u);
    if (!u) return IE_ERR_NOMEM;
    u->config = *cfg;
    u->be = be;
    sd_binder b;
    sd_binder_init(&b, be, wt, w, SD_UNET, &u->mem);
    u->n_attn_layers = sd_unet_walk(&b.walk, &u->config, &u->weights);
    s = sd_binder_finish(&b, "unet", err, errlen);
    if (s) {
        unet_free(u);
        return s;
    }
    *out = u;
    return IE_OK;
}

void unet_free(unet *u) {
    if (!u) return;
    nn_arena_free(&u->state.arena);
    ie_tensor_free(u->state.probs.t);
    sd_tensor_list_free(&u->mem);
    free(u);
}

uint64_t unet_weight_bytes(const unet *u) { return u->mem.bytes; }

void unet_release_activations(unet *u) {
    if (!u) return;
    nn_arena_free(&u->state.arena);
    ie_tensor_free(u->state.probs.t);
    u->state.probs.t = NULL;
    u->state.probs.cap = 0;
    u->state.B = u->state.H = u->state.W = u->state.Lc = u->state.P = 0;
}
uint64_t unet_activation_bytes(const unet *u) {
    return nn_arena_bytes(&u->state.arena) + (u->state.probs.t ? ie_tensor_nbytes(u->state.probs.t) : 0);
}

/* ----------------------------------------------------------------------------
 * Attention: the one place every UNet attention goes through (hook point). */

/* out [B, Lq, C] = attention over q [B, Lq, C], k/v [B, Lk, C]. */
static void attend(unet *u, nn_ctx *c, ie_tensor *out, ie_tensor *q, ie_tensor *k, ie_tensor *v, unet_attn_call *call) {
    if (!u->hook || !nn_live(c)) {
        nn_attention(c, out, q, k, v, call->heads, false);
        return;
    }
    call->be = c->be;
    call->q = q;
    call->k = k;
    call->v = v;
    call->probs = NULL;
    call->want_probs = false;
    ie_status s = u->hook(u->hook_user, UNET_HOOK_QKV, call);
    if (s) {
        nn_fail(c, s, "attention hook failed (%s attention %d)", call->cross ? "cross" : "self", call->index);
        return;
    }
    if (!call->want_probs) {
        nn_attention(c, out, q, k, v, call->heads, false);
        return;
    }
    /* The explicit path: probs [B, heads, Lq, Lk], kept across calls. */
    int64_t B = q->shape[0], Lq = q->shape[1], Lk = k->shape[1];
    int64_t shape[4] = {B, call->heads, Lq, Lk};
    nn_slab *ps = &u->state.probs;
    if (ps->cap < B * call->heads * Lq * Lk) {
        ie_tensor_free(ps->t);
        ps->cap = 0;
        int64_t need = B * call->heads * Lq * Lk;
        ps->t = ie_tensor_new(c->be, IE_F32, 1, &need);
        if (!ps->t) {
            nn_check(c, IE_ERR_NOMEM, "attention probabilities");
            return;
        }
        ps->cap = need;
    }
    ie_tensor probs = nn_reshape(ps->t, 4, shape);
    float scale = 1.0f / sqrtf((float)(q->shape[2] / call->heads));
    nn_check(c, ie_attention_probs(c->be, &probs, q, k, call->heads, scale, false), "attention_probs");
    if (!nn_live(c)) return;
    call->probs = &probs;
    s = u->hook(u->hook_user, UNET_HOOK_PROBS, call);
    call->probs = NULL;
    if (s) {
        nn_fail(c, s, "attention hook failed on probabilities (%s attention %d)", call->cross ? "cross" : "self",
                call->index);
        return;
    }
    nn_check(c, ie_attention_apply(c->be, out, &probs, v), "attention_apply");
}

/* to_out(attention(to_q(x), to_k(ctx), to_v(ctx))): x [B, L, C], ctx [B, Lk, Dk] -> out [B, L, C]. */
static void attention_layer(unet *u, nn_ctx *c, ie_tensor *out, const ie_tensor *x, const ie_tensor *ctx,
                            const nn_lin *to_q, const nn_lin *to_k, const nn_lin *to_v, const nn_lin *to_out,
                            unet_attn_call *call) {
    unet_state *s = &u->state;
    int64_t B = x->shape[0], L = x->shape[1], C = x->shape[2], Lk = ctx->shape[1];
    ie_tensor q = nn_buf3(c, &s->q, B, L, C);   /* [B, L, C] */
    ie_tensor k = nn_buf3(c, &s->k, B, Lk, C);  /* [B, Lk, C] */
    ie_tensor v = nn_buf3(c, &s->v, B, Lk, C);  /* [B, Lk, C] */
    ie_tensor a = nn_buf3(c, &s->att, B, L, C); /* [B, L, C] */
    // query = attn.to_q(hidden_states); key = attn.to_k(encoder_hidden_states); value = attn.to_v(...)
    nn_linear(c, &q, x, to_q);
    nn_linear(c, &k, ctx, to_k);
    nn_linear(c, &v, ctx, to_v);
    // hidden_states = F.scaled_dot_product_attention(query, key, value)  (per head)
    attend(u, c, &a, &q, &k, &v, call);
    call->index++;
    // hidden_states = attn.to_out[0](hidden_states)
    nn_linear(c, out, &a, to_out);
}

/* ----------------------------------------------------------------------------
 * Transformer2DModel: x [B, C, H, W] updated in place. ctx [B, Lc, D]. */
static void transformer_forward(unet *u, nn_ctx *c, ie_tensor *x, const unet_transformer *tf, const ie_tensor *ctx,
                                unet_attn_call *call) {
    unet_state *s = &u->state;
    bool linear = u->config.use_linear_projection;
    int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], L = H * W;
    call->height = (int)H;
    call->width = (int)W;
    call->heads = tf->heads;
    call->channels = (int)C;

    ie_tensor g = nn_buf4(c, &s->t1, B, C, H, W); /* [B, C, H, W] */
    ie_tensor x0 = nn_buf3(c, &s->tok, B, L, C);  /* [B, L, C] the token stream */
    // hidden_states = self.norm(hidden_states)          (GroupNorm, eps 1e-6)
    nn_group_norm(c, &g, x, &tf->norm, u->config.norm_num_groups, 1e-6f, false);
    if (!linear) {
        // hidden_states = self.proj_in(hidden_states)      (1x1 conv)
        ie_tensor p = nn_buf4(c, &s->t2, B, C, H, W);
        nn_conv2d(c, &p, &g, &tf->proj_in, 1, 0);
        // hidden_states = hidden_states.permute(0, 2, 3, 1).reshape(batch, height * width, inner_dim)
        ie_tensor p3 = nn_as3(&p, B, C, L);
        nn_transpose(c, &x0, &p3);
    } else {
        // permute to tokens first, then hidden_states = self.proj_in(hidden_states)  (Linear)
        ie_tensor g3 = nn_as3(&g, B, C, L);
        ie_tensor t = nn_buf3(c, &s->t2, B, L, C);
        nn_transpose(c, &t, &g3);
        nn_lin proj_in = as_linear(&tf->proj_in);
        nn_linear(c, &x0, &t, &proj_in);
    }

    /* BasicTransformerBlock */
    ie_tensor n = nn_buf3(c, &s->nrm, B, L, C); /* [B, L, C] */
    ie_tensor o = nn_buf3(c, &s->prj, B, L, C); /* [B, L, C] */
    // hidden_states = self.attn1(self.norm1(hidden_states)) + hidden_states
    nn_layer_norm(c, &n, &x0, &tf->norm1, 1e-5f);
    call->cross = false;
    attention_layer(u, c, &o, &n, &n, &tf->attn1_q, &tf->attn1_k, &tf->attn1_v, &tf->attn1_out, call);
    nn_add(c, &x0, &x0, &o);
    // hidden_states = self.attn2(self.norm2(hidden_states), encoder_hidden_states) + hidden_states
    nn_layer_norm(c, &n, &x0, &tf->norm2, 1e-5f);
    call->cross = true;
    attention_layer(u, c, &o, &n, ctx, &tf->attn2_q, &tf->attn2_k, &tf->attn2_v, &tf->attn2_out, call);
    nn_add(c, &x0, &x0, &o);
    // hidden_states = self.ff(self.norm3(hidden_states)) + hidden_states
    //   ff: ff.net.2(a * gelu(gate)) with a, gate = ff.net.0.proj(x).chunk(2, dim=-1)
    nn_layer_norm(c, &n, &x0, &tf->norm3, 1e-5f);
    /* one batch row at a time (issue 10): the [L, 8C] GEGLU input is the UNet's
     * largest activation (40 MiB per row at 64x64 latents), and a Linear computes
     * each row of its batch on its own, so the bits are those of the whole batch */
    ie_tensor f = nn_buf3(c, &s->ff, 1, L, 8 * C);   /* [1, L, 8C] */
    ie_tensor fg = nn_buf3(c, &s->ffg, 1, L, 4 * C); /* [1, L, 4C] */
    for (int64_t b = 0; b < B; b++) {
        ie_tensor nb = nn_row(&n, b), ob = nn_row(&o, b);
        nn_linear(c, &f, &nb, &tf->ff_proj);
        nn_geglu(c, &fg, &f);
        nn_linear(c, &ob, &fg, &tf->ff_out);
    }
    nn_add(c, &x0, &x0, &o);

    ie_tensor back = nn_buf3(c, &s->t1, B, C, L); /* [B, C, L] */
    ie_tensor back4 = nn_as4(&back, B, C, H, W);
    if (!linear) {
        // hidden_states = hidden_states.reshape(batch, height, width, inner_dim).permute(0, 3, 1, 2)
        nn_transpose(c, &back, &x0);
        // hidden_states = self.proj_out(hidden_states)
        ie_tensor p = nn_buf4(c, &s->t2, B, C, H, W);
        nn_conv2d(c, &p, &back4, &tf->proj_out, 1, 0);
        // output = hidden_states + residual
        nn_add(c, x, x, &p);
    } else {
        // hidden_states = self.proj_out(hidden_states), then back to [B, C, H, W]
        nn_lin proj_out = as_linear(&tf->proj_out);
        nn_linear(c, &o, &x0, &proj_out);
        nn_transpose(c, &back, &o);
        nn_add(c, x, x, &back4);
    }
    call->transformer++;
}

/* ----------------------------------------------------------------------------
 * The forward pass (run twice per new shape: a dry run that sizes the slabs,
 * then for real). */

static void resnet(unet *u, nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_resnet *r,
                   const ie_tensor *emb_silu) {
    unet_state *s = &u->state;
    nn_resnet_forward(c, out, x, r, emb_silu, u->config.norm_num_groups, u->config.norm_eps, &s->t1, &s->t2, &s->tproj);
}

static void unet_run(unet *u, nn_ctx *c, ie_tensor *out, const ie_tensor *x, const float *t, const ie_tensor *ctx,
                     const float *w) {
    const sd_unet_config *p = &u->config;
    const unet_weights *W = &u->weights;
    unet_state *s = &u->state;
    int n = p->n_levels, lpb = p->layers_per_block;
    int64_t B = x->shape[0], C0 = p->block_out_channels[0], T = 4 * C0;
    int64_t h = x->shape[2], wd = x->shape[3];
    unet_attn_call call;
    memset(&call, 0, sizeof call);

    /* --- time embedding ------------------------------------------------------ */
    nn_scope(c, "time_embedding");
    ie_tensor tt = nn_buf1(c, &s->t, B);          /* [B] */
    ie_tensor temb = nn_buf2(c, &s->temb, B, C0); /* [B, C0] */
    nn_upload(c, &tt, t);
    // t_emb = get_timestep_embedding(timesteps, C0, flip_sin_to_cos=True, downscale_freq_shift=0)
    nn_timestep_embedding(c, &temb, &tt, (int)C0, p->flip_sin_to_cos, p->freq_shift);
    if (W->time_cond_proj.w && w) {
        int64_t P = p->time_cond_proj_dim;
        ie_tensor ww = nn_buf1(c, &s->w, B);           /* [B] */
        ie_tensor g = nn_buf2(c, &s->tcond_sin, B, P); /* [B, P] */
        ie_tensor gc = nn_buf2(c, &s->tcond, B, C0);   /* [B, C0] */
        nn_upload(c, &ww, w);
        // w_embedding = get_guidance_scale_embedding(w, P): [sin, cos], f_j = exp(-ln 1e4 · j / (P/2 - 1))
        nn_timestep_embedding(c, &g, &ww, (int)P, false, 1.0f);
        // sample = sample + self.cond_proj(condition)
        nn_linear(c, &gc, &g, &W->time_cond_proj);
        nn_add(c, &temb, &temb, &gc);
    }
    ie_tensor th = nn_buf2(c, &s->thid, B, T);     /* [B, T] */
    ie_tensor emb = nn_buf2(c, &s->emb, B, T);     /* [B, T] */
    ie_tensor es = nn_buf2(c, &s->emb_silu, B, T); /* [B, T] */
    // emb = self.linear_2(self.act(self.linear_1(sample)))
    nn_linear(c, &th, &temb, &W->time_linear_1);
    nn_unary(c, &th, &th, IE_UNARY_SILU);
    nn_linear(c, &emb, &th, &W->time_linear_2);
    nn_tap(c, &emb, "time_embedding");
    // every ResnetBlock2D computes time_emb_proj(silu(temb)): do the silu once
    nn_unary(c, &es, &emb, IE_UNARY_SILU);

    /* --- conv_in and the down path ------------------------------------------------ */
    ie_tensor skips[UNET_MAX_SKIPS];
    int ns = 0;
    nn_scope(c, "conv_in");
    // sample = self.conv_in(sample)                      [B, C0, H, W]
    skips[ns] = nn_buf4(c, &s->skip[ns], B, C0, h, wd);
    nn_conv2d(c, &skips[ns], x, &W->conv_in, 1, 1);
    nn_tap(c, &skips[ns], "conv_in");
    ns++;
    for (int i = 0; i < n; i++) {
        int64_t C = p->block_out_channels[i];
        call.place = UNET_DOWN;
        call.block = i;
        for (int j = 0; j < lpb; j++) {
            // hidden_states = resnet(hidden_states, temb)    [B, C_i, h, w]
            nn_scope(c, "down_blocks.%d.resnets.%d", i, j);
            skips[ns] = nn_buf4(c, &s->skip[ns], B, C, h, wd);
            resnet(u, c, &skips[ns], &skips[ns - 1], &W->down[i].resnets[j], &es);
            if (p->down_cross_attn[i]) {
                // hidden_states = attn(hidden_states, encoder_hidden_states=encoder_hidden_states)
                nn_scope(c, "down_blocks.%d.attentions.%d", i, j);
                call.layer = j;
                transformer_forward(u, c, &skips[ns], &W->down[i].attentions[j], ctx, &call);
            }
            // output_states = output_states + (hidden_states,)
            ns++;
        }
        if (i < n - 1) {
            // hidden_states = downsampler(hidden_states)    (3x3, stride 2, pad 1)  [B, C_i, h/2, w/2]
            //   (downsample_padding 0: F.pad(hidden_states, (0, 1, 0, 1)) first, as in the VAE)
            nn_scope(c, "down_blocks.%d.downsamplers.0", i);
            h /= 2;
            wd /= 2;
            int pd = p->downsample_padding;
            ie_conv2d_params pad = pd ? ie_conv2d_params_sym(2, pd) : (ie_conv2d_params){2, 0, 1, 0, 1};
            skips[ns] = nn_buf4(c, &s->skip[ns], B, C, h, wd);
            nn_conv2d_p(c, &skips[ns], &skips[ns - 1], &W->down[i].downsampler, &pad);
            ns++;
        }
        nn_tap(c, &skips[ns - 1], "down_blocks.%d", i);
    }

    /* --- mid ---------------------------------------------------------------------------- */
    int64_t Cl = p->block_out_channels[n - 1];
    int cur = 0;                                         /* which of s->h[] holds the stream */
    ie_tensor hs = nn_buf4(c, &s->h[cur], B, Cl, h, wd); /* [B, C_last, h, w] */
    ie_tensor hn = nn_buf4(c, &s->h[!cur], B, Cl, h, wd);
    call.place = UNET_MID;
    call.block = call.layer = 0;
    // hidden_states = self.resnets[0](hidden_states, temb)
    nn_scope(c, "mid_block.resnets.0");
    resnet(u, c, &hs, &skips[ns - 1], &W->mid_resnets[0], &es);
    // hidden_states = attn(hidden_states, encoder_hidden_states); hidden_states = resnet(hidden_states, temb)
    nn_scope(c, "mid_block.attentions.0");
    transformer_forward(u, c, &hs, &W->mid_attention, ctx, &call);
    nn_scope(c, "mid_block.resnets.1");
    resnet(u, c, &hn, &hs, &W->mid_resnets[1], &es);
    hs = hn;
    cur = !cur;
    nn_tap(c, &hs, "mid_block");

    /* --- the up path -------------------------------------------------------------------- */
    call.place = UNET_UP;
    for (int i = 0; i < n; i++) {
        int64_t C = p->block_out_channels[n - 1 - i];
        call.block = i;
        for (int j = 0; j <= lpb; j++) {
            // res_hidden_states = res_hidden_states_tuple[-1]  (pop from the end)
            // hidden_states = torch.cat([hidden_states, res_hidden_states], dim=1)
            nn_scope(c, "up_blocks.%d.resnets.%d", i, j);
            const ie_tensor *sk = &skips[--ns];
            ie_tensor cat = nn_buf4(c, &s->cat, B, hs.shape[1] + sk->shape[1], h, wd);
            nn_concat(c, &cat, &hs, sk);
            // hidden_states = resnet(hidden_states, temb)      [B, C, h, w]
            hn = nn_buf4(c, &s->h[!cur], B, C, h, wd);
            resnet(u, c, &hn, &cat, &W->up[i].resnets[j], &es);
            hs = hn;
            cur = !cur;
            if (p->up_cross_attn[i]) {
                nn_scope(c, "up_blocks.%d.attentions.%d", i, j);
                call.layer = j;
                transformer_forward(u, c, &hs, &W->up[i].attentions[j], ctx, &call);
            }
        }
        if (i < n - 1) {
            // hidden_states = upsampler(hidden_states): F.interpolate(scale_factor=2.0, mode="nearest"), conv 3x3
            nn_scope(c, "up_blocks.%d.upsamplers.0", i);
            ie_tensor up = nn_buf4(c, &s->ups, B, C, 2 * h, 2 * wd); /* [B, C, 2h, 2w] */
            nn_upsample(c, &up, &hs);
            h *= 2;
            wd *= 2;
            hn = nn_buf4(c, &s->h[!cur], B, C, h, wd);
            nn_conv2d(c, &hn, &up, &W->up[i].upsampler, 1, 1);
            hs = hn;
            cur = !cur;
        }
        nn_tap(c, &hs, "up_blocks.%d", i);
    }

    /* --- out ------------------------------------------------------------------------------ */
    nn_scope(c, "conv_out");
    ie_tensor g = nn_buf4(c, &s->t1, B, C0, h, wd);
    // sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
    nn_group_norm(c, &g, &hs, &W->conv_norm_out, p->norm_num_groups, p->norm_eps, true);
    nn_conv2d(c, out, &g, &W->conv_out, 1, 1);
    nn_tap(c, out, "out");
}

static ie_status shape_error(unet *u, const char *what, const ie_tensor *t) {
    char b[96];
    snprintf(u->err, sizeof u->err, "unet_forward: %s (got %s)", what,
             t ? ie_tensor_shape_str(t, b, sizeof b) : "NULL");
    return IE_ERR_SHAPE;
}

ie_status unet_forward(unet *u, ie_tensor *out, const ie_tensor *x, const float *t, const ie_tensor *ctx,
                       const float *w) {
    const sd_unet_config *p = &u->config;
    unet_state *s = &u->state;
    u->err[0] = 0;
    if (!x || x->ndim != 4 || x->shape[1] != p->in_channels)
        return shape_error(u, "x must be [B, in_channels, H, W]", x);
    int64_t B = x->shape[0], H = x->shape[2], W = x->shape[3], f = (int64_t)1 << (p->n_levels - 1);
    if (H % f || W % f) {
        snprintf(u->err, sizeof u->err, "unet_forward: latent %lldx%lld must be divisible by %lld", (long long)H,
                 (long long)W, (long long)f);
        return IE_ERR_SHAPE;
    }
    if (!ctx || ctx->ndim != 3 || ctx->shape[0] != B || ctx->shape[2] != p->cross_attention_dim)
        return shape_error(u, "ctx must be [B, Lc, cross_attention_dim]", ctx);
    if (!out || out->ndim != 4 || out->shape[0] != B || out->shape[1] != p->out_channels || out->shape[2] != H ||
        out->shape[3] != W)
        return shape_error(u, "out must be [B, out_channels, H, W]", out);
    if (!t) {
        snprintf(u->err, sizeof u->err, "unet_forward: no timesteps");
        return IE_ERR_ARG;
    }
    /* LCM UNets without w: diffusers adds cond_proj only when timestep_cond
     * is given (InfEdit calls the LCM UNet that way). */
    int P = u->weights.time_cond_proj.w && w ? p->time_cond_proj_dim : 0;
    if (s->B != B || s->H != H || s->W != W || s->Lc != ctx->shape[1] || s->P != P) {
        nn_ctx plan = nn_ctx_make(u->be, &s->arena, true, "unet", u->tap, u->err, sizeof u->err);
        unet_run(u, &plan, out, x, t, ctx, w);
        if (plan.status) return plan.status;
        ie_status st = nn_arena_reserve(&s->arena, u->be, u->err, sizeof u->err);
        if (st) return st;
        s->B = (int)B, s->H = (int)H, s->W = (int)W, s->Lc = (int)ctx->shape[1], s->P = P;
    }
    nn_ctx c = nn_ctx_make(u->be, &s->arena, false, "unet", u->tap, u->err, sizeof u->err);
    unet_run(u, &c, out, x, t, ctx, w);
    return c.status;
}

/* --- memory plan (issue 10) --- */

ie_status unet_plan_activations(unet *u, int B, int H, int W, int Lc, uint64_t *total, uint64_t *largest) {
    const sd_unet_config *p = &u->config;
    unet_state *s = &u->state;
    int64_t xs[4] = {B, p->in_channels, H, W}, os[4] = {B, p->out_channels, H, W},
            cs[3] = {B, Lc, p->cross_attention_dim};
    ie_tensor x = nn_plan_tensor(u->be, 4, xs), out = nn_plan_tensor(u->be, 4, os), ctx = nn_plan_tensor(u->be, 3, cs);
    float t0 = 0;
    nn_ctx plan = nn_ctx_make(u->be, &s->arena, true, "unet", (sd_tap){0}, u->err, sizeof u->err);
    unet_run(u, &plan, &out, &x, &t0, &ctx, NULL);
    nn_arena_plan_bytes(&s->arena, total, largest);
    /* the next forward pass plans again (the needs now describe this shape) */
    s->B = s->H = s->W = s->Lc = s->P = 0;
    return plan.status;
}
