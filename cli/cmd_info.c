/* invedit info --model PATH [--vae PATH] [--lora FILE[:SCALE]]... [--ema auto|yes|no]
 *
 * What a model path holds, as the loader sees it, without loading any
 * network onto a device: the tokenizer (the model's folder or the built-in
 * CLIP vocabulary), each network's file, naming (diffusers / LDM), tensor
 * count and dtypes, the EMA choice, the VAE source, the LoRAs and what they
 * adapt, skipped tensors, and the full shape check. Exit 0 when the model
 * can be loaded, 3 when not (the problems listed), 2 on bad usage. */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "model/config.h"
#include "model/lora.h"
#include "model/names.h"
#include "model/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: invedit info --model PATH [--vae PATH] [--lora FILE[:SCALE]]... [--ema auto|yes|no]\n\n"
               "Says which tokenizer, text encoder, UNet and VAE a model path provides (files, naming,\n"
               "dtypes), which EMA weights are used, and what each LoRA adapts; then checks every tensor.\n");
}

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
        if (by[d]) at += (size_t)snprintf(buf + at, n - at, "%s%s %d", at ? ", " : "", st_dtype_name((st_dtype)d), by[d]);
}

int cmd_info(int argc, char **argv) {
    const char *model = NULL, *vae = NULL, *ema = "auto";
    GString *loras = g_string_new(NULL);
    int code = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            g_string_free(loras, TRUE);
            return 0;
        }
        if (i + 1 >= argc || strncmp(a, "--", 2)) {
            fprintf(stderr, "invedit info: %s\n", strncmp(a, "--", 2) ? "unexpected argument" : "option needs a value");
            usage(stderr);
            g_string_free(loras, TRUE);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--vae")) vae = v;
        else if (!strcmp(a, "--ema")) ema = v;
        else if (!strcmp(a, "--lora")) g_string_append_printf(loras, "%s%s", loras->len ? ";" : "", v);
        else {
            fprintf(stderr, "invedit info: unknown option '%s'\n", a);
            g_string_free(loras, TRUE);
            return 2;
        }
    }
    if (!model) model = g_getenv("INVEDIT_MODEL");
    sd_source_options so = {.vae = vae};
    if (!model || !sd_ema_mode_from_name(ema, &so.ema)) {
        fprintf(stderr, "invedit info: %s\n", model ? "--ema: auto, yes or no" : "--model PATH is required");
        g_string_free(loras, TRUE);
        return 2;
    }
    char err[2048] = "";
    sd_weights *w = NULL;
    sd_model_config cfg;
    sd_lora_set *lora = NULL;
    clip_tokenizer *tok = NULL;
    ie_status st = sd_weights_open_with(model, &so, &w, err, sizeof err);
    if (!st) st = sd_model_config_load(w, &cfg, err, sizeof err);
    if (st) {
        fprintf(stderr, "invedit info: %s\n", err);
        g_string_free(loras, TRUE);
        sd_weights_close(w);
        return cli_exit_code(st);
    }
    char desc[1024], tsrc[512] = "";
    printf("model: %s (%s)\n", model, sd_weights_layout(w) == SD_LAYOUT_SINGLE_FILE ? "single file" : "diffusers folder");
    printf("architecture: %s\n", sd_model_config_describe(&cfg, desc, sizeof desc));
    ie_status ts = sd_tokenizer_open(w, &cfg, &tok, tsrc, sizeof tsrc, err, sizeof err);
    if (ts) {
        printf("tokenizer: none: %s\n", err);
        code = cli_exit_code(ts);
    } else {
        printf("tokenizer: %s, %d ids\n", tsrc, clip_tokenizer_vocab_size(tok));
    }
    static const sd_component ORDER[] = {SD_TEXT_ENCODER, SD_UNET, SD_VAE};
    for (int k = 0; k < 3; k++) {
        sd_component c = ORDER[k];
        if (!sd_weights_has(w, c)) {
            printf("%s: absent (%s)\n", sd_component_name(c), sd_weights_missing_reason(w, c));
            continue;
        }
        char dt[256];
        int n;
        dtypes_of(w, c, dt, sizeof dt, &n);
        printf("%s: %s, %s names, %d tensors (%s)%s\n", sd_component_name(c), sd_weights_file(w, c),
               sd_weights_naming(w, c), n, dt, c == SD_VAE && vae && *vae ? ", separate VAE (--vae)" : "");
    }
    if (sd_weights_ema_count(w) || *sd_weights_ema_note(w))
        printf("ema: %s\n", sd_weights_ema_note(w));
    else
        printf("ema: no EMA copy in the model\n");
    if (loras->len) {
        lora = sd_lora_set_new();
        ie_status ls = sd_lora_set_add_list(lora, w, loras->str, err, sizeof err);
        if (ls) {
            printf("lora: %s\n", err);
            code = cli_exit_code(ls);
        } else {
            printf("lora: %s\n", sd_lora_set_summary(lora));
        }
    }
    if (sd_weights_unmapped_count(w))
        printf("skipped: %d tensors that are not SD 1.x weights (e.g. %s)\n", sd_weights_unmapped_count(w),
               sd_weights_unmapped_at(w, 0));
    sd_check_report rep;
    ie_status cs = sd_weights_check(w, &cfg, &rep, err, sizeof err);
    if (cs) {
        printf("check: %d problems\n", rep.n_problems);
        for (int i = 0; i < rep.n_problems && i < 20; i++) printf("  %s\n", rep.problems[i]);
        code = cli_exit_code(cs);
    } else {
        printf("check: all %d expected tensors present with their shapes\n", rep.n_expected);
    }
    if (!cs && cfg.variant != SD_VARIANT_SD1) {
        printf("variant: %s: not editable with invedit\n", sd_variant_name(cfg.variant));
        code = 3;
    }
    sd_check_report_free(&rep);
    sd_lora_set_free(lora);
    clip_tokenizer_free(tok);
    sd_weights_close(w);
    g_string_free(loras, TRUE);
    return code;
}
