/* The editing pipeline behind invedit.h: a session (model on a device) and
 * ie_edit (image -> latent -> method -> latent -> image).
 *
 *   image (sRGB [0,1], any size)
 *     -> resize to the working size (longer side = native size, sides a
 *        multiple of VAE factor x UNet downsampling)
 *     -> VAE encode (posterior mean for EF-DDPM, a seeded sample for BDIA and
 *        InfEdit, as their authors do) x scaling_factor
 *     -> the method, with the UNet as its denoiser (CFG rows in one batch)
 *        and attention control on the UNet's hook
 *     -> VAE decode -> resize back and composite with the input at its own
 *        resolution (composite.c); alpha is carried through untouched.
 */
#include "edit/pipeline.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inversion/bdia.h"
#include "edit/blend.h"
#include "edit/cache.h"
#include "model/clip.h"
#include "edit/composite.h"
#include "model/config.h"
#include "edit/control.h"
#include "inversion/ef_ddpm.h"
#include "edit/image.h"
#include "inversion/infedit.h"
#include "model/lora.h"
#include "model/names.h"
#include "model/sd.h"
#include "inversion/rng.h"
#include "model/tokenizer.h"
#include "model/unet.h"
#include "model/vae.h"

#define NTOK CLIP_CONTEXT_LENGTH

static ie_status memory_check(ie_session *s, const ie_edit_params *p, const ie_image *in, bool at_size, char *err,
                              size_t errlen);

struct ie_session {
    ie_backend *be;
    char note[512];
    sd_weights *w;
    sd_model_config cfg;
    clip_tokenizer *tok;
    clip_text_model *clip;
    unet *unet;
    vae *vae;
    int factor;                     /* VAE spatial factor (8) */
    int unet_div;                   /* 2^(levels-1) */
    int native;                     /* pixels */
    int64_t last_calls, last_evals; /* UNet forward passes and image-evaluations of the last run */
    double last_unet_seconds;       /* and the time spent in them */
    char *opened_with[5];           /* model, device, vae, lora, ema (ie_session_matches) */
    char *describe;                 /* ie_session_describe */
    sd_wtype wtype;                 /* the UNet's and VAE's weights (issue 10: fp16 unless an edit asks for fp32) */
    sd_lora_set *lora;              /* LoRAs merged whenever weights are (re)loaded, or NULL */
    char *model_path;               /* for the cache's model identity */
    char model_id[65];              /* computed on first use */
    ie_cache *cache;                /* NULL: off */
    bool last_cached;               /* the last edit's inversion came from the cache */
};

const char *ie_session_device(const ie_session *s) { return ie_backend_description(s->be); }
const char *ie_session_note(const ie_session *s) { return s->note; }
int ie_session_size_multiple(const ie_session *s) { return s->factor * s->unet_div; }
int ie_session_native_size(const ie_session *s) { return s->native; }
ie_backend *ie_session_backend(ie_session *s) { return s->be; }
int ie_session_latent_channels(const ie_session *s) { return s->cfg.vae.latent_channels; }
int ie_session_vae_factor(const ie_session *s) { return s->factor; }
void ie_session_last_run(const ie_session *s, int64_t *unet_calls, int64_t *unet_evals) {
    if (unet_calls) *unet_calls = s->last_calls;
    if (unet_evals) *unet_evals = s->last_evals;
}
double ie_session_last_unet_seconds(const ie_session *s) { return s->last_unet_seconds; }

void ie_session_close(ie_session *s) {
    if (!s) return;
    unet_free(s->unet);
    vae_free(s->vae);
    clip_text_model_free(s->clip);
    clip_tokenizer_free(s->tok);
    sd_weights_close(s->w);
    sd_lora_set_free(s->lora);
    ie_backend_free(s->be);
    for (int i = 0; i < 5; i++) g_free(s->opened_with[i]);
    g_free(s->describe);
    ie_cache_free(s->cache);
    g_free(s->model_path);
    free(s);
}

static const char *opt_or(const char *v, const char *def) { return v && *v ? v : def; }

bool ie_session_matches(const ie_session *s, const char *model_path, const ie_session_options *opt) {
    ie_session_options o = opt ? *opt : (ie_session_options){0};
    const char *now[5] = {opt_or(model_path, ""), opt_or(o.device, "auto"), opt_or(o.vae, ""), opt_or(o.lora, ""),
                          opt_or(o.ema, "auto")};
    for (int i = 0; i < 5; i++)
        if (strcmp(s->opened_with[i], now[i])) return false;
    return true;
}

const char *ie_session_describe(const ie_session *s) { return s->describe ? s->describe : ""; }

ie_status ie_session_open(const char *model_path, const char *device, ie_session **out, char *err, size_t errlen) {
    ie_session_options o = {.device = device};
    return ie_session_open_with(model_path, &o, out, err, errlen);
}

ie_status ie_session_open_with(const char *model_path, const ie_session_options *opt, ie_session **out, char *err,
                               size_t errlen) {
    *out = NULL;
    ie_session_options o = opt ? *opt : (ie_session_options){0};
    if (o.device && *o.device && !ie_device_request_valid(o.device, err, errlen)) return IE_ERR_ARG;
    sd_load_options lo = {
        .wtype = SD_WTYPE_AUTO, .parts = SD_PART_ALL, .vae = o.vae, .lora = o.lora, .keep_weights = true};
    if (!sd_ema_mode_from_name(o.ema, &lo.ema)) {
        snprintf(err, errlen, "ema: '%s' is not auto, yes or no", o.ema);
        return IE_ERR_ARG;
    }
    ie_session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return IE_ERR_NOMEM;
    }
    const char *with[5] = {opt_or(model_path, ""), opt_or(o.device, "auto"), opt_or(o.vae, ""), opt_or(o.lora, ""),
                           opt_or(o.ema, "auto")};
    for (int i = 0; i < 5; i++) s->opened_with[i] = g_strdup(with[i]);
    s->be = ie_backend_open(o.device, s->note, sizeof s->note);
    if (!s->be) {
        snprintf(err, errlen, "no compute backend could be opened");
        ie_session_close(s);
        return IE_ERR_NODEVICE;
    }
    /* the one model loader (model/sd.h): its checks, codes and messages; the
     * weights stay mapped for the reloads below (issue 10) */
    s->wtype = lo.wtype;
    sd_model *m = NULL;
    ie_status st = sd_model_load(s->be, model_path, &lo, &m, err, errlen);
    if (st) {
        ie_session_close(s);
        return st;
    }
    s->cfg = m->config;
    s->w = m->weights;
    s->tok = m->tokenizer;
    s->clip = m->text;
    s->unet = m->unet;
    s->vae = m->vae;
    /* The LoRAs stay set on the weights: the text encoder is loaded again for
     * every edit and an fp32 edit reloads the UNet and VAE (issue 10), each
     * merge reading them. Freed with the session. */
    s->lora = m->lora;
    GString *g = g_string_new(NULL);
    g_string_append_printf(g, "tokenizer: %s\n", m->tokenizer_source);
    for (int c = 0; c < SD_COMPONENT_COUNT; c++)
        g_string_append_printf(g, "%s: %s (%s names)\n", sd_component_name((sd_component)c),
                               sd_weights_file(s->w, (sd_component)c), sd_weights_naming(s->w, (sd_component)c));
    if (*sd_weights_ema_note(s->w)) g_string_append_printf(g, "ema: %s\n", sd_weights_ema_note(s->w));
    if (s->lora) g_string_append_printf(g, "lora: %s\n", sd_lora_set_summary(s->lora));
    if (sd_weights_unmapped_count(s->w))
        g_string_append_printf(g, "skipped %d extra tensors (e.g. %s)\n", sd_weights_unmapped_count(s->w),
                               sd_weights_unmapped_at(s->w, 0));
    s->describe = g_string_free(g, FALSE);
    /* everything the model held is the session's now */
    memset(m, 0, sizeof *m);
    sd_model_free(m);
    /* issue 10: the text encoder was loaded to check the model; it is loaded
     * again only while an edit encodes its prompts */
    clip_text_model_free(s->clip);
    s->clip = NULL;
    s->factor = vae_factor(s->vae);
    s->unet_div = 1 << (s->cfg.unet.n_levels - 1);
    int sample = s->cfg.unet.sample_size > 0 ? s->cfg.unet.sample_size : 64;
    s->native = sample * s->factor;
    s->model_path = g_strdup(model_path);
    char *cdir = ie_cache_default_dir();
    s->cache = ie_cache_new((int64_t)512 << 20, cdir, ie_cache_default_disk_bytes());
    g_free(cdir);
    *out = s;
    return IE_OK;
}

/* --- weights: precision and lifetime (issue 10) ------------------------------------
 * The UNet and the VAE stay loaded across edits, in fp16 (SD_WTYPE_AUTO)
 * unless an edit asks for fp32: then both are loaded again in that precision.
 * The text encoder is needed only while the prompts are encoded: it is
 * released right after and loaded again (from the mapped checkpoint) by the
 * next edit, so its weights never sit next to the UNet's activations. */
static ie_status session_use_weights(ie_session *s, bool fp32, char *err, size_t errlen) {
    sd_wtype want = fp32 ? SD_WTYPE_F32 : SD_WTYPE_AUTO;
    if (want == s->wtype) return IE_OK;
    unet_free(s->unet);
    vae_free(s->vae);
    clip_text_model_free(s->clip);
    s->unet = NULL, s->vae = NULL, s->clip = NULL;
    s->wtype = want;
    ie_status st = unet_load(s->be, s->w, &s->cfg.unet, want, &s->unet, err, errlen);
    if (!st) st = vae_load(s->be, s->w, &s->cfg.vae, VAE_ENCODER | VAE_DECODER, want, &s->vae, err, errlen);
    if (st) s->wtype = (sd_wtype)-1; /* the next edit tries again */
    return st;
}

/* INVEDIT_MEMORY_REPORT=1: after each phase, the backend's tensor memory
 * (current, peak) and the process's resident set (current, peak) on stderr. */
static void mem_report(ie_session *s, const char *phase) {
    static int on = -1;
    if (on < 0) on = getenv("INVEDIT_MEMORY_REPORT") && atoi(getenv("INVEDIT_MEMORY_REPORT")) > 0;
    if (!on) return;
    uint64_t use = 0, peak = 0;
    ie_backend_memory(s->be, &use, &peak);
    long rss = 0, hwm = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6)) rss = atol(line + 6);
        if (!strncmp(line, "VmHWM:", 6)) hwm = atol(line + 6);
    }
    if (f) fclose(f);
    fprintf(stderr,
            "\nmemory after %-10s: tensors %7.1f MiB (peak %7.1f), resident %7.1f MiB (peak %7.1f); "
            "weights unet %.1f vae %.1f text %.1f, activations unet %.1f vae %.1f MiB\n",
            phase, use / 1048576.0, peak / 1048576.0, rss / 1024.0, hwm / 1024.0,
            s->unet ? unet_weight_bytes(s->unet) / 1048576.0 : 0, s->vae ? vae_weight_bytes(s->vae) / 1048576.0 : 0,
            s->clip ? s->clip->mem.bytes / 1048576.0 : 0, s->unet ? unet_activation_bytes(s->unet) / 1048576.0 : 0,
            s->vae ? vae_activation_bytes(s->vae) / 1048576.0 : 0);
}

/* --- text conditions ------------------------------------------------------------- */

enum { COND_EMPTY = IE_COND_UNCOND, COND_SRC = IE_COND_SOURCE, COND_TGT = IE_COND_TARGET, COND_NEG = 3, NCOND = 4 };

typedef struct conds {
    int32_t ids[NCOND][NTOK];
    int n_real[NCOND]; /* tokens incl. BOS/EOS, before padding */
    ie_tensor *emb;    /* [NCOND, 77, D] on the device */
    float *host;       /* the same on the host (for InfEdit's re-matching) */
    int dim;
    bool truncated;
} conds;

static ie_status encode_prompts(ie_session *s, const ie_edit_params *p, conds *c, char *err, size_t errlen) {
    const char *texts[NCOND] = {"", p->source_prompt, p->target_prompt, p->negative_prompt};
    for (int i = 0; i < NCOND; i++) {
        bool tr = false;
        int n = clip_encode(s->tok, texts[i] ? texts[i] : "", c->ids[i], NTOK, &tr);
        c->n_real[i] = n + 2 > NTOK ? NTOK : n + 2;
        c->truncated |= tr;
    }
    c->dim = s->cfg.text.hidden_size;
    int64_t shape[3] = {NCOND, NTOK, c->dim};
    c->emb = ie_tensor_new(s->be, IE_F32, 3, shape);
    c->host = malloc(sizeof(float) * NCOND * NTOK * (size_t)c->dim);
    if (!c->emb || !c->host) {
        snprintf(err, errlen, "text embeddings: %s", c->emb ? "out of memory" : ie_backend_errmsg(s->be));
        return IE_ERR_NOMEM;
    }
    ie_status st = IE_OK;
    if (!s->clip) st = clip_text_model_load(s->be, s->w, &s->cfg.text, s->wtype, &s->clip, err, errlen);
    if (st) return st;
    st = clip_text_model_forward(s->clip, c->emb, &c->ids[0][0], NCOND, NTOK, 1);
    if (st) {
        snprintf(err, errlen, "text encoder: %s", s->clip->err);
        return st;
    }
    /* issue 10: not needed again in this edit (see session_use_weights) */
    mem_report(s, "text");
    clip_text_model_free(s->clip);
    s->clip = NULL;
    st = ie_tensor_download(c->emb, c->host);
    if (st) snprintf(err, errlen, "text encoder: %s", ie_backend_errmsg(s->be));
    return st;
}

int ie_session_prompt_tokens(const ie_session *s, const char *text, int *max_tokens) {
    if (max_tokens) *max_tokens = NTOK - 2;
    return clip_tokenize(s->tok, text ? text : "", NULL, 0);
}

static void conds_free(conds *c) {
    ie_tensor_free(c->emb);
    free(c->host);
}

/* --- the UNet as the methods' denoiser ------------------------------------------------ */

typedef struct unet_denoiser {
    ie_session *s;
    conds *conds;
    ie_controller *ctrl;
    int C, H, W;
    ie_tensor *x, *eps, *ctx; /* [B, C, H, W], [B, C, H, W], [B, 77, D] */
    float *t;                 /* [B] */
    int B;
    char err[1024];
} unet_denoiser;

static ie_status ud_reserve(unet_denoiser *d, int B) {
    if (d->B == B) return IE_OK;
    ie_tensor_free(d->x);
    ie_tensor_free(d->eps);
    ie_tensor_free(d->ctx);
    free(d->t);
    ie_backend *be = d->s->be;
    d->x = ie_tensor_new4(be, IE_F32, B, d->C, d->H, d->W);
    d->eps = ie_tensor_new4(be, IE_F32, B, d->C, d->H, d->W);
    int64_t cs[3] = {B, NTOK, d->conds->dim};
    d->ctx = ie_tensor_new(be, IE_F32, 3, cs);
    d->t = malloc(sizeof(float) * (size_t)B);
    d->B = d->x && d->eps && d->ctx && d->t ? B : 0;
    if (!d->B) {
        snprintf(d->err, sizeof d->err, "UNet buffers for batch %d: %s", B, ie_backend_errmsg(be));
        return IE_ERR_NOMEM;
    }
    return IE_OK;
}

static void ud_free(unet_denoiser *d) {
    ie_tensor_free(d->x);
    ie_tensor_free(d->eps);
    ie_tensor_free(d->ctx);
    free(d->t);
}

/* One cheap check per UNet call: a NaN or Inf in the latents or the UNet's
 * output (broken weights, fp16 overflow) stops the edit with the step named,
 * instead of running on to a black image. */
static ie_status ud_check_finite(unet_denoiser *d, int batch, const float *x, const float *eps) {
    size_t n = (size_t)batch * d->C * d->H * d->W;
    float sx = 0, se = 0;
    for (size_t i = 0; i < n; i++) {
        sx += x[i] * 0.0f; /* stays 0 unless some x[i] is NaN or Inf */
        se += eps[i] * 0.0f;
    }
    if (sx == 0 && se == 0) return IE_OK;
    snprintf(d->err, sizeof d->err,
             "NaN or Inf in the %s: broken weights or fp16 overflow; try full-precision weights "
             "(--fp32 yes), --device cpu, or another checkpoint",
             sx != 0 ? "latents" : "UNet output");
    return IE_ERR_NONFINITE;
}

static ie_status ud_eps(void *ctx, int batch, const float *x, const double *t, const int *cond, float *eps_out) {
    unet_denoiser *d = ctx;
    ie_backend *be = d->s->be;
    ie_status st = ud_reserve(d, batch);
    if (st) return st;
    int64_t row = (int64_t)NTOK * d->conds->dim;
    for (int b = 0; b < batch && !st; b++) {
        if (cond[b] < 0 || cond[b] >= NCOND) {
            snprintf(d->err, sizeof d->err, "text condition %d does not exist", cond[b]);
            return IE_ERR_ARG;
        }
        int64_t s3[3] = {1, NTOK, d->conds->dim};
        ie_tensor *dst = ie_tensor_view(d->ctx, b * row, 3, s3);
        ie_tensor *src = ie_tensor_view(d->conds->emb, cond[b] * row, 3, s3);
        st = dst && src ? ie_copy(be, dst, src) : IE_ERR_NOMEM;
        ie_tensor_free(dst);
        ie_tensor_free(src);
        d->t[b] = (float)t[b];
    }
    if (!st) st = ie_tensor_upload(d->x, x);
    if (st) {
        snprintf(d->err, sizeof d->err, "UNet input: %s", ie_backend_errmsg(be));
        return st;
    }
    /* LCM UNets are run without timestep_cond (InfEdit does the same): the
     * guidance embedding's contribution is zero. */
    st = unet_forward(d->s->unet, d->eps, d->x, d->t, d->ctx, NULL);
    if (st) {
        snprintf(d->err, sizeof d->err, "UNet: %.600s%s%.300s", d->s->unet->err,
                 d->ctrl && ie_controller_errmsg(d->ctrl)[0] ? "; " : "", d->ctrl ? ie_controller_errmsg(d->ctrl) : "");
        return st;
    }
    st = ie_tensor_download(d->eps, eps_out);
    if (st) {
        snprintf(d->err, sizeof d->err, "UNet output: %s", ie_backend_errmsg(be));
        return st;
    }
    return ud_check_finite(d, batch, x, eps_out);
}

static ie_status ud_step_begin(void *ctx, const ie_step_info *info) {
    unet_denoiser *d = ctx;
    if (!d->ctrl) return IE_OK;
    ie_status st = ie_controller_step_begin(d->ctrl, info);
    if (st) snprintf(d->err, sizeof d->err, "%s", ie_controller_errmsg(d->ctrl));
    return st;
}

static const char *ud_errmsg(void *ctx) { return ((unet_denoiser *)ctx)->err; }

/* --- progress ------------------------------------------------------------------------ */

typedef struct progress_map {
    ie_edit_progress_fn fn;
    void *user;
    double base, span; /* this phase covers [base, base + span) of the whole edit */
} progress_map;

static bool method_progress(void *user, int step, int total, const char *phase) {
    progress_map *pm = user;
    if (!pm->fn) return true;
    char text[96];
    snprintf(text, sizeof text, "%s %d/%d", phase, step + 1, total);
    return pm->fn(pm->user, pm->base + pm->span * (double)step / (total > 0 ? total : 1), text);
}


/* --- image <-> latent ---------------------------------------------------------------- */

/* image [H, W, channels] in [0,1] -> tensor [1, 3, H, W] in [-1, 1]. */
static ie_status image_to_tensor(ie_backend *be, const ie_image *img, ie_tensor **out) {
    int W = img->width, H = img->height, C = img->channels;
    ie_tensor *t = ie_tensor_new4(be, IE_F32, 1, 3, H, W);
    float *buf = malloc(sizeof(float) * 3 * (size_t)H * W);
    ie_status st = t && buf ? IE_OK : IE_ERR_NOMEM;
    if (!st) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int k = 0; k < 3; k++)
                    buf[(size_t)k * H * W + (size_t)y * W + x] =
                        img->pixels[((size_t)y * W + x) * C + (C >= 3 ? k : 0)] * 2.0f - 1.0f;
        st = ie_tensor_upload(t, buf);
    }
    free(buf);
    if (st) {
        ie_tensor_free(t);
        return st;
    }
    *out = t;
    return IE_OK;
}

ie_status ie_session_encode(ie_session *s, const ie_image *img, bool sample, uint64_t seed, float *latent, char *err,
                            size_t errlen) {
    ie_tensor *x = NULL, *z = NULL;
    int h = img->height / s->factor, w = img->width / s->factor, Cl = s->cfg.vae.latent_channels;
    float *noise = NULL;
    ie_status st = image_to_tensor(s->be, img, &x);
    if (!st) {
        z = ie_tensor_new4(s->be, IE_F32, 1, Cl, h, w);
        if (!z) st = IE_ERR_NOMEM;
    }
    if (!st && sample) {
        noise = malloc(sizeof(float) * (size_t)Cl * h * w);
        if (!noise) st = IE_ERR_NOMEM;
        else {
            ie_rng r;
            ie_rng_seed(&r, seed ^ 0x5641454e434f4445ull); /* "VAEENCODE": independent of the method's stream */
            ie_rng_normal_fill(&r, noise, (size_t)Cl * h * w);
        }
    }
    if (!st) {
        st = vae_encode(s->vae, z, x, noise);
        if (st) snprintf(err, errlen, "VAE encoder: %s", s->vae->err);
    } else {
        snprintf(err, errlen, "VAE encoder input: %s", ie_backend_errmsg(s->be));
    }
    if (!st) {
        st = ie_tensor_download(z, latent);
        if (st) snprintf(err, errlen, "VAE encoder: %s", ie_backend_errmsg(s->be));
    }
    mem_report(s, "VAE encode");
    vae_release_activations(s->vae); /* issue 10: never next to the UNet's */
    ie_backend_trim(s->be);
    free(noise);
    ie_tensor_free(x);
    ie_tensor_free(z);
    return st;
}

ie_status ie_session_decode(ie_session *s, const float *latent, int h, int w, ie_image *out, char *err, size_t errlen) {
    int Cl = s->cfg.vae.latent_channels, H = h * s->factor, W = w * s->factor;
    ie_tensor *z = ie_tensor_new4(s->be, IE_F32, 1, Cl, h, w);
    ie_tensor *x = ie_tensor_new4(s->be, IE_F32, 1, 3, H, W);
    float *buf = malloc(sizeof(float) * 3 * (size_t)H * W);
    ie_status st = z && x && buf ? IE_OK : IE_ERR_NOMEM;
    if (!st) st = ie_tensor_upload(z, latent);
    if (st) snprintf(err, errlen, "VAE decoder input: %s", ie_backend_errmsg(s->be));
    if (!st) {
        st = vae_decode(s->vae, x, z);
        if (st) snprintf(err, errlen, "VAE decoder: %s", s->vae->err);
    }
    if (!st) {
        st = ie_tensor_download(x, buf);
        if (st) snprintf(err, errlen, "VAE decoder: %s", ie_backend_errmsg(s->be));
    }
    mem_report(s, "VAE decode");
    vae_release_activations(s->vae); /* issue 10 */
    ie_backend_trim(s->be);
    if (!st) st = ie_image_alloc(out, W, H, 3);
    if (!st)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++)
                for (int k = 0; k < 3; k++) {
                    float v = (buf[(size_t)k * H * W + (size_t)y * W + xx] + 1.0f) * 0.5f;
                    out->pixels[((size_t)y * W + xx) * 3 + k] = v < 0 ? 0 : v > 1 ? 1 : v;
                }
    free(buf);
    ie_tensor_free(z);
    ie_tensor_free(x);
    return st;
}

/* --- attention control set-up ---------------------------------------------------------- */

static int unpadded(const conds *c, int i) { return c->n_real[i]; }

/* The blend-map resolution: the UNet resolution (of a level with
 * cross-attention) closest to latent/4 per side, as InfEdit's 16x16 maps at
 * 512x512; the larger one on a tie. */
static void blend_map_size(const ie_session *s, int h, int w, int *mh, int *mw) {
    int want = (((h + 1) / 2) + 1) / 2, best = -1;
    for (int i = 0; i < s->cfg.unet.n_levels; i++) {
        if (!s->cfg.unet.down_cross_attn[i]) continue;
        int r = h >> i;
        if (best < 0 || abs(r - want) < abs(best - want)) best = r;
    }
    if (best < 1) best = h;
    *mh = best;
    *mw = w * best / h;
}

/* Token texts of an encoded prompt (positions 1 .. n-2), for get_word_inds. */
static char **token_texts(const clip_tokenizer *tok, const int32_t *ids, int n) {
    char **t = calloc((size_t)n, sizeof *t);
    if (!t) return NULL;
    for (int i = 0; i < n; i++) t[i] = clip_decode(tok, &ids[i], 1);
    return t;
}

static void free_texts(char **t, int n) {
    if (!t) return;
    for (int i = 0; i < n; i++) free(t[i]);
    free(t);
}

static ie_controller *make_p2p(ie_session *s, const ie_edit_params *p, const conds *c, int N, char *err,
                               size_t errlen) {
    int ns = unpadded(c, COND_SRC), nt = unpadded(c, COND_TGT);
    if (ie_word_count(p->source_prompt) == ie_word_count(p->target_prompt)) {
        /* AttentionReplace: tokens between BOS and EOS */
        char **st = token_texts(s->tok, c->ids[COND_SRC] + 1, ns - 2),
             **tt = token_texts(s->tok, c->ids[COND_TGT] + 1, nt - 2);
        float *M = malloc(sizeof(float) * NTOK * NTOK);
        ie_controller *ctl = NULL;
        if (st && tt && M &&
            ie_align_replace(p->source_prompt, (const char *const *)st, ns - 2, p->target_prompt,
                             (const char *const *)tt, nt - 2, false, M, err, errlen) == IE_OK)
            ctl = ie_controller_p2p(s->be, M, NULL, p->cross_replace, p->self_replace, N, err, errlen);
        free(M);
        free_texts(st, ns - 2);
        free_texts(tt, nt - 2);
        return ctl;
    }
    ie_refine_map rm;
    if (ie_align_refine(c->ids[COND_SRC], ns, c->ids[COND_TGT], nt, &rm, err, errlen)) return NULL;
    return ie_controller_p2p(s->be, NULL, &rm, p->cross_replace, p->self_replace, N, err, errlen);
}

/* --- the methods ------------------------------------------------------------------------ */

typedef struct edit_ctx {
    ie_session *s;
    const ie_edit_params *p;
    conds conds;
    unet_denoiser ud;
    ie_denoiser dn;
    progress_map pm;
    int h, w, C;
    int64_t unet_evals, unet_calls;
    double unet_seconds;
} edit_ctx;

/* Sets up an edit context: prompts encoded on the device, the UNet as the
 * denoiser of latents [C, h, w]. Free with edit_ctx_end. */
static ie_status edit_ctx_begin(edit_ctx *e, ie_session *s, const ie_edit_params *p, int h, int w,
                                ie_edit_progress_fn progress, void *user, char *err, size_t errlen) {
    memset(e, 0, sizeof *e);
    e->s = s;
    e->p = p;
    e->h = h, e->w = w, e->C = s->cfg.unet.in_channels;
    e->pm.fn = progress, e->pm.user = user;
    e->ud.s = s;
    e->ud.conds = &e->conds;
    e->ud.C = e->C, e->ud.H = h, e->ud.W = w;
    e->dn.channels = e->C, e->dn.height = h, e->dn.width = w;
    e->dn.ctx = &e->ud;
    e->dn.eps = ud_eps;
    e->dn.step_begin = ud_step_begin;
    e->dn.errmsg = ud_errmsg;
    return encode_prompts(s, p, &e->conds, err, errlen);
}

static void edit_ctx_end(edit_ctx *e) {
    e->s->last_calls = e->unet_calls, e->s->last_evals = e->unet_evals; /* ie_session_last_run */
    e->s->last_unet_seconds = e->unet_seconds;
    e->s->unet->hook = NULL;
    e->s->unet->hook_user = NULL;
    mem_report(e->s, "UNet loop");
    unet_release_activations(e->s->unet); /* issue 10: not kept next to the VAE's */
    ie_backend_trim(e->s->be);
    ie_controller_free(e->ud.ctrl);
    ud_free(&e->ud);
    conds_free(&e->conds);
}

static ie_status run_fail(ie_run *run, char *err, size_t errlen, ie_status st) {
    snprintf(err, errlen, "%s", run->err[0] ? run->err : ie_status_name(st));
    return st;
}

/* The inversion settings of the methods from the public parameters. */
static ef_ddpm_params ef_params_of(const ie_edit_params *p) {
    ef_ddpm_params ip;
    ef_ddpm_params_default(&ip);
    ip.num_steps = p->steps;
    ip.eta = p->eta;
    ip.cfg_src = p->cfg_source;
    ip.keep_z1 = p->keep_z1;
    ip.seed = (uint64_t)p->seed;
    ip.source_uncond_only = !p->source_prompt[0];
    return ip;
}

static bdia_params bdia_params_of(const ie_edit_params *p) {
    bdia_params bp;
    bdia_params_default(&bp);
    bp.num_steps = p->steps;
    bp.strength = p->strength;
    bp.gamma = p->gamma;
    bp.cfg = p->cfg_source;
    bp.cond = COND_SRC;
    return bp;
}

/* --- the inversion cache (cache.h) --------------------------------------------------------- */

ie_status ie_session_set_cache(ie_session *s, int64_t mem_bytes, const char *dir, int64_t disk_bytes) {
    ie_cache_free(s->cache);
    s->cache = mem_bytes > 0 || dir ? ie_cache_new(mem_bytes, dir, disk_bytes) : NULL;
    return IE_OK;
}

const char *ie_session_cache_dir(const ie_session *s) { return ie_cache_dir(s->cache); }
bool ie_session_last_cached(const ie_session *s) { return s->last_cached; }

static ie_cache *cache_of(ie_session *s, const ie_edit_params *p) { return p->no_cache ? NULL : s->cache; }

/* The identity of the session's model: the checkpoint, a separate VAE, the
 * LoRAs (each file's identity and its scale) and the EMA choice. */
static void session_model_identity(ie_session *s) {
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    char id[65];
    ie_cache_model_identity(s->model_path, id);
    g_checksum_update(ck, (const guchar *)id, 64);
    const char *vae = s->opened_with[2], *lora = s->opened_with[3], *ema = s->opened_with[4];
    g_checksum_update(ck, (const guchar *)"\0vae\0", 5);
    if (*vae) {
        ie_cache_model_identity(vae, id);
        g_checksum_update(ck, (const guchar *)id, 64);
    }
    g_checksum_update(ck, (const guchar *)"\0lora\0", 6);
    if (*lora) {
        char **items = g_strsplit(lora, ";", -1);
        for (char **it = items; *it; it++) {
            /* FILE or FILE:SCALE: the entry itself names the file unless it does not exist */
            char *file = g_strdup(*it), *colon = strrchr(file, ':');
            if (colon && !g_file_test(file, G_FILE_TEST_EXISTS)) *colon = 0;
            ie_cache_model_identity(file, id);
            g_checksum_update(ck, (const guchar *)id, 64);
            g_checksum_update(ck, (const guchar *)*it, strlen(*it) + 1);
            g_free(file);
        }
        g_strfreev(items);
    }
    g_checksum_update(ck, (const guchar *)"\0ema\0", 5);
    g_checksum_update(ck, (const guchar *)ema, strlen(ema) + 1);
    snprintf(s->model_id, sizeof s->model_id, "%s", g_checksum_get_string(ck));
    g_checksum_free(ck);
}

/* What every entry depends on: the model (with its VAE, LoRAs and EMA choice),
 * the device, and the precision the weights are stored in (fp16 unless the
 * edit asks for fp32). */
static GChecksum *cache_key_begin(ie_session *s, const char *what) {
    if (!s->model_id[0]) session_model_identity(s);
    GChecksum *ck = ie_cache_key_begin(what);
    ie_cache_key_str(ck, "model", s->model_id);
    ie_cache_key_str(ck, "device", ie_backend_description(s->be));
    ie_cache_key_str(ck, "weights", s->wtype == SD_WTYPE_F32 ? "fp32" : "fp16");
    return ck;
}

/* An inversion's inputs besides its method's settings: the latent (the image's content at
 * its working size, through the VAE) and the prompts. */
static void cache_key_inversion(GChecksum *ck, const edit_ctx *e, const float *x0) {
    ie_cache_key_int(ck, "C", e->C);
    ie_cache_key_int(ck, "h", e->h);
    ie_cache_key_int(ck, "w", e->w);
    ie_cache_key_bytes(ck, "x0", x0, sizeof(float) * (size_t)e->C * e->h * e->w);
    ie_cache_key_str(ck, "source", e->p->source_prompt);
    ie_cache_key_str(ck, "negative", e->p->negative_prompt);
    ie_cache_key_int(ck, "seed", e->p->seed);
}

static void cache_hit_progress(edit_ctx *e) {
    e->s->last_cached = true;
    if (e->pm.fn) e->pm.fn(e->pm.user, e->pm.base + e->pm.span, "inversion from the cache");
}

/* ef_ddpm_invert, or its result from the cache. */
static ie_status ef_invert_cached(edit_ctx *e, ie_run *run, const float *x0, const ef_ddpm_params *ip,
                                  ef_ddpm_maps **maps) {
    ie_cache *c = cache_of(e->s, e->p);
    ie_cache_key key;
    if (c) {
        GChecksum *ck = cache_key_begin(e->s, "ef-ddpm inversion");
        cache_key_inversion(ck, e, x0);
        ie_cache_key_int(ck, "steps", ip->num_steps);
        ie_cache_key_num(ck, "eta", ip->eta);
        ie_cache_key_num(ck, "cfg_src", ip->cfg_src);
        ie_cache_key_int(ck, "grid_offset", ip->grid_offset);
        ie_cache_key_int(ck, "keep_z1", ip->keep_z1);
        ie_cache_key_int(ck, "source_uncond_only", ip->source_uncond_only);
        ie_cache_key_int(ck, "cond_uncond", ip->cond_uncond);
        ie_cache_key_int(ck, "cond_src", ip->cond_src);
        ie_cache_key_int(ck, "noise_seed", (int64_t)ip->seed);
        ie_cache_key_end(ck, &key);
        void *data;
        size_t len;
        if (ie_cache_get(c, &key, IE_CACHE_EF_DDPM, &data, &len)) {
            ef_ddpm_maps *m = ie_cache_unpack_ef_ddpm(data, len);
            g_free(data);
            if (m && m->n == ip->num_steps && m->c == e->C && m->h == e->h && m->w == e->w) {
                *maps = m;
                cache_hit_progress(e);
                return IE_OK;
            }
            ef_ddpm_maps_free(m);
        }
    }
    ie_status st = ef_ddpm_invert(run, x0, ip, maps);
    if (!st && c) {
        size_t len;
        void *b = ie_cache_pack_ef_ddpm(*maps, &len);
        ie_cache_put(c, &key, IE_CACHE_EF_DDPM, b, len);
        g_free(b);
    }
    return st;
}

/* bdia_invert, or its result from the cache. */
static ie_status bdia_invert_cached(edit_ctx *e, ie_run *run, const float *x0, const bdia_params *bp, double *z_hi,
                                    double *z_lo) {
    ie_cache *c = cache_of(e->s, e->p);
    size_t n = (size_t)e->C * e->h * e->w;
    ie_cache_key key;
    if (c) {
        GChecksum *ck = cache_key_begin(e->s, "bdia inversion");
        cache_key_inversion(ck, e, x0);
        ie_cache_key_int(ck, "steps", bp->num_steps);
        ie_cache_key_num(ck, "strength", bp->strength);
        ie_cache_key_num(ck, "gamma", bp->gamma);
        ie_cache_key_num(ck, "cfg", bp->cfg);
        ie_cache_key_int(ck, "cond_uncond", bp->cond_uncond);
        ie_cache_key_int(ck, "cond", bp->cond);
        ie_cache_key_int(ck, "run_first_call", bp->run_first_call);
        ie_cache_key_end(ck, &key);
        void *data;
        size_t len;
        if (ie_cache_get(c, &key, IE_CACHE_BDIA, &data, &len)) {
            bool ok = len == 2 * n * sizeof(double);
            if (ok) {
                memcpy(z_hi, data, n * sizeof(double));
                memcpy(z_lo, (const char *)data + n * sizeof(double), n * sizeof(double));
            }
            g_free(data);
            if (ok) {
                cache_hit_progress(e);
                return IE_OK;
            }
        }
    }
    ie_status st = bdia_invert(run, x0, bp, z_hi, z_lo);
    if (!st && c) {
        double *b = g_malloc(2 * n * sizeof(double));
        memcpy(b, z_hi, n * sizeof(double));
        memcpy(b + n, z_lo, n * sizeof(double));
        ie_cache_put(c, &key, IE_CACHE_BDIA, b, 2 * n * sizeof(double));
        g_free(b);
    }
    return st;
}

/* ie_session_encode, or its result from the cache (the latent every method starts from;
 * InfEdit's only product of the input). *hit says which. */
static ie_status encode_cached(ie_session *s, const ie_edit_params *p, const ie_image *work, bool sample, float *x0,
                               bool *hit, char *err, size_t errlen) {
    ie_cache *c = cache_of(s, p);
    size_t n = (size_t)s->cfg.vae.latent_channels * (work->height / s->factor) * (work->width / s->factor);
    ie_cache_key key;
    *hit = false;
    if (c) {
        GChecksum *ck = cache_key_begin(s, "vae encoding");
        ie_cache_key_int(ck, "width", work->width);
        ie_cache_key_int(ck, "height", work->height);
        ie_cache_key_int(ck, "channels", work->channels);
        ie_cache_key_bytes(ck, "pixels", work->pixels,
                           sizeof(float) * (size_t)work->width * work->height * work->channels);
        ie_cache_key_int(ck, "sample", sample);
        ie_cache_key_int(ck, "seed", sample ? p->seed : 0);
        ie_cache_key_end(ck, &key);
        void *data;
        size_t len;
        if (ie_cache_get(c, &key, IE_CACHE_LATENT, &data, &len)) {
            if (len == n * sizeof(float)) {
                memcpy(x0, data, len);
                *hit = true;
            }
            g_free(data);
            if (*hit) return IE_OK;
        }
    }
    ie_status st = ie_session_encode(s, work, sample, (uint64_t)p->seed, x0, err, errlen);
    if (!st && c) ie_cache_put(c, &key, IE_CACHE_LATENT, x0, n * sizeof(float));
    return st;
}

static ie_status edit_ef_ddpm(edit_ctx *e, const float *x0, float *out, char *err, size_t errlen) {
    const ie_edit_params *p = e->p;
    ef_ddpm_params ip = ef_params_of(p);
    ef_ddpm_edit_params ep;
    ef_ddpm_edit_params_default(&ep);
    ep.skip = (int)lround(p->steps * (1.0 - p->strength));
    ep.cond_uncond = p->negative_prompt[0] ? COND_NEG : COND_EMPTY;
    if (p->prompt_to_prompt) {
        ep.n_prompts = 2;
        ep.cond[0] = COND_SRC, ep.cfg[0] = p->cfg_source;
        ep.cond[1] = COND_TGT, ep.cfg[1] = p->cfg_target;
    } else {
        ep.n_prompts = 1;
        ep.cond[0] = COND_TGT, ep.cfg[0] = p->cfg_target;
    }
    int K = p->steps - ep.skip, N = p->steps;
    ie_run run = ie_run_make(&e->dn);
    run.progress = method_progress;
    run.progress_user = &e->pm;
    e->pm.base = 0.02, e->pm.span = 0.96 * N / (N + K);
    ef_ddpm_maps *maps = NULL;
    ie_status st = ef_invert_cached(e, &run, x0, &ip, &maps);
    if (st) return run_fail(&run, err, errlen, st);
    int dx = (int)lround(p->shift_x * e->w), dy = (int)lround(p->shift_y * e->h);
    if (dx || dy) {
        /* the paper's shift: the maps carry the structure, moving them moves the content; the
         * uncovered strip gets fresh noise, so the model invents it */
        st = ef_ddpm_maps_shift(maps, dx, dy, EF_SHIFT_NOISE, (uint64_t)p->seed + 1, err, errlen);
        if (st) {
            ef_ddpm_maps_free(maps);
            return st;
        }
    }
    if (p->prompt_to_prompt) {
        e->ud.ctrl = make_p2p(e->s, p, &e->conds, N, err, errlen);
        if (!e->ud.ctrl) {
            ef_ddpm_maps_free(maps);
            return IE_ERR_ARG;
        }
        unet *u = e->s->unet;
        u->hook = ie_controller_hook;
        u->hook_user = e->ud.ctrl;
    }
    e->pm.base += e->pm.span, e->pm.span = 0.96 * K / (N + K);
    size_t n = (size_t)e->C * e->h * e->w;
    float *rows = malloc(sizeof(float) * n * (size_t)ep.n_prompts);
    st = rows ? ef_ddpm_edit(&run, maps, &ep, rows) : IE_ERR_NOMEM;
    if (!st) memcpy(out, rows + n * (size_t)(ep.n_prompts - 1), n * sizeof(float));
    else run_fail(&run, err, errlen, st);
    free(rows);
    ef_ddpm_maps_free(maps);
    e->unet_evals = run.unet_evals;
    e->unet_calls = run.denoiser_calls;
    e->unet_seconds = run.eps_seconds;
    return st;
}

static ie_status edit_bdia(edit_ctx *e, const float *x0, float *out, char *err, size_t errlen) {
    const ie_edit_params *p = e->p;
    bdia_params bp = bdia_params_of(p);
    if (bdia_levels(&bp) < 2) {
        snprintf(err, errlen, "bdia: %d steps at strength %g give fewer than 2 levels", p->steps, p->strength);
        return IE_ERR_ARG;
    }
    size_t n = (size_t)e->C * e->h * e->w;
    double *z_hi = malloc(n * sizeof(double)), *z_lo = malloc(n * sizeof(double)), *z = malloc(n * sizeof(double));
    ie_status st = z_hi && z_lo && z ? IE_OK : IE_ERR_NOMEM;
    ie_run run = ie_run_make(&e->dn);
    run.progress = method_progress;
    run.progress_user = &e->pm;
    e->pm.base = 0.02, e->pm.span = 0.48;
    if (!st) st = bdia_invert_cached(e, &run, x0, &bp, z_hi, z_lo);
    if (!st && p->prompt_to_prompt) {
        /* the source chain (the inversion's conditions) hands its attention to the target chain */
        int K = bdia_levels(&bp);
        e->ud.ctrl = make_p2p(e->s, p, &e->conds, K - 1, err, errlen);
        if (!e->ud.ctrl) st = IE_ERR_ARG; /* err says why */
        else {
            e->s->unet->hook = ie_controller_hook;
            e->s->unet->hook_user = e->ud.ctrl;
        }
    }
    if (!st) {
        int src_uncond = bp.cond_uncond, src_cond = bp.cond;
        bp.cond = COND_TGT;
        bp.cfg = p->cfg_target;
        bp.cond_uncond = p->negative_prompt[0] ? COND_NEG : COND_EMPTY;
        e->pm.base = 0.5;
        if (p->prompt_to_prompt)
            st = bdia_generate_p2p(&run, z_hi, z_lo, &bp, src_uncond, src_cond, p->cfg_source, z, NULL);
        else st = bdia_generate(&run, z_hi, z_lo, &bp, z, NULL);
    }
    if (!st) bdia_to_float(z, out, n);
    else if (run.err[0]) run_fail(&run, err, errlen, st); /* else make_p2p's message is in err */
    free(z_hi);
    free(z_lo);
    free(z);
    e->unet_evals = run.unet_evals;
    e->unet_calls = run.denoiser_calls;
    e->unet_seconds = run.eps_seconds;
    return st;
}

static ie_status edit_infedit(edit_ctx *e, const float *x0, float *out, char *err, size_t errlen) {
    const ie_edit_params *p = e->p;
    ie_session *s = e->s;
    const conds *c = &e->conds;
    infedit_params ip;
    infedit_params_default(&ip);
    ip.num_steps = p->steps;
    ip.guidance_s = p->cfg_source;
    ip.guidance_t = p->cfg_target;
    ip.eta = p->eta;
    ip.cross_replace = p->cross_replace;
    ip.self_replace = p->self_replace;
    ip.seed = (uint64_t)p->seed;
    ip.denoise = p->strength < 1.0;
    ip.strength = p->strength;
    ip.cond_src_uncond = COND_EMPTY;
    ip.cond_tgt_uncond = p->negative_prompt[0] ? COND_NEG : COND_EMPTY;
    ip.cond_src = COND_SRC;
    ip.cond_tgt = COND_TGT;
    /* issue 10: INVEDIT_INFEDIT_ALL_ROWS=1 runs the unused rows too (for comparing) */
    ip.keep_unused_rows = getenv("INVEDIT_INFEDIT_ALL_ROWS") && atoi(getenv("INVEDIT_INFEDIT_ALL_ROWS")) > 0;
    if (ip.guidance_t <= 1.0) {
        snprintf(err, errlen, "infedit: cfg-target must be above 1 (got %g)", ip.guidance_t);
        return IE_ERR_ARG;
    }
    /* token alignment and blend words */
    int32_t local[NTOK], mutual[NTOK];
    int nl = clip_encode(s->tok, p->blend_words ? p->blend_words : "", local, NTOK, NULL) + 2;
    int nm = clip_encode(s->tok, p->keep_words ? p->keep_words : "", mutual, NTOK, NULL) + 2;
    if (nl > NTOK) nl = NTOK;
    if (nm > NTOK) nm = NTOK;
    ie_infedit_align_input ai = {
        .src_ids = c->ids[COND_SRC],
        .n_src = unpadded(c, COND_SRC),
        .tgt_ids = c->ids[COND_TGT],
        .n_tgt = unpadded(c, COND_TGT),
        .local_ids = local,
        .n_local = nl,
        .mutual_ids = mutual,
        .n_mutual = nm,
        .src_emb = c->host + (size_t)COND_SRC * NTOK * c->dim,
        .tgt_emb = c->host + (size_t)COND_TGT * NTOK * c->dim,
        .emb_dim = c->dim,
        .sim = IE_SIM_CROSSED,
    };
    ie_infedit_align al;
    ie_status st = ie_align_infedit(&ai, &al, err, errlen);
    if (st) return st;
    bool blend = false;
    for (int i = 0; i < NTOK; i++) blend |= al.alpha_e[i] != 0 || al.alpha_m[i] != 0;
    int mh = 0, mw = 0;
    if (blend) blend_map_size(s, e->h, e->w, &mh, &mw);
    e->ud.ctrl = ie_controller_infedit(s->be, al.mapper, al.alphas, mh, mw, err, errlen);
    if (!e->ud.ctrl) return IE_ERR_NOMEM;
    s->unet->hook = ie_controller_hook;
    s->unet->hook_user = e->ud.ctrl;
    ie_local_blend lb;
    memset(&lb, 0, sizeof lb);
    if (blend) {
        lb.words = &al;
        ie_blend_params_default(&lb.params);
        lb.params.thresh_e = p->blend_threshold;
        lb.params.thresh_m = p->keep_threshold;
        lb.get_maps = ie_controller_get_maps;
        lb.maps_user = e->ud.ctrl;
        ip.blend = ie_local_blend_step;
        ip.blend_user = &lb;
    }
    ie_run run = ie_run_make(&e->dn);
    run.progress = method_progress;
    run.progress_user = &e->pm;
    e->pm.base = 0.02, e->pm.span = 0.96;
    st = infedit_run(&run, x0, &ip, NULL, out);
    if (st) run_fail(&run, err, errlen, st);
    e->unet_evals = run.unet_evals;
    e->unet_calls = run.denoiser_calls;
    e->unet_seconds = run.eps_seconds;
    return st;
}

/* --- ie_edit ------------------------------------------------------------------------------ */

ie_status ie_edit_latent(ie_session *s, const ie_edit_params *p_in, const float *x0, int h, int w, float *out,
                         ie_edit_progress_fn progress, void *user, int64_t *unet_evals, char *err, size_t errlen) {
    ie_edit_params p = *p_in;
    ie_edit_params defaults;
    ie_edit_params_init(&defaults, p.method);
    if (p.steps <= 0) p.steps = defaults.steps;
    if (!p.source_prompt) p.source_prompt = "";
    if (!p.target_prompt) p.target_prompt = "";
    if (!p.negative_prompt) p.negative_prompt = "";
    if (!p.blend_words) p.blend_words = "";
    if (!p.keep_words) p.keep_words = "";
    ie_status st = ie_edit_params_validate(&p, err, errlen);
    if (!st) st = session_use_weights(s, p.fp32, err, errlen);
    if (st) return st;
    if (h % s->unet_div || w % s->unet_div) {
        snprintf(err, errlen, "latent %dx%d is not a multiple of the UNet's %d", h, w, s->unet_div);
        return IE_ERR_ARG;
    }
    { /* issue 10: a latent of any size must fit before the long work (ie_edit checked the image) */
        ie_image shape = {w * s->factor, h * s->factor, 3, NULL};
        st = memory_check(s, &p, &shape, true, err, errlen);
        if (st) return st;
    }
    if (progress && !progress(user, 0.0, "encoding prompts")) {
        snprintf(err, errlen, "cancelled");
        return IE_ERR_CANCELLED;
    }
    edit_ctx e;
    s->last_cached = false;
    st = edit_ctx_begin(&e, s, &p, h, w, progress, user, err, errlen);
    if (!st) {
        switch (p.method) {
            case IE_METHOD_EF_DDPM: st = edit_ef_ddpm(&e, x0, out, err, errlen); break;
            case IE_METHOD_BDIA: st = edit_bdia(&e, x0, out, err, errlen); break;
            default: st = edit_infedit(&e, x0, out, err, errlen); break;
        }
    }
    edit_ctx_end(&e);
    if (unet_evals) *unet_evals = e.unet_evals;
    return st;
}

ie_status ie_edit(ie_session *s, const ie_edit_params *p, const ie_image *in, ie_image *out,
                  ie_edit_progress_fn progress, void *user, char *err, size_t errlen) {
    return ie_edit_ex(s, p, in, out, NULL, progress, user, err, errlen);
}

ie_status ie_edit_ex(ie_session *s, const ie_edit_params *p, const ie_image *in, ie_image *out,
                     const ie_edit_extras *extras, ie_edit_progress_fn progress, void *user, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!in || !in->pixels || in->width < 1 || in->height < 1 || (in->channels != 3 && in->channels != 4)) {
        snprintf(err, errlen, "the input must be an RGB or RGBA image");
        return IE_ERR_ARG;
    }
    const ie_param_desc *ws = ie_edit_param_find("work-size");
    if (ws && (p->work_size < ws->min || p->work_size > ws->max)) { /* before sizing anything by it */
        snprintf(err, errlen, "work-size: %d is outside %g..%g", p->work_size, ws->min, ws->max);
        return IE_ERR_ARG;
    }
    ie_composite_mode mode;
    if (!ie_composite_mode_from_name(p->composite, &mode)) {
        snprintf(err, errlen, "composite: '%s' is not keep-detail, replace-region or off", p->composite);
        return IE_ERR_ARG;
    }
    int W, H, mult = ie_session_size_multiple(s);
    ie_working_size(in->width, in->height, p->work_size > 0 ? p->work_size : s->native, mult, &W, &H);
    ie_image work = {0}, decoded = {0}, rec = {0};
    ie_status st = session_use_weights(s, p->fp32, err, errlen);
    if (!st) st = memory_check(s, p, in, false, err, errlen); /* issue 10: before the long work */
    if (st) return st;
    st = ie_image_resize(in, W, H, &work);
    int h = H / s->factor, w = W / s->factor, C = s->cfg.unet.in_channels;
    float *x0 = malloc(sizeof(float) * (size_t)C * h * w), *x = malloc(sizeof(float) * (size_t)C * h * w);
    if (!st && (!x0 || !x)) st = IE_ERR_NOMEM;
    if (st == IE_ERR_NOMEM) snprintf(err, errlen, "out of memory");
    bool enc_hit = false;
    if (!st) {
        /* EF-DDPM inverts the posterior mean; BDIA and InfEdit a sample */
        bool sample = p->method != IE_METHOD_EF_DDPM;
        st = encode_cached(s, p, &work, sample, x0, &enc_hit, err, errlen);
    }
    if (!st) st = ie_edit_latent(s, p, x0, h, w, x, progress, user, NULL, err, errlen);
    if (!st && p->method == IE_METHOD_INFEDIT) s->last_cached = enc_hit;
    if (!st) {
        if (progress && !progress(user, 0.98, "decoding")) {
            snprintf(err, errlen, "cancelled");
            st = IE_ERR_CANCELLED;
        }
    }
    if (!st) st = ie_session_decode(s, x, h, w, &decoded, err, errlen);
    /* every method's reconstruction is x0 itself (composite.h): one more decode, no UNet pass */
    if (!st && mode != IE_COMPOSITE_OFF) st = ie_session_decode(s, x0, h, w, &rec, err, errlen);
    if (!st) {
        ie_composite_args ca = {in,        &work,
                                &rec,      &decoded,
                                mode,      p->change_threshold > 0 ? p->change_threshold : 0.1,
                                s->factor, extras ? extras->region : NULL};
        st = ie_composite(&ca, out, extras ? extras->mask : NULL, extras ? extras->unmasked : NULL);
        if (st == IE_ERR_NOMEM) snprintf(err, errlen, "out of memory (compositing %dx%d)", in->width, in->height);
        else if (st) snprintf(err, errlen, "compositing: %s", ie_status_name(st));
    }
    if (!st) {
        if (progress) progress(user, 1.0, "done");
    } else if (st == IE_ERR_NOMEM && !err[0]) {
        snprintf(err, errlen, "out of memory");
    }
    free(x0);
    free(x);
    ie_image_free(&work);
    ie_image_free(&decoded);
    ie_image_free(&rec);
    return st;
}

ie_status ie_generate_latent(ie_session *s, const ie_edit_params *p_in, int h, int w, float *out,
                             ie_edit_progress_fn progress, void *user, char *err, size_t errlen) {
    ie_edit_params p = *p_in;
    if (!p.source_prompt) p.source_prompt = "";
    if (!p.negative_prompt) p.negative_prompt = "";
    if (!p.target_prompt) p.target_prompt = "";
    ie_status st = session_use_weights(s, p.fp32, err, errlen);
    if (st) return st;
    edit_ctx e;
    st = edit_ctx_begin(&e, s, &p, h, w, progress, user, err, errlen);
    size_t n = (size_t)e.C * h * w;
    double *z = malloc(n * sizeof *z);
    if (!st && !z) st = IE_ERR_NOMEM;
    if (!st) {
        bdia_sample_params bp;
        bdia_sample_params_default(&bp);
        bp.num_steps = p.steps > 0 ? p.steps : 50;
        bp.gamma = p.gamma;
        bp.cfg = p.cfg_target;
        bp.eta = 0;
        bp.cond = COND_TGT;
        bp.cond_uncond = p.negative_prompt[0] ? COND_NEG : COND_EMPTY;
        bp.seed = (uint64_t)p.seed;
        ie_run run = ie_run_make(&e.dn);
        run.progress = method_progress;
        run.progress_user = &e.pm;
        e.pm.base = 0.0, e.pm.span = 1.0;
        st = bdia_sample(&run, &bp, NULL, z);
        if (st) run_fail(&run, err, errlen, st);
        else bdia_to_float(z, out, n);
        e.unet_calls = run.denoiser_calls, e.unet_evals = run.unet_evals, e.unet_seconds = run.eps_seconds;
    }
    free(z);
    edit_ctx_end(&e);
    return st;
}

/* --- inversion alone ---------------------------------------------------------------------- */

ie_status ie_invert_latent(ie_session *s, const ie_edit_params *p_in, const float *x0, int h, int w, float **out,
                           int *n_latents, char *err, size_t errlen) {
    *out = NULL;
    *n_latents = 0;
    ie_edit_params p = *p_in;
    ie_edit_params defaults;
    ie_edit_params_init(&defaults, p.method);
    if (p.steps <= 0) p.steps = defaults.steps;
    if (!p.source_prompt) p.source_prompt = "";
    if (!p.target_prompt) p.target_prompt = "";
    if (!p.negative_prompt) p.negative_prompt = "";
    if (p.method == IE_METHOD_INFEDIT) {
        snprintf(err, errlen,
                 "infedit inverts nothing: its source branch is a fresh forward sample of the "
                 "input at every step (virtual inversion); use ef-ddpm or bdia");
        return IE_ERR_ARG;
    }
    ie_status st = session_use_weights(s, p.fp32, err, errlen);
    if (st) return st;
    edit_ctx e;
    st = edit_ctx_begin(&e, s, &p, h, w, NULL, NULL, err, errlen);
    size_t n = (size_t)e.C * h * w;
    if (!st) {
        ie_run run = ie_run_make(&e.dn);
        if (p.method == IE_METHOD_EF_DDPM) {
            ef_ddpm_params ip = ef_params_of(&p);
            ef_ddpm_maps *maps = NULL;
            st = ef_ddpm_invert(&run, x0, &ip, &maps);
            if (!st) {
                /* [x_N, z_N, ..., z_1] */
                float *o = malloc(sizeof(float) * n * (size_t)(maps->n + 1));
                if (!o) st = IE_ERR_NOMEM;
                else {
                    memcpy(o, ef_ddpm_xt(maps, maps->n), n * sizeof(float));
                    for (int k = maps->n; k >= 1; k--)
                        memcpy(o + n * (size_t)(maps->n - k + 1), ef_ddpm_z(maps, k), n * sizeof(float));
                    *out = o;
                    *n_latents = maps->n + 1;
                }
            }
            ef_ddpm_maps_free(maps);
        } else {
            bdia_params bp = bdia_params_of(&p);
            double *zh = malloc(n * sizeof(double)), *zl = malloc(n * sizeof(double));
            float *o = malloc(2 * n * sizeof(float));
            st = zh && zl && o ? bdia_invert(&run, x0, &bp, zh, zl) : IE_ERR_NOMEM;
            if (!st) {
                bdia_to_float(zh, o, n);
                bdia_to_float(zl, o + n, n);
                *out = o;
                *n_latents = 2;
                o = NULL;
            }
            free(zh);
            free(zl);
            free(o);
        }
        e.unet_calls = run.denoiser_calls, e.unet_evals = run.unet_evals, e.unet_seconds = run.eps_seconds;
        if (st && st != IE_ERR_NOMEM) run_fail(&run, err, errlen, st);
    }
    edit_ctx_end(&e);
    return st;
}

/* --- memory plan (issue 10) -------------------------------------------------------------
 * ie_session_memory_plan: the networks' activation buffers from dry runs of
 * their forward passes at the working size (unet_plan_activations,
 * vae_plan_activations), the weights from what is loaded (doubled for the
 * matrices when the edit switches to fp32), and the rest from the shapes:
 * attention probabilities a control asks for, the CPU backend's scratch,
 * the host images. ie_edit checks it against the memory available before the
 * long work starts (memory_check). */

#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * 1024.0 * 1024.0)
/* the process without any model: code, libraries, OpenBLAS's buffers, the
 * thread stacks (measured: ~20 MiB resident besides the tensors and the
 * scratch on the CPU backend; with a margin) */
#define PROCESS_BASE_BYTES ((uint64_t)48 << 20)
#define CPU_SCRATCH_COLUMNS ((uint64_t)32 << 20) /* the CPU backend's im2col / score bound */

static uint64_t max_matrix_numel(const sd_tensor_list *l) {
    uint64_t m = 0;
    for (int i = 0; l && i < l->n; i++)
        if (l->t[i]->ndim >= 2 && (uint64_t)ie_tensor_numel(l->t[i]) > m) m = (uint64_t)ie_tensor_numel(l->t[i]);
    return m;
}

/* bytes of a weight list in another precision: matrices at 2 or 4 bytes, vectors fp32 */
static uint64_t list_bytes_as(const sd_tensor_list *l, size_t matrix_bytes) {
    uint64_t b = 0;
    for (int i = 0; l && i < l->n; i++)
        b += (uint64_t)ie_tensor_numel(l->t[i]) * (l->t[i]->ndim >= 2 ? matrix_bytes : 4);
    return b;
}

static int method_max_batch(const ie_edit_params *p) {
    switch (p->method) {
        case IE_METHOD_INFEDIT:
            return p->cfg_source == 1.0 ? 5 : 6;                 /* 3 branches x (uncond, cond), less the
                                                                    unused rows at g_s 1 */
        case IE_METHOD_BDIA: return p->prompt_to_prompt ? 4 : 2; /* source + target chains with P2P */
        default: return p->prompt_to_prompt ? 3 : 2;             /* uncond + source + target with P2P */
    }
}

/* The plan at working size W x H (pixels; 0: the size ie_edit works at). */
static ie_status memory_plan_at(ie_session *s, const ie_edit_params *p, int in_w, int in_h, int in_channels, int W,
                                int H, ie_memory_plan *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (in_w < 1 || in_h < 1) {
        snprintf(err, errlen, "memory plan: no image size");
        return IE_ERR_ARG;
    }
    int f = s->factor;
    if (W <= 0 || H <= 0) ie_working_size(in_w, in_h, s->native, ie_session_size_multiple(s), &W, &H);
    out->work_w = W, out->work_h = H;
    int h = H / f, w = W / f, B = method_max_batch(p);
    out->unet_batch = B;
    bool cpu = ie_backend_kind_of(s->be) == IE_BACKEND_CPU;
    /* weights: as loaded, or in the precision this edit asks for */
    sd_wtype want = p->fp32 ? SD_WTYPE_F32 : SD_WTYPE_AUTO;
    size_t mb = ie_dtype_size(sd_wtype_resolve(want, s->be));
    out->weights_unet = s->unet ? list_bytes_as(&s->unet->mem, mb) : 0;
    out->weights_vae = s->vae ? list_bytes_as(&s->vae->mem, mb) : 0;
    /* the text encoder: its checkpoint tensors' element count (it is loaded only while encoding) */
    uint64_t text_numel = 0, text_matrix = 0;
    for (int i = 0; i < sd_weights_count(s->w); i++) {
        const sd_weight *wt = sd_weights_at(s->w, i);
        if (wt->component != SD_TEXT_ENCODER) continue;
        text_numel += (uint64_t)wt->t->numel;
        if (wt->ndim >= 2) text_matrix += (uint64_t)wt->t->numel;
    }
    out->weights_text = text_matrix * mb + (text_numel - text_matrix) * 4;
    /* activations: dry runs */
    uint64_t big = 0, l = 0;
    ie_status st = unet_plan_activations(s->unet, B, h, w, NTOK, &out->act_unet, &l);
    if (l > big) big = l;
    if (!st) st = vae_plan_activations(s->vae, true, H, W, &out->act_vae_encode, &l);
    if (l > big) big = l;
    if (!st) st = vae_plan_activations(s->vae, false, H, W, &out->act_vae_decode, &l);
    if (l > big) big = l;
    if (st) {
        snprintf(err, errlen, "memory plan: %s", s->unet->err[0] ? s->unet->err : s->vae->err);
        return st;
    }
    /* text encoder: 4 prompts x 77 tokens, ~8 live [4, 77, 4·D] buffers (a few MiB) */
    out->act_text = (uint64_t)NCOND * NTOK * 4 * (uint64_t)s->cfg.text.hidden_size * 4 * 8;
    /* attention control: cross-attention probabilities [B, heads, L, 77] at the finest level with
     * cross-attention, the controller's three [heads, L, 77] scratch rows and maps; P2P's
     * self-attention probabilities only at <= 256 tokens */
    bool control = p->method == IE_METHOD_INFEDIT || p->prompt_to_prompt;
    if (control) {
        int lvl = 0;
        while (lvl < s->cfg.unet.n_levels - 1 && !s->cfg.unet.down_cross_attn[lvl]) lvl++;
        uint64_t L = (uint64_t)(h >> lvl) * (uint64_t)(w >> lvl), heads = (uint64_t)s->cfg.unet.heads[lvl];
        uint64_t probs = (uint64_t)B * heads * L * NTOK * 4;
        uint64_t self = p->method == IE_METHOD_INFEDIT ? 0 : (uint64_t)B * heads * 256 * 256 * 4;
        out->attention = (probs > self ? probs : self) + 3 * heads * L * NTOK * 4 + 2 * L * NTOK * 4;
        if (probs > big) big = probs;
    }
    /* CPU backend scratch, per phase (ie_backend_trim frees it between phases): the
     * phase's largest fp16 matrix widened to fp32, and the im2col columns */
    uint64_t scr_unet = 0, scr_vae = 0;
    if (cpu) {
        scr_unet = (mb == 2 ? max_matrix_numel(s->unet ? &s->unet->mem : NULL) * 4 : 0) + CPU_SCRATCH_COLUMNS;
        scr_vae = (mb == 2 ? max_matrix_numel(s->vae ? &s->vae->mem : NULL) * 4 : 0) + CPU_SCRATCH_COLUMNS;
    }
    /* host: the input and output images (caller's size), the working image, its
     * tensor staging, the decoded image, latents and EF-DDPM's noise maps */
    uint64_t in_px = (uint64_t)in_w * (uint64_t)in_h, wk_px = (uint64_t)W * (uint64_t)H;
    uint64_t lat = (uint64_t)s->cfg.unet.in_channels * (uint64_t)h * (uint64_t)w * 4;
    int steps = p->steps > 0 ? p->steps : 100;
    out->host = in_px * (uint64_t)(2 * in_channels + 3) * 4 + wk_px * 3 * 4 * 3 + lat * (uint64_t)(2 * steps + 16);
    /* the device at each phase: weights resident + that phase's activations */
    uint64_t resident = out->weights_unet + out->weights_vae;
    struct {
        const char *name;
        uint64_t bytes, scratch;
    } ph[] = {
        {"text encoder", out->weights_text + out->act_text, scr_vae},
        {"VAE encode", out->act_vae_encode, scr_vae},
        {"UNet loop", out->act_unet + out->attention, scr_unet},
        {"VAE decode", out->act_vae_decode, scr_vae},
    };
    int pk = 0;
    for (int i = 1; i < 4; i++)
        if (ph[i].bytes + ph[i].scratch > ph[pk].bytes + ph[pk].scratch) pk = i;
    out->peak_phase = ph[pk].name;
    out->scratch = ph[pk].scratch;
    out->device_peak = resident + ph[pk].bytes + out->scratch;
    {
        /* on a Vulkan device: fp16 matrices unless fp32, no scratch */
        size_t vb = ie_dtype_size(sd_wtype_resolve(want, NULL));
        uint64_t vres =
            (s->unet ? list_bytes_as(&s->unet->mem, vb) : 0) + (s->vae ? list_bytes_as(&s->vae->mem, vb) : 0);
        uint64_t vmax = 0;
        for (int i = 0; i < 4; i++)
            if (ph[i].bytes > vmax) vmax = ph[i].bytes;
        out->vulkan_device = vres + vmax;
    }
    out->largest = big;
    out->total = cpu ? out->device_peak + out->host + PROCESS_BASE_BYTES : out->device_peak;
    return IE_OK;
}

ie_status ie_session_memory_plan(ie_session *s, const ie_edit_params *p, int in_w, int in_h, int in_channels,
                                 ie_memory_plan *out, char *err, size_t errlen) {
    return memory_plan_at(s, p, in_w, in_h, in_channels, 0, 0, out, err, errlen);
}

/* Available memory: INVEDIT_MEMORY_LIMIT (bytes; for tests and for a user who
 * wants to keep memory free) caps it; on the CPU backend MemAvailable plus
 * what this process already holds (its weights are part of the plan); on a GPU
 * the device's local memory. 0 when unknown. */
static uint64_t memory_available(ie_session *s, const char **what) {
    uint64_t avail = 0;
    *what = "available";
    if (ie_backend_kind_of(s->be) == IE_BACKEND_CPU) {
        uint64_t mem_avail = 0, rss = 0;
        FILE *f = fopen("/proc/meminfo", "r");
        char line[256];
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "MemAvailable:", 13)) mem_avail = (uint64_t)atoll(line + 13) * 1024;
        if (f) fclose(f);
        f = fopen("/proc/self/status", "r");
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "VmRSS:", 6)) rss = (uint64_t)atoll(line + 6) * 1024;
        if (f) fclose(f);
        if (mem_avail) avail = mem_avail + rss;
        *what = "available to this process (free memory plus what it holds)";
    }
    const char *lim = getenv("INVEDIT_MEMORY_LIMIT");
    if (lim && atoll(lim) > 0 && (!avail || (uint64_t)atoll(lim) < avail)) {
        avail = (uint64_t)atoll(lim);
        *what = "allowed (INVEDIT_MEMORY_LIMIT)";
    }
    return avail;
}

/* IE_ERR_NOMEM with the estimate, what is available and how to lower it when
 * the edit cannot fit; IE_OK otherwise (also when nothing is known). */
static ie_status memory_check(ie_session *s, const ie_edit_params *p, const ie_image *in, bool at_size, char *err,
                              size_t errlen) {
    ie_memory_plan mp;
    char perr[256] = "";
    if (memory_plan_at(s, p, in->width, in->height, in->channels, at_size ? in->width : 0, at_size ? in->height : 0,
                       &mp, perr, sizeof perr))
        return IE_OK;
    const char *what;
    uint64_t avail = memory_available(s, &what);
    if (!avail || mp.total <= avail) return IE_OK;
    bool cpu = ie_backend_kind_of(s->be) == IE_BACKEND_CPU;
    snprintf(err, errlen,
             "not enough memory for this edit: it needs about %.2f GiB at its peak (%s at %dx%d: weights %.2f GiB, "
             "activations %.2f GiB%s) but %.2f GiB is %s. Lower it with a smaller working size (fewer pixels: "
             "a smaller image or selection, or edit it in tiles)%s%s",
             mp.total / GIB, mp.peak_phase, mp.work_w, mp.work_h, (mp.weights_unet + mp.weights_vae) / GIB,
             (mp.device_peak - mp.weights_unet - mp.weights_vae - mp.scratch) / GIB, cpu ? "" : " on the device",
             avail / GIB, what, p->fp32 ? ", without fp32 weights" : "",
             cpu ? "" : ", or run on the CPU (--device cpu), which uses the computer's memory");
    return IE_ERR_NOMEM;
}
