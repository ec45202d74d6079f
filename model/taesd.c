/* TAESD (diffusers AutoencoderTiny) on the op API. See taesd.h. */
#include "model/taesd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ----------------------------------------------------------------------------
 * Structure detection: layer kinds by index. */

typedef struct taesd_src {
    const st_file *f;
    const char *prefix;  /* "decoder.layers." or "" */
    int offset;          /* file index = diffusers index + offset */
} taesd_src;

static const st_tensor *layer_tensor(const taesd_src *s, int i, const char *suffix) {
    char name[160];
    snprintf(name, sizeof name, "%s%d.%s", s->prefix, i + s->offset, suffix);
    return st_get(s->f, name);
}

enum { L_NONE = 0, L_CONV = 1, L_BLOCK = 2 };

static int layer_kind(const taesd_src *s, int i) {
    const st_tensor *t = layer_tensor(s, i, "weight");
    if (t && t->ndim == 4) return L_CONV;
    if (layer_tensor(s, i, "conv.0.weight")) return L_BLOCK;
    return L_NONE;
}

static int conv_out_channels(const taesd_src *s, int i, int *cin) {
    const st_tensor *t = layer_tensor(s, i, "weight");
    if (cin) *cin = (int)t->shape[1];
    return (int)t->shape[0];
}

static ie_status bad_layout(char *err, size_t errlen, const taesd_src *s, const char *what, int i) {
    if (err && errlen)
        snprintf(err, errlen, "taesd %s: unexpected layer layout at %s%d (%s)", st_path(s->f), s->prefix,
                 i + s->offset, what);
    return IE_ERR_FORMAT;
}

static void bind_block(sd_binder *b, const taesd_src *s, taesd_block *bl, int i, int cin, int cout) {
    int j = i + s->offset;
    bl->index = i;
    sd_bind_conv(b, &bl->conv[0], cout, cin, 3, true, "%d.conv.0", j);
    sd_bind_conv(b, &bl->conv[1], cout, cout, 3, true, "%d.conv.2", j);
    sd_bind_conv(b, &bl->conv[2], cout, cout, 3, true, "%d.conv.4", j);
    if (cin != cout || layer_tensor(s, i, "skip.weight"))
        sd_bind_conv(b, &bl->skip, cout, cin, 1, false, "%d.skip", j);
}

/* Reads the blocks from index *i on; returns the width. */
static int bind_blocks(sd_binder *b, const taesd_src *s, taesd_level *lv, int *i, int cin) {
    lv->n_blocks = 0;
    while (layer_kind(s, *i) == L_BLOCK && lv->n_blocks < TAESD_MAX_BLOCKS) {
        int cout = (int)layer_tensor(s, *i, "conv.0.weight")->shape[0];
        bind_block(b, s, &lv->blocks[lv->n_blocks++], *i, cin, cout);
        cin = cout;
        (*i)++;
    }
    return cin;
}

/* Decoder, diffusers indices: 0 conv_in, 1 ReLU, then per level blocks,
 * [Upsample, conv (no bias)] or conv_out. */
static ie_status load_decoder(sd_binder *b, const taesd_src *s, taesd *t, char *err, size_t errlen) {
    taesd_coder *d = &t->dec;
    if (layer_kind(s, 0) != L_CONV || layer_kind(s, 1) != L_NONE) return bad_layout(err, errlen, s, "conv_in, ReLU", 0);
    int cl, C = conv_out_channels(s, 0, &cl);
    t->latent_channels = cl;
    sd_bind_conv(b, &d->conv_in, C, cl, 3, true, "%d", s->offset);
    int i = 2;
    for (d->n_levels = 0; d->n_levels < TAESD_MAX_LEVELS; d->n_levels++) {
        taesd_level *lv = &d->levels[d->n_levels];
        C = lv->channels = bind_blocks(b, s, lv, &i, C);
        if (layer_kind(s, i) == L_NONE && layer_kind(s, i + 1) == L_CONV) { /* Upsample, conv */
            i++;
            int cin, cout = conv_out_channels(s, i, &cin);
            sd_bind_conv(b, &lv->conv, cout, C, 3, false, "%d", i + s->offset);
            lv->conv_index = i++;
            C = cout;
        } else if (layer_kind(s, i) == L_CONV) {                           /* conv_out */
            int cin, cout = conv_out_channels(s, i, &cin);
            t->image_channels = cout;
            sd_bind_conv(b, &lv->conv, cout, C, 3, true, "%d", i + s->offset);
            lv->conv_index = i;
            d->n_levels++;
            return IE_OK;
        } else {
            return bad_layout(err, errlen, s, "expected Upsample + conv or conv_out", i);
        }
    }
    return bad_layout(err, errlen, s, "too many levels", i);
}

/* Encoder: 0 conv_in, blocks, then per level conv stride 2 (no bias) + blocks,
 * conv_out (with bias) last. */
static ie_status load_encoder(sd_binder *b, const taesd_src *s, taesd *t, char *err, size_t errlen) {
    taesd_coder *e = &t->enc;
    if (layer_kind(s, 0) != L_CONV) return bad_layout(err, errlen, s, "conv_in", 0);
    int cimg, C = conv_out_channels(s, 0, &cimg);
    t->image_channels = cimg;
    int i = 0;
    for (e->n_levels = 0; e->n_levels < TAESD_MAX_LEVELS; e->n_levels++) {
        taesd_level *lv = &e->levels[e->n_levels];
        if (layer_kind(s, i) != L_CONV) return bad_layout(err, errlen, s, "expected a conv", i);
        bool bias = layer_tensor(s, i, "bias") != NULL;
        int cin, cout = conv_out_channels(s, i, &cin);
        if (e->n_levels > 0 && bias) { /* conv_out */
            t->latent_channels = cout;
            sd_bind_conv(b, &e->conv_out, cout, C, 3, true, "%d", i + s->offset);
            e->conv_out_index = i;
            return IE_OK;
        }
        sd_bind_conv(b, &lv->conv, cout, e->n_levels ? C : cimg, 3, bias, "%d", i + s->offset);
        lv->conv_index = i++;
        C = lv->channels = bind_blocks(b, s, lv, &i, cout);
    }
    return bad_layout(err, errlen, s, "too many levels", i);
}

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Loads whichever coders `f` holds. */
static ie_status load_file(taesd *t, const st_file *f, sd_wtype wt, char *err, size_t errlen) {
    taesd_src dec = {f, NULL, 0}, enc = {f, NULL, 0};
    if (st_get(f, "decoder.layers.0.weight") || st_get(f, "encoder.layers.0.weight")) {
        dec.prefix = "decoder.layers.";
        enc.prefix = "encoder.layers.";
    } else if (st_get(f, "1.weight") && !st_get(f, "0.weight")) { /* madebyollin decoder */
        dec.prefix = "";
        dec.offset = 1;
    } else if (st_get(f, "0.weight")) {                            /* madebyollin encoder */
        enc.prefix = "";
    }
    ie_status s = IE_OK;
    if (dec.prefix && layer_kind(&dec, 0) == L_CONV) {
        sd_binder b;
        sd_binder_init_file(&b, t->be, wt, f, dec.prefix, &t->mem);
        s = load_decoder(&b, &dec, t, err, errlen);
        ie_status s2 = sd_binder_finish(&b, "taesd decoder", s ? NULL : err, errlen);
        if (!s) s = s2;
        if (s) return s;
        t->has_decoder = true;
    }
    if (enc.prefix && layer_kind(&enc, 0) == L_CONV) {
        sd_binder b;
        sd_binder_init_file(&b, t->be, wt, f, enc.prefix, &t->mem);
        s = load_encoder(&b, &enc, t, err, errlen);
        ie_status s2 = sd_binder_finish(&b, "taesd encoder", s ? NULL : err, errlen);
        if (!s) s = s2;
        if (s) return s;
        t->has_encoder = true;
    }
    return IE_OK;
}

ie_status taesd_load(ie_backend *be, const char *path, sd_wtype wt, taesd **out, char *err, size_t errlen) {
    *out = NULL;
    char files[3][1024];
    int nf = 0;
    if (is_dir(path)) {
        static const char *names[] = {"diffusion_pytorch_model.safetensors",
                                      "diffusion_pytorch_model.fp16.safetensors", NULL};
        for (int i = 0; names[i] && !nf; i++) {
            snprintf(files[0], sizeof files[0], "%s/%s", path, names[i]);
            if (is_file(files[0])) nf = 1;
        }
        if (!nf) {
            static const char *parts[] = {"taesd_decoder.safetensors", "taesd_encoder.safetensors"};
            for (int i = 0; i < 2; i++) {
                snprintf(files[nf], sizeof files[nf], "%s/%s", path, parts[i]);
                if (is_file(files[nf])) nf++;
            }
        }
        if (!nf) {
            if (err && errlen)
                snprintf(err, errlen, "taesd: %s holds neither diffusion_pytorch_model.safetensors nor "
                         "taesd_{encoder,decoder}.safetensors", path);
            return IE_ERR_IO;
        }
    } else {
        snprintf(files[0], sizeof files[0], "%s", path);
        nf = 1;
    }
    taesd *t = calloc(1, sizeof *t);
    if (!t) return IE_ERR_NOMEM;
    t->be = be;
    ie_status s = IE_OK;
    for (int i = 0; i < nf && !s; i++) {
        st_file *f;
        s = st_open(files[i], &f, err, errlen);
        if (s) break;
        s = load_file(t, f, wt, err, errlen);
        st_close(f); /* the tensors were copied to the backend */
    }
    if (!s && !t->has_decoder && !t->has_encoder) {
        if (err && errlen) snprintf(err, errlen, "taesd: no TAESD encoder or decoder tensors in %s", path);
        s = IE_ERR_FORMAT;
    }
    if (s) {
        taesd_free(t);
        return s;
    }
    *out = t;
    return IE_OK;
}

void taesd_free(taesd *t) {
    if (!t) return;
    nn_arena_free(&t->state.arena);
    sd_tensor_list_free(&t->mem);
    free(t);
}

/* ----------------------------------------------------------------------------
 * Forward. */

/* x in h[*cur] -> block(x) in h[!*cur]; flips *cur. */
static ie_tensor block_forward(taesd *t, nn_ctx *c, ie_tensor x, int *cur, const taesd_block *bl) {
    taesd_state *s = &t->state;
    int64_t B = x.shape[0], H = x.shape[2], W = x.shape[3], C = bl->conv[0].w ? bl->conv[0].w->shape[0] : x.shape[1];
    ie_tensor a = nn_buf4(c, &s->t1, B, C, H, W);
    ie_tensor b = nn_buf4(c, &s->t2, B, C, H, W);
    ie_tensor y = nn_buf4(c, &s->h[!*cur], B, C, H, W);
    // self.fuse(self.conv(x) + self.skip(x)), conv = conv, ReLU, conv, ReLU, conv
    nn_conv2d(c, &a, &x, &bl->conv[0], 1, 1);
    nn_unary(c, &a, &a, IE_UNARY_RELU);
    nn_conv2d(c, &b, &a, &bl->conv[1], 1, 1);
    nn_unary(c, &b, &b, IE_UNARY_RELU);
    nn_conv2d(c, &y, &b, &bl->conv[2], 1, 1);
    if (bl->skip.w) {
        nn_conv2d(c, &a, &x, &bl->skip, 1, 0);
        nn_add(c, &y, &y, &a);
    } else {
        nn_add(c, &y, &y, &x);
    }
    nn_unary(c, &y, &y, IE_UNARY_RELU);
    *cur = !*cur;
    return y;
}

static void decoder_run(taesd *t, nn_ctx *c, ie_tensor *image, const ie_tensor *latent) {
    const taesd_coder *d = &t->dec;
    taesd_state *s = &t->state;
    int64_t B = latent->shape[0], h = latent->shape[2], w = latent->shape[3];
    int cur = 0;
    ie_tensor z = nn_buf4(c, &s->in, B, latent->shape[1], h, w);
    // x = torch.tanh(x / 3) * 3
    nn_scope(c, "decoder.clamp");
    nn_scale(c, &z, latent, 1.0f / 3.0f, 0.0f);
    nn_unary(c, &z, &z, IE_UNARY_TANH);
    nn_scale(c, &z, &z, 3.0f, 0.0f);
    // layers[0] conv_in, layers[1] ReLU
    nn_scope(c, "decoder.layers.0");
    ie_tensor x = nn_buf4(c, &s->h[cur], B, d->conv_in.w ? d->conv_in.w->shape[0] : 1, h, w);
    nn_conv2d(c, &x, &z, &d->conv_in, 1, 1);
    nn_tap(c, &x, "decoder.layers.0");
    nn_unary(c, &x, &x, IE_UNARY_RELU);
    nn_tap(c, &x, "decoder.layers.1");
    for (int l = 0; l < d->n_levels; l++) {
        const taesd_level *lv = &d->levels[l];
        for (int j = 0; j < lv->n_blocks; j++) {
            nn_scope(c, "decoder.layers.%d", lv->blocks[j].index);
            x = block_forward(t, c, x, &cur, &lv->blocks[j]);
            nn_tap(c, &x, "decoder.layers.%d", lv->blocks[j].index);
        }
        nn_scope(c, "decoder.layers.%d", lv->conv_index);
        if (l < d->n_levels - 1) {
            // nn.Upsample(scale_factor=2, mode="nearest"), conv (no bias)
            ie_tensor u = nn_buf4(c, &s->ups, B, x.shape[1], 2 * h, 2 * w);
            nn_upsample(c, &u, &x);
            h *= 2;
            w *= 2;
            ie_tensor y = nn_buf4(c, &s->h[!cur], B, lv->conv.w ? lv->conv.w->shape[0] : 1, h, w);
            nn_conv2d(c, &y, &u, &lv->conv, 1, 1);
            x = y;
            cur = !cur;
            nn_tap(c, &x, "decoder.layers.%d", lv->conv_index);
        } else {
            // conv_out, then x.mul(2).sub(1): [0, 1] -> [-1, 1]
            nn_conv2d(c, image, &x, &lv->conv, 1, 1);
            nn_tap(c, image, "decoder.layers.%d", lv->conv_index);
            nn_scale(c, image, image, 2.0f, -1.0f);
        }
    }
}

static void encoder_run(taesd *t, nn_ctx *c, ie_tensor *latent, const ie_tensor *image) {
    const taesd_coder *e = &t->enc;
    taesd_state *s = &t->state;
    int64_t B = image->shape[0], h = image->shape[2], w = image->shape[3];
    int cur = 0;
    ie_tensor x = nn_buf4(c, &s->in, B, image->shape[1], h, w);
    // x = self.layers(x.add(1).div(2))
    nn_scope(c, "encoder.input");
    nn_scale(c, &x, image, 0.5f, 0.5f);
    for (int l = 0; l < e->n_levels; l++) {
        const taesd_level *lv = &e->levels[l];
        int stride = l == 0 ? 1 : 2;
        h /= stride;
        w /= stride;
        nn_scope(c, "encoder.layers.%d", lv->conv_index);
        // conv_in (level 0) or conv 3x3 stride 2 without bias
        ie_tensor y = nn_buf4(c, &s->h[!cur], B, lv->conv.w ? lv->conv.w->shape[0] : 1, h, w);
        nn_conv2d(c, &y, &x, &lv->conv, stride, 1);
        x = y;
        cur = !cur;
        nn_tap(c, &x, "encoder.layers.%d", lv->conv_index);
        for (int j = 0; j < lv->n_blocks; j++) {
            nn_scope(c, "encoder.layers.%d", lv->blocks[j].index);
            x = block_forward(t, c, x, &cur, &lv->blocks[j]);
            nn_tap(c, &x, "encoder.layers.%d", lv->blocks[j].index);
        }
    }
    nn_scope(c, "encoder.layers.%d", e->conv_out_index);
    nn_conv2d(c, latent, &x, &e->conv_out, 1, 1);
    nn_tap(c, latent, "encoder.layers.%d", e->conv_out_index);
}

static int taesd_factor(const taesd_coder *cd) { return 1 << (cd->n_levels - 1); }

ie_status taesd_decode(taesd *t, ie_tensor *image, const ie_tensor *latent) {
    taesd_state *s = &t->state;
    char b1[96], b2[96];
    t->err[0] = 0;
    if (!t->has_decoder) {
        snprintf(t->err, sizeof t->err, "taesd: no decoder was loaded");
        return IE_ERR_ARG;
    }
    int f = taesd_factor(&t->dec);
    if (!latent || !image || latent->ndim != 4 || latent->shape[1] != t->latent_channels || image->ndim != 4 ||
        image->shape[0] != latent->shape[0] || image->shape[1] != t->image_channels ||
        image->shape[2] != f * latent->shape[2] || image->shape[3] != f * latent->shape[3]) {
        snprintf(t->err, sizeof t->err, "taesd_decode: need latent [B, %d, h, w] and image [B, %d, %d·h, %d·w] (got %s, %s)",
                 t->latent_channels, t->image_channels, f, f, latent ? ie_tensor_shape_str(latent, b1, sizeof b1) : "NULL",
                 image ? ie_tensor_shape_str(image, b2, sizeof b2) : "NULL");
        return IE_ERR_SHAPE;
    }
    int B = (int)latent->shape[0], h = (int)latent->shape[2], w = (int)latent->shape[3];
    if (s->dec_B != B || s->dec_H != h || s->dec_W != w) {
        nn_ctx plan = nn_ctx_make(t->be, &s->arena, true, "taesd", t->tap, t->err, sizeof t->err);
        decoder_run(t, &plan, image, latent);
        if (plan.status) return plan.status;
        ie_status st = nn_arena_reserve(&s->arena, t->be, t->err, sizeof t->err);
        if (st) return st;
        s->dec_B = B, s->dec_H = h, s->dec_W = w;
    }
    nn_ctx c = nn_ctx_make(t->be, &s->arena, false, "taesd", t->tap, t->err, sizeof t->err);
    decoder_run(t, &c, image, latent);
    return c.status;
}

ie_status taesd_encode(taesd *t, ie_tensor *latent, const ie_tensor *image) {
    taesd_state *s = &t->state;
    char b1[96], b2[96];
    t->err[0] = 0;
    if (!t->has_encoder) {
        snprintf(t->err, sizeof t->err, "taesd: no encoder was loaded");
        return IE_ERR_ARG;
    }
    int f = taesd_factor(&t->enc);
    if (!latent || !image || image->ndim != 4 || image->shape[1] != t->image_channels || latent->ndim != 4 ||
        latent->shape[0] != image->shape[0] || latent->shape[1] != t->latent_channels ||
        latent->shape[2] * f != image->shape[2] || latent->shape[3] * f != image->shape[3]) {
        snprintf(t->err, sizeof t->err, "taesd_encode: need image [B, %d, H, W] and latent [B, %d, H/%d, W/%d] (got %s, %s)",
                 t->image_channels, t->latent_channels, f, f, image ? ie_tensor_shape_str(image, b1, sizeof b1) : "NULL",
                 latent ? ie_tensor_shape_str(latent, b2, sizeof b2) : "NULL");
        return IE_ERR_SHAPE;
    }
    int B = (int)image->shape[0], H = (int)image->shape[2], W = (int)image->shape[3];
    if (s->enc_B != B || s->enc_H != H || s->enc_W != W) {
        nn_ctx plan = nn_ctx_make(t->be, &s->arena, true, "taesd", t->tap, t->err, sizeof t->err);
        encoder_run(t, &plan, latent, image);
        if (plan.status) return plan.status;
        ie_status st = nn_arena_reserve(&s->arena, t->be, t->err, sizeof t->err);
        if (st) return st;
        s->enc_B = B, s->enc_H = H, s->enc_W = W;
    }
    nn_ctx c = nn_ctx_make(t->be, &s->arena, false, "taesd", t->tap, t->err, sizeof t->err);
    encoder_run(t, &c, latent, image);
    return c.status;
}
