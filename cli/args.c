/* Option parsing for the editing commands (args.h). */
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *alias(const char *name) {
    if (!strcmp(name, "source")) return "source-prompt";
    if (!strcmp(name, "target")) return "target-prompt";
    if (!strcmp(name, "negative")) return "negative-prompt";
    return name;
}

/* Next word of *s (split on spaces), lower-cased and without punctuation at
 * either end, into w; false at the end. */
static bool next_word(const char **s, char *w, size_t wlen) {
    const char *p = *s;
    while (*p && isspace((unsigned char)*p)) p++;
    if (!*p) return false;
    const char *e = p;
    while (*e && !isspace((unsigned char)*e)) e++;
    *s = e;
    while (p < e && ispunct((unsigned char)*p)) p++;
    while (e > p && ispunct((unsigned char)e[-1])) e--;
    size_t n = (size_t)(e - p) < wlen - 1 ? (size_t)(e - p) : wlen - 1;
    for (size_t i = 0; i < n; i++) w[i] = (char)tolower((unsigned char)p[i]);
    w[n] = 0;
    return true;
}

/* Warns about each word of words that is not a word of prompt: it would
 * select nothing. */
static void check_words(const char *cmd, const char *opt, const char *words, const char *which, const char *prompt) {
    char w[128], pw[128];
    const char *s = words;
    while (next_word(&s, w, sizeof w)) {
        if (!w[0]) continue;
        bool found = false;
        const char *q = prompt ? prompt : "";
        while (!found && next_word(&q, pw, sizeof pw)) found = !strcmp(w, pw);
        if (!found)
            fprintf(stderr, "invedit %s: warning: --%s word '%s' is not in the %s prompt; it selects nothing\n", cmd,
                    opt, w, which);
    }
}

static bool is_bool_word(const char *v) {
    static const char *const w[] = {"1", "0", "yes", "no", "true", "false", "on", "off"};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (!strcasecmp(v, w[i])) return true;
    return false;
}

/* Parses argv into o; returns 0, or an exit code (2) after printing why. */
int cli_parse(int argc, char **argv, cli_opts *o, const char *cmd) {
    ie_method method = IE_METHOD_INFEDIT;
    bool generate = !strcmp(cmd, "generate");
    for (int i = 1; i + 1 < argc; i++) /* the method decides the defaults: find it first */
        if (!strcmp(argv[i], "--method") && !ie_method_from_name(argv[i + 1], &method)) {
            fprintf(stderr, "invedit %s: unknown method '%s' (ef-ddpm, bdia or infedit)\n", cmd, argv[i + 1]);
            return 2;
        }
    if (generate) method = IE_METHOD_BDIA; /* text to image is BDIA-DDIM sampling */
    ie_edit_params_init(&o->p, method);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = true;
            continue;
        }
        if (!strcmp(a, "--no-cache") && !(v && is_bool_word(v))) {
            o->p.no_cache = true;
            continue;
        } /* a flag */
        if (strncmp(a, "--", 2) && strcmp(a, "-o")) {
            fprintf(stderr, "invedit %s: unexpected argument '%s' (see --help)\n", cmd, a);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "invedit %s: %s needs a value\n", cmd, a);
            return 2;
        }
        i++;
        const char *name = alias(a[1] == '-' ? a + 2 : a + 1);
        if (!strcmp(a, "-o") || !strcmp(name, "output")) o->output = v;
        else if (!strcmp(name, "model")) o->model = v;
        else if (!strcmp(name, "image")) o->image = v;
        else if (!strcmp(name, "prompt")) o->prompt = v;
        else if (!strcmp(name, "prompts")) o->prompts_file = v;
        else if (!strcmp(name, "save-input")) o->save_input = v;
        else if (!strcmp(name, "save-reconstruction")) o->save_reconstruction = v;
        else if (!strcmp(name, "save-mask")) o->save_mask = v;
        else if (!strcmp(name, "mask")) o->mask = v;
        else if (!strcmp(name, "width") || !strcmp(name, "height")) {
            char *end = NULL;
            errno = 0;
            long n = strtol(v, &end, 10);
            if (end == v || *end || errno || n < 8 || n > 4096) {
                fprintf(stderr, "invedit %s: --%s: '%s' is not a size in pixels (8..4096)\n", cmd, name, v);
                return 2;
            }
            if (name[0] == 'w') o->width = (int)n;
            else o->height = (int)n;
        } else if (!strcmp(name, "lora")) { /* repeatable: FILE[:SCALE] each time */
            size_t at = strlen(o->lora_list);
            if (at + strlen(v) + 2 > sizeof o->lora_list) {
                fprintf(stderr, "invedit %s: too many --lora options\n", cmd);
                return 2;
            }
            snprintf(o->lora_list + at, sizeof o->lora_list - at, "%s%s", at ? ";" : "", v);
            o->p.lora = o->lora_list;
        } else {
            const ie_param_desc *d = ie_edit_param_find(name);
            if (!d) {
                fprintf(stderr, "invedit %s: unknown option '%s' (see --help)\n", cmd, a);
                return 2;
            }
            if (generate && !strcmp(d->name, "method")) {
                fprintf(stderr, "invedit generate: warning: --method is ignored (generate always samples with "
                                "BDIA-DDIM)\n");
                continue;
            }
            if (!(d->methods & IE_FOR(method)))
                fprintf(stderr, "invedit %s: warning: --%s does not apply to %s; it is ignored\n", cmd, d->name,
                        generate ? "generate" : ie_method_name(method));
            char err[256];
            if (generate && !strcmp(d->name, "gamma")) { /* generate: 0 is plain DDIM */
                char *end = NULL;
                double g = strtod(v, &end);
                if (end != v && !*end && g == 0) {
                    o->p.gamma = 0;
                    continue;
                }
            }
            if (ie_edit_param_set(&o->p, d, v, err, sizeof err)) {
                if (generate && !strcmp(d->name, "gamma"))
                    fprintf(stderr, "invedit %s: --gamma: %s is outside 0 (plain DDIM) or %g..%g\n", cmd, v, d->min,
                            d->max);
                else fprintf(stderr, "invedit %s: %s\n", cmd, err);
                return 2;
            }
            if (!strcmp(d->name, "target-prompt")) {
                if (o->n_targets == CLI_MAX_TARGETS) {
                    fprintf(stderr, "invedit %s: more than %d targets\n", cmd, CLI_MAX_TARGETS);
                    return 2;
                }
                o->targets[o->n_targets++] = v;
            }
        }
    }
    if (method == IE_METHOD_INFEDIT && !strcmp(cmd, "edit")) {
        check_words(cmd, "blend-words", o->p.blend_words, "target", o->p.target_prompt);
        check_words(cmd, "keep-words", o->p.keep_words, "source", o->p.source_prompt);
    }
    if (!o->model) o->model = getenv("INVEDIT_MODEL");
    if (!o->model) {
        fprintf(stderr,
                "invedit %s: --model PATH is required (a diffusers folder or an SD 1.x .safetensors; "
                "or set INVEDIT_MODEL)\n",
                cmd);
        return 2;
    }
    return 0;
}
