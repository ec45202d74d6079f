/* TEST-ONLY stand-in for the invedit library's session and edit entry points
 * (include/invedit.h), linked into the invedit-fake-gimp2/-gimp3 plug-ins that the GIMP batch
 * tests install to check the plug-in's plumbing without a model: regions,
 * selection masks, alpha, grayscale, 16-bit, progress, cancel and errors.
 * It is never part of the shipped plug-in (tests/gimp/meson.build builds it only
 * as a non-installed test target).
 *
 * The "edit" is exact: out = 1 - in on every channel but alpha, weighted by
 * min(1, 2 region) when a region (selection) is given (the library's
 * contract), so a test can predict every output pixel. Knobs for the tests:
 *   - a model path that does not exist     -> IE_ERR_IO (bad model folder)
 *   - device "vulkan"                      -> opens on the "CPU" with a note (fallback message)
 *   - target prompt "fake:nomem"           -> IE_ERR_NOMEM from ie_edit
 *   - INVEDIT_FAKE_STEP_MS=N               -> sleep N ms per step (slow edits for cancel tests)
 *   - INVEDIT_FAKE_LOG=path                -> append one line per ie_edit call (the region size)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <invedit.h>

struct ie_session {
    char note[160];
    char device[32];
};

ie_status ie_image_alloc(ie_image *img, int width, int height, int channels) {
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->pixels = calloc((size_t)width * height * channels, sizeof(float));
    return img->pixels ? IE_OK : IE_ERR_NOMEM;
}

void ie_image_free(ie_image *img) {
    if (!img) return;
    free(img->pixels);
    img->pixels = NULL;
}

ie_status ie_session_open(const char *model_path, const char *device, ie_session **out, char *err, size_t errlen) {
    struct stat st;
    *out = NULL;
    if (!model_path || stat(model_path, &st) != 0) {
        snprintf(err, errlen, "cannot open model '%s': no such file or folder", model_path ? model_path : "");
        return IE_ERR_IO;
    }
    ie_session *s = calloc(1, sizeof *s);
    if (!s) return IE_ERR_NOMEM;
    snprintf(s->device, sizeof s->device, "fake CPU");
    if (device && !strncmp(device, "vulkan", 6))
        snprintf(s->note, sizeof s->note, "no usable Vulkan device (fake library), using the CPU");
    *out = s;
    return IE_OK;
}

ie_status ie_session_open_with(const char *model_path, const ie_session_options *opt, ie_session **out, char *err,
                               size_t errlen) {
    return ie_session_open(model_path, opt ? opt->device : NULL, out, err, errlen);
}

void ie_session_close(ie_session *s) { free(s); }
const char *ie_session_device(const ie_session *s) { return s->device; }
const char *ie_session_note(const ie_session *s) { return s->note; }
int ie_session_size_multiple(const ie_session *s) {
    (void)s;
    return 8;
}
int ie_session_native_size(const ie_session *s) {
    (void)s;
    return 64;
}
bool ie_session_last_cached(const ie_session *s) {
    (void)s;
    return false;
}

ie_status ie_edit(ie_session *s, const ie_edit_params *p, const ie_image *in, ie_image *out,
                  ie_edit_progress_fn progress, void *user, char *err, size_t errlen) {
    return ie_edit_ex(s, p, in, out, NULL, progress, user, err, errlen);
}

/* The fake changes every pixel: its change mask is 1 everywhere, the unmasked
 * edit equals the edit. */
ie_status ie_edit_ex(ie_session *s, const ie_edit_params *p, const ie_image *in, ie_image *out,
                     const ie_edit_extras *extras, ie_edit_progress_fn progress, void *user, char *err, size_t errlen) {
    (void)s;
    ie_status st = ie_edit_params_validate(p, err, errlen);
    if (st != IE_OK) return st;
    if (in->channels != 3 && in->channels != 4) {
        snprintf(err, errlen, "fake: %d channels", in->channels);
        return IE_ERR_ARG;
    }
    if (p->target_prompt && !strcmp(p->target_prompt, "fake:nomem")) {
        snprintf(err, errlen, "fake: no memory for a %dx%d image", in->width, in->height);
        return IE_ERR_NOMEM;
    }
    const char *log = getenv("INVEDIT_FAKE_LOG");
    if (log) {
        FILE *f = fopen(log, "a");
        if (f) {
            fprintf(f, "ie_edit %dx%dx%d method=%s target='%s'\n", in->width, in->height, in->channels,
                    ie_method_name(p->method), p->target_prompt);
            fclose(f);
        }
    }
    const char *ms = getenv("INVEDIT_FAKE_STEP_MS");
    long step_ms = ms ? atol(ms) : 0;
    int n = p->steps > 0 ? p->steps : 15;
    char text[64];
    for (int i = 0; i < n; i++) {
        if (step_ms > 0) {
            struct timespec ts = {step_ms / 1000, (step_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        snprintf(text, sizeof text, "editing %d/%d", i + 1, n);
        if (progress && !progress(user, (double)(i + 1) / n, text)) {
            snprintf(err, errlen, "cancelled");
            return IE_ERR_CANCELLED;
        }
    }
    st = ie_image_alloc(out, in->width, in->height, in->channels);
    if (st != IE_OK) return st;
    size_t npx = (size_t)in->width * in->height;
    for (size_t i = 0; i < npx; i++) {
        /* the library's region contract: the edit applies with weight min(1, 2 region) */
        float w = 1.0f;
        if (extras && extras->region)
            w = extras->region[i] > 0.5f ? 1.0f : extras->region[i] > 0 ? 2 * extras->region[i] : 0.0f;
        for (int c = 0; c < in->channels; c++) {
            float v = in->pixels[i * in->channels + c];
            out->pixels[i * in->channels + c] = c >= 3 || w == 0 ? v : w == 1 ? 1.0f - v : v + w * ((1.0f - v) - v);
        }
    }
    if (extras && extras->mask) {
        if (ie_image_alloc(extras->mask, in->width, in->height, 1) != IE_OK) return IE_ERR_NOMEM;
        for (size_t i = 0; i < npx; i++)
            extras->mask->pixels[i] = !extras->region            ? 1.0f
                                      : extras->region[i] > 0.5f ? 1.0f
                                      : extras->region[i] > 0    ? 2 * extras->region[i]
                                                                 : 0.0f;
    }
    if (extras && extras->unmasked) {
        if (ie_image_alloc(extras->unmasked, in->width, in->height, in->channels) != IE_OK) return IE_ERR_NOMEM;
        for (size_t i = 0; i < npx; i++)
            for (int c = 0; c < in->channels; c++) {
                float v = in->pixels[i * in->channels + c];
                extras->unmasked->pixels[i * in->channels + c] = c < 3 ? 1.0f - v : v;
            }
    }
    return IE_OK;
}
