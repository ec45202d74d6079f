/* Random SD-shaped models for the benchmarks (random_model.h). */
#include "random_model.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic_file.h"

uint64_t bench_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float bench_rng_sym(uint64_t *s) { return (float)((double)(bench_rng_next(s) >> 11) * 0x1.0p-52 - 1.0); }

float bench_rng_normal(uint64_t *s) {
    double u = ((double)(bench_rng_next(s) >> 11) + 0.5) * 0x1.0p-53;
    double v = (double)(bench_rng_next(s) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

bool bench_write_random(const char *path, const sd_model_config *mc, sd_component comp, uint64_t seed, double *params) {
    sd_tensor_spec *spec = NULL;
    int n = sd_expected_tensors(mc, comp, &spec);
    const size_t pfx = strlen(sd_component_name(comp)) + 1; /* "unet." */
    GString *h = g_string_new("{");
    uint64_t off = 0;
    *params = 0;
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        GString *shape = g_string_new("");
        for (int d = 0; d < spec[i].ndim; d++) {
            numel *= spec[i].shape[d];
            g_string_append_printf(shape, "%s%lld", d ? "," : "", (long long)spec[i].shape[d]);
        }
        g_string_append_printf(h, "%s\"%s\":{\"dtype\":\"F16\",\"shape\":[%s],\"data_offsets\":[%llu,%llu]}",
                               i ? "," : "", spec[i].name + pfx, shape->str, (unsigned long long)off,
                               (unsigned long long)(off + 2 * (uint64_t)numel));
        g_string_free(shape, TRUE);
        off += 2 * (uint64_t)numel;
        *params += (double)numel;
    }
    g_string_append(h, "}");
    while (h->len % 8) g_string_append_c(h, ' ');
    ie_afile af; /* temporary file + rename: an interrupted run leaves no half model */
    bool opened = ie_afile_open(&af, path, NULL, 0);
    FILE *f = opened ? af.fp : NULL;
    bool ok = f != NULL && n > 0;
    uint64_t hl = h->len;
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(hl >> (8 * i));
    ok = ok && fwrite(le, 1, 8, f) == 8 && fwrite(h->str, 1, h->len, f) == h->len;
    enum { CHUNK = 1 << 20 };
    uint16_t *buf = malloc(CHUNK * sizeof *buf);
    ok = ok && buf;
    double fan_in = 1;
    for (int i = 0; ok && i < n; i++) {
        const sd_tensor_spec *s = &spec[i];
        int64_t numel = 1;
        for (int d = 0; d < s->ndim; d++) numel *= s->shape[d];
        bool gamma = false;
        if (s->ndim >= 2) {
            fan_in = (double)(numel / s->shape[0]);
        } else {
            const char *dot = strrchr(s->name, '.');
            gamma = dot && !strcmp(dot, ".weight"); /* a 1-D weight: a norm's gamma */
        }
        const float bound = (float)(1.0 / sqrt(fan_in));
        for (int64_t done = 0; ok && done < numel; done += CHUNK) {
            int64_t m = numel - done < CHUNK ? numel - done : CHUNK;
            for (int64_t k = 0; k < m; k++) {
                float v = gamma ? 1.0f + 0.1f * bench_rng_sym(&seed) : bound * bench_rng_sym(&seed);
                buf[k] = st_float_to_half(v);
            }
            /* little-endian host assumed (x86, ARM): the halves go out as they are */
            ok = fwrite(buf, sizeof *buf, (size_t)m, f) == (size_t)m;
        }
    }
    free(buf);
    if (opened) {
        if (ok) ok = ie_afile_commit(&af, NULL, 0);
        else ie_afile_abort(&af);
    }
    g_string_free(h, TRUE);
    g_free(spec);
    return ok;
}

static bool copy_file(const char *from, const char *to) {
    gchar *data = NULL;
    gsize len = 0;
    bool ok = g_file_get_contents(from, &data, &len, NULL) && g_file_set_contents(to, data, (gssize)len, NULL);
    g_free(data);
    return ok;
}

bool bench_write_random_sd15(const char *dir, const char *tokenizer_dir, uint64_t seed, char *err, size_t errlen) {
    sd_model_config mc;
    memset(&mc, 0, sizeof mc);
    sd_unet_config_default(&mc.unet);
    sd_vae_config_default(&mc.vae);
    sd_clip_text_config_default(&mc.text);
    static const struct {
        sd_component c;
        const char *folder, *file;
    } parts[] = {
        {SD_UNET, "unet", "diffusion_pytorch_model.safetensors"},
        {SD_VAE, "vae", "diffusion_pytorch_model.safetensors"},
        {SD_TEXT_ENCODER, "text_encoder", "model.safetensors"},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        mc.has[parts[i].c] = true;
        char *sub = g_build_filename(dir, parts[i].folder, NULL);
        char *path = g_build_filename(sub, parts[i].file, NULL);
        double params = 0;
        bool ok = g_mkdir_with_parents(sub, 0755) == 0 && bench_write_random(path, &mc, parts[i].c, seed + i, &params);
        if (ok) printf("  %-12s %7.1f M parameters (random, F16)\n", parts[i].folder, params / 1e6);
        else snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        g_free(path);
        g_free(sub);
        if (!ok) return false;
    }
    static const char *tok_files[] = {"vocab.json", "merges.txt"};
    char *tdir = g_build_filename(dir, "tokenizer", NULL);
    bool ok = g_mkdir_with_parents(tdir, 0755) == 0;
    for (size_t i = 0; ok && i < 2; i++) {
        char *from = g_build_filename(tokenizer_dir, tok_files[i], NULL),
             *to = g_build_filename(tdir, tok_files[i], NULL);
        ok = copy_file(from, to);
        if (!ok) snprintf(err, errlen, "cannot copy %s to %s", from, to);
        g_free(from);
        g_free(to);
    }
    g_free(tdir);
    return ok;
}
