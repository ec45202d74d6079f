/* Host-independent plug-in logic: settings, last-used values, edit region,
 * progress and cancel, compositing. GLib only, no libgimp (see core.h). */
#include "plugin/core.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#define KEY_GROUP "invedit"

static const char *const output_names[IVP_OUTPUT_COUNT] = {"new-layer", "in-place", "new-layer-mask"};
static const char *const output_labels[IVP_OUTPUT_COUNT] = {"New layer", "In place", "New layer + change mask"};

bool ivp_output_is_new_layer(ivp_output o) { return o == IVP_OUTPUT_NEW_LAYER || o == IVP_OUTPUT_NEW_LAYER_MASK; }

const char *ivp_output_name(ivp_output o) { return (unsigned)o < IVP_OUTPUT_COUNT ? output_names[o] : "?"; }

const char *ivp_output_label(ivp_output o) { return (unsigned)o < IVP_OUTPUT_COUNT ? output_labels[o] : "?"; }

bool ivp_output_from_name(const char *s, ivp_output *out) {
    for (int i = 0; i < IVP_OUTPUT_COUNT; i++)
        if (s && !g_ascii_strcasecmp(s, output_names[i])) {
            *out = (ivp_output)i;
            return true;
        }
    return false;
}

/* --- settings -------------------------------------------------------------------- */

static size_t param_index(const ie_param_desc *d) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    return (size_t)(d - t);
}

double ivp_param_get_number(const ie_edit_params *p, const ie_param_desc *d) {
    const char *base = (const char *)p;
    switch (d->type) {
        case IE_PARAM_INT:
            if (d->offset == offsetof(ie_edit_params, seed)) return (double)p->seed;
            return *(const int *)(base + d->offset);
        case IE_PARAM_DOUBLE: return *(const double *)(base + d->offset);
        case IE_PARAM_BOOL: return *(const bool *)(base + d->offset) ? 1 : 0;
        case IE_PARAM_METHOD: return (double)*(const ie_method *)(base + d->offset);
        case IE_PARAM_STRING: return 0;
    }
    return 0;
}

void ivp_param_set_number(ie_edit_params *p, const ie_param_desc *d, double v) {
    char *base = (char *)p;
    switch (d->type) {
        case IE_PARAM_INT:
            if (d->offset == offsetof(ie_edit_params, seed)) p->seed = (int64_t)llround(v);
            else *(int *)(base + d->offset) = (int)lround(v);
            break;
        case IE_PARAM_DOUBLE: *(double *)(base + d->offset) = v; break;
        case IE_PARAM_BOOL: *(bool *)(base + d->offset) = v != 0; break;
        case IE_PARAM_METHOD: {
            long m = lround(v);
            if (m >= 0 && m < IE_METHOD_COUNT) *(ie_method *)(base + d->offset) = (ie_method)m;
            break;
        }
        case IE_PARAM_STRING: break;
    }
}

const char *ivp_param_get_string(const ie_edit_params *p, const ie_param_desc *d) {
    if (d->type != IE_PARAM_STRING) return NULL;
    const char *v = *(const char *const *)((const char *)p + d->offset);
    return v ? v : "";
}

void ivp_settings_set_string(ivp_settings *s, const ie_param_desc *d, const char *value) {
    if (d->type != IE_PARAM_STRING) return;
    size_t i = param_index(d);
    char *copy = g_strdup(value ? value : "");
    g_free(s->owned[i]);
    s->owned[i] = copy;
    *(const char **)((char *)&s->params + d->offset) = copy;
}

void ivp_settings_set_model_path(ivp_settings *s, const char *path) {
    char *copy = g_strdup(path ? path : "");
    g_free(s->model_path);
    s->model_path = copy;
}

void ivp_settings_init(ivp_settings *s) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    memset(s, 0, sizeof *s);
    ie_edit_params_init(&s->params, IE_METHOD_INFEDIT);
    s->owned = g_new0(char *, n);
    for (size_t i = 0; i < n; i++)
        if (t[i].type == IE_PARAM_STRING) ivp_settings_set_string(s, &t[i], ie_edit_param_default_string(&t[i]));
    s->model_path = g_strdup("");
    s->output = IVP_OUTPUT_NEW_LAYER;
}

void ivp_settings_clear(ivp_settings *s) {
    size_t n;
    ie_edit_param_table(&n);
    if (s->owned)
        for (size_t i = 0; i < n; i++) g_free(s->owned[i]);
    g_free(s->owned);
    g_free(s->model_path);
    memset(s, 0, sizeof *s);
}

bool ivp_param_check_number(const ie_param_desc *d, double v, char *err, size_t errlen) {
    char lo[G_ASCII_DTOSTR_BUF_SIZE], hi[G_ASCII_DTOSTR_BUF_SIZE], val[G_ASCII_DTOSTR_BUF_SIZE];
    g_ascii_formatd(lo, sizeof lo, "%g", d->min);
    g_ascii_formatd(hi, sizeof hi, "%g", d->max);
    g_ascii_formatd(val, sizeof val, "%.10g", v);
    if (!isfinite(v) || v < d->min || v > d->max) {
        snprintf(err, errlen, "%s: %s is outside %s..%s", d->name, val, lo, hi);
        return false;
    }
    if ((d->type == IE_PARAM_INT || d->type == IE_PARAM_METHOD) && v != floor(v)) {
        snprintf(err, errlen, "%s: %s is not a whole number", d->name, val);
        return false;
    }
    return true;
}

/* The numbers and booleans that follow the method (everything but strings and the seed). */
bool ivp_param_follows_method(const ie_param_desc *d) {
    return d->type != IE_PARAM_STRING && d->type != IE_PARAM_METHOD && d->offset != offsetof(ie_edit_params, seed);
}

bool ivp_settings_has_method_defaults(const ivp_settings *s, ie_method m) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    ie_edit_params def;
    ie_edit_params_init(&def, m);
    for (size_t i = 0; i < n; i++)
        if (ivp_param_follows_method(&t[i]) &&
            fabs(ivp_param_get_number(&s->params, &t[i]) - ivp_param_get_number(&def, &t[i])) > 1e-9)
            return false;
    return true;
}

void ivp_settings_apply_method_defaults(ivp_settings *s, ie_method m) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    ie_edit_params def;
    ie_edit_params_init(&def, m);
    for (size_t i = 0; i < n; i++)
        if (ivp_param_follows_method(&t[i])) ivp_param_set_number(&s->params, &t[i], ivp_param_get_number(&def, &t[i]));
    s->params.method = m;
}

bool ivp_settings_switch_method(ivp_settings *s, ie_method from, ie_method to) {
    bool load = to != from && ivp_settings_has_method_defaults(s, from);
    if (load) ivp_settings_apply_method_defaults(s, to);
    s->params.method = to;
    return load;
}

const char *ivp_settings_model_path(const ivp_settings *s, char *err, size_t errlen) {
    if (s->model_path && *s->model_path) return s->model_path;
    const char *env = g_getenv(IVP_MODEL_ENV);
    if (env && *env) return env;
    snprintf(err, errlen,
             "No model set: set '" IVP_ARG_MODEL_PATH "' to a Stable Diffusion 1.x model (a diffusers folder "
             "or a .safetensors file), or the environment variable " IVP_MODEL_ENV);
    return NULL;
}

/* --- last-used values ------------------------------------------------------------ */

static char *number_text(const ie_param_desc *d, double v) {
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    switch (d->type) {
        case IE_PARAM_BOOL: return g_strdup(v != 0 ? "true" : "false");
        case IE_PARAM_METHOD: return g_strdup(ie_method_name((ie_method)lround(v)));
        case IE_PARAM_INT: return g_strdup_printf("%lld", (long long)llround(v));
        default: return g_strdup(g_ascii_formatd(buf, sizeof buf, "%.10g", v));
    }
}

bool ivp_settings_save(const ivp_settings *s, const char *path, char *err, size_t errlen) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    GKeyFile *kf = g_key_file_new();
    g_key_file_set_comment(kf, NULL, NULL, " invedit GIMP plug-in: last-used values", NULL);
    g_key_file_set_string(kf, KEY_GROUP, IVP_ARG_MODEL_PATH, s->model_path);
    for (size_t i = 0; i < n; i++) {
        if (t[i].type == IE_PARAM_STRING) {
            g_key_file_set_string(kf, KEY_GROUP, t[i].name, ivp_param_get_string(&s->params, &t[i]));
        } else {
            char *v = number_text(&t[i], ivp_param_get_number(&s->params, &t[i]));
            g_key_file_set_value(kf, KEY_GROUP, t[i].name, v);
            g_free(v);
        }
    }
    g_key_file_set_string(kf, KEY_GROUP, IVP_ARG_OUTPUT, ivp_output_name(s->output));
    GError *e = NULL;
    char *dir = g_path_get_dirname(path);
    g_mkdir_with_parents(dir, 0755);
    g_free(dir);
    bool ok = g_key_file_save_to_file(kf, path, &e);
    if (!ok) {
        snprintf(err, errlen, "cannot save %s: %s", path, e->message);
        g_error_free(e);
    }
    g_key_file_free(kf);
    return ok;
}

bool ivp_settings_load(ivp_settings *s, const char *path, char *err, size_t errlen) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    GKeyFile *kf = g_key_file_new();
    GError *e = NULL;
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &e)) {
        snprintf(err, errlen, "cannot read %s: %s", path, e->message);
        g_error_free(e);
        g_key_file_free(kf);
        return false;
    }
    char *v = g_key_file_get_string(kf, KEY_GROUP, IVP_ARG_MODEL_PATH, NULL);
    if (v) ivp_settings_set_model_path(s, v);
    g_free(v);
    for (size_t i = 0; i < n; i++) {
        const ie_param_desc *d = &t[i];
        if (d->type == IE_PARAM_STRING) {
            v = g_key_file_get_string(kf, KEY_GROUP, d->name, NULL);
            if (v) ivp_settings_set_string(s, d, v);
        } else if ((v = g_key_file_get_value(kf, KEY_GROUP, d->name, NULL))) {
            /* Parsed here, not with ie_edit_param_set: g_ascii_strtod ignores the locale. */
            char *text = g_strstrip(v), *end = NULL, e2[128];
            double x = NAN;
            ie_method m;
            if (d->type == IE_PARAM_METHOD && ie_method_from_name(text, &m)) x = m;
            else if (d->type == IE_PARAM_BOOL && (!g_ascii_strcasecmp(text, "true") || !strcmp(text, "1"))) x = 1;
            else if (d->type == IE_PARAM_BOOL && (!g_ascii_strcasecmp(text, "false") || !strcmp(text, "0"))) x = 0;
            else if (d->type == IE_PARAM_INT || d->type == IE_PARAM_DOUBLE) {
                x = g_ascii_strtod(text, &end);
                if (end == text || *end) x = NAN;
            }
            if (ivp_param_check_number(d, x, e2, sizeof e2)) ivp_param_set_number(&s->params, d, x);
        }
        g_free(v);
    }
    v = g_key_file_get_string(kf, KEY_GROUP, IVP_ARG_OUTPUT, NULL);
    if (v) ivp_output_from_name(v, &s->output);
    g_free(v);
    g_key_file_free(kf);
    return true;
}

char *ivp_settings_describe(const ivp_settings *s) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    GString *g = g_string_new(NULL);
    g_string_append_printf(g, "%s='%s'", IVP_ARG_MODEL_PATH, s->model_path);
    for (size_t i = 0; i < n; i++) {
        if (t[i].type == IE_PARAM_STRING) {
            g_string_append_printf(g, " %s='%s'", t[i].name, ivp_param_get_string(&s->params, &t[i]));
        } else {
            char *v = number_text(&t[i], ivp_param_get_number(&s->params, &t[i]));
            g_string_append_printf(g, " %s=%s", t[i].name, v);
            g_free(v);
        }
    }
    g_string_append_printf(g, " %s=%s", IVP_ARG_OUTPUT, ivp_output_name(s->output));
    return g_string_free(g, FALSE);
}

/* --- region ------------------------------------------------------------------------ */

static ivp_rect context_region(ivp_rect sel, int layer_width, int layer_height, int work) {
    ie_rect r = ie_edit_context((ie_rect){sel.x, sel.y, sel.width, sel.height}, layer_width, layer_height, work);
    return (ivp_rect){r.x, r.y, r.width, r.height};
}

int ivp_work_size(ie_session *session, const ie_edit_params *params) {
    return params->work_size > 0 ? params->work_size : ie_session_native_size(session);
}

void ivp_region_plan(ivp_rect sel, int layer_width, int layer_height, int work, ivp_rect *ctx, ivp_rect *write) {
    *ctx = context_region(sel, layer_width, layer_height, work);
    write->x = sel.x - ctx->x;
    write->y = sel.y - ctx->y;
    write->width = sel.width;
    write->height = sel.height;
}

/* --- progress and cancel ------------------------------------------------------------ */

static volatile sig_atomic_t cancel_flag;

static void on_cancel_signal(int sig) {
    (void)sig;
    cancel_flag = 1;
}

void ivp_install_cancel_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cancel_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

void ivp_progress_init(ivp_progress *pr, bool echo, void (*set_text)(const char *text),
                       void (*update)(double fraction)) {
    memset(pr, 0, sizeof *pr);
    pr->echo = echo;
    pr->set_text = set_text;
    pr->update = update;
    pr->label = IVP_PROGRESS_LABEL;
    pr->span = 1.0;
    pr->last_echo_decile = -1;
}

bool ivp_progress_cb(void *user, double fraction, const char *text) {
    ivp_progress *pr = user;
    static int cancel_after = -2;
    if (cancel_after == -2) {
        const char *v = g_getenv("INVEDIT_TEST_CANCEL_AFTER");
        cancel_after = v && *v ? atoi(v) : -1;
    }
    pr->steps_seen++;
    if (cancel_flag || (cancel_after >= 0 && pr->steps_seen > cancel_after)) return false;
    if (fraction < 0) fraction = 0;
    if (fraction > 1) fraction = 1;
    if (text && strcmp(text, pr->last_text)) {
        g_strlcpy(pr->last_text, text, sizeof pr->last_text);
        if (pr->set_text) {
            char *t = pr->label ? g_strdup_printf("%s: %s", pr->label, text) : g_strdup(text);
            pr->set_text(t);
            g_free(t);
        }
    }
    if (pr->update) pr->update(pr->base + pr->span * fraction);
    int decile = (int)(fraction * 10.0 + 1e-9);
    if (pr->echo && decile != pr->last_echo_decile) {
        pr->last_echo_decile = decile;
        fprintf(stderr, "invedit: %s%s%s (%3.0f%%)\n", pr->label ? pr->label : "", pr->label ? ": " : "",
                text ? text : "", 100.0 * (pr->base + pr->span * fraction));
    }
    return true;
}

/* --- compositing ------------------------------------------------------------------- */

static float srgb_to_linear(float v) { return v <= 0.04045f ? v / 12.92f : powf((v + 0.055f) / 1.055f, 2.4f); }

static float linear_to_srgb(float v) { return v <= 0.0031308f ? v * 12.92f : 1.055f * powf(v, 1.0f / 2.4f) - 0.055f; }

/* Y' of an R'G'B' pixel: luminance in linear light with babl's sRGB weights,
 * the same conversion GEGL applies between "R'G'B'" and "Y'". */
static float luma(const float *rgb) {
    float y =
        0.2225045f * srgb_to_linear(rgb[0]) + 0.7168786f * srgb_to_linear(rgb[1]) + 0.0606169f * srgb_to_linear(rgb[2]);
    return linear_to_srgb(y);
}

static float clamp01(float v) { return v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; /* NaN -> 0 */ }

static void composite(const ivp_region_job *job, const float *edited_rgb, float *out) {
    const int ch = job->channels;
    const ivp_rect w = job->write;
    for (int y = 0; y < w.height; y++) {
        for (int x = 0; x < w.width; x++) {
            size_t mi = (size_t)y * w.width + x;
            size_t ci = (size_t)(w.y + y) * job->width + (w.x + x);
            const float *in = job->pixels + ci * ch;
            float *o = out + mi * ch;
            float m = job->mask ? job->mask[mi] : 1.0f;
            const float *ed = edited_rgb + ci * 3;
            bool same = ch >= 3 ? ed[0] == in[0] && ed[1] == in[1] && ed[2] == in[2]
                                : ed[0] == in[0] && ed[1] == in[0] && ed[2] == in[0];
            if (!(m > 0.0f) || same) { /* untouched (or left as it was by the edit): the input, bit for bit */
                memcpy(o, in, sizeof(float) * ch);
                continue;
            }
            if (m > 1.0f) m = 1.0f;
            float e[3] = {clamp01(edited_rgb[ci * 3 + 0]), clamp01(edited_rgb[ci * 3 + 1]),
                          clamp01(edited_rgb[ci * 3 + 2])};
            if (ch >= 3) {
                for (int c = 0; c < 3; c++) o[c] = m >= 1.0f ? e[c] : in[c] + m * (e[c] - in[c]);
            } else {
                float ey = luma(e);
                o[0] = m >= 1.0f ? ey : in[0] + m * (ey - in[0]);
            }
            if (ch == 2 || ch == 4) o[ch - 1] = in[ch - 1]; /* alpha is kept */
        }
    }
}

ie_status ivp_edit_region(ie_session *session, const ie_edit_params *params, const ivp_region_job *job, float *out,
                          ie_edit_progress_fn progress, void *user, char *err, size_t errlen) {
    const int ch = job->channels;
    if (ch < 1 || ch > 4 || job->width <= 0 || job->height <= 0 || job->write.x < 0 || job->write.y < 0 ||
        job->write.x + job->write.width > job->width || job->write.y + job->write.height > job->height) {
        snprintf(err, errlen, "invalid edit region");
        return IE_ERR_ARG;
    }
    size_t npx = (size_t)job->width * job->height;
    ie_image in = {job->width, job->height, 3, g_try_new(float, npx * 3)};
    if (!in.pixels) {
        snprintf(err, errlen, "no memory for a %dx%d region", job->width, job->height);
        return IE_ERR_NOMEM;
    }
    /* The model sees RGB: gray is expanded, alpha stays with us. */
    for (size_t i = 0; i < npx; i++) {
        const float *p = job->pixels + i * ch;
        for (int c = 0; c < 3; c++) in.pixels[i * 3 + c] = ch >= 3 ? p[c] : p[0];
    }
    /* the selection as the library's region: 0 outside the written part */
    float *region = NULL;
    if (job->mask) {
        region = g_try_new0(float, npx);
        if (!region) {
            g_free(in.pixels);
            snprintf(err, errlen, "no memory for a %dx%d region", job->width, job->height);
            return IE_ERR_NOMEM;
        }
        const ivp_rect w = job->write;
        for (int y = 0; y < w.height; y++)
            memcpy(region + (size_t)(w.y + y) * job->width + w.x, job->mask + (size_t)y * w.width,
                   sizeof(float) * (size_t)w.width);
    }
    ie_image res = {0, 0, 0, NULL}, composited = {0, 0, 0, NULL}, cmask = {0, 0, 0, NULL};
    ie_edit_extras extras = {region, job->change_mask ? &cmask : NULL, job->change_mask ? &res : NULL};
    ie_status st =
        ie_edit_ex(session, params, &in, job->change_mask ? &composited : &res, &extras, progress, user, err, errlen);
    g_free(in.pixels);
    g_free(region);
    ie_image_free(&composited);
    if (st != IE_OK) return st;
    if (ie_session_last_cached(session)) /* a second try on the same region and source (disk cache) */
        g_printerr("invedit: %s from the cache\n", params->method == IE_METHOD_INFEDIT ? "encoding" : "inversion");
    ivp_region_job whole = *job;
    whole.mask = NULL; /* the library applied the selection (or the layer mask will) */
    job = &whole;
    if (job->change_mask) {
        const ivp_rect w = job->write;
        for (int y = 0; y < w.height; y++)
            for (int x = 0; x < w.width; x++)
                job->change_mask[(size_t)y * w.width + x] = cmask.pixels[(size_t)(w.y + y) * job->width + (w.x + x)];
        ie_image_free(&cmask);
    }
    if (res.width != job->width || res.height != job->height || res.channels != 3 || !res.pixels) {
        snprintf(err, errlen, "the library returned a %dx%dx%d image for a %dx%dx3 input", res.width, res.height,
                 res.channels, job->width, job->height);
        ie_image_free(&res);
        return IE_ERR_SHAPE;
    }
    composite(job, res.pixels, out);
    ie_image_free(&res);
    return IE_OK;
}

char *ivp_error_message(ie_status st, const char *what, const char *detail) {
    const char *advice = "";
    switch (st) {
        case IE_ERR_NOMEM: advice = " Out of memory: try a smaller selection, or set device to cpu."; break;
        case IE_ERR_NODEVICE:
        case IE_ERR_DEVICE: advice = " Set device to cpu to run without Vulkan."; break;
        case IE_ERR_IO:
        case IE_ERR_FORMAT:
            advice = " The model must be a Stable Diffusion 1.x diffusers folder or a .safetensors checkpoint.";
            if (detail && g_str_has_prefix(detail, "LoRA ")) advice = " Check the LoRAs setting (SD 1.x LoRA files).";
            if (detail && g_str_has_prefix(detail, "VAE "))
                advice = " Check the VAE setting (an SD 1.x VAE file or folder).";
            break;
        case IE_ERR_CANCELLED: advice = ""; break;
        default: break;
    }
    const char *d = detail && *detail ? detail : "failed";
    size_t n = strlen(d);
    return g_strdup_printf("%s: %s%s%s", what, d, n && d[n - 1] == '.' ? "" : ".", advice);
}

/* --- the run, before and after the pixels ------------------------------------------ */

ie_status ivp_settings_check(const ivp_settings *s, const char **model, char **msg) {
    char err[512] = "";
    *model = NULL;
    if (ie_edit_params_validate(&s->params, err, sizeof err) != IE_OK) {
        *msg = g_strdup(err);
        return IE_ERR_ARG;
    }
    if (!(*model = ivp_settings_model_path(s, err, sizeof err))) {
        *msg = g_strdup(err);
        return IE_ERR_IO;
    }
    return IE_OK;
}

ie_status ivp_session_open(const ivp_settings *s, const char *model, bool interactive, ie_session **session, char **msg,
                           char **note_box) {
    char err[512] = "";
    *session = NULL;
    *note_box = NULL;
    ie_session_options so = ie_session_options_from_params(&s->params);
    ie_status st = ie_session_open_with(model, &so, session, err, sizeof err);
    if (st != IE_OK) {
        *msg = ivp_error_message(st, "Could not open the model", err);
        return st;
    }
    const char *note = ie_session_note(*session);
    if (note && *note) {
        char *m = g_strdup_printf("invedit: %s (%s)", note, ie_session_device(*session));
        g_printerr("%s\n", m);
        /* The CPU fallback: a message box only when Vulkan was asked for by name. */
        if (interactive && g_str_has_prefix(s->params.device, "vulkan")) *note_box = m;
        else g_free(m);
    }
    return IE_OK;
}

char *ivp_result_layer_name(const ivp_settings *s) {
    const char *prompt = s->params.target_prompt;
    return g_strdup_printf("Diffusion edit: %.40s", prompt && *prompt ? prompt : "result");
}
