/* Edit parameters: defaults per method and the one table that the CLI, the
 * GIMP procedures and the dialog are generated from. */
#include <invedit.h>

#include <errno.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const method_names[IE_METHOD_COUNT] = {"ef-ddpm", "bdia", "infedit"};

const char *ie_method_name(ie_method m) { return (unsigned)m < IE_METHOD_COUNT ? method_names[m] : "?"; }

bool ie_method_from_name(const char *s, ie_method *out) {
    for (int i = 0; i < IE_METHOD_COUNT; i++)
        if (s && !strcasecmp(s, method_names[i])) {
            *out = (ie_method)i;
            return true;
        }
    return false;
}

void ie_edit_params_init(ie_edit_params *p, ie_method m) {
    memset(p, 0, sizeof *p);
    p->method = m;
    p->source_prompt = "";
    p->target_prompt = "";
    p->negative_prompt = "";
    p->blend_words = "";
    p->keep_words = "";
    p->device = "auto";
    p->vae = "";
    p->lora = "";
    p->ema = "auto";
    p->composite = "keep-detail";
    p->change_threshold = 0.1;
    p->work_size = 0;
    p->seed = 0;
    p->eta = 1.0;
    p->gamma = 0.94;
    p->blend_threshold = 0.6;
    p->keep_threshold = 0.6;
    switch (m) {
        case IE_METHOD_EF_DDPM: /* main_run.py defaults: N=100, skip=36, cfg 3.5 / 15, P2P xa 0.6 sa 0.2 */
            p->steps = 100;
            p->strength = 0.64;
            p->cfg_source = 3.5;
            p->cfg_target = 15.0;
            p->cross_replace = 0.6;
            p->self_replace = 0.2;
            break;
        case IE_METHOD_BDIA: /* BDIA_editing: N=50, strength 0.8, cfg 3; gamma 0.94 (the notebook);
                            with use_p2p our P2P's fractions of the generation steps */
            p->steps = 50;
            p->strength = 0.8;
            p->cfg_source = 3.0;
            p->cfg_target = 3.0;
            p->cross_replace = 0.6;
            p->self_replace = 0.2;
            break;
        case IE_METHOD_INFEDIT: /* app_infedit.py demo column */
        default:
            p->method = IE_METHOD_INFEDIT;
            p->steps = 15;
            p->strength = 1.0;
            p->cfg_source = 1.0;
            p->cfg_target = 2.0;
            p->cross_replace = 0.7;
            p->self_replace = 0.3;
            break;
    }
}

#define OFF(f) offsetof(ie_edit_params, f)
#define FOR_EF IE_FOR(IE_METHOD_EF_DDPM)
#define FOR_BDIA IE_FOR(IE_METHOD_BDIA)
#define FOR_INFEDIT IE_FOR(IE_METHOD_INFEDIT)

static const ie_param_desc table[] = {
    {"method", "Method", "ef-ddpm (edit-friendly DDPM), bdia (exact inversion) or infedit (few steps)", IE_PARAM_METHOD,
     OFF(method), 0, IE_METHOD_COUNT - 1, IE_FOR_ALL, false},
    {"source-prompt", "Source prompt", "Describes the image as it is", IE_PARAM_STRING, OFF(source_prompt), 0, 0,
     IE_FOR_ALL, false},
    {"target-prompt", "Target prompt", "Describes the image as it should become", IE_PARAM_STRING, OFF(target_prompt),
     0, 0, IE_FOR_ALL, false},
    {"negative-prompt", "Negative prompt", "What to steer away from (the unconditional prompt)", IE_PARAM_STRING,
     OFF(negative_prompt), 0, 0, IE_FOR_ALL, true},
    {"steps", "Steps", "Diffusion steps (0: the method's default)", IE_PARAM_INT, OFF(steps), 0, 1000, IE_FOR_ALL,
     false},
    {"strength", "Strength", "How much of the diffusion is re-generated (EF-DDPM: 1 - skip/steps)", IE_PARAM_DOUBLE,
     OFF(strength), 0.01, 1.0, IE_FOR_ALL, false},
    {"cfg-source", "Source guidance", "Classifier-free guidance scale for the source prompt", IE_PARAM_DOUBLE,
     OFF(cfg_source), 0.0, 30.0, IE_FOR_ALL, true},
    {"cfg-target", "Target guidance", "Classifier-free guidance scale for the target prompt", IE_PARAM_DOUBLE,
     OFF(cfg_target), 0.0, 30.0, IE_FOR_ALL, false},
    {"seed", "Seed", "Noise seed: the same seed and inputs give the same result", IE_PARAM_INT, OFF(seed), 0,
     2147483647.0, IE_FOR_ALL, false},
    {"gamma", "Gamma", "BDIA's gamma (0.92-1 for editing; 1 is the symmetric leapfrog)", IE_PARAM_DOUBLE, OFF(gamma),
     0.05, 1.0, FOR_BDIA, true},
    {"eta", "Eta", "Noise level of the stochastic steps (EF-DDPM, InfEdit's DDCM)", IE_PARAM_DOUBLE, OFF(eta), 0.0, 1.0,
     FOR_EF | FOR_INFEDIT, true},
    {"keep-z1", "Keep last noise map", "EF-DDPM: keep z1 for an exact reconstruction (the authors zero it)",
     IE_PARAM_BOOL, OFF(keep_z1), 0, 1, FOR_EF, true},
    {"prompt-to-prompt", "Prompt-to-Prompt", "EF-DDPM, BDIA: add Prompt-to-Prompt attention control", IE_PARAM_BOOL,
     OFF(prompt_to_prompt), 0, 1, FOR_EF | FOR_BDIA, true},
    {"shift-x", "Shift right",
     "EF-DDPM: move the content right through the noise maps (fraction of the width; the model fills the gap)",
     IE_PARAM_DOUBLE, OFF(shift_x), -0.5, 0.5, FOR_EF, true},
    {"shift-y", "Shift down", "EF-DDPM: move the content down through the noise maps (fraction of the height)",
     IE_PARAM_DOUBLE, OFF(shift_y), -0.5, 0.5, FOR_EF, true},
    {"cross-replace", "Cross-attention steps", "Fraction of steps with cross-attention control", IE_PARAM_DOUBLE,
     OFF(cross_replace), 0.0, 1.0, FOR_EF | FOR_BDIA | FOR_INFEDIT, true},
    {"self-replace", "Self-attention steps", "Fraction of steps with self-attention control", IE_PARAM_DOUBLE,
     OFF(self_replace), 0.0, 1.0, FOR_EF | FOR_BDIA | FOR_INFEDIT, true},
    {"blend-words", "Edit words", "InfEdit: target words whose region may change (local blend)", IE_PARAM_STRING,
     OFF(blend_words), 0, 0, FOR_INFEDIT, false},
    {"keep-words", "Keep words", "InfEdit: source words whose region must stay as it is", IE_PARAM_STRING,
     OFF(keep_words), 0, 0, FOR_INFEDIT, true},
    {"blend-threshold", "Edit threshold", "InfEdit: attention threshold of the edit region", IE_PARAM_DOUBLE,
     OFF(blend_threshold), 0.0, 1.0, FOR_INFEDIT, true},
    {"keep-threshold", "Keep threshold", "InfEdit: attention threshold of the kept region", IE_PARAM_DOUBLE,
     OFF(keep_threshold), 0.0, 1.0, FOR_INFEDIT, true},
    {"device", "Device", "auto, cpu, vulkan or vulkan:N", IE_PARAM_STRING, OFF(device), 0, 0, IE_FOR_ALL, true},
    {"vae", "VAE", "A separate VAE (.safetensors or a diffusers vae folder) instead of the model's", IE_PARAM_STRING,
     OFF(vae), 0, 0, IE_FOR_ALL, true},
    {"lora", "LoRAs", "LoRA files merged into the model: FILE[:SCALE], several separated by ';' (CLI: repeat --lora)",
     IE_PARAM_STRING, OFF(lora), 0, 0, IE_FOR_ALL, true},
    {"ema", "EMA weights", "A checkpoint's EMA copy: auto (the trained weights when both exist), yes or no",
     IE_PARAM_STRING, OFF(ema), 0, 0, IE_FOR_ALL, true},
    /* full-resolution compositing (edit/composite.h) */
    {"composite", "Keep unchanged pixels",
     "keep-detail: unchanged pixels stay the input's, changed ones keep its fine detail; replace-region: "
     "changed region replaced by the edit; off: the whole image is the model's render",
     IE_PARAM_STRING, OFF(composite), 0, 0, IE_FOR_ALL, false},
    {"change-threshold", "Change threshold", "Colour change (0..1) at which a pixel counts as edited (soft; 0: 0.1)",
     IE_PARAM_DOUBLE, OFF(change_threshold), 0.0, 1.0, IE_FOR_ALL, true},
    {"work-size", "Working size",
     "Longer side the model works at in pixels (0: the model's native size; "
     "larger keeps more detail, costs memory and time)",
     IE_PARAM_INT, OFF(work_size), 0, 4096, IE_FOR_ALL, true},
    /* memory (issue 10) */
    {"fp32", "Full-precision weights",
     "Keep the network weights in fp32 (twice the memory; by default they are stored in fp16 and computed in fp32)",
     IE_PARAM_BOOL, OFF(fp32), 0, 1, IE_FOR_ALL, true},
    {"no-cache", "Don't cache the inversion",
     "Neither reuse nor keep the inversion (the cache in ~/.cache/invedit lets a new target skip it)", IE_PARAM_BOOL,
     OFF(no_cache), 0, 1, IE_FOR_ALL, true},
};

const char *ie_method_description(ie_method m) {
    switch (m) {
        case IE_METHOD_EF_DDPM:
            return "Edit-friendly DDPM inversion: noise maps that rebuild the photo carry its structure into the edit "
                   "(100 steps; can move content with Shift)";
        case IE_METHOD_BDIA:
            return "BDIA: exact bi-directional DDIM inversion (the round trip gives the photo back); "
                   "Gamma sets the integration (50 steps)";
        case IE_METHOD_INFEDIT:
            return "InfEdit: no inversion, few steps; edits the words in Edit words and keeps the rest "
                   "through attention control (15 steps)";
        default: return "";
    }
}

bool ie_edit_param_applies(const ie_param_desc *d, ie_method m, bool prompt_to_prompt) {
    if (!(d->methods & IE_FOR(m))) return false;
    /* attention control for EF-DDPM and BDIA is Prompt-to-Prompt's */
    if ((d->offset == OFF(cross_replace) || d->offset == OFF(self_replace)) && m != IE_METHOD_INFEDIT)
        return prompt_to_prompt;
    return true;
}

const ie_param_desc *ie_edit_param_table(size_t *count) {
    if (count) *count = sizeof table / sizeof table[0];
    return table;
}

const ie_param_desc *ie_edit_param_find(const char *name) {
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(table[i].name, name)) return &table[i];
    return NULL;
}

/* Defaults independent of the method: InfEdit's (the default method). */
double ie_edit_param_default_number(const ie_param_desc *d) {
    ie_edit_params p;
    ie_edit_params_init(&p, IE_METHOD_INFEDIT);
    const char *base = (const char *)&p;
    switch (d->type) {
        case IE_PARAM_INT:
            if (d->offset == OFF(seed)) return (double)p.seed;
            return (double)*(const int *)(base + d->offset);
        case IE_PARAM_DOUBLE: return *(const double *)(base + d->offset);
        case IE_PARAM_BOOL: return *(const bool *)(base + d->offset) ? 1 : 0;
        case IE_PARAM_METHOD: return (double)p.method;
        case IE_PARAM_STRING: return 0;
    }
    return 0;
}

const char *ie_edit_param_default_string(const ie_param_desc *d) {
    if (d->type != IE_PARAM_STRING) return NULL;
    if (d->offset == OFF(device) || d->offset == OFF(ema)) return "auto";
    if (d->offset == OFF(composite)) return "keep-detail";
    return "";
}

ie_status ie_edit_param_set(ie_edit_params *p, const ie_param_desc *d, const char *value, char *err, size_t errlen) {
    char *base = (char *)p;
    char *end = NULL;
    if (!value) {
        snprintf(err, errlen, "--%s needs a value", d->name);
        return IE_ERR_ARG;
    }
    switch (d->type) {
        case IE_PARAM_STRING: *(const char **)(base + d->offset) = value; return IE_OK;
        case IE_PARAM_METHOD: {
            ie_method m;
            if (!ie_method_from_name(value, &m)) {
                snprintf(err, errlen, "--%s: unknown method '%s' (ef-ddpm, bdia or infedit)", d->name, value);
                return IE_ERR_ARG;
            }
            *(ie_method *)(base + d->offset) = m;
            return IE_OK;
        }
        case IE_PARAM_BOOL:
            if (!strcasecmp(value, "1") || !strcasecmp(value, "yes") || !strcasecmp(value, "true") ||
                !strcasecmp(value, "on")) {
                *(bool *)(base + d->offset) = true;
            } else if (!strcasecmp(value, "0") || !strcasecmp(value, "no") || !strcasecmp(value, "false") ||
                       !strcasecmp(value, "off")) {
                *(bool *)(base + d->offset) = false;
            } else {
                snprintf(err, errlen, "--%s: expected yes or no, got '%s'", d->name, value);
                return IE_ERR_ARG;
            }
            return IE_OK;
        case IE_PARAM_INT:
        case IE_PARAM_DOUBLE: {
            errno = 0;
            double v = g_ascii_strtod(value, &end); /* "0.5" whatever the locale (GIMP sets LC_NUMERIC) */
            if (end == value || *end || errno || !isfinite(v)) {
                snprintf(err, errlen, "--%s: '%s' is not a number", d->name, value);
                return IE_ERR_ARG;
            }
            if (d->type == IE_PARAM_INT && v != floor(v)) {
                snprintf(err, errlen, "--%s: '%s' is not a whole number", d->name, value);
                return IE_ERR_ARG;
            }
            if (v < d->min || v > d->max) {
                snprintf(err, errlen, "--%s: %s is outside %g..%g", d->name, value, d->min, d->max);
                return IE_ERR_ARG;
            }
            if (d->type == IE_PARAM_DOUBLE) *(double *)(base + d->offset) = v;
            else if (d->offset == OFF(seed)) p->seed = (int64_t)v;
            else *(int *)(base + d->offset) = (int)v;
            return IE_OK;
        }
    }
    return IE_ERR_ARG;
}

ie_status ie_edit_params_validate(const ie_edit_params *p, char *err, size_t errlen) {
    if ((unsigned)p->method >= IE_METHOD_COUNT) {
        snprintf(err, errlen, "method: unknown method %d", (int)p->method);
        return IE_ERR_ARG;
    }
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    const char *base = (const char *)p;
    for (size_t i = 0; i < n; i++) {
        const ie_param_desc *d = &t[i];
        double v;
        if (d->type == IE_PARAM_DOUBLE) v = *(const double *)(base + d->offset);
        else if (d->type == IE_PARAM_INT)
            v = d->offset == OFF(seed) ? (double)p->seed : *(const int *)(base + d->offset);
        else continue;
        if (!(v >= d->min && v <= d->max)) {
            snprintf(err, errlen, "%s: %g is outside %g..%g", d->name, v, d->min, d->max);
            return IE_ERR_ARG;
        }
    }
    if (p->ema && *p->ema) {
        static const char *const ok[] = {"auto", "yes", "no", "on", "off", "true", "false", "1", "0"};
        bool found = false;
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) found |= !strcasecmp(p->ema, ok[i]);
        if (!found) {
            snprintf(err, errlen, "ema: '%s' is not auto, yes or no", p->ema);
            return IE_ERR_ARG;
        }
    }
    if (!p->target_prompt || !p->source_prompt || !p->negative_prompt) {
        snprintf(err, errlen, "source-prompt, target-prompt and negative-prompt must be set (\"\" is allowed)");
        return IE_ERR_ARG;
    }
    /* Per-method limits narrower than the table's (the help lists them too). */
    if (p->method == IE_METHOD_INFEDIT && p->steps > IE_INFEDIT_MAX_STEPS) {
        snprintf(err, errlen, "steps: infedit takes at most %d steps (it samples on a %d-step grid), not %d",
                 IE_INFEDIT_MAX_STEPS, IE_INFEDIT_MAX_STEPS, p->steps);
        return IE_ERR_ARG;
    }
    if (p->method == IE_METHOD_EF_DDPM && !(p->eta > 0)) {
        snprintf(err, errlen,
                 "eta: ef-ddpm needs eta above 0 (0..1 excluding 0; eta 0 would be DDIM inversion, "
                 "use --method bdia for that)");
        return IE_ERR_ARG;
    }
    if (p->composite && *p->composite && strcmp(p->composite, "keep-detail") &&
        strcmp(p->composite, "replace-region") && strcmp(p->composite, "off")) {
        snprintf(err, errlen, "composite: '%s' is not keep-detail, replace-region or off", p->composite);
        return IE_ERR_ARG;
    }
    if (p->method == IE_METHOD_EF_DDPM && p->steps > 0 && (int)lround(p->steps * (1.0 - p->strength)) >= p->steps) {
        snprintf(err, errlen, "strength: %g leaves no step to edit with %d steps", p->strength, p->steps);
        return IE_ERR_ARG;
    }
    return IE_OK;
}

ie_session_options ie_session_options_from_params(const ie_edit_params *p) {
    ie_session_options o = {p->device, p->vae, p->lora, p->ema};
    return o;
}
