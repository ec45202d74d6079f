/* Loading the whole SD 1.x model. See sd.h. */
#include "model/sd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The loader's full check (config.h), restricted to the asked components:
 * IE_OK, or IE_ERR_FORMAT with the first problems in err. */
static ie_status check_parts(const sd_weights *w, const sd_model_config *cfg, const bool want[SD_COMPONENT_COUNT],
                             char *err, size_t errlen) {
    sd_check_report rep;
    char tmp[512];
    ie_status s = sd_weights_check(w, cfg, &rep, tmp, sizeof tmp);
    int shown = 0, count = 0;
    size_t off = 0;
    for (int i = 0; s && i < rep.n_problems; i++) {
        const char *p = rep.problems[i];
        bool keep = false;
        for (int c = 0; c < SD_COMPONENT_COUNT; c++) {
            size_t n = strlen(sd_component_name(c));
            keep |= want[c] && !strncmp(p, sd_component_name(c), n) && (p[n] == '.' || p[n] == ':');
        }
        if (!keep) continue;
        count++;
        if (shown < 8 && err && off < errlen) {
            off += (size_t)snprintf(err + off, errlen - off, "%s%s", shown ? "\n  " : "", p);
            shown++;
        }
    }
    if (count > shown && err && off < errlen) snprintf(err + off, errlen - off, "\n  ... (%d more)", count - shown);
    sd_check_report_free(&rep);
    return count ? IE_ERR_FORMAT : IE_OK;
}

ie_status sd_model_load(ie_backend *be, const char *path, const sd_load_options *opt, sd_model **out, char *err,
                        size_t errlen) {
    *out = NULL;
    if (!path || !*path) {
        if (err && errlen)
            snprintf(err, errlen, "no model given: pass a diffusers folder or an SD 1.x .safetensors file");
        return IE_ERR_ARG;
    }
    int parts = opt && opt->parts ? opt->parts : SD_PART_ALL;
    sd_wtype wt = opt ? opt->wtype : SD_WTYPE_AUTO;
    sd_model *m = calloc(1, sizeof *m);
    if (!m) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return IE_ERR_NOMEM;
    }
    char msg[2048] = "";
    sd_weights *w = NULL;
    sd_source_options so = {.vae = opt ? opt->vae : NULL, .ema = opt ? opt->ema : SD_EMA_AUTO};
    sd_lora_set *lora = NULL;
    ie_status s = sd_weights_open_with(path, &so, &w, msg, sizeof msg);
    if (!s) s = sd_model_config_load(w, &m->config, msg, sizeof msg);
    if (!s && m->config.variant != SD_VARIANT_SD1) {
        snprintf(msg, sizeof msg, "%s: a %s model; invedit edits with SD 1.x text-to-image models", path,
                 sd_variant_name(m->config.variant));
        s = IE_ERR_UNSUPPORTED;
    }
    if (!s) {
        bool want[SD_COMPONENT_COUNT] = {false};
        want[SD_TEXT_ENCODER] = parts & SD_PART_TEXT;
        want[SD_UNET] = parts & SD_PART_UNET;
        want[SD_VAE] = parts & (SD_PART_VAE_ENCODER | SD_PART_VAE_DECODER);
        s = check_parts(w, &m->config, want, msg, sizeof msg);
    }
    if (!s && (parts & SD_PART_TOKENIZER))
        s = sd_tokenizer_open(w, &m->config, &m->tokenizer, m->tokenizer_source, sizeof m->tokenizer_source, msg,
                              sizeof msg);
    if (!s && opt && opt->lora && *opt->lora) {
        lora = sd_lora_set_new();
        s = sd_lora_set_add_list(lora, w, opt->lora, msg, sizeof msg);
        if (!s) sd_weights_set_lora(w, lora);
    }
    if (!s && (parts & SD_PART_TEXT)) s = clip_text_model_load(be, w, &m->config.text, wt, &m->text, msg, sizeof msg);
    if (!s && (parts & SD_PART_UNET)) s = unet_load(be, w, &m->config.unet, wt, &m->unet, msg, sizeof msg);
    if (!s && (parts & (SD_PART_VAE_ENCODER | SD_PART_VAE_DECODER))) {
        int vp = (parts & SD_PART_VAE_ENCODER ? VAE_ENCODER : 0) | (parts & SD_PART_VAE_DECODER ? VAE_DECODER : 0);
        s = vae_load(be, w, &m->config.vae, vp, wt, &m->vae, msg, sizeof msg);
    }
    if (!s && opt && opt->keep_weights) {
        m->weights = w;
        m->lora = lora;
    } else {
        sd_weights_close(w); /* every weight now lives on the backend */
        sd_lora_set_free(lora);
    }
    if (s) {
        if (err && errlen) snprintf(err, errlen, "%s", msg);
        sd_model_free(m);
        return s;
    }
    *out = m;
    return IE_OK;
}

void sd_model_free(sd_model *m) {
    if (!m) return;
    clip_tokenizer_free(m->tokenizer);
    clip_text_model_free(m->text);
    unet_free(m->unet);
    vae_free(m->vae);
    sd_weights_close(m->weights);
    sd_lora_set_free(m->lora);
    free(m);
}
