/* Batch manifest lines and output patterns (manifest.h), parsed with json-glib. */
#include "manifest.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

bool manifest_line_is_blank(const char *line, size_t len) {
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) i++;
    return i == len || line[i] == '#';
}

static const char *own(manifest_item *it, const char *s) {
    char *c = g_strdup(s);
    g_ptr_array_add(it->owned, c);
    return c;
}

void manifest_item_clear(manifest_item *it) {
    if (it->owned) g_ptr_array_free(it->owned, TRUE);
    memset(it, 0, sizeof *it);
}

static const char *key_alias(const char *k) {
    if (!strcmp(k, "source")) return "source-prompt";
    if (!strcmp(k, "target")) return "target-prompt";
    if (!strcmp(k, "targets")) return "target-prompt";
    if (!strcmp(k, "negative")) return "negative-prompt";
    return k;
}

/* A scalar JSON value as the text the parameter parser takes; NULL for
 * anything else (objects, arrays, null). */
static char *scalar_text(JsonNode *n) {
    if (!n || JSON_NODE_TYPE(n) != JSON_NODE_VALUE) return NULL;
    GType t = json_node_get_value_type(n);
    if (t == G_TYPE_STRING) return g_strdup(json_node_get_string(n));
    if (t == G_TYPE_BOOLEAN) return g_strdup(json_node_get_boolean(n) ? "yes" : "no");
    if (t == G_TYPE_INT64) return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(n));
    if (t == G_TYPE_DOUBLE) {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        return g_strdup(g_ascii_dtostr(buf, sizeof buf, json_node_get_double(n)));
    }
    return NULL;
}

static bool set_param(manifest_item *it, const ie_param_desc *d, const char *value, char *err, size_t errlen) {
    char e[256];
    if (ie_edit_param_set(&it->p, d, own(it, value), e, sizeof e) == IE_OK) return true;
    snprintf(err, errlen, "%s", e);
    return false;
}

bool manifest_parse_line(const char *line, size_t len, ie_method default_method, const manifest_default *defs, int ndef,
                         manifest_item *it, char *err, size_t errlen) {
    memset(it, 0, sizeof *it);
    it->owned = g_ptr_array_new_with_free_func(g_free);
    JsonParser *parser = json_parser_new();
    GError *ge = NULL;
    bool ok = false;
    if (len > ((size_t)1 << 24)) {
        snprintf(err, errlen, "line longer than 16 MiB");
        goto out;
    }
    if (!json_parser_load_from_data(parser, line, (gssize)len, &ge)) {
        snprintf(err, errlen, "not JSON: %s", ge ? ge->message : "?");
        g_clear_error(&ge);
        goto out;
    }
    JsonNode *root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        snprintf(err, errlen, "a line must be one JSON object ({\"image\": ..., \"output\": ...})");
        goto out;
    }
    JsonObject *obj = json_node_get_object(root);

    /* the method decides the defaults: first */
    ie_method m = default_method;
    JsonNode *mn = json_object_get_member(obj, "method");
    if (mn) {
        char *mt = scalar_text(mn);
        bool known = mt && ie_method_from_name(mt, &m);
        if (!known) snprintf(err, errlen, "method: unknown method '%s' (ef-ddpm, bdia or infedit)", mt ? mt : "?");
        g_free(mt);
        if (!known) goto out;
    }
    ie_edit_params_init(&it->p, m);
    for (int i = 0; i < ndef; i++) {
        if (defs[i].d->type == IE_PARAM_METHOD) continue;
        if (!set_param(it, defs[i].d, defs[i].value, err, errlen)) goto out;
        if (!strcmp(defs[i].d->name, "target-prompt")) it->targets[0] = it->p.target_prompt, it->n_targets = 1;
    }

    GList *members = json_object_get_members(obj);
    ok = true;
    for (GList *l = members; l && ok; l = l->next) {
        const char *key = l->data;
        JsonNode *v = json_object_get_member(obj, key);
        const char *name = key_alias(key);
        if (!strcmp(name, "method")) continue;
        if (!strcmp(name, "image") || !strcmp(name, "output") || !strcmp(name, "model")) {
            char *s = scalar_text(v);
            if (!s || !*s || (v && json_node_get_value_type(v) != G_TYPE_STRING)) {
                snprintf(err, errlen, "%s: expected a file name (a non-empty string)", key);
                ok = false;
            } else if (name[0] == 'i') it->image = own(it, s);
            else if (name[0] == 'o') it->output = own(it, s);
            else it->model = own(it, s);
            g_free(s);
            continue;
        }
        const ie_param_desc *d = ie_edit_param_find(name);
        if (!d) {
            snprintf(err, errlen,
                     "unknown key '%s' (image, output, source, target, or a parameter: see "
                     "'invedit edit --help')",
                     key);
            ok = false;
            continue;
        }
        if (!strcmp(name, "target-prompt") && v && JSON_NODE_HOLDS_ARRAY(v)) {
            JsonArray *a = json_node_get_array(v);
            guint n = json_array_get_length(a);
            if (n < 1 || n > MANIFEST_MAX_TARGETS) {
                snprintf(err, errlen, "%s: 1 to %d target prompts", key, MANIFEST_MAX_TARGETS);
                ok = false;
                continue;
            }
            it->n_targets = 0;
            for (guint i = 0; i < n && ok; i++) {
                JsonNode *e = json_array_get_element(a, i);
                if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING) {
                    snprintf(err, errlen, "%s[%u]: expected a string", key, i);
                    ok = false;
                } else {
                    it->targets[it->n_targets++] = own(it, json_node_get_string(e));
                }
            }
            if (ok) it->p.target_prompt = it->targets[0];
            continue;
        }
        char *s = scalar_text(v);
        if (!s) {
            snprintf(err, errlen, "%s: expected a string, number or true/false", key);
            ok = false;
            continue;
        }
        ok = set_param(it, d, s, err, errlen);
        if (ok && !strcmp(name, "target-prompt")) it->targets[0] = it->p.target_prompt, it->n_targets = 1;
        g_free(s);
    }
    g_list_free(members);
    if (ok && (!it->image || !it->output)) {
        snprintf(err, errlen, "\"image\" and \"output\" are required");
        ok = false;
    }
    if (ok && it->n_targets == 0) {
        snprintf(err, errlen, "no target prompt (\"target\": \"...\" or [\"...\", ...])");
        ok = false;
    }
    if (ok) {
        int f = output_pattern_fields(it->output, err, errlen);
        if (f < 0) ok = false;
        else if (f == 0 && it->n_targets > 1) {
            snprintf(err, errlen, "output: %d targets need a pattern with %%d (e.g. out-%%d.png)", it->n_targets);
            ok = false;
        }
    }
    if (ok) {
        char e[256];
        if (ie_edit_params_validate(&it->p, e, sizeof e) != IE_OK) {
            snprintf(err, errlen, "%s", e);
            ok = false;
        }
    }
out:
    g_object_unref(parser);
    if (!ok) manifest_item_clear(it);
    return ok;
}

/* --- output patterns ---------------------------------------------------------------------- */

int output_pattern_fields(const char *pat, char *err, size_t errlen) {
    int fields = 0;
    for (const char *c = pat; *c; c++) {
        if (*c != '%') continue;
        if (c[1] == '%') {
            c++;
            continue;
        }
        if (c[1] == 'd') c++;
        else if (c[1] == '0' && c[2] >= '1' && c[2] <= '9' && c[3] == 'd') c += 3;
        else {
            snprintf(err, errlen, "output '%s': only %%d, %%0Nd (the target's number) and %%%% may follow a %%", pat);
            return -1;
        }
        fields++;
    }
    if (fields > 1) {
        snprintf(err, errlen, "output '%s': more than one %%d", pat);
        return -1;
    }
    return fields;
}

bool output_pattern_expand(const char *pat, int index, char *out, size_t outlen) {
    char e[8];
    if (output_pattern_fields(pat, e, sizeof e) < 0 || outlen == 0) return false;
    size_t o = 0;
    for (const char *c = pat; *c; c++) {
        char piece[32];
        if (*c == '%' && c[1] == '%') {
            snprintf(piece, sizeof piece, "%%");
            c++;
        } else if (*c == '%' && c[1] == 'd') {
            snprintf(piece, sizeof piece, "%d", index);
            c++;
        } else if (*c == '%') {
            snprintf(piece, sizeof piece, "%0*d", c[2] - '0', index);
            c += 3;
        } else {
            piece[0] = *c, piece[1] = 0;
        }
        size_t n = strlen(piece);
        if (o + n >= outlen) return false;
        memcpy(out + o, piece, n);
        o += n;
    }
    out[o] = 0;
    return true;
}
