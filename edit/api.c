/* The public API's whole-image operations beside ie_edit (invedit.h):
 * reconstruct, generate, invert, the VAE round trip, the model description of
 * `invedit info`, the device report of `invedit devices` and the backends'
 * self-check, and the version. They are built from the lower-level pipeline
 * entry points (edit/pipeline.h), so front ends need nothing but invedit.h. */
#include <invedit.h>

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edit/image.h"
#include "edit/pipeline.h"
#include "model/config.h"
#include "model/lora.h"
#include "model/names.h"
#include "model/npy.h"
#include "model/tokenizer.h"
#include "vkcompute/ops.h"

#define IE_STR2(x) #x
#define IE_STR(x) IE_STR2(x)

const char *ie_version_string(void) {
    return IE_STR(IE_VERSION_MAJOR) "." IE_STR(IE_VERSION_MINOR) "." IE_STR(IE_VERSION_PATCH);
}

int ie_version_number(void) { return IE_VERSION_NUMBER; }

void ie_free(void *ptr) { free(ptr); }

/* g_string_free's buffer comes from g_malloc, which is malloc since GLib 2.46;
 * copied anyway so ie_free (free) is right whatever GLib does. */
static char *gstring_take(GString *g) {
    char *t = strdup(g->str);
    g_string_free(g, TRUE);
    return t;
}

static void set_nomem(char *err, size_t errlen) {
    if (err && errlen) snprintf(err, errlen, "out of memory");
}

/* --- reconstruct ------------------------------------------------------------------------ */

void ie_reconstruct_params(ie_edit_params *p) {
    p->target_prompt = p->source_prompt;
    p->cfg_target = p->cfg_source;
    p->keep_z1 = true;
    p->prompt_to_prompt = false;
    p->blend_words = p->keep_words = "";
    if (p->method == IE_METHOD_EF_DDPM) p->strength = 1.0;
    if (p->method == IE_METHOD_INFEDIT && p->cfg_source <= 1.0) p->cfg_source = p->cfg_target = 2.0;
}

ie_status ie_reconstruct(ie_session *s, const ie_edit_params *p, const ie_image *in, ie_image *out,
                         ie_edit_progress_fn progress, void *user, char *err, size_t errlen) {
    ie_edit_params r = *p;
    ie_reconstruct_params(&r);
    return ie_edit(s, &r, in, out, progress, user, err, errlen);
}

/* The working size ie_edit uses for in (work_size 0 = native). */
static void working_size(ie_session *s, const ie_image *in, int work_size, int *W, int *H) {
    ie_working_size(in->width, in->height, work_size > 0 ? work_size : ie_session_native_size(s),
                    ie_session_size_multiple(s), W, H);
}

static ie_status check_image(const ie_image *in, char *err, size_t errlen) {
    if (!in || !in->pixels || in->width < 1 || in->height < 1 || (in->channels != 3 && in->channels != 4)) {
        snprintf(err, errlen, "the input must be an RGB or RGBA image");
        return IE_ERR_ARG;
    }
    return IE_OK;
}

ie_status ie_vae_roundtrip(ie_session *s, const ie_image *in, int work_size, ie_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    ie_status st = check_image(in, err, errlen);
    if (st) return st;
    int W, H, vf = ie_session_vae_factor(s), C = ie_session_latent_channels(s);
    working_size(s, in, work_size, &W, &H);
    ie_image work = {0}, vae = {0};
    float *lat = malloc(sizeof(float) * (size_t)C * (H / vf) * (W / vf));
    st = lat ? ie_image_resize(in, W, H, &work) : IE_ERR_NOMEM;
    if (st == IE_ERR_NOMEM) set_nomem(err, errlen);
    if (!st) st = ie_session_encode(s, &work, false, 0, lat, err, errlen);
    if (!st) st = ie_session_decode(s, lat, H / vf, W / vf, &vae, err, errlen);
    if (!st) {
        st = ie_image_resize(&vae, in->width, in->height, out);
        if (st) set_nomem(err, errlen);
    }
    free(lat);
    ie_image_free(&work);
    ie_image_free(&vae);
    return st;
}

/* --- generate --------------------------------------------------------------------------- */

void ie_generate_params_init(ie_edit_params *p) {
    ie_edit_params_init(p, IE_METHOD_BDIA);
    p->steps = 50;
    p->cfg_target = 5.0;
    p->gamma = 0.0;
    p->source_prompt = "";
}

ie_status ie_generate(ie_session *s, const ie_edit_params *p_in, int width, int height, ie_image *out,
                      ie_edit_progress_fn progress, void *user, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (width < 0 || height < 0) {
        snprintf(err, errlen, "the size %dx%d is negative", width, height);
        return IE_ERR_ARG;
    }
    int mult = ie_session_size_multiple(s), native = ie_session_native_size(s);
    int W = width > 0 ? width : native, H = height > 0 ? height : native;
    W = (W + mult / 2) / mult * mult;
    H = (H + mult / 2) / mult * mult;
    if (W < mult) W = mult;
    if (H < mult) H = mult;
    int vf = ie_session_vae_factor(s), h = H / vf, w = W / vf, C = ie_session_latent_channels(s);
    ie_edit_params p = *p_in;
    p.method = IE_METHOD_BDIA;
    if (!p.source_prompt) p.source_prompt = "";
    float *lat = malloc(sizeof(float) * (size_t)C * h * w);
    if (!lat) {
        set_nomem(err, errlen);
        return IE_ERR_NOMEM;
    }
    ie_status st = ie_generate_latent(s, &p, h, w, lat, progress, user, err, errlen);
    if (!st) st = ie_session_decode(s, lat, h, w, out, err, errlen);
    free(lat);
    return st;
}

/* --- invert ----------------------------------------------------------------------------- */

ie_status ie_invert(ie_session *s, const ie_edit_params *p, const ie_image *in, ie_latents *out, char *err,
                    size_t errlen) {
    memset(out, 0, sizeof *out);
    ie_status st = check_image(in, err, errlen);
    if (st) return st;
    int W, H, vf = ie_session_vae_factor(s), C = ie_session_latent_channels(s);
    working_size(s, in, p->work_size, &W, &H);
    int h = H / vf, w = W / vf;
    ie_image work = {0};
    float *x0 = malloc(sizeof(float) * (size_t)C * h * w), *lat = NULL;
    int n = 0;
    st = x0 ? ie_image_resize(in, W, H, &work) : IE_ERR_NOMEM;
    if (st == IE_ERR_NOMEM) set_nomem(err, errlen);
    /* as ie_edit: EF-DDPM inverts the posterior mean, BDIA a sample */
    if (!st) st = ie_session_encode(s, &work, p->method != IE_METHOD_EF_DDPM, (uint64_t)p->seed, x0, err, errlen);
    if (!st) st = ie_invert_latent(s, p, x0, h, w, &lat, &n, err, errlen);
    if (!st) *out = (ie_latents){lat, n, C, h, w};
    else if (st == IE_ERR_NOMEM && err && errlen && !err[0]) set_nomem(err, errlen);
    free(x0);
    ie_image_free(&work);
    return st;
}

void ie_latents_free(ie_latents *l) {
    if (!l) return;
    free(l->data);
    memset(l, 0, sizeof *l);
}

ie_status ie_latents_save_npy(const ie_latents *l, const char *path, char *err, size_t errlen) {
    if (!l || !l->data || l->n < 1 || l->channels < 1 || l->height < 1 || l->width < 1) {
        snprintf(err, errlen, "no latents to write");
        return IE_ERR_ARG;
    }
    int64_t shape[4] = {l->n, l->channels, l->height, l->width};
    return npy_write_f32(path, l->data, 4, shape, err, errlen);
}

/* --- ie_model_describe (invedit info) --------------------------------------------------- */

/* "F16 120, F32 4": the dtypes of component c's tensors and their counts. */
static void dtypes_of(const sd_weights *w, sd_component c, char *buf, size_t n, int *count) {
    int by[32] = {0};
    *count = 0;
    for (int i = 0; i < sd_weights_count(w); i++) {
        const sd_weight *x = sd_weights_at(w, i);
        if (x->component != c) continue;
        (*count)++;
        if ((unsigned)x->t->dtype < 32) by[x->t->dtype]++;
    }
    size_t at = 0;
    buf[0] = 0;
    for (int d = 0; d < 32 && at < n; d++)
        if (by[d])
            at += (size_t)snprintf(buf + at, n - at, "%s%s %d", at ? ", " : "", st_dtype_name((st_dtype)d), by[d]);
}

ie_status ie_model_describe(const char *model, const ie_session_options *opt, char **text, char *err, size_t errlen) {
    *text = NULL;
    if (!model || !*model) {
        snprintf(err, errlen, "no model path given");
        return IE_ERR_ARG;
    }
    const char *vae = opt ? opt->vae : NULL, *loras = opt && opt->lora ? opt->lora : "";
    sd_source_options so = {.vae = vae};
    if (!sd_ema_mode_from_name(opt && opt->ema && *opt->ema ? opt->ema : "auto", &so.ema)) {
        snprintf(err, errlen, "ema: '%s' is not auto, yes or no", opt->ema);
        return IE_ERR_ARG;
    }
    sd_weights *w = NULL;
    sd_model_config cfg;
    ie_status st = sd_weights_open_with(model, &so, &w, err, errlen);
    if (!st) st = sd_model_config_load(w, &cfg, err, errlen);
    if (st) {
        sd_weights_close(w);
        return st;
    }
    ie_status code = IE_OK;
    char msg[2048] = "";
    GString *g = g_string_new(NULL);
    char desc[1024], tsrc[512] = "";
    g_string_append_printf(g, "model: %s (%s)\n", model,
                           sd_weights_layout(w) == SD_LAYOUT_SINGLE_FILE ? "single file" : "diffusers folder");
    g_string_append_printf(g, "architecture: %s\n", sd_model_config_describe(&cfg, desc, sizeof desc));
    clip_tokenizer *tok = NULL;
    ie_status ts = sd_tokenizer_open(w, &cfg, &tok, tsrc, sizeof tsrc, msg, sizeof msg);
    if (ts) {
        g_string_append_printf(g, "tokenizer: none: %s\n", msg);
        code = ts;
    } else {
        g_string_append_printf(g, "tokenizer: %s, %d ids\n", tsrc, clip_tokenizer_vocab_size(tok));
    }
    static const sd_component ORDER[] = {SD_TEXT_ENCODER, SD_UNET, SD_VAE};
    for (int k = 0; k < 3; k++) {
        sd_component c = ORDER[k];
        if (!sd_weights_has(w, c)) {
            g_string_append_printf(g, "%s: absent (%s)\n", sd_component_name(c), sd_weights_missing_reason(w, c));
            continue;
        }
        char dt[256];
        int n;
        dtypes_of(w, c, dt, sizeof dt, &n);
        g_string_append_printf(g, "%s: %s, %s names, %d tensors (%s)%s\n", sd_component_name(c), sd_weights_file(w, c),
                               sd_weights_naming(w, c), n, dt,
                               c == SD_VAE && vae && *vae ? ", separate VAE (--vae)" : "");
    }
    if (sd_weights_ema_count(w) || *sd_weights_ema_note(w))
        g_string_append_printf(g, "ema: %s\n", sd_weights_ema_note(w));
    else g_string_append(g, "ema: no EMA copy in the model\n");
    sd_lora_set *lora = NULL;
    if (*loras) {
        lora = sd_lora_set_new();
        ie_status ls = sd_lora_set_add_list(lora, w, loras, msg, sizeof msg);
        if (ls) {
            g_string_append_printf(g, "lora: %s\n", msg);
            code = ls;
        } else {
            g_string_append_printf(g, "lora: %s\n", sd_lora_set_summary(lora));
        }
    }
    if (sd_weights_unmapped_count(w))
        g_string_append_printf(g, "skipped: %d tensors that are not SD 1.x weights (e.g. %s)\n",
                               sd_weights_unmapped_count(w), sd_weights_unmapped_at(w, 0));
    sd_check_report rep;
    ie_status cs = sd_weights_check(w, &cfg, &rep, msg, sizeof msg);
    if (cs) {
        g_string_append_printf(g, "check: %d problems\n", rep.n_problems);
        for (int i = 0; i < rep.n_problems && i < 20; i++) g_string_append_printf(g, "  %s\n", rep.problems[i]);
        code = cs;
    } else {
        g_string_append_printf(g, "check: all %d expected tensors present with their shapes\n", rep.n_expected);
    }
    if (!cs && cfg.variant != SD_VARIANT_SD1) {
        g_string_append_printf(g, "variant: %s: not editable with invedit\n", sd_variant_name(cfg.variant));
        code = IE_ERR_UNSUPPORTED;
    }
    if (code) snprintf(err, errlen, "%s", msg[0] ? msg : "the model cannot be edited (see the description)");
    sd_check_report_free(&rep);
    sd_lora_set_free(lora);
    clip_tokenizer_free(tok);
    sd_weights_close(w);
    *text = gstring_take(g);
    if (!*text) {
        set_nomem(err, errlen);
        return IE_ERR_NOMEM;
    }
    return code;
}

/* --- devices ---------------------------------------------------------------------------- */

char *ie_devices_describe(void) {
    ie_device_info devs[16];
    char err[512];
    GString *g = g_string_new(NULL);
    int n = ie_vulkan_list_devices(devs, 16, err, sizeof err);
    if (n < 0) {
        g_string_append_printf(g, "No Vulkan: %s\nThe CPU backend (OpenBLAS) will be used.\n", err);
        return gstring_take(g);
    }
    if (n == 0) g_string_append(g, "The Vulkan loader found no devices. The CPU backend (OpenBLAS) will be used.\n");
    if (n > 16) n = 16;
    for (int i = 0; i < n; i++) {
        const ie_device_info *d = &devs[i];
        g_string_append_printf(g, "vulkan:%d  %s  (%s, Vulkan %u.%u, %s)\n", d->index, d->name,
                               ie_device_type_name(d->type), d->api_version >> 22, (d->api_version >> 12) & 0x3ff,
                               d->driver);
        g_string_append_printf(g,
                               "          device-local memory %.1f GiB, max allocation %.0f MiB, "
                               "max storage-buffer range %.0f MiB, shared memory %u KiB, subgroup %u, fp16 %s\n",
                               (double)d->device_local_bytes / 1073741824.0, (double)d->max_allocation_size / 1048576.0,
                               (double)d->max_storage_buffer_range / 1048576.0, d->max_shared_memory / 1024,
                               d->subgroup_size, d->fp16 ? "yes" : "no");
        if (!d->usable) g_string_append_printf(g, "          not usable: %s\n", d->why_unusable);
    }
    char note[512];
    ie_backend *be = ie_backend_open(NULL, note, sizeof note);
    g_string_append_printf(g, "\nauto selects: %s\n", ie_backend_description(be));
    if (note[0]) g_string_append_printf(g, "  (%s)\n", note);
    g_string_append(g, "Override with --device cpu|vulkan|vulkan:N or INVEDIT_DEVICE.\n");
    ie_backend_free(be);
    return gstring_take(g);
}

bool ie_device_valid(const char *device, char *err, size_t errlen) {
    return ie_device_request_valid(device, err, errlen);
}

/* --- self-check ------------------------------------------------------------------------- */

/* A 3x3 convolution with the given data on one backend; returns the output. */
static float *run_conv(ie_backend *be, const float *x, const float *w, const float *b, int N, int Cin, int H, int W,
                       int Cout, char *msg, size_t msglen) {
    ie_tensor *tx = ie_tensor_new4(be, IE_F32, N, Cin, H, W);
    ie_tensor *tw = ie_tensor_new4(be, IE_F32, Cout, Cin, 3, 3);
    int64_t bs[1] = {Cout};
    ie_tensor *tb = ie_tensor_new(be, IE_F32, 1, bs);
    ie_tensor *to = ie_tensor_new4(be, IE_F32, N, Cout, H, W);
    float *out = malloc(sizeof(float) * (size_t)N * Cout * H * W);
    ie_conv2d_params p = ie_conv2d_params_sym(1, 1);
    ie_status s = IE_ERR_NOMEM;
    if (tx && tw && tb && to && out) {
        s = ie_tensor_upload(tx, x);
        if (!s) s = ie_tensor_upload(tw, w);
        if (!s) s = ie_tensor_upload(tb, b);
        if (!s) s = ie_conv2d(be, to, tx, tw, tb, &p);
        if (!s) s = ie_tensor_download(to, out);
    }
    if (s) {
        snprintf(msg, msglen, "%s", ie_backend_errmsg(be));
        free(out);
        out = NULL;
    }
    ie_tensor_free(tx);
    ie_tensor_free(tw);
    ie_tensor_free(tb);
    ie_tensor_free(to);
    return out;
}

ie_status ie_selfcheck(char **text) {
    *text = NULL;
    const int N = 1, Cin = 64, H = 32, W = 32, Cout = 64;
    size_t nx = (size_t)N * Cin * H * W, nw = (size_t)Cout * Cin * 9;
    float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc(Cout * sizeof *b);
    if (!x || !w || !b) {
        free(x);
        free(w);
        free(b);
        return IE_ERR_NOMEM;
    }
    uint32_t r = 12345;
    for (size_t i = 0; i < nx; i++) x[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    for (size_t i = 0; i < nw; i++) w[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f * 0.1f - 0.05f;
    for (int i = 0; i < Cout; i++) b[i] = (float)i * 0.01f;

    GString *g = g_string_new(NULL);
    char msg[512] = "";
    ie_backend *cpu = ie_backend_cpu_new(0);
    float *ref = run_conv(cpu, x, w, b, N, Cin, H, W, Cout, msg, sizeof msg);
    g_string_append_printf(g, "conv2d 3x3 [%d,%d,%d,%d] -> %d channels\n", N, Cin, H, W, Cout);
    g_string_append_printf(g, "  %-40s %s\n", ie_backend_description(cpu), ref ? "ok" : msg);
    ie_status status = ref ? IE_OK : IE_ERR_DEVICE;

    ie_device_info devs[16];
    char err[512];
    int n = ie_vulkan_list_devices(devs, 16, err, sizeof err);
    if (n < 0) g_string_append_printf(g, "  vulkan: not available (%s)\n", err);
    if (n == 0) g_string_append(g, "  vulkan: no devices\n");
    for (int i = 0; i < n && i < 16; i++) {
        ie_backend *vk = ie_backend_vulkan_new(devs[i].index, err, sizeof err);
        if (!vk) {
            g_string_append_printf(g, "  vulkan:%d %s: unavailable (%s)\n", devs[i].index, devs[i].name, err);
            continue;
        }
        float *out = run_conv(vk, x, w, b, N, Cin, H, W, Cout, msg, sizeof msg);
        if (out && ref) {
            double maxdiff = 0, maxref = 0;
            for (size_t k = 0; k < (size_t)N * Cout * H * W; k++) {
                double d = fabs((double)out[k] - ref[k]);
                if (!(d <= maxdiff)) maxdiff = d;
                if (fabs(ref[k]) > maxref) maxref = fabs(ref[k]);
            }
            double rel = maxdiff / (maxref > 0 ? maxref : 1);
            g_string_append_printf(g, "  %-40s max abs diff vs cpu %.3g (relative %.3g) %s\n",
                                   ie_backend_description(vk), maxdiff, rel, rel <= 1e-4 ? "ok" : "MISMATCH");
            if (!(rel <= 1e-4)) status = IE_ERR_DEVICE;
        } else {
            g_string_append_printf(g, "  %-40s failed: %s\n", ie_backend_description(vk), msg);
            status = IE_ERR_DEVICE;
        }
        free(out);
        ie_backend_free(vk);
    }
    free(ref);
    ie_backend_free(cpu);
    free(x);
    free(w);
    free(b);
    *text = gstring_take(g);
    return *text ? status : IE_ERR_NOMEM;
}
