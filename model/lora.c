/* LoRA files: key parsing, matching to the model, merging. See lora.h. */
#include "model/lora.h"

#include <cblas.h>
#include <glib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"

#include "model/errmsg.h"

/* --- keys ------------------------------------------------------------------------ */

static bool copy_module(sd_lora_key *k, const char *from, size_t len) {
    if (len == 0 || len >= sizeof k->module) return false;
    memcpy(k->module, from, len);
    k->module[len] = 0;
    return true;
}

/* Variants of LyCORIS and others whose tensors are recognised but not merged. */
static const char *other_variant(const char *suffix) {
    if (g_str_has_prefix(suffix, "hada_")) return "LoHa (hada_*)";
    if (g_str_has_prefix(suffix, "lokr_")) return "LoKr (lokr_*)";
    if (g_str_has_prefix(suffix, "lora_mid")) return "LoCon/Tucker (lora_mid)";
    if (g_str_has_prefix(suffix, "dora_scale")) return "DoRA (dora_scale)";
    if (g_str_has_prefix(suffix, "diff")) return "full weight difference (diff)";
    return "unknown";
}

static bool parse_kohya(const char *key, sd_lora_key *k) {
    static const struct {
        const char *prefix, *target;
    } P[] = {{"lora_unet_", "unet"}, {"lora_te1_", "te1"}, {"lora_te2_", "te2"}, {"lora_te_", "text_encoder"}};
    for (size_t i = 0; i < G_N_ELEMENTS(P); i++) {
        if (!g_str_has_prefix(key, P[i].prefix)) continue;
        const char *m = key + strlen(P[i].prefix), *dot = strchr(m, '.');
        if (!dot || !copy_module(k, m, (size_t)(dot - m))) return false;
        g_strlcpy(k->target, P[i].target, sizeof k->target);
        k->naming = SD_LORA_KOHYA;
        const char *suf = dot + 1;
        if (!strcmp(suf, "lora_down.weight")) k->part = SD_LORA_DOWN;
        else if (!strcmp(suf, "lora_up.weight")) k->part = SD_LORA_UP;
        else if (!strcmp(suf, "alpha")) k->part = SD_LORA_ALPHA;
        else {
            k->part = SD_LORA_OTHER;
            k->other = other_variant(suf);
        }
        return true;
    }
    return false;
}

static bool parse_diffusers(const char *key, sd_lora_key *k) {
    const char *s = key;
    if (g_str_has_prefix(s, "base_model.model.")) s += strlen("base_model.model.");
    const char *target = "unet";
    if (g_str_has_prefix(s, "unet.")) s += 5;
    else if (g_str_has_prefix(s, "text_encoder_2.")) {
        target = "text_encoder_2";
        s += strlen("text_encoder_2.");
    } else if (g_str_has_prefix(s, "text_encoder.")) {
        target = "text_encoder";
        s += strlen("text_encoder.");
    } else if (g_str_has_prefix(s, "text_model.")) target = "text_encoder";
    else if (!(g_str_has_prefix(s, "down_blocks.") || g_str_has_prefix(s, "up_blocks.") ||
               g_str_has_prefix(s, "mid_block.") || g_str_has_prefix(s, "conv_") ||
               g_str_has_prefix(s, "time_embedding.")))
        return false;
    static const struct {
        const char *suffix;
        sd_lora_part part;
    } S[] = {
        {".lora_A.weight", SD_LORA_DOWN},
        {".lora_B.weight", SD_LORA_UP},
        {".lora_A.default.weight", SD_LORA_DOWN},
        {".lora_B.default.weight", SD_LORA_UP},
        {".lora.down.weight", SD_LORA_DOWN},
        {".lora.up.weight", SD_LORA_UP},
        {".lora_linear_layer.down.weight", SD_LORA_DOWN},
        {".lora_linear_layer.up.weight", SD_LORA_UP},
        {".lora_down.weight", SD_LORA_DOWN},
        {".lora_up.weight", SD_LORA_UP},
        {"_lora.down.weight", SD_LORA_DOWN},
        {"_lora.up.weight", SD_LORA_UP}, /* processor.to_q_lora.down */
        {".alpha", SD_LORA_ALPHA},
    };
    size_t n = strlen(s);
    for (size_t i = 0; i < G_N_ELEMENTS(S); i++) {
        size_t l = strlen(S[i].suffix);
        if (n <= l || strcmp(s + n - l, S[i].suffix)) continue;
        size_t mlen = n - l;
        /* old attention processors: <attn>.processor.to_q_lora.down.weight (suffix "_lora.down.weight") */
        const char *proc = g_strstr_len(s, (gssize)mlen, ".processor.");
        if (proc && S[i].suffix[0] == '_') {
            const char *p = proc + strlen(".processor.");
            size_t plen = (size_t)(s + mlen - p);
            static const struct {
                const char *from, *to;
            } PR[] = {{"to_q", "to_q"}, {"to_k", "to_k"}, {"to_v", "to_v"}, {"to_out", "to_out.0"}};
            bool ok = false;
            for (size_t q = 0; q < G_N_ELEMENTS(PR) && !ok; q++)
                if (plen == strlen(PR[q].from) && !strncmp(p, PR[q].from, plen)) {
                    size_t base = (size_t)(proc - s);
                    if (base + 1 + strlen(PR[q].to) >= sizeof k->module) return false;
                    memcpy(k->module, s, base);
                    k->module[base] = '.';
                    strcpy(k->module + base + 1, PR[q].to);
                    ok = true;
                }
            if (!ok) return false;
        } else if (S[i].suffix[0] == '_' || !copy_module(k, s, mlen)) {
            return false;
        }
        g_strlcpy(k->target, target, sizeof k->target);
        k->naming = SD_LORA_DIFFUSERS;
        k->part = S[i].part;
        return true;
    }
    return false;
}

bool sd_lora_key_parse(const char *key, sd_lora_key *out) {
    memset(out, 0, sizeof *out);
    if (!key) return false;
    if (parse_kohya(key, out)) return true;
    memset(out, 0, sizeof *out);
    return parse_diffusers(key, out);
}

bool sd_lora_spec_parse(const char *spec, char *path, size_t pathlen, double *scale) {
    *scale = 1.0;
    if (!spec || !pathlen) return false;
    size_t n = strlen(spec);
    const char *colon = strrchr(spec, ':');
    if (colon && colon[1]) {
        char *end = NULL;
        double v = g_ascii_strtod(colon + 1, &end);
        if (end && !*end) {
            if (!isfinite(v)) return false;
            *scale = v;
            n = (size_t)(colon - spec);
        }
    }
    if (n == 0 || n >= pathlen) return false;
    memcpy(path, spec, n);
    path[n] = 0;
    return true;
}

/* --- the set ----------------------------------------------------------------------- */

typedef struct lora_delta {
    const st_tensor *down, *up;
    float factor; /* scale * alpha / rank */
    int rank;
} lora_delta;

struct sd_lora_set {
    GPtrArray *files;      /* st_file* */
    GHashTable *by_target; /* canonical weight name -> GPtrArray of lora_delta* */
    GString *summary;
};

sd_lora_set *sd_lora_set_new(void) {
    sd_lora_set *s = g_new0(sd_lora_set, 1);
    s->files = g_ptr_array_new_with_free_func((GDestroyNotify)st_close);
    s->by_target = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
    s->summary = g_string_new(NULL);
    return s;
}

void sd_lora_set_free(sd_lora_set *s) {
    if (!s) return;
    g_hash_table_destroy(s->by_target);
    g_ptr_array_free(s->files, TRUE);
    g_string_free(s->summary, TRUE);
    g_free(s);
}

int sd_lora_set_file_count(const sd_lora_set *s) { return s ? (int)s->files->len : 0; }
int sd_lora_set_target_count(const sd_lora_set *s) { return s ? (int)g_hash_table_size(s->by_target) : 0; }
bool sd_lora_set_has(const sd_lora_set *s, const char *canonical) {
    return s && g_hash_table_contains(s->by_target, canonical);
}
const char *sd_lora_set_summary(const sd_lora_set *s) { return s ? s->summary->str : ""; }

/* "unet|<kohya module>" and "unet|<dotted module>" -> canonical weight name */
static GHashTable *module_index(const sd_weights *w) {
    GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (int i = 0; i < sd_weights_count(w); i++) {
        const sd_weight *x = sd_weights_at(w, i);
        if (x->component == SD_VAE || !g_str_has_suffix(x->name, ".weight")) continue;
        const char *target = x->component == SD_UNET ? "unet" : "text_encoder";
        const char *mod = x->name + strlen(target) + 1;
        size_t mlen = strlen(mod) - strlen(".weight");
        char *dotted = g_strdup_printf("%s|%.*s", target, (int)mlen, mod);
        char *kohya = g_strdup(dotted);
        for (char *p = kohya + strlen(target) + 1; *p; p++)
            if (*p == '.') *p = '_';
        g_hash_table_insert(h, dotted, (gpointer)x);
        if (!g_hash_table_contains(h, kohya)) g_hash_table_insert(h, kohya, (gpointer)x);
        else g_free(kohya);
    }
    return h;
}

typedef struct pending {
    const st_tensor *down, *up, *alpha;
    const sd_weight *target;
    char key[300]; /* one of its keys, for messages */
} pending;

static const char *sdxl_sign(const sd_lora_key *k) {
    if (!strcmp(k->target, "te1") || !strcmp(k->target, "te2")) return "lora_te1_/lora_te2_ keys (two text encoders)";
    if (!strcmp(k->target, "text_encoder_2")) return "text_encoder_2 keys (two text encoders)";
    if (k->naming == SD_LORA_KOHYA && !strcmp(k->target, "unet") &&
        (g_str_has_prefix(k->module, "input_blocks_") || g_str_has_prefix(k->module, "output_blocks_") ||
         g_str_has_prefix(k->module, "middle_block_")))
        return "LDM-named UNet modules (input_blocks_/output_blocks_/middle_block_), as kohya-ss writes SDXL LoRAs";
    return NULL;
}

static const char *family_of_context(int64_t in) {
    return in == 2048   ? " (a 2048-wide text context: an SDXL LoRA)"
           : in == 1024 ? " (a 1024-wide text context: an SD 2.x LoRA)"
                        : "";
}

ie_status sd_lora_set_add(sd_lora_set *s, const sd_weights *w, const char *path, double scale, char *err,
                          size_t errlen) {
    st_file *f = NULL;
    char msg[512];
    ie_status st = st_open(path, &f, msg, sizeof msg);
    if (st) {
        ie_set_err(err, errlen, "LoRA %s", msg);
        return st;
    }
    GHashTable *index = module_index(w);
    GHashTable *pend = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    GPtrArray *unmatched = g_ptr_array_new();
    int n_lora_keys = 0, n_kohya = 0, n_diff = 0;
    const char *other = NULL, *other_key = NULL, *sdxl = NULL, *sdxl_key = NULL, *dup_key = NULL, *dup_prev = NULL;
    char *base = g_path_get_basename(path);
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        sd_lora_key k;
        if (!sd_lora_key_parse(t->name, &k)) {
            g_ptr_array_add(unmatched, (gpointer)t->name);
            continue;
        }
        n_lora_keys++;
        if (k.naming == SD_LORA_KOHYA) n_kohya++;
        else n_diff++;
        const char *sx = sdxl_sign(&k);
        if (sx && !sdxl) {
            sdxl = sx;
            sdxl_key = t->name;
        }
        if (k.part == SD_LORA_OTHER) {
            if (!other) {
                other = k.other;
                other_key = t->name;
            }
            continue;
        }
        char *mk = g_strdup_printf("%s|%s", k.target, k.module);
        const sd_weight *x = g_hash_table_lookup(index, mk);
        if (!x) {
            g_ptr_array_add(unmatched, (gpointer)t->name);
            g_free(mk);
            continue;
        }
        pending *p = g_hash_table_lookup(pend, x->name);
        if (!p) {
            p = g_new0(pending, 1);
            p->target = x;
            g_strlcpy(p->key, t->name, sizeof p->key);
            g_hash_table_insert(pend, g_strdup(x->name), p);
        }
        const st_tensor **slot = k.part == SD_LORA_DOWN ? &p->down : k.part == SD_LORA_UP ? &p->up : &p->alpha;
        if (*slot && !dup_key) {
            dup_key = t->name;
            dup_prev = (*slot)->name;
        }
        *slot = t;
        g_free(mk);
    }
    st = IE_OK;
    if (sdxl) {
        ie_set_err(err, errlen, "LoRA %s: made for SDXL (%s, e.g. %s); invedit uses SD 1.x LoRAs", path, sdxl,
                   sdxl_key);
        st = IE_ERR_UNSUPPORTED;
    } else if (other) {
        ie_set_err(err, errlen,
                   "LoRA %s: a %s LoRA (%s); only plain LoRA (lora_down/lora_up, lora_A/lora_B) is supported", path,
                   other, other_key);
        st = IE_ERR_UNSUPPORTED;
    } else if (dup_key) {
        ie_set_err(err, errlen, "LoRA %s: %s and %s adapt the same layer twice", path, dup_prev, dup_key);
        st = IE_ERR_FORMAT;
    } else if (!n_lora_keys) {
        ie_set_err(err, errlen,
                   "LoRA %s: no LoRA tensors (%d tensors; expected lora_unet_*/lora_te_* with lora_down/lora_up, "
                   "or diffusers/PEFT lora_A/lora_B names)",
                   path, st_count(f));
        st = IE_ERR_FORMAT;
    } else if (!g_hash_table_size(pend)) {
        ie_set_err(err, errlen,
                   "LoRA %s: none of its %d keys names a layer of this model (e.g. %s); is it for another "
                   "model family?",
                   path, n_lora_keys, unmatched->len ? (const char *)g_ptr_array_index(unmatched, 0) : "?");
        st = IE_ERR_FORMAT;
    }
    /* validate every pair */
    GPtrArray *deltas = g_ptr_array_new();
    int n_unet = 0, n_te = 0, rank_min = 0, rank_max = 0;
    GHashTableIter it;
    gpointer kk, vv;
    g_hash_table_iter_init(&it, pend);
    while (!st && g_hash_table_iter_next(&it, &kk, &vv)) {
        pending *p = vv;
        const sd_weight *x = p->target;
        char a[96], b[96], c[96];
        if (!p->down || !p->up) {
            ie_set_err(err, errlen, "LoRA %s: %s has a %s but no %s", path, p->key, p->down ? "down" : "up",
                       p->down ? "up (lora_up / lora_B)" : "down (lora_down / lora_A)");
            st = IE_ERR_FORMAT;
            break;
        }
        const st_tensor *d = p->down, *u = p->up;
        if (!st_dtype_is_float(d->dtype) || !st_dtype_is_float(u->dtype) ||
            (p->alpha && (!st_dtype_is_float(p->alpha->dtype) || p->alpha->numel != 1))) {
            ie_set_err(err, errlen, "LoRA %s: %s: the factors must be float tensors and alpha one number", path,
                       p->key);
            st = IE_ERR_FORMAT;
            break;
        }
        int64_t out = x->shape[0], wnumel = 1;
        for (int i = 0; i < x->ndim; i++) wnumel *= x->shape[i];
        int64_t r = d->ndim >= 2 ? d->shape[0] : 0;
        int64_t in_flat = out > 0 ? wnumel / out : 0;
        bool up_ok = u->ndim >= 2 && u->shape[0] == out && u->numel == out * u->shape[1];
        if (r <= 0 || !up_ok || d->numel != r * in_flat || u->shape[1] != r) {
            if (r > 0 && u->ndim >= 2 && u->shape[1] != r && u->shape[0] == out)
                ie_set_err(err, errlen,
                           "LoRA %s: %s: mismatched ranks: down %s has rank %" G_GINT64_FORMAT
                           ", up %s has %" G_GINT64_FORMAT,
                           path, p->key, st_shape_str(d->shape, d->ndim, a, sizeof a), r,
                           st_shape_str(u->shape, u->ndim, b, sizeof b), u->shape[1]);
            else
                ie_set_err(err, errlen, "LoRA %s: %s: down %s and up %s do not fit %s %s%s", path, p->key,
                           st_shape_str(d->shape, d->ndim, a, sizeof a), st_shape_str(u->shape, u->ndim, b, sizeof b),
                           x->name, st_shape_str(x->shape, x->ndim, c, sizeof c),
                           family_of_context(d->ndim >= 2 ? d->shape[1] : 0));
            st = IE_ERR_FORMAT;
            break;
        }
        float alpha = (float)r;
        if (p->alpha) {
            char e2[128];
            if (st_read_f32(p->alpha, &alpha, e2, sizeof e2)) {
                ie_set_err(err, errlen, "LoRA %s: %s: %s", path, p->alpha->name, e2);
                st = IE_ERR_FORMAT;
                break;
            }
        }
        lora_delta *dl = g_new0(lora_delta, 1);
        dl->down = d;
        dl->up = u;
        dl->rank = (int)r;
        dl->factor = (float)(scale * (double)alpha / (double)r);
        g_ptr_array_add(deltas, dl);
        g_ptr_array_add(deltas, (gpointer)x->name);
        if (x->component == SD_UNET) n_unet++;
        else n_te++;
        if (!rank_min || r < rank_min) rank_min = (int)r;
        if (r > rank_max) rank_max = (int)r;
    }
    if (!st) {
        for (guint i = 0; i < deltas->len; i += 2) {
            const char *name = g_ptr_array_index(deltas, i + 1);
            GPtrArray *l = g_hash_table_lookup(s->by_target, name);
            if (!l) {
                l = g_ptr_array_new_with_free_func(g_free);
                g_hash_table_insert(s->by_target, g_strdup(name), l);
            }
            g_ptr_array_add(l, g_ptr_array_index(deltas, i));
        }
        g_ptr_array_add(s->files, f);
        f = NULL;
        if (s->summary->len) g_string_append_c(s->summary, '\n');
        g_string_append_printf(s->summary, "%s x%g: %s, %d layers (unet %d, text_encoder %d), rank %d", base, scale,
                               n_kohya >= n_diff ? "kohya-ss" : "diffusers/PEFT", n_unet + n_te, n_unet, n_te,
                               rank_min);
        if (rank_max != rank_min) g_string_append_printf(s->summary, "..%d", rank_max);
        if (unmatched->len) {
            g_string_append_printf(s->summary, "; %u keys match no layer (", unmatched->len);
            for (guint i = 0; i < unmatched->len && i < 3; i++)
                g_string_append_printf(s->summary, "%s%s", i ? ", " : "",
                                       (const char *)g_ptr_array_index(unmatched, i));
            g_string_append(s->summary, unmatched->len > 3 ? ", ...)" : ")");
        }
    } else {
        for (guint i = 0; i < deltas->len; i += 2) g_free(g_ptr_array_index(deltas, i));
    }
    g_ptr_array_free(deltas, TRUE);
    g_free(base);
    g_ptr_array_free(unmatched, TRUE);
    g_hash_table_destroy(pend);
    g_hash_table_destroy(index);
    st_close(f);
    return st;
}

ie_status sd_lora_set_add_list(sd_lora_set *s, const sd_weights *w, const char *list, char *err, size_t errlen) {
    if (!list || !*list) return IE_OK;
    char **parts = g_strsplit_set(list, ";\n", -1);
    ie_status st = IE_OK;
    for (int i = 0; parts[i] && !st; i++) {
        char *e = g_strstrip(parts[i]);
        if (!*e) continue;
        char path[4096];
        double scale;
        if (!sd_lora_spec_parse(e, path, sizeof path, &scale)) {
            ie_set_err(err, errlen, "lora: '%s' is not FILE[:SCALE]", e);
            st = IE_ERR_ARG;
            break;
        }
        st = sd_lora_set_add(s, w, path, scale, err, errlen);
    }
    g_strfreev(parts);
    return st;
}

ie_status sd_lora_set_apply(const sd_lora_set *s, const char *canonical, float *w, int64_t numel, char *err,
                            size_t errlen) {
    GPtrArray *l = s ? g_hash_table_lookup(s->by_target, canonical) : NULL;
    if (!l) return IE_OK;
    for (guint i = 0; i < l->len; i++) {
        const lora_delta *d = g_ptr_array_index(l, i);
        int64_t out = d->up->shape[0], r = d->rank, in = d->down->numel / r;
        if (out * in != numel) {
            ie_set_err(err, errlen, "LoRA %s: does not fit %s", d->down->name, canonical);
            return IE_ERR_FORMAT;
        }
        float *up = malloc((size_t)(out * r) * sizeof *up), *down = malloc((size_t)(r * in) * sizeof *down);
        char e2[256] = "";
        ie_status st = up && down ? IE_OK : IE_ERR_NOMEM;
        if (!st) st = st_read_f32(d->up, up, e2, sizeof e2);
        if (!st) st = st_read_f32(d->down, down, e2, sizeof e2);
        if (!st)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)out, (int)in, (int)r, d->factor, up, (int)r,
                        down, (int)in, 1.0f, w, (int)in);
        free(up);
        free(down);
        if (st) {
            ie_set_err(err, errlen, "LoRA %s: %s", d->down->name, st == IE_ERR_NOMEM ? "out of memory" : e2);
            return st;
        }
    }
    return IE_OK;
}
