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

static void usage(FILE *f) {
    fprintf(f, "usage: invedit info --model PATH [--vae PATH] [--lora FILE[:SCALE]]... [--ema auto|yes|no]\n\n"
               "Says which tokenizer, text encoder, UNet and VAE a model path provides (files, naming,\n"
               "dtypes), which EMA weights are used, and what each LoRA adapts; then checks every tensor.\n");
}

int cmd_info(int argc, char **argv) {
    const char *model = NULL, *vae = NULL, *ema = "auto";
    GString *loras = g_string_new(NULL);
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
    if (!model) { /* a bad --ema comes back from ie_model_describe as IE_ERR_ARG (exit 2) */
        fprintf(stderr, "invedit info: --model PATH is required\n");
        g_string_free(loras, TRUE);
        return 2;
    }
    ie_session_options so = {NULL, vae, loras->str, ema};
    char err[2048] = "", *text = NULL;
    ie_status st = ie_model_describe(model, &so, &text, err, sizeof err);
    g_string_free(loras, TRUE);
    if (!text) { /* the model could not be opened at all */
        fprintf(stderr, "invedit info: %s\n", err);
        return cli_exit_code(st);
    }
    fputs(text, stdout);
    ie_free(text);
    return cli_exit_code(st);
}
