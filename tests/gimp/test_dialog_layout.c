/* Unit test of the dialogs' shared layout (ui/dialog_layout.c) against the
 * library's parameter table: every argument has exactly one item, the
 * sections come in order and hold what they should, parameters keep table
 * order, widget kinds fit the parameter types, and sensitivity is exactly
 * ie_edit_param_applies. No GIMP or toolkit needed. */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "plugin/core.h"
#include "ui/dialog_layout.h"

#include "tests/gimp/check.h"

static size_t count_named(const ivp_ui_item *items, size_t n, const char *name) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += !strcmp(items[i].name, name);
    return c;
}

/* Every argument (table entries, model-path, output) exactly once; the
 * description exactly once, right after the method; nothing else. */
static void test_coverage(const ivp_ui_item *items, size_t n, const ie_param_desc *t, size_t nt) {
    CHECK(n == nt + 3, "%zu items for %zu table entries (+ model-path, output, description)", n, nt);
    for (size_t j = 0; j < nt; j++) {
        CHECK(count_named(items, n, t[j].name) == 1, "%s appears %zu times", t[j].name,
              count_named(items, n, t[j].name));
        const ivp_ui_item *it = ivp_ui_find(t[j].name);
        CHECK(it && it->param == &t[j], "%s: item points at its own table entry", t[j].name);
    }
    CHECK(count_named(items, n, IVP_ARG_MODEL_PATH) == 1, "model-path once");
    CHECK(count_named(items, n, IVP_ARG_OUTPUT) == 1, "output once");
    CHECK(count_named(items, n, IVP_UI_DESCRIPTION_ID) == 1, "description once");
    size_t descriptions = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].kind != IVP_UI_DESCRIPTION) continue;
        descriptions++;
        CHECK(i > 0 && items[i - 1].param && items[i - 1].param->type == IE_PARAM_METHOD,
              "the description follows the method (it follows %s)", i > 0 ? items[i - 1].name : "nothing");
        CHECK(!items[i].param && items[i].section == items[i - 1].section,
              "the description sits in the method's section");
    }
    CHECK(descriptions == 1, "%zu description items", descriptions);
    CHECK(ivp_ui_find("no-such-argument") == NULL && ivp_ui_find(NULL) == NULL, "unknown names are not found");
}

/* Sections in order and contiguous; ivp_ui_section_items agrees with the list;
 * the parameters' sections follow their advanced flag, in table order. */
static void test_sections(const ivp_ui_item *items, size_t n, const ie_param_desc *t, size_t nt) {
    for (size_t i = 1; i < n; i++)
        CHECK(items[i - 1].section <= items[i].section, "%s (section %d) before %s (section %d)", items[i - 1].name,
              (int)items[i - 1].section, items[i].name, (int)items[i].section);
    size_t total = 0;
    for (int s = 0; s < IVP_UI_SECTION_COUNT; s++) {
        size_t c;
        const ivp_ui_item *first = ivp_ui_section_items((ivp_ui_section)s, &c);
        CHECK(c > 0, "section %d is empty", s);
        CHECK(first >= items && first + c <= items + n, "section %d lies inside the list", s);
        for (size_t i = 0; i < c; i++)
            CHECK(first[i].section == (ivp_ui_section)s, "%s in section %d", first[i].name, s);
        CHECK(first == items + total, "section %d starts right after section %d", s, s - 1);
        total += c;
    }
    CHECK(total == n, "the sections hold %zu of %zu items", total, n);

    size_t c;
    const ivp_ui_item *model = ivp_ui_section_items(IVP_UI_SECTION_MODEL, &c);
    CHECK(c == 1 && !strcmp(model[0].name, IVP_ARG_MODEL_PATH), "the model section is the model path");
    const ivp_ui_item *out = ivp_ui_section_items(IVP_UI_SECTION_OUTPUT, &c);
    CHECK(c == 1 && !strcmp(out[0].name, IVP_ARG_OUTPUT), "the output section is the output");
    CHECK(items[0].section == IVP_UI_SECTION_MODEL, "the model path comes first");

    /* table order inside the basic and the advanced section */
    ptrdiff_t last[IVP_UI_SECTION_COUNT];
    for (int s = 0; s < IVP_UI_SECTION_COUNT; s++) last[s] = -1;
    for (size_t i = 0; i < n; i++) {
        const ie_param_desc *d = items[i].param;
        if (!d) continue;
        ivp_ui_section want = d->advanced ? IVP_UI_SECTION_ADVANCED : IVP_UI_SECTION_BASIC;
        CHECK(items[i].section == want, "%s (advanced %d) is in section %d", d->name, d->advanced,
              (int)items[i].section);
        ptrdiff_t idx = d - t;
        CHECK(idx > last[items[i].section], "%s is out of table order", d->name);
        last[items[i].section] = idx;
    }
    (void)nt;

    for (int s = 0; s < IVP_UI_SECTION_COUNT; s++) {
        bool folded = ivp_ui_section_folded((ivp_ui_section)s);
        CHECK(folded == (s == IVP_UI_SECTION_ADVANCED), "section %d folded %d", s, folded);
        /* a folded section needs a heading for its expander, with a mnemonic */
        const char *title = ivp_ui_section_title((ivp_ui_section)s);
        CHECK(!folded || (title && strchr(title, '_')), "folded section %d has title '%s'", s, title ? title : "");
    }
    CHECK(ivp_ui_section_items(IVP_UI_SECTION_COUNT, &c) && c == 0, "no items past the last section");
}

/* Widget kinds fit the types; labels and help are the table's; increments fit the ranges. */
static void test_widgets(const ivp_ui_item *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const ivp_ui_item *it = &items[i];
        const ie_param_desc *d = it->param;
        if (it->kind == IVP_UI_DESCRIPTION) continue;
        CHECK(it->label && *it->label && !strchr(it->label, ':'), "%s: label '%s'", it->name,
              it->label ? it->label : "");
        CHECK(it->tooltip && *it->tooltip, "%s has a tooltip", it->name);
        if (!d) {
            CHECK(!strcmp(it->name, IVP_ARG_MODEL_PATH) ? it->kind == IVP_UI_ENTRY && it->width_chars > 0
                                                        : it->kind == IVP_UI_CHOICE,
                  "%s: kind %d", it->name, (int)it->kind);
            continue;
        }
        CHECK(!strcmp(it->label, d->nick) && !strcmp(it->tooltip, d->blurb), "%s: the table's nick and blurb", d->name);
        switch (d->type) {
            case IE_PARAM_STRING:
                CHECK(it->kind == IVP_UI_ENTRY && it->width_chars > 0, "%s: an entry", d->name);
                break;
            case IE_PARAM_METHOD: CHECK(it->kind == IVP_UI_CHOICE, "%s: a choice", d->name); break;
            case IE_PARAM_BOOL: CHECK(it->kind == IVP_UI_CHECK, "%s: a check button", d->name); break;
            case IE_PARAM_INT:
            case IE_PARAM_DOUBLE: {
                double range = d->max - d->min;
                CHECK(it->kind == (range > 10000 ? IVP_UI_SPIN : IVP_UI_SCALE), "%s: kind %d for range %g", d->name,
                      (int)it->kind, range);
                CHECK(it->step > 0 && it->step <= range && it->page >= it->step && it->page <= range,
                      "%s: step %g page %g for range %g", d->name, it->step, it->page, range);
                CHECK(d->type == IE_PARAM_DOUBLE ? it->digits > 0 : it->digits == 0 && it->step == 1,
                      "%s: digits %d step %g", d->name, it->digits, it->step);
                break;
            }
        }
    }
    /* prompts are wider than the other entries */
    const ivp_ui_item *tp = ivp_ui_find("target-prompt"), *dev = ivp_ui_find("device");
    CHECK(tp && dev && tp->width_chars > dev->width_chars, "the target prompt's entry is wider than the device's");
    /* the method labels: one per method, each naming its method, all different */
    for (int m = 0; m < IE_METHOD_COUNT; m++) {
        const char *l = ivp_ui_method_label((ie_method)m);
        CHECK(l && strcmp(l, "?"), "method %d has a label", m);
        for (int k = 0; k < m; k++)
            CHECK(strcmp(l, ivp_ui_method_label((ie_method)k)), "methods %d and %d share a label", k, m);
    }
    CHECK(g_str_has_prefix(ivp_ui_method_label(IE_METHOD_BDIA), "BDIA") &&
              g_str_has_prefix(ivp_ui_method_label(IE_METHOD_INFEDIT), "InfEdit") &&
              g_str_has_prefix(ivp_ui_method_label(IE_METHOD_EF_DDPM), "EF-DDPM"),
          "method labels start with the method's name");
}

/* Sensitivity is ie_edit_param_applies for every method and Prompt-to-
 * Prompt state; the items marked refreshes_sensitivity are exactly those
 * whose value changes the answer for some other item. */
static void test_sensitivity(const ivp_ui_item *items, size_t n) {
    bool p2p_matters = false, method_matters = false;
    for (size_t i = 0; i < n; i++) {
        const ivp_ui_item *it = &items[i];
        for (int m = 0; m < IE_METHOD_COUNT; m++)
            for (int p = 0; p < 2; p++) {
                bool want = !it->param || ie_edit_param_applies(it->param, (ie_method)m, p);
                CHECK(ivp_ui_item_sensitive(it, (ie_method)m, p) == want, "%s: method %d p2p %d: sensitive %d",
                      it->name, m, p, !want);
                if (it->param && ie_edit_param_applies(it->param, (ie_method)m, true) !=
                                     ie_edit_param_applies(it->param, (ie_method)m, false))
                    p2p_matters = true;
                if (it->param && m > 0 &&
                    ie_edit_param_applies(it->param, (ie_method)m, p) != ie_edit_param_applies(it->param, 0, p))
                    method_matters = true;
            }
    }
    CHECK(p2p_matters && method_matters, "the table has parameters for one method only, and P2P-only ones");
    for (size_t i = 0; i < n; i++) {
        const ie_param_desc *d = items[i].param;
        bool want = d && (d->type == IE_PARAM_METHOD || d->offset == offsetof(ie_edit_params, prompt_to_prompt));
        CHECK(items[i].refreshes_sensitivity == want, "%s: refreshes_sensitivity %d", items[i].name,
              items[i].refreshes_sensitivity);
    }
}

int main(void) {
    size_t n, nt;
    const ivp_ui_item *items = ivp_ui_layout(&n);
    const ie_param_desc *t = ie_edit_param_table(&nt);
    CHECK(items && ivp_ui_layout(NULL) == items, "the layout is built once");
    test_coverage(items, n, t, nt);
    test_sections(items, n, t, nt);
    test_widgets(items, n);
    test_sensitivity(items, n);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("dialog layout: all checks passed (%zu items, %zu table entries)\n", n, nt);
    return 0;
}
