/* The SD VAE (diffusers AutoencoderKL) on the op API. See vae.h. Comments
 * quote diffusers' vae.py / autoencoder_kl.py. */
#include "model/vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VAE_EPS 1e-6f

/* ----------------------------------------------------------------------------
 * Loading: the VAE's walk (tensors.c) with a binder. */

ie_status vae_load(ie_backend *be, const sd_weights *w, const sd_vae_config *cfg, int parts, sd_wtype wt, vae **out,
                   char *err, size_t errlen) {
    *out = NULL;
    int n = cfg->n_levels, lpb = cfg->layers_per_block, G = cfg->norm_num_groups;
    bool ok = n >= 1 && n <= SD_MAX_LEVELS && lpb >= 1 && lpb <= SD_MAX_LAYERS_PER_BLOCK && G >= 1 &&
              cfg->latent_channels >= 1 && (parts & (VAE_ENCODER | VAE_DECODER)) && cfg->scaling_factor != 0;
    for (int i = 0; ok && i < n; i++) ok = cfg->block_out_channels[i] >= 1 && cfg->block_out_channels[i] % G == 0;
    if (!ok) {
        if (err && errlen) snprintf(err, errlen, "vae config: levels/channels/groups/scaling_factor not usable");
        return IE_ERR_UNSUPPORTED;
    }
    vae *m = calloc(1, sizeof *m);
    if (!m) return IE_ERR_NOMEM;
    m->config = *cfg;
    m->parts = parts;
    m->be = be;
    sd_binder b;
    sd_binder_init(&b, be, wt, w, SD_VAE, &m->mem);
    sd_vae_walk(&b.walk, cfg, parts & VAE_ENCODER ? &m->enc : NULL, parts & VAE_DECODER ? &m->dec : NULL);
    ie_status s = sd_binder_finish(&b, "vae", err, errlen);
    if (s) {
        vae_free(m);
        return s;
    }
    *out = m;
    return IE_OK;
}

void vae_free(vae *m) {
    if (!m) return;
    nn_arena_free(&m->state.arena);
    sd_tensor_list_free(&m->mem);
    free(m);
}

int vae_factor(const vae *m) { return 1 << (m->config.n_levels - 1); }
uint64_t vae_weight_bytes(const vae *m) { return m->mem.bytes; }

/* ----------------------------------------------------------------------------
 * Blocks. */

static void resnet(vae *m, nn_ctx *c, ie_tensor *out, const ie_tensor *x, const nn_resnet *r) {
    vae_state *s = &m->state;
    nn_resnet_forward(c, out, x, r, NULL, m->config.norm_num_groups, VAE_EPS, &s->t1, &s->t2, NULL);
}

/* Single-head attention over the h·w tokens, x [B, C, H, W] updated in place. */
static void mid_attention(vae *m, nn_ctx *c, ie_tensor *x, const vae_mid *md) {
    vae_state *s = &m->state;
    int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], L = H * W;
    ie_tensor g = nn_buf4(c, &s->t1, B, C, H, W); /* [B, C, H, W] */
    ie_tensor g3 = nn_as3(&g, B, C, L);
    ie_tensor t = nn_buf3(c, &s->tok, B, L, C); /* [B, L, C] */
    ie_tensor q = nn_buf3(c, &s->q, B, L, C);
    ie_tensor k = nn_buf3(c, &s->k, B, L, C);
    ie_tensor v = nn_buf3(c, &s->v, B, L, C);
    ie_tensor a = nn_buf3(c, &s->att, B, L, C);
    // hidden_states = attn.group_norm(hidden_states).view(batch, channel, height * width).transpose(1, 2)
    nn_group_norm(c, &g, x, &md->group_norm, m->config.norm_num_groups, VAE_EPS, false);
    nn_transpose(c, &t, &g3);
    // query = attn.to_q(hidden_states); key = attn.to_k(...); value = attn.to_v(...)
    nn_linear(c, &q, &t, &md->to_q);
    nn_linear(c, &k, &t, &md->to_k);
    nn_linear(c, &v, &t, &md->to_v);
    // hidden_states = softmax(q kᵀ / sqrt(C)) v        (one head)
    nn_attention(c, &a, &q, &k, &v, 1, false);
    // hidden_states = attn.to_out[0](hidden_states)
    nn_linear(c, &t, &a, &md->to_out);
    // hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width) + residual
    nn_transpose(c, &g3, &t);
    nn_add(c, x, x, &g);
}

/* mid_block: x [B, C, H, W] (slab h[*cur]) -> the result in h[*cur]. */
static ie_tensor mid_block(vae *m, nn_ctx *c, ie_tensor x, int *cur, const vae_mid *md) {
    vae_state *s = &m->state;
    int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    ie_tensor y = nn_buf4(c, &s->h[!*cur], B, C, H, W);
    // hidden_states = self.resnets[0](hidden_states, temb)
    resnet(m, c, &y, &x, &md->resnets[0]);
    // hidden_states = attn(hidden_states, temb=temb)
    if (md->has_attention) mid_attention(m, c, &y, md);
    // hidden_states = resnet(hidden_states, temb)
    resnet(m, c, &x, &y, &md->resnets[1]);
    return x;
}

/* ----------------------------------------------------------------------------
 * Encoder: image [B, 3, H, W] -> moments [B, 2Cl, H/f, W/f] in s->moments. */

static ie_tensor encoder_run(vae *m, nn_ctx *c, const ie_tensor *image) {
    const sd_vae_config *p = &m->config;
    const vae_encoder *E = &m->enc;
    vae_state *s = &m->state;
    int n = p->n_levels, lpb = p->layers_per_block;
    int64_t B = image->shape[0], h = image->shape[2], w = image->shape[3];
    const int *ch = p->block_out_channels;
    int cur = 0;

    nn_scope(c, "encoder.conv_in");
    // sample = self.conv_in(sample)                   [B, C0, H, W]
    ie_tensor x = nn_buf4(c, &s->h[cur], B, ch[0], h, w);
    nn_conv2d(c, &x, image, &E->conv_in, 1, 1);
    nn_tap(c, &x, "encoder.conv_in");
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < lpb; j++) {
            // hidden_states = resnet(hidden_states, temb=None)   [B, C_i, h, w]
            nn_scope(c, "encoder.down_blocks.%d.resnets.%d", i, j);
            ie_tensor y = nn_buf4(c, &s->h[!cur], B, ch[i], h, w);
            resnet(m, c, &y, &x, &E->down[i][j]);
            x = y;
            cur = !cur;
        }
        if (i < n - 1) {
            // hidden_states = F.pad(hidden_states, (0, 1, 0, 1)); hidden_states = self.conv(hidden_states)  (stride 2)
            nn_scope(c, "encoder.down_blocks.%d.downsamplers.0", i);
            h /= 2;
            w /= 2;
            ie_tensor y = nn_buf4(c, &s->h[!cur], B, ch[i], h, w);
            ie_conv2d_params pad = {.stride = 2, .pad_top = 0, .pad_bottom = 1, .pad_left = 0, .pad_right = 1};
            nn_conv2d_p(c, &y, &x, &E->downsamplers[i], &pad);
            x = y;
            cur = !cur;
        }
        nn_tap(c, &x, "encoder.down_blocks.%d", i);
    }
    nn_scope(c, "encoder.mid_block");
    x = mid_block(m, c, x, &cur, &E->mid);
    nn_tap(c, &x, "encoder.mid_block");

    nn_scope(c, "encoder.conv_out");
    int64_t C2 = 2 * p->latent_channels;
    ie_tensor g = nn_buf4(c, &s->t1, B, x.shape[1], h, w);
    ie_tensor mo = nn_buf4(c, &s->moments, B, C2, h, w); /* [B, 2Cl, h, w] */
    // sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
    nn_group_norm(c, &g, &x, &E->conv_norm_out, p->norm_num_groups, VAE_EPS, true);
    if (E->quant_conv.w) {
        ie_tensor y = nn_buf4(c, &s->t2, B, C2, h, w);
        nn_conv2d(c, &y, &g, &E->conv_out, 1, 1);
        // moments = self.quant_conv(h)
        nn_conv2d(c, &mo, &y, &E->quant_conv, 1, 0);
    } else {
        nn_conv2d(c, &mo, &g, &E->conv_out, 1, 1);
    }
    nn_tap(c, &mo, "moments");
    return mo;
}

/* Plans (when the shape is new) and runs the encoder; checks the image. */
static ie_status encode_moments(vae *m, const ie_tensor *image, ie_tensor *moments) {
    const sd_vae_config *p = &m->config;
    vae_state *s = &m->state;
    char b[96];
    m->err[0] = 0;
    if (!(m->parts & VAE_ENCODER)) {
        snprintf(m->err, sizeof m->err, "vae: the encoder was not loaded");
        return IE_ERR_ARG;
    }
    int f = vae_factor(m);
    if (!image || image->ndim != 4 || image->shape[1] != p->in_channels || image->shape[2] % f || image->shape[3] % f) {
        snprintf(m->err, sizeof m->err, "vae_encode: image must be [B, %d, H, W] with H, W divisible by %d (got %s)",
                 p->in_channels, f, image ? ie_tensor_shape_str(image, b, sizeof b) : "NULL");
        return IE_ERR_SHAPE;
    }
    int B = (int)image->shape[0], H = (int)image->shape[2], W = (int)image->shape[3];
    if (s->enc_B != B || s->enc_H != H || s->enc_W != W) {
        nn_ctx plan = nn_ctx_make(m->be, &s->arena, true, "vae", m->tap, m->err, sizeof m->err);
        encoder_run(m, &plan, image);
        if (plan.status) return plan.status;
        ie_status st = nn_arena_reserve(&s->arena, m->be, m->err, sizeof m->err);
        if (st) return st;
        s->enc_B = B, s->enc_H = H, s->enc_W = W;
    }
    nn_ctx c = nn_ctx_make(m->be, &s->arena, false, "vae", m->tap, m->err, sizeof m->err);
    *moments = encoder_run(m, &c, image);
    return c.status;
}

static ie_status check_latent(vae *m, const char *fn, const ie_tensor *lat, const ie_tensor *image) {
    char b[96];
    int f = vae_factor(m), Cl = m->config.latent_channels;
    if (!lat || lat->ndim != 4 || lat->shape[0] != image->shape[0] || lat->shape[1] != Cl ||
        lat->shape[2] * f != image->shape[2] || lat->shape[3] * f != image->shape[3]) {
        snprintf(m->err, sizeof m->err, "%s: latent must be [%lld, %d, %lld, %lld] (got %s)", fn,
                 (long long)image->shape[0], Cl, (long long)image->shape[2] / f, (long long)image->shape[3] / f,
                 lat ? ie_tensor_shape_str(lat, b, sizeof b) : "NULL");
        return IE_ERR_SHAPE;
    }
    return IE_OK;
}

/* Copies channels [c0, c0 + Cl) of each row of moments [B, 2Cl, h, w] into
 * dst [B, Cl, h, w], scaled. */
static ie_status take_half(vae *m, ie_tensor *dst, ie_tensor *mo, int half, float scale) {
    int64_t B = mo->shape[0], Cl = m->config.latent_channels, hw = mo->shape[2] * mo->shape[3];
    int64_t sh[4] = {1, Cl, mo->shape[2], mo->shape[3]};
    for (int64_t b = 0; b < B; b++) {
        ie_tensor src = nn_slice(mo, (b * 2 + half) * Cl * hw, 4, sh);
        ie_tensor d = nn_row(dst, b);
        ie_status s = ie_scale(m->be, &d, &src, scale, 0.0f);
        if (s) {
            snprintf(m->err, sizeof m->err, "vae: %s", ie_backend_errmsg(m->be));
            return s;
        }
    }
    return IE_OK;
}

/* Host copy of the clamped logvar (B·Cl·h·w floats, malloc'ed). */
static float *host_logvar(vae *m, ie_tensor *mo) {
    int64_t B = mo->shape[0], Cl = m->config.latent_channels, hw = mo->shape[2] * mo->shape[3];
    float *lv = malloc((size_t)(B * Cl * hw) * sizeof *lv);
    if (!lv) return NULL;
    int64_t sh[1] = {Cl * hw};
    for (int64_t b = 0; b < B; b++) {
        ie_tensor src = nn_slice(mo, (b * 2 + 1) * Cl * hw, 1, sh);
        if (ie_tensor_download(&src, lv + b * Cl * hw)) {
            snprintf(m->err, sizeof m->err, "vae: %s", ie_backend_errmsg(m->be));
            free(lv);
            return NULL;
        }
    }
    // logvar = torch.clamp(logvar, -30.0, 20.0)
    for (int64_t i = 0; i < B * Cl * hw; i++) lv[i] = lv[i] < -30.0f ? -30.0f : lv[i] > 20.0f ? 20.0f : lv[i];
    return lv;
}

ie_status vae_encode_moments(vae *m, ie_tensor *mean, ie_tensor *logvar, const ie_tensor *image) {
    ie_tensor mo;
    ie_status s = encode_moments(m, image, &mo);
    if (!s) s = check_latent(m, "vae_encode_moments", mean, image);
    if (!s && logvar) s = check_latent(m, "vae_encode_moments", logvar, image);
    if (s) return s;
    // mean, logvar = torch.chunk(parameters, 2, dim=1)
    s = take_half(m, mean, &mo, 0, 1.0f);
    if (s || !logvar) return s;
    float *lv = host_logvar(m, &mo);
    if (!lv) return m->err[0] ? IE_ERR_DEVICE : IE_ERR_NOMEM;
    s = ie_tensor_upload(logvar, lv);
    free(lv);
    return s;
}

ie_status vae_encode(vae *m, ie_tensor *latent, const ie_tensor *image, const float *noise) {
    ie_tensor mo;
    ie_status s = encode_moments(m, image, &mo);
    if (!s) s = check_latent(m, "vae_encode", latent, image);
    if (s) return s;
    float sf = m->config.scaling_factor;
    // latents = vae.encode(image).latent_dist.mean * scaling_factor
    if (!noise) return take_half(m, latent, &mo, 0, sf);
    // latents = (mean + exp(0.5 · logvar) · noise) * scaling_factor   (on the host: latents are small)
    int64_t n = ie_tensor_numel(latent);
    float *lv = host_logvar(m, &mo);
    float *mean = malloc((size_t)n * sizeof *mean);
    if (!lv || !mean || take_half(m, latent, &mo, 0, 1.0f) || ie_tensor_download(latent, mean)) {
        free(lv);
        free(mean);
        if (!m->err[0]) snprintf(m->err, sizeof m->err, "vae_encode: out of memory");
        return IE_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++) mean[i] = (mean[i] + expf(0.5f * lv[i]) * noise[i]) * sf;
    s = ie_tensor_upload(latent, mean);
    free(lv);
    free(mean);
    return s;
}

/* ----------------------------------------------------------------------------
 * Decoder: latent [B, Cl, h, w] -> image [B, 3, h·f, w·f]. */

static void decoder_run(vae *m, nn_ctx *c, ie_tensor *image, const ie_tensor *latent) {
    const sd_vae_config *p = &m->config;
    const vae_decoder *Dd = &m->dec;
    vae_state *s = &m->state;
    int n = p->n_levels, lpb = p->layers_per_block;
    int64_t B = latent->shape[0], Cl = latent->shape[1], h = latent->shape[2], w = latent->shape[3];
    const int *ch = p->block_out_channels;
    int cur = 0;

    nn_scope(c, "decoder.conv_in");
    ie_tensor z = nn_buf4(c, &s->z, B, Cl, h, w); /* [B, Cl, h, w] */
    // latents = latents / vae.config.scaling_factor
    nn_scale(c, &z, latent, 1.0f / p->scaling_factor, 0.0f);
    if (Dd->post_quant_conv.w) {
        // z = self.post_quant_conv(z)
        ie_tensor zq = nn_buf4(c, &s->moments, B, Cl, h, w);
        nn_conv2d(c, &zq, &z, &Dd->post_quant_conv, 1, 0);
        z = zq;
    }
    // sample = self.conv_in(z)                              [B, C_last, h, w]
    ie_tensor x = nn_buf4(c, &s->h[cur], B, ch[n - 1], h, w);
    nn_conv2d(c, &x, &z, &Dd->conv_in, 1, 1);
    nn_tap(c, &x, "decoder.conv_in");
    nn_scope(c, "decoder.mid_block");
    x = mid_block(m, c, x, &cur, &Dd->mid);
    nn_tap(c, &x, "decoder.mid_block");

    for (int i = 0; i < n; i++) {
        int64_t C = ch[n - 1 - i];
        for (int j = 0; j <= lpb; j++) {
            // hidden_states = resnet(hidden_states, temb=None)
            nn_scope(c, "decoder.up_blocks.%d.resnets.%d", i, j);
            ie_tensor y = nn_buf4(c, &s->h[!cur], B, C, h, w);
            resnet(m, c, &y, &x, &Dd->up[i][j]);
            x = y;
            cur = !cur;
        }
        if (i < n - 1) {
            // hidden_states = upsampler(hidden_states): nearest x2, conv 3x3
            nn_scope(c, "decoder.up_blocks.%d.upsamplers.0", i);
            /* issue 10: the upsampled map goes into the ResNet scratch t1 (free between
             * blocks) and the conv's output back into x's slab (x is consumed by then):
             * at 512x512 the decoder holds 0.75 GiB instead of 1.13 GiB, same bits */
            ie_tensor u = nn_buf4(c, &s->t1, B, C, 2 * h, 2 * w);
            nn_upsample(c, &u, &x);
            h *= 2;
            w *= 2;
            ie_tensor y = nn_buf4(c, &s->h[cur], B, C, h, w);
            nn_conv2d(c, &y, &u, &Dd->upsamplers[i], 1, 1);
            x = y;
        }
        nn_tap(c, &x, "decoder.up_blocks.%d", i);
    }
    nn_scope(c, "decoder.conv_out");
    ie_tensor g = nn_buf4(c, &s->t1, B, ch[0], h, w);
    // sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
    nn_group_norm(c, &g, &x, &Dd->conv_norm_out, p->norm_num_groups, VAE_EPS, true);
    nn_conv2d(c, image, &g, &Dd->conv_out, 1, 1);
    nn_tap(c, image, "decoder.out");
}

ie_status vae_plan_activations(vae *m, bool encode, int H, int W, uint64_t *total, uint64_t *largest) {
    const sd_vae_config *p = &m->config;
    vae_state *s = &m->state;
    int f = vae_factor(m);
    if (!(m->parts & (encode ? VAE_ENCODER : VAE_DECODER)) || H % f || W % f) return IE_ERR_ARG;
    int64_t is[4] = {1, encode ? p->in_channels : p->out_channels, H, W}, ls[4] = {1, p->latent_channels, H / f, W / f};
    ie_tensor img = nn_plan_tensor(m->be, 4, is), lat = nn_plan_tensor(m->be, 4, ls);
    nn_ctx plan = nn_ctx_make(m->be, &s->arena, true, "vae", (sd_tap){0}, m->err, sizeof m->err);
    if (encode) encoder_run(m, &plan, &img);
    else decoder_run(m, &plan, &img, &lat);
    nn_arena_plan_bytes(&s->arena, total, largest);
    s->enc_B = s->enc_H = s->enc_W = 0; /* both plan again */
    s->dec_B = s->dec_H = s->dec_W = 0;
    return plan.status;
}

void vae_release_activations(vae *m) {
    if (!m) return;
    nn_arena_free(&m->state.arena);
    m->state.enc_B = m->state.enc_H = m->state.enc_W = 0;
    m->state.dec_B = m->state.dec_H = m->state.dec_W = 0;
}

uint64_t vae_activation_bytes(const vae *m) { return m ? nn_arena_bytes(&m->state.arena) : 0; }

ie_status vae_decode(vae *m, ie_tensor *image, const ie_tensor *latent) {
    const sd_vae_config *p = &m->config;
    vae_state *s = &m->state;
    char b1[96], b2[96];
    m->err[0] = 0;
    if (!(m->parts & VAE_DECODER)) {
        snprintf(m->err, sizeof m->err, "vae: the decoder was not loaded");
        return IE_ERR_ARG;
    }
    int f = vae_factor(m);
    if (!latent || !image || latent->ndim != 4 || latent->shape[1] != p->latent_channels || image->ndim != 4 ||
        image->shape[0] != latent->shape[0] || image->shape[1] != p->out_channels ||
        image->shape[2] != latent->shape[2] * f || image->shape[3] != latent->shape[3] * f) {
        snprintf(m->err, sizeof m->err,
                 "vae_decode: need latent [B, %d, h, w] and image [B, %d, %d·h, %d·w] (got %s, %s)", p->latent_channels,
                 p->out_channels, f, f, latent ? ie_tensor_shape_str(latent, b1, sizeof b1) : "NULL",
                 image ? ie_tensor_shape_str(image, b2, sizeof b2) : "NULL");
        return IE_ERR_SHAPE;
    }
    int B = (int)latent->shape[0], h = (int)latent->shape[2], w = (int)latent->shape[3];
    if (s->dec_B != B || s->dec_H != h || s->dec_W != w) {
        nn_ctx plan = nn_ctx_make(m->be, &s->arena, true, "vae", m->tap, m->err, sizeof m->err);
        decoder_run(m, &plan, image, latent);
        if (plan.status) return plan.status;
        ie_status st = nn_arena_reserve(&s->arena, m->be, m->err, sizeof m->err);
        if (st) return st;
        s->dec_B = B, s->dec_H = h, s->dec_W = w;
    }
    nn_ctx c = nn_ctx_make(m->be, &s->arena, false, "vae", m->tap, m->err, sizeof m->err);
    decoder_run(m, &c, image, latent);
    return c.status;
}
