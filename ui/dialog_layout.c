/* The dialogs' layout, built from the parameter table (dialog_layout.h). */
#include "ui/dialog_layout.h"

#include <stddef.h>
#include <string.h>

#include <glib.h>

#include "plugin/core.h" /* names, labels and help of the plug-in's own arguments */

static ivp_ui_item *items;
static size_t n_items;
static size_t section_first[IVP_UI_SECTION_COUNT + 1];

/* A slider is useless over a range this wide: a spin button alone. */
#define SLIDER_MAX_RANGE 10000.0
#define WIDE_ENTRY_CHARS 40
#define ENTRY_CHARS 24
#define MODEL_ENTRY_CHARS 32

static ivp_ui_item param_item(const ie_param_desc *d) {
    ivp_ui_item it = {
        d->name, d->nick, d->blurb, IVP_UI_ENTRY, d->advanced ? IVP_UI_SECTION_ADVANCED : IVP_UI_SECTION_BASIC, d, 0,
        0,       0,       0,        false};
    double range = d->max - d->min;
    switch (d->type) {
        case IE_PARAM_STRING:
            /* prompts are sentences: a wide entry */
            it.width_chars = strstr(d->name, "prompt") ? WIDE_ENTRY_CHARS : ENTRY_CHARS;
            break;
        case IE_PARAM_METHOD:
            it.kind = IVP_UI_CHOICE;
            it.refreshes_sensitivity = true;
            break;
        case IE_PARAM_BOOL:
            it.kind = IVP_UI_CHECK;
            /* EF-DDPM's and BDIA's attention-control fractions apply only with it */
            it.refreshes_sensitivity = d->offset == offsetof(ie_edit_params, prompt_to_prompt);
            break;
        case IE_PARAM_INT:
            it.kind = range > SLIDER_MAX_RANGE ? IVP_UI_SPIN : IVP_UI_SCALE;
            it.step = 1;
            it.page = range > 100 ? 10 : 1;
            it.digits = 0;
            break;
        case IE_PARAM_DOUBLE:
            it.kind = range > SLIDER_MAX_RANGE ? IVP_UI_SPIN : IVP_UI_SCALE;
            it.step = range <= 2 ? 0.01 : 0.1;
            it.page = range <= 2 ? 0.1 : 1;
            it.digits = 2;
            break;
    }
    return it;
}

static void build(void) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    items = g_new0(ivp_ui_item, n + 3); /* + model-path, output, the method's description */
    size_t k = 0;

    section_first[IVP_UI_SECTION_MODEL] = k;
    /* a path: wide, less the folder chooser beside it */
    items[k++] = (ivp_ui_item){
        IVP_ARG_MODEL_PATH, IVP_MODEL_NICK, IVP_MODEL_BLURB, IVP_UI_ENTRY, IVP_UI_SECTION_MODEL, NULL, 0, 0, 0,
        MODEL_ENTRY_CHARS,  false};

    section_first[IVP_UI_SECTION_BASIC] = k;
    for (size_t i = 0; i < n; i++) {
        if (t[i].advanced) continue;
        items[k++] = param_item(&t[i]);
        if (t[i].type == IE_PARAM_METHOD)
            items[k++] = (ivp_ui_item){
                IVP_UI_DESCRIPTION_ID, "", NULL, IVP_UI_DESCRIPTION, IVP_UI_SECTION_BASIC, NULL, 0, 0, 0, 0, false};
    }

    section_first[IVP_UI_SECTION_OUTPUT] = k;
    items[k++] = (ivp_ui_item){
        IVP_ARG_OUTPUT, IVP_OUTPUT_NICK, IVP_OUTPUT_BLURB, IVP_UI_CHOICE, IVP_UI_SECTION_OUTPUT, NULL, 0, 0, 0, 0,
        false};

    section_first[IVP_UI_SECTION_ADVANCED] = k;
    for (size_t i = 0; i < n; i++)
        if (t[i].advanced) items[k++] = param_item(&t[i]);

    section_first[IVP_UI_SECTION_COUNT] = k;
    n_items = k;
}

const ivp_ui_item *ivp_ui_layout(size_t *count) {
    static gsize done = 0;
    if (g_once_init_enter(&done)) {
        build();
        g_once_init_leave(&done, 1);
    }
    if (count) *count = n_items;
    return items;
}

const ivp_ui_item *ivp_ui_section_items(ivp_ui_section s, size_t *count) {
    const ivp_ui_item *all = ivp_ui_layout(NULL);
    if ((unsigned)s >= IVP_UI_SECTION_COUNT) {
        *count = 0;
        return all;
    }
    *count = section_first[s + 1] - section_first[s];
    return all + section_first[s];
}

const ivp_ui_item *ivp_ui_find(const char *name) {
    size_t n;
    const ivp_ui_item *all = ivp_ui_layout(&n);
    for (size_t i = 0; i < n; i++)
        if (name && !strcmp(all[i].name, name)) return &all[i];
    return NULL;
}

const char *ivp_ui_section_title(ivp_ui_section s) { return s == IVP_UI_SECTION_ADVANCED ? "_Advanced" : NULL; }

bool ivp_ui_section_folded(ivp_ui_section s) { return s == IVP_UI_SECTION_ADVANCED; }

bool ivp_ui_item_sensitive(const ivp_ui_item *it, ie_method m, bool prompt_to_prompt) {
    return !it->param || ie_edit_param_applies(it->param, m, prompt_to_prompt);
}

const char *ivp_ui_method_label(ie_method m) {
    switch (m) {
        case IE_METHOD_EF_DDPM: return "EF-DDPM (edit-friendly DDPM inversion)";
        case IE_METHOD_BDIA: return "BDIA (exact inversion)";
        case IE_METHOD_INFEDIT: return "InfEdit (few steps)";
        default: return "?";
    }
}
