/* Option parsing for the editing commands (args.h). */
#include "args.h"

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

static bool is_bool_word(const char *v) {
    static const char *const w[] = {"1", "0", "yes", "no", "true", "false", "on", "off"};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (!strcasecmp(v, w[i])) return true;
    return false;
}

/* Parses argv into o; returns 0, or an exit code (2) after printing why. */
int cli_parse(int argc, char **argv, cli_opts *o, const char *cmd) {
    ie_method method = IE_METHOD_INFEDIT;
    for (int i = 1; i + 1 < argc; i++) /* the method decides the defaults: find it first */
        if (!strcmp(argv[i], "--method") && !ie_method_from_name(argv[i + 1], &method)) {
            fprintf(stderr, "invedit %s: unknown method '%s' (ef-ddpm, bdia or infedit)\n", cmd, argv[i + 1]);
            return 2;
        }
    ie_edit_params_init(&o->p, method);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { o->quiet = true; continue; }
        if (!strcmp(a, "--no-cache") && !(v && is_bool_word(v))) { o->p.no_cache = true; continue; } /* a flag */
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
        }
        else {
            const ie_param_desc *d = ie_edit_param_find(name);
            if (!d) {
                fprintf(stderr, "invedit %s: unknown option '%s' (see --help)\n", cmd, a);
                return 2;
            }
            char err[256];
            if (ie_edit_param_set(&o->p, d, v, err, sizeof err)) {
                fprintf(stderr, "invedit %s: %s\n", cmd, err);
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
    if (!o->model) o->model = getenv("INVEDIT_MODEL");
    if (!o->model) {
        fprintf(stderr, "invedit %s: --model PATH is required (a diffusers folder or an SD 1.x .safetensors; "
                        "or set INVEDIT_MODEL)\n", cmd);
        return 2;
    }
    return 0;
}

