/* SD 1.x weight names: the LDM <-> diffusers table and the model source.
 * See names.h. The table follows diffusers'
 * scripts/convert_diffusers_to_original_stable_diffusion.py (tables in
 * docs/formats.md), written as data: component prefixes, block rules with index
 * formulas, and per-block field renames. Both directions use the same rows. */
#include "model/names.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/errmsg.h"

const char *sd_component_name(sd_component c) {
    switch (c) {
        case SD_UNET: return "unet";
        case SD_VAE: return "vae";
        case SD_TEXT_ENCODER: return "text_encoder";
        default: return "?";
    }
}

sd_ldm_layout sd_ldm_layout_default(void) {
    sd_ldm_layout l = {.unet_layers_per_block = 2, .vae_levels = 4};
    l.unet_up_has_attn[1] = l.unet_up_has_attn[2] = l.unet_up_has_attn[3] = true;
    return l;
}

/* --- the table ----------------------------------------------------------- */

/* Component prefixes of single-file checkpoints. First match wins. */
static const struct {
    const char *ldm;
    sd_component comp;
    const char *canon;
} PREFIXES[] = {
    {"model.diffusion_model.", SD_UNET, "unet."},
    {"first_stage_model.", SD_VAE, "vae."},
    {"cond_stage_model.transformer.text_model.", SD_TEXT_ENCODER, "text_encoder.text_model."},
    /* checkpoints saved with transformers < 4.? lack the text_model level */
    {"cond_stage_model.transformer.", SD_TEXT_ENCODER, "text_encoder.text_model."},
};

/* How the integers captured by {a},{b} in an LDM name relate to the {i},{j}
 * of the diffusers name. L = UNet layers per block. */
typedef enum index_rule {
    IX_NONE,      /* no indices */
    IX_SAME,      /* i = a, j = b */
    IX_UNET_IN,   /* input_blocks.a = down_blocks.i.{resnets,attentions}.j: a = 1 + i(L+1) + j, j < L */
    IX_UNET_DOWN, /* input_blocks.a.0.op = down_blocks.i.downsamplers.0: a = (i+1)(L+1) */
    IX_UNET_OUT,  /* output_blocks.a = up_blocks.i.{resnets,attentions}.j: a = i(L+1) + j */
    IX_UNET_UP,   /* output_blocks.a.{1|2}.conv = up_blocks.i.upsamplers.0: a = i(L+1) + L */
    IX_VAE_UP,    /* decoder.up.a = decoder.up_blocks.i: a = levels-1-i (reversed), j = b */
    IX_MID,       /* mid.block_a = mid_block.resnets.j: a = j + 1 */
} index_rule;

typedef enum field_set {
    FS_NONE,        /* fields keep their names */
    FS_UNET_RESNET, /* in_layers.0 = norm1, ... */
    FS_VAE_RESNET,  /* nin_shortcut = conv_shortcut */
    FS_VAE_ATTN,    /* q = to_q, ..., proj_out = to_out.0 (1x1 conv = Linear) */
} field_set;

typedef struct block_rule {
    sd_component comp;
    const char *ldm;  /* after the component prefix; {a} {b} capture integers */
    const char *diff; /* after the component prefix; {i} {j} */
    index_rule ix;
    field_set fields;
    int up_attn; /* IX_UNET_UP: 1 = the level has attention (upsampler at .2), 0 = not */
} block_rule;

static const block_rule BLOCKS[] = {
    /* UNet (the index formulas: index_rule above) */
    {SD_UNET, "time_embed.0.", "time_embedding.linear_1.", IX_NONE, FS_NONE, 0},
    {SD_UNET, "time_embed.2.", "time_embedding.linear_2.", IX_NONE, FS_NONE, 0},
    {SD_UNET, "input_blocks.0.0.", "conv_in.", IX_NONE, FS_NONE, 0},
    {SD_UNET, "input_blocks.{a}.0.op.", "down_blocks.{i}.downsamplers.0.conv.", IX_UNET_DOWN, FS_NONE, 0},
    {SD_UNET, "input_blocks.{a}.0.", "down_blocks.{i}.resnets.{j}.", IX_UNET_IN, FS_UNET_RESNET, 0},
    {SD_UNET, "input_blocks.{a}.1.", "down_blocks.{i}.attentions.{j}.", IX_UNET_IN, FS_NONE, 0},
    {SD_UNET, "middle_block.0.", "mid_block.resnets.0.", IX_NONE, FS_UNET_RESNET, 0},
    {SD_UNET, "middle_block.1.", "mid_block.attentions.0.", IX_NONE, FS_NONE, 0},
    {SD_UNET, "middle_block.2.", "mid_block.resnets.1.", IX_NONE, FS_UNET_RESNET, 0},
    {SD_UNET, "output_blocks.{a}.0.", "up_blocks.{i}.resnets.{j}.", IX_UNET_OUT, FS_UNET_RESNET, 0},
    {SD_UNET, "output_blocks.{a}.1.conv.", "up_blocks.{i}.upsamplers.0.conv.", IX_UNET_UP, FS_NONE, 0},
    {SD_UNET, "output_blocks.{a}.2.conv.", "up_blocks.{i}.upsamplers.0.conv.", IX_UNET_UP, FS_NONE, 1},
    {SD_UNET, "output_blocks.{a}.1.", "up_blocks.{i}.attentions.{j}.", IX_UNET_OUT, FS_NONE, 0},
    {SD_UNET, "out.0.", "conv_norm_out.", IX_NONE, FS_NONE, 0},
    {SD_UNET, "out.2.", "conv_out.", IX_NONE, FS_NONE, 0},
    /* VAE; the decoder's level order is reversed */
    {SD_VAE, "encoder.down.{a}.block.{b}.", "encoder.down_blocks.{i}.resnets.{j}.", IX_SAME, FS_VAE_RESNET, 0},
    {SD_VAE, "encoder.down.{a}.downsample.conv.", "encoder.down_blocks.{i}.downsamplers.0.conv.", IX_SAME, FS_NONE, 0},
    {SD_VAE, "encoder.mid.block_{a}.", "encoder.mid_block.resnets.{j}.", IX_MID, FS_VAE_RESNET, 0},
    {SD_VAE, "encoder.mid.attn_1.", "encoder.mid_block.attentions.0.", IX_NONE, FS_VAE_ATTN, 0},
    {SD_VAE, "encoder.norm_out.", "encoder.conv_norm_out.", IX_NONE, FS_NONE, 0},
    {SD_VAE, "decoder.up.{a}.block.{b}.", "decoder.up_blocks.{i}.resnets.{j}.", IX_VAE_UP, FS_VAE_RESNET, 0},
    {SD_VAE, "decoder.up.{a}.upsample.conv.", "decoder.up_blocks.{i}.upsamplers.0.conv.", IX_VAE_UP, FS_NONE, 0},
    {SD_VAE, "decoder.mid.block_{a}.", "decoder.mid_block.resnets.{j}.", IX_MID, FS_VAE_RESNET, 0},
    {SD_VAE, "decoder.mid.attn_1.", "decoder.mid_block.attentions.0.", IX_NONE, FS_VAE_ATTN, 0},
    {SD_VAE, "decoder.norm_out.", "decoder.conv_norm_out.", IX_NONE, FS_NONE, 0},
    /* everything else (conv_in, conv_out, quant_conv, attention internals,
     * CLIP) has the same name in both layouts */
};

typedef struct field_rule {
    field_set set;
    const char *ldm, *diff;
    bool squeeze; /* the weight is a 1x1 conv in LDM files, Linear in diffusers */
} field_rule;

static const field_rule FIELDS[] = {
    {FS_UNET_RESNET, "in_layers.0.", "norm1.", false},
    {FS_UNET_RESNET, "in_layers.2.", "conv1.", false},
    {FS_UNET_RESNET, "emb_layers.1.", "time_emb_proj.", false},
    {FS_UNET_RESNET, "out_layers.0.", "norm2.", false},
    {FS_UNET_RESNET, "out_layers.3.", "conv2.", false},
    {FS_UNET_RESNET, "skip_connection.", "conv_shortcut.", false},
    {FS_VAE_RESNET, "nin_shortcut.", "conv_shortcut.", false},
    {FS_VAE_ATTN, "norm.", "group_norm.", false},
    {FS_VAE_ATTN, "q.", "to_q.", true},
    {FS_VAE_ATTN, "k.", "to_k.", true},
    {FS_VAE_ATTN, "v.", "to_v.", true},
    {FS_VAE_ATTN, "proj_out.", "to_out.0.", true},
};

/* Older diffusers VAE attention names, inside {en,de}coder.mid_block.attentions.0. */
static const struct {
    const char *old, *now;
} VAE_ATTN_ALIASES[] = {
    {"query.", "to_q."},
    {"key.", "to_k."},
    {"value.", "to_v."},
    {"proj_attn.", "to_out.0."},
};

/* Top-level non-weight tensors of LDM checkpoints: noise-schedule and training buffers. */
static const char *const IGNORED_TOP_LEVEL_PREFIXES[] = {
    "betas", "alphas_cumprod", "posterior_", "log_one_minus_", "sqrt_", "logvar", "num_updates", "lvlb_weights",
};

bool sd_name_is_ignored(const char *name) {
    if (g_str_has_prefix(name, "model_ema.")) return true;
    if (g_str_has_suffix(name, "position_ids")) return true;
    if (!strchr(name, '.'))
        for (size_t k = 0; k < G_N_ELEMENTS(IGNORED_TOP_LEVEL_PREFIXES); k++)
            if (g_str_has_prefix(name, IGNORED_TOP_LEVEL_PREFIXES[k])) return true;
    return false;
}

/* --- templates ----------------------------------------------------------- */

/* Matches template `tp` against the start of `s`. Placeholders {a} {b} {i} {j}
 * take a decimal integer without leading zeros (so every name has one form).
 * vals is indexed by letter - 'a'. Returns the number of characters of s
 * matched, or -1. */
static int tp_match(const char *tp, const char *s, int vals[26]) {
    const char *s0 = s;
    while (*tp) {
        if (tp[0] == '{' && tp[2] == '}') {
            if (!g_ascii_isdigit(*s)) return -1;
            if (s[0] == '0' && g_ascii_isdigit(s[1])) return -1;
            int v = 0, nd = 0;
            while (g_ascii_isdigit(*s)) {
                if (++nd > 6) return -1;
                v = v * 10 + (*s++ - '0');
            }
            vals[tp[1] - 'a'] = v;
            tp += 3;
        } else {
            if (*s != *tp) return -1;
            s++;
            tp++;
        }
    }
    return (int)(s - s0);
}

/* Appends template tp with placeholders filled from vals. */
static void tp_format(GString *out, const char *tp, const int vals[26]) {
    while (*tp) {
        if (tp[0] == '{' && tp[2] == '}') {
            g_string_append_printf(out, "%d", vals[tp[1] - 'a']);
            tp += 3;
        } else {
            g_string_append_c(out, *tp++);
        }
    }
}

/* LDM (a, b) -> diffusers (i, j); false when the indices do not fit the rule. */
static bool ix_forward(const block_rule *r, const sd_ldm_layout *lay, int v[26]) {
    const int L1 = lay->unet_layers_per_block + 1, a = v['a' - 'a'], b = v['b' - 'a'];
    int i = 0, j = 0;
    switch (r->ix) {
        case IX_NONE: return true;
        case IX_SAME:
            i = a;
            j = b;
            break;
        case IX_UNET_IN:
            if (a < 1 || (a - 1) % L1 == L1 - 1) return false;
            i = (a - 1) / L1;
            j = (a - 1) % L1;
            break;
        case IX_UNET_DOWN:
            if (a < L1 || a % L1 != 0) return false;
            i = a / L1 - 1;
            break;
        case IX_UNET_OUT:
            i = a / L1;
            j = a % L1;
            break;
        case IX_UNET_UP:
            if (a % L1 != L1 - 1) return false;
            i = a / L1;
            break;
        case IX_VAE_UP:
            if (a >= lay->vae_levels) return false;
            i = lay->vae_levels - 1 - a;
            j = b;
            break;
        case IX_MID:
            if (a < 1) return false;
            j = a - 1;
            break;
    }
    v['i' - 'a'] = i;
    v['j' - 'a'] = j;
    return true;
}

/* diffusers (i, j) -> LDM (a, b). */
static bool ix_backward(const block_rule *r, const sd_ldm_layout *lay, int v[26]) {
    const int L = lay->unet_layers_per_block, L1 = L + 1, i = v['i' - 'a'], j = v['j' - 'a'];
    int a = 0, b = 0;
    switch (r->ix) {
        case IX_NONE: return true;
        case IX_SAME:
            a = i;
            b = j;
            break;
        case IX_UNET_IN:
            if (j >= L) return false;
            a = 1 + i * L1 + j;
            break;
        case IX_UNET_DOWN: a = (i + 1) * L1; break;
        case IX_UNET_OUT:
            if (j > L) return false;
            a = i * L1 + j;
            break;
        case IX_UNET_UP:
            if (i >= (int)G_N_ELEMENTS(lay->unet_up_has_attn) || (int)lay->unet_up_has_attn[i] != r->up_attn)
                return false;
            a = i * L1 + L;
            break;
        case IX_VAE_UP:
            if (i >= lay->vae_levels) return false;
            a = lay->vae_levels - 1 - i;
            b = j;
            break;
        case IX_MID: a = j + 1; break;
    }
    v['a' - 'a'] = a;
    v['b' - 'a'] = b;
    return true;
}

static bool copy_out(GString *g, char *out, size_t n) {
    bool fits = g->len < n;
    if (n) g_strlcpy(out, g->str, n);
    g_string_free(g, TRUE);
    return fits;
}

/* Maps the part of an LDM name after its component prefix. */
static void map_ldm_rest(sd_component comp, const char *rest, const sd_ldm_layout *lay, GString *g, bool *squeeze) {
    for (size_t k = 0; k < G_N_ELEMENTS(BLOCKS); k++) {
        const block_rule *r = &BLOCKS[k];
        if (r->comp != comp) continue;
        int v[26] = {0};
        int m = tp_match(r->ldm, rest, v);
        if (m < 0 || !ix_forward(r, lay, v)) continue;
        tp_format(g, r->diff, v);
        const char *field = rest + m;
        if (r->fields != FS_NONE)
            for (size_t f = 0; f < G_N_ELEMENTS(FIELDS); f++) {
                if (FIELDS[f].set != r->fields || !g_str_has_prefix(field, FIELDS[f].ldm)) continue;
                const char *tail = field + strlen(FIELDS[f].ldm);
                g_string_append(g, FIELDS[f].diff);
                g_string_append(g, tail);
                if (squeeze) *squeeze = FIELDS[f].squeeze && strcmp(tail, "weight") == 0;
                return;
            }
        g_string_append(g, field);
        return;
    }
    g_string_append(g, rest);
}

sd_name_kind sd_name_from_ldm(const char *ldm, const sd_ldm_layout *lay, char *out, size_t n, bool *squeeze) {
    sd_ldm_layout def = sd_ldm_layout_default();
    if (!lay) lay = &def;
    if (squeeze) *squeeze = false;
    if (sd_name_is_ignored(ldm)) {
        if (n) g_strlcpy(out, ldm, n);
        return SD_NAME_IGNORED;
    }
    for (size_t p = 0; p < G_N_ELEMENTS(PREFIXES); p++) {
        if (!g_str_has_prefix(ldm, PREFIXES[p].ldm)) continue;
        GString *g = g_string_new(PREFIXES[p].canon);
        map_ldm_rest(PREFIXES[p].comp, ldm + strlen(PREFIXES[p].ldm), lay, g, squeeze);
        copy_out(g, out, n);
        return SD_NAME_WEIGHT;
    }
    if (n) g_strlcpy(out, ldm, n);
    return SD_NAME_UNKNOWN;
}

sd_name_kind sd_name_from_diffusers(sd_component c, const char *name, char *out, size_t n) {
    if (sd_name_is_ignored(name)) {
        if (n) g_strlcpy(out, name, n);
        return SD_NAME_IGNORED;
    }
    GString *g = g_string_new(sd_component_name(c));
    g_string_append_c(g, '.');
    const char *rest = name;
    if (c == SD_VAE) {
        static const char *const ATTN[] = {"encoder.mid_block.attentions.0.", "decoder.mid_block.attentions.0."};
        for (int k = 0; k < 2; k++) {
            if (!g_str_has_prefix(name, ATTN[k])) continue;
            const char *field = name + strlen(ATTN[k]);
            for (size_t a = 0; a < G_N_ELEMENTS(VAE_ATTN_ALIASES); a++)
                if (g_str_has_prefix(field, VAE_ATTN_ALIASES[a].old)) {
                    g_string_append(g, ATTN[k]);
                    g_string_append(g, VAE_ATTN_ALIASES[a].now);
                    rest = field + strlen(VAE_ATTN_ALIASES[a].old);
                    break;
                }
        }
    }
    g_string_append(g, rest);
    copy_out(g, out, n);
    return SD_NAME_WEIGHT;
}

bool sd_name_to_ldm(const char *canonical, const sd_ldm_layout *lay, char *out, size_t n) {
    sd_ldm_layout def = sd_ldm_layout_default();
    if (!lay) lay = &def;
    sd_component comp;
    const char *rest;
    GString *g;
    if (g_str_has_prefix(canonical, "unet.")) {
        comp = SD_UNET;
        rest = canonical + 5;
        g = g_string_new("model.diffusion_model.");
    } else if (g_str_has_prefix(canonical, "vae.")) {
        comp = SD_VAE;
        rest = canonical + 4;
        g = g_string_new("first_stage_model.");
    } else if (g_str_has_prefix(canonical, "text_encoder.text_model.")) {
        g = g_string_new("cond_stage_model.transformer.");
        g_string_append(g, canonical + strlen("text_encoder."));
        return copy_out(g, out, n);
    } else {
        if (n) out[0] = 0;
        return false;
    }
    for (size_t k = 0; k < G_N_ELEMENTS(BLOCKS); k++) {
        const block_rule *r = &BLOCKS[k];
        if (r->comp != comp) continue;
        int v[26] = {0};
        int m = tp_match(r->diff, rest, v);
        if (m < 0 || !ix_backward(r, lay, v)) continue;
        tp_format(g, r->ldm, v);
        const char *field = rest + m;
        if (r->fields != FS_NONE)
            for (size_t f = 0; f < G_N_ELEMENTS(FIELDS); f++)
                if (FIELDS[f].set == r->fields && g_str_has_prefix(field, FIELDS[f].diff)) {
                    g_string_append(g, FIELDS[f].ldm);
                    field += strlen(FIELDS[f].diff);
                    break;
                }
        g_string_append(g, field);
        return copy_out(g, out, n);
    }
    g_string_append(g, rest);
    return copy_out(g, out, n);
}

/* --- the model source ---------------------------------------------------- */

struct sd_weights {
    char *path;
    sd_layout_kind layout;
    sd_ldm_layout lay;
    st_file *files[SD_COMPONENT_COUNT]; /* diffusers: one per component; single: [0] */
    char *file_path[SD_COMPONENT_COUNT];
    char *missing[SD_COMPONENT_COUNT];
    char *config_path[SD_COMPONENT_COUNT];
    char *tokenizer_dir;
    bool has[SD_COMPONENT_COUNT];
    GPtrArray *weights;  /* sd_weight*, sorted by name */
    GHashTable *by_name; /* name -> sd_weight* */
    GPtrArray *unmapped; /* char* */
    int n_ignored;
    const char *naming[SD_COMPONENT_COUNT];
    st_file *vae_file; /* a separate VAE file (sd_source_options.vae) */
    int n_ema;
    bool ema_used;
    char ema_note[256];
    const struct sd_lora_set *lora;
};

void sd_weights_close(sd_weights *w) {
    if (!w) return;
    if (w->weights) g_ptr_array_free(w->weights, TRUE);
    if (w->by_name) g_hash_table_destroy(w->by_name);
    if (w->unmapped) g_ptr_array_free(w->unmapped, TRUE);
    for (int c = 0; c < SD_COMPONENT_COUNT; c++) {
        st_close(w->files[c]);
        g_free(w->file_path[c]);
        g_free(w->missing[c]);
        g_free(w->config_path[c]);
    }
    st_close(w->vae_file);
    g_free(w->tokenizer_dir);
    g_free(w->path);
    g_free(w);
}

static void free_weight(gpointer p) {
    sd_weight *x = p;
    g_free((char *)x->name);
    g_free(x);
}

static int cmp_weight(gconstpointer a, gconstpointer b) {
    const sd_weight *x = *(const sd_weight *const *)a, *y = *(const sd_weight *const *)b;
    return strcmp(x->name, y->name);
}

static sd_component component_of(const char *canonical) {
    if (g_str_has_prefix(canonical, "unet.")) return SD_UNET;
    if (g_str_has_prefix(canonical, "vae.")) return SD_VAE;
    return SD_TEXT_ENCODER;
}

/* vae.{en,de}coder.mid_block.attentions.N.{to_q,to_k,to_v,to_out.0}.<what> */
static bool is_vae_attn_proj(const char *canonical, const char *what) {
    const char *p = NULL;
    if (g_str_has_prefix(canonical, "vae.encoder.mid_block.attentions."))
        p = canonical + strlen("vae.encoder.mid_block.attentions.");
    else if (g_str_has_prefix(canonical, "vae.decoder.mid_block.attentions."))
        p = canonical + strlen("vae.decoder.mid_block.attentions.");
    if (!p || !g_ascii_isdigit(*p)) return false;
    while (g_ascii_isdigit(*p)) p++;
    if (*p++ != '.') return false;
    static const char *const PROJ[] = {"to_q.", "to_k.", "to_v.", "to_out.0."};
    for (size_t k = 0; k < G_N_ELEMENTS(PROJ); k++)
        if (g_str_has_prefix(p, PROJ[k])) return strcmp(p + strlen(PROJ[k]), what) == 0;
    return false;
}

static void add_weight(sd_weights *w, const char *canonical, const st_tensor *t, bool squeeze) {
    sd_weight *prev = g_hash_table_lookup(w->by_name, canonical);
    if (prev) {
        g_ptr_array_add(w->unmapped, g_strdup_printf("%s: maps to %s, which '%s' already provides", t->name, canonical,
                                                     prev->t->name));
        return;
    }
    sd_weight *x = g_new0(sd_weight, 1);
    x->name = g_strdup(canonical);
    x->component = component_of(canonical);
    x->t = t;
    x->ndim = t->ndim;
    memcpy(x->shape, t->shape, sizeof x->shape);
    if (!squeeze && is_vae_attn_proj(canonical, "weight")) squeeze = true;
    if (squeeze && t->ndim == 4 && t->shape[2] == 1 && t->shape[3] == 1) {
        x->ndim = 2;
        x->shape[2] = x->shape[3] = 1;
        x->reshaped = true;
    } else if (is_vae_attn_proj(canonical, "bias") && t->ndim > 1) {
        /* [C, 1, 1] biases, as converters that write the projections as
         * 1x1 convolutions leave them */
        bool ones = true;
        for (int i = 1; i < t->ndim; i++) ones &= t->shape[i] == 1;
        if (ones) {
            x->ndim = 1;
            for (int i = 1; i < ST_MAX_DIMS; i++) x->shape[i] = 1;
            x->reshaped = true;
        }
    }
    w->has[x->component] = true;
    g_ptr_array_add(w->weights, x);
    g_hash_table_insert(w->by_name, (char *)x->name, x);
}

/* LDM block layout from a checkpoint's names: the first UNet downsampler
 * index is L+1; the decoder has as many levels as distinct up.N. */
static sd_ldm_layout detect_ldm_layout(const st_file *f) {
    sd_ldm_layout lay = sd_ldm_layout_default();
    int first_op = -1, max_in = -1, max_up = -1;
    for (int i = 0; i < st_count(f); i++) {
        const char *s = st_at(f, i)->name;
        int v[26] = {0};
        if (tp_match("model.diffusion_model.input_blocks.{a}.0.op.", s, v) > 0) {
            if (first_op < 0 || v[0] < first_op) first_op = v[0];
        } else if (tp_match("model.diffusion_model.input_blocks.{a}.", s, v) > 0) {
            if (v[0] > max_in) max_in = v[0];
        } else if (tp_match("first_stage_model.decoder.up.{a}.", s, v) > 0) {
            if (v[0] > max_up) max_up = v[0];
        }
    }
    if (first_op > 1) lay.unet_layers_per_block = first_op - 1;
    else if (max_in >= 1) /* a single level: no downsampler */ lay.unet_layers_per_block = max_in;
    if (max_up >= 0 && max_up < 64) lay.vae_levels = max_up + 1;
    /* which up levels have attention (only needed for canonical -> LDM) */
    const int L1 = lay.unet_layers_per_block + 1;
    for (int i = 0; i < (int)G_N_ELEMENTS(lay.unet_up_has_attn); i++) {
        char p[96];
        snprintf(p, sizeof p, "model.diffusion_model.output_blocks.%d.1.", i * L1);
        bool attn = false;
        for (int k = 0; k < st_count(f) && !attn; k++) {
            const char *s = st_at(f, k)->name;
            if (g_str_has_prefix(s, p) && !g_str_has_prefix(s + strlen(p), "conv.")) attn = true;
        }
        lay.unet_up_has_attn[i] = attn;
    }
    return lay;
}

static void finish(sd_weights *w) {
    g_ptr_array_sort(w->weights, cmp_weight);
    const char *dir = NULL;
    char *parent = NULL;
    if (w->layout == SD_LAYOUT_DIFFUSERS) {
        dir = w->path;
    } else {
        parent = g_path_get_dirname(w->path);
        dir = parent;
    }
    if (w->layout == SD_LAYOUT_SINGLE_FILE) /* configs beside a single file: <dir>/unet/config.json, ... */
        for (int c = 0; c < SD_COMPONENT_COUNT; c++) {
            char *cfg = g_build_filename(dir, sd_component_name(c), "config.json", NULL);
            if (!w->config_path[c] && w->has[c] && g_file_test(cfg, G_FILE_TEST_IS_REGULAR)) w->config_path[c] = cfg;
            else g_free(cfg);
        }
    char *tok = g_build_filename(dir, "tokenizer", NULL);
    if (g_file_test(tok, G_FILE_TEST_IS_DIR)) w->tokenizer_dir = tok;
    else g_free(tok);
    g_free(parent);
}

/* A checkpoint of another model family, by its characteristic names: the
 * family's name ("SDXL", ...) and the name that gave it away, or NULL. */
static const char *checkpoint_family(const st_file *f, const char **evidence) {
    static const struct {
        const char *prefix, *family;
    } SIGNS[] = {
        {"conditioner.embedders.", "SDXL"},
        {"cond_stage_model.model.transformer.", "SD 2.x (OpenCLIP ViT-H text encoder)"},
        {"cond_stage_model.model.token_embedding.", "SD 2.x (OpenCLIP ViT-H text encoder)"},
        {"model.diffusion_model.joint_blocks.", "SD 3"},
        {"text_encoders.", "SD 3"},
        {"model.diffusion_model.double_blocks.", "Flux"},
        {"double_blocks.", "Flux"},
    };
    /* a file with SD 1.x's own text encoder is SD 1.x, whatever else it carries */
    for (int i = 0; i < st_count(f); i++)
        if (g_str_has_prefix(st_at(f, i)->name, "cond_stage_model.transformer.")) return NULL;
    for (int i = 0; i < st_count(f); i++) {
        const char *n = st_at(f, i)->name;
        for (size_t k = 0; k < G_N_ELEMENTS(SIGNS); k++)
            if (g_str_has_prefix(n, SIGNS[k].prefix)) {
                *evidence = n;
                return SIGNS[k].family;
            }
    }
    return NULL;
}

/* LitEma's name of a model.diffusion_model.* tensor: "model_ema." + the
 * name after "model." without its dots. */
static char *ema_name(const char *ldm) {
    GString *g = g_string_new("model_ema.");
    for (const char *p = ldm + strlen("model."); *p; p++)
        if (*p != '.') g_string_append_c(g, *p);
    return g_string_free(g, FALSE);
}

static bool same_tensor_shape(const st_tensor *a, const st_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

/* The EMA choice for a single file (sd_ema_mode). */
static void choose_ema(sd_weights *w, const st_file *f, sd_ema_mode mode) {
    for (int i = 0; i < st_count(f); i++) {
        const char *n = st_at(f, i)->name;
        if (g_str_has_prefix(n, "model_ema.") && strcmp(n, "model_ema.decay") && strcmp(n, "model_ema.num_updates"))
            w->n_ema++;
    }
    if (!w->n_ema) {
        if (mode == SD_EMA_ON)
            snprintf(w->ema_note, sizeof w->ema_note,
                     "EMA asked for, but the file has no EMA copy (model_ema.*): its only UNet is used");
        return;
    }
    if (!w->has[SD_UNET]) {
        snprintf(w->ema_note, sizeof w->ema_note,
                 "the file has only an EMA copy of the UNet (%d model_ema.* tensors) and no model.diffusion_model.*",
                 w->n_ema);
    }
    if (mode != SD_EMA_ON && w->has[SD_UNET]) {
        snprintf(w->ema_note, sizeof w->ema_note,
                 "%d EMA tensors (model_ema.*) not used: the trained weights are, as diffusers and AUTOMATIC1111 "
                 "do by default (ema=yes uses the EMA copy)",
                 w->n_ema);
        return;
    }
    if (!w->has[SD_UNET] && mode == SD_EMA_OFF) return;
    int replaced = 0, absent = 0;
    for (guint i = 0; i < w->weights->len; i++) {
        sd_weight *x = g_ptr_array_index(w->weights, i);
        if (x->component != SD_UNET || !g_str_has_prefix(x->t->name, "model.diffusion_model.")) continue;
        char *en = ema_name(x->t->name);
        const st_tensor *e = st_get(f, en);
        g_free(en);
        if (e && same_tensor_shape(e, x->t)) {
            x->t = e;
            replaced++;
        } else {
            absent++;
        }
    }
    w->ema_used = replaced > 0;
    snprintf(w->ema_note, sizeof w->ema_note, "EMA copy used for %d UNet tensors%s (ema=yes)", replaced,
             absent ? " (some had none: their trained weights are used)" : "");
}

static ie_status open_single(sd_weights *w, sd_ema_mode ema, char *err, size_t errlen) {
    st_file *f = NULL;
    ie_status st = st_open(w->path, &f, err, errlen);
    if (st != IE_OK) return st;
    w->files[0] = f;
    const char *evidence = NULL, *family = checkpoint_family(f, &evidence);
    if (family) {
        ie_set_err(err, errlen, "%s: this is an %s checkpoint (it has %s); invedit edits with SD 1.x models", w->path,
                   family, evidence);
        return IE_ERR_UNSUPPORTED;
    }
    w->lay = detect_ldm_layout(f);
    int n_unknown = 0;
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        char canon[512];
        bool squeeze = false;
        sd_name_kind k = sd_name_from_ldm(t->name, &w->lay, canon, sizeof canon, &squeeze);
        if (k == SD_NAME_WEIGHT) {
            add_weight(w, canon, t, squeeze);
        } else if (k == SD_NAME_IGNORED) {
            w->n_ignored++;
        } else {
            n_unknown++;
            g_ptr_array_add(w->unmapped,
                            g_strdup_printf("%s: not an SD 1.x UNet, VAE or text-encoder tensor", t->name));
        }
    }
    for (int c = 0; c < SD_COMPONENT_COUNT; c++) {
        w->naming[c] = "LDM";
        if (w->has[c]) {
            w->file_path[c] = g_strdup(w->path);
        } else {
            static const char *const PFX[] = {"model.diffusion_model.", "first_stage_model.",
                                              "cond_stage_model.transformer."};
            w->missing[c] =
                g_strdup_printf("%s: no %s tensors (names starting with %s)", w->path, sd_component_name(c), PFX[c]);
        }
    }
    if (!w->has[SD_UNET] && !w->has[SD_VAE] && !w->has[SD_TEXT_ENCODER]) {
        bool diffusers_like =
            st_get(f, "conv_in.weight") != NULL || st_get(f, "text_model.embeddings.token_embedding.weight") != NULL;
        ie_set_err(err, errlen,
                   "%s: no SD 1.x checkpoint tensors (names starting with model.diffusion_model., "
                   "first_stage_model. or cond_stage_model.transformer.; %d tensors, %d unknown)%s",
                   w->path, st_count(f), n_unknown,
                   diffusers_like ? ". It looks like one component of a diffusers folder: open the "
                                    "folder instead"
                                  : "");
        return IE_ERR_FORMAT;
    }
    choose_ema(w, f, ema);
    return IE_OK;
}

/* --- a separate VAE ---------------------------------------------------------------- */

static void drop_component(sd_weights *w, sd_component c) {
    for (guint i = w->weights->len; i-- > 0;) {
        sd_weight *x = g_ptr_array_index(w->weights, i);
        if (x->component != c) continue;
        g_hash_table_remove(w->by_name, x->name);
        g_ptr_array_remove_index(w->weights, i);
    }
    w->has[c] = false;
}

static ie_status replace_vae(sd_weights *w, const char *vpath, char *err, size_t errlen) {
    static const char *const FILES[] = {"diffusion_pytorch_model.safetensors",
                                        "diffusion_pytorch_model.fp16.safetensors"};
    char *file = NULL, *cfg = NULL;
    if (!g_file_test(vpath, G_FILE_TEST_EXISTS)) {
        ie_set_err(err, errlen, "VAE %s: no such file or folder", vpath);
        return IE_ERR_IO;
    }
    if (g_file_test(vpath, G_FILE_TEST_IS_DIR)) {
        char *sub = g_build_filename(vpath, "vae", NULL);
        char *dir = g_file_test(sub, G_FILE_TEST_IS_DIR) ? sub : g_strdup(vpath);
        if (dir != sub) g_free(sub);
        for (size_t k = 0; k < G_N_ELEMENTS(FILES) && !file; k++) {
            char *p = g_build_filename(dir, FILES[k], NULL);
            if (g_file_test(p, G_FILE_TEST_IS_REGULAR)) file = p;
            else g_free(p);
        }
        cfg = g_build_filename(dir, "config.json", NULL);
        if (!g_file_test(cfg, G_FILE_TEST_IS_REGULAR)) g_clear_pointer(&cfg, g_free);
        if (!file) {
            ie_set_err(err, errlen, "VAE %s: a folder without %s (a diffusers vae/ folder is expected)", dir, FILES[0]);
            g_free(dir);
            g_free(cfg);
            return IE_ERR_FORMAT;
        }
        g_free(dir);
    } else {
        file = g_strdup(vpath);
    }
    st_file *f = NULL;
    ie_status st = st_open(file, &f, err, errlen);
    if (st) {
        g_free(file);
        g_free(cfg);
        return st;
    }
    /* what the file holds */
    int n_full = 0, n_ldm = 0, n_diff = 0, n_unet = 0, n_text = 0, max_up = -1;
    for (int i = 0; i < st_count(f); i++) {
        const char *n = st_at(f, i)->name;
        int v[26] = {0};
        if (g_str_has_prefix(n, "first_stage_model.")) n_full++;
        else if (g_str_has_prefix(n, "encoder.down.") || g_str_has_prefix(n, "decoder.up.") ||
                 g_str_has_prefix(n, "encoder.mid.") || g_str_has_prefix(n, "decoder.mid."))
            n_ldm++;
        else if (g_str_has_prefix(n, "encoder.down_blocks.") || g_str_has_prefix(n, "decoder.up_blocks.") ||
                 g_str_has_prefix(n, "encoder.mid_block.") || g_str_has_prefix(n, "decoder.mid_block."))
            n_diff++;
        else if (g_str_has_prefix(n, "model.diffusion_model.") || g_str_has_prefix(n, "time_embedding.") ||
                 g_str_has_prefix(n, "down_blocks.") || g_str_has_prefix(n, "up_blocks."))
            n_unet++;
        else if (g_str_has_prefix(n, "text_model.") || g_str_has_prefix(n, "cond_stage_model.")) n_text++;
        if (tp_match("first_stage_model.decoder.up.{a}.", n, v) > 0 || tp_match("decoder.up.{a}.", n, v) > 0)
            if (v[0] > max_up && v[0] < 64) max_up = v[0];
    }
    const char *evidence = NULL, *family = checkpoint_family(f, &evidence);
    if (!n_full && !n_ldm && !n_diff) {
        ie_set_err(err, errlen, "VAE %s: not a VAE: %s", file,
                   family   ? family
                   : n_unet ? "it holds a UNet (e.g. time_embedding / model.diffusion_model tensors)"
                   : n_text ? "it holds a text encoder"
                            : "no encoder.* / decoder.* / first_stage_model.* tensors");
        st_close(f);
        g_free(file);
        g_free(cfg);
        return IE_ERR_FORMAT;
    }
    sd_ldm_layout lay = w->lay;
    if (max_up >= 0) lay.vae_levels = max_up + 1;
    drop_component(w, SD_VAE);
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        char canon[512];
        bool squeeze = false;
        sd_name_kind k;
        if (n_full) {
            if (!g_str_has_prefix(t->name, "first_stage_model.")) continue; /* the rest of a checkpoint */
            k = sd_name_from_ldm(t->name, &lay, canon, sizeof canon, &squeeze);
        } else if (n_ldm) {
            char *full = g_strconcat("first_stage_model.", t->name, NULL);
            k = sd_name_is_ignored(t->name) ? SD_NAME_IGNORED
                                            : sd_name_from_ldm(full, &lay, canon, sizeof canon, &squeeze);
            g_free(full);
        } else {
            k = sd_name_from_diffusers(SD_VAE, t->name, canon, sizeof canon);
        }
        if (k == SD_NAME_WEIGHT && g_str_has_prefix(canon, "vae.")) add_weight(w, canon, t, squeeze);
        else if (k == SD_NAME_IGNORED) w->n_ignored++;
        else g_ptr_array_add(w->unmapped, g_strdup_printf("%s (VAE %s): not a VAE tensor", t->name, file));
    }
    w->vae_file = f;
    w->has[SD_VAE] = true;
    w->naming[SD_VAE] = n_diff && !n_full && !n_ldm ? "diffusers" : "LDM";
    g_free(w->file_path[SD_VAE]);
    w->file_path[SD_VAE] = file;
    g_clear_pointer(&w->missing[SD_VAE], g_free);
    if (cfg) { /* a folder's own config; a single file keeps the model's (its scaling_factor) */
        g_free(w->config_path[SD_VAE]);
        w->config_path[SD_VAE] = cfg;
    }
    g_ptr_array_sort(w->weights, cmp_weight);
    return IE_OK;
}

static ie_status open_folder(sd_weights *w, char *err, size_t errlen) {
    static const char *const FILES[SD_COMPONENT_COUNT][2] = {
        {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"},
        {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"},
        {"model.safetensors", "model.fp16.safetensors"},
    };
    char *index = g_build_filename(w->path, "model_index.json", NULL);
    bool is_diffusers = g_file_test(index, G_FILE_TEST_IS_REGULAR);
    g_free(index);
    for (int c = 0; c < SD_COMPONENT_COUNT; c++) {
        char *sub = g_build_filename(w->path, sd_component_name(c), NULL);
        if (g_file_test(sub, G_FILE_TEST_IS_DIR)) is_diffusers = true;
        g_free(sub);
    }
    if (!is_diffusers) {
        ie_set_err(err, errlen,
                   "%s: not a diffusers model folder (no model_index.json and no unet/, vae/ or "
                   "text_encoder/ subfolder)",
                   w->path);
        return IE_ERR_FORMAT;
    }
    int n_found = 0;
    for (int c = 0; c < SD_COMPONENT_COUNT; c++) {
        const char *cn = sd_component_name(c);
        char *file = NULL;
        for (int k = 0; k < 2 && !file; k++) {
            char *p = g_build_filename(w->path, cn, FILES[c][k], NULL);
            if (g_file_test(p, G_FILE_TEST_IS_REGULAR)) file = p;
            else g_free(p);
        }
        char *cfg = g_build_filename(w->path, cn, "config.json", NULL);
        if (g_file_test(cfg, G_FILE_TEST_IS_REGULAR)) w->config_path[c] = cfg;
        else g_free(cfg);
        if (!file) {
            char *bin = g_build_filename(
                w->path, cn, c == SD_TEXT_ENCODER ? "pytorch_model.bin" : "diffusion_pytorch_model.bin", NULL);
            bool has_bin = g_file_test(bin, G_FILE_TEST_IS_REGULAR);
            g_free(bin);
            w->missing[c] =
                g_strdup_printf("%s: no %s/%s (nor %s)%s", w->path, cn, FILES[c][0], FILES[c][1],
                                has_bin ? "; only PyTorch .bin weights are there: convert them to safetensors" : "");
            continue;
        }
        st_file *f = NULL;
        ie_status st = st_open(file, &f, err, errlen);
        if (st != IE_OK) {
            g_free(file);
            return st;
        }
        w->files[c] = f;
        w->file_path[c] = file;
        n_found++;
        for (int i = 0; i < st_count(f); i++) {
            const st_tensor *t = st_at(f, i);
            char canon[512];
            if (sd_name_from_diffusers(c, t->name, canon, sizeof canon) == SD_NAME_IGNORED) w->n_ignored++;
            else add_weight(w, canon, t, false);
        }
        w->has[c] = true; /* even if the file holds no tensors: the check reports them */
        w->naming[c] = "diffusers";
    }
    if (!n_found) {
        ie_set_err(err, errlen, "%s: diffusers folder without weights: %s; %s; %s", w->path, w->missing[0],
                   w->missing[1], w->missing[2]);
        return IE_ERR_FORMAT;
    }
    return IE_OK;
}

ie_status sd_weights_open(const char *path, sd_weights **out, char *err, size_t errlen) {
    return sd_weights_open_with(path, NULL, out, err, errlen);
}

bool sd_ema_mode_from_name(const char *s, sd_ema_mode *out) {
    static const struct {
        const char *name;
        sd_ema_mode m;
    } N[] = {{"auto", SD_EMA_AUTO}, {"", SD_EMA_AUTO},  {"no", SD_EMA_OFF}, {"off", SD_EMA_OFF}, {"false", SD_EMA_OFF},
             {"0", SD_EMA_OFF},     {"yes", SD_EMA_ON}, {"on", SD_EMA_ON},  {"true", SD_EMA_ON}, {"1", SD_EMA_ON}};
    for (size_t k = 0; k < G_N_ELEMENTS(N); k++)
        if (!g_ascii_strcasecmp(s ? s : "", N[k].name)) {
            *out = N[k].m;
            return true;
        }
    return false;
}

const char *sd_ema_mode_name(sd_ema_mode m) { return m == SD_EMA_ON ? "yes" : m == SD_EMA_OFF ? "no" : "auto"; }

ie_status sd_weights_open_with(const char *path, const sd_source_options *opt, sd_weights **out, char *err,
                               size_t errlen) {
    *out = NULL;
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        ie_set_err(err, errlen, "%s: no such file or folder", path);
        return IE_ERR_IO;
    }
    sd_weights *w = g_new0(sd_weights, 1);
    w->path = g_strdup(path);
    w->lay = sd_ldm_layout_default();
    w->weights = g_ptr_array_new_with_free_func(free_weight);
    w->by_name = g_hash_table_new(g_str_hash, g_str_equal);
    w->unmapped = g_ptr_array_new_with_free_func(g_free);
    ie_status st;
    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        w->layout = SD_LAYOUT_DIFFUSERS;
        st = open_folder(w, err, errlen);
    } else {
        w->layout = SD_LAYOUT_SINGLE_FILE;
        st = open_single(w, opt ? opt->ema : SD_EMA_AUTO, err, errlen);
    }
    if (st == IE_OK && opt && opt->vae && *opt->vae) st = replace_vae(w, opt->vae, err, errlen);
    if (st != IE_OK) {
        sd_weights_close(w);
        return st;
    }
    finish(w);
    *out = w;
    return IE_OK;
}

sd_layout_kind sd_weights_layout(const sd_weights *w) { return w->layout; }
const char *sd_weights_path(const sd_weights *w) { return w->path; }
sd_ldm_layout sd_weights_ldm_layout(const sd_weights *w) { return w->lay; }

bool sd_weights_has(const sd_weights *w, sd_component c) { return (unsigned)c < SD_COMPONENT_COUNT && w->has[c]; }
const char *sd_weights_file(const sd_weights *w, sd_component c) {
    return (unsigned)c < SD_COMPONENT_COUNT ? w->file_path[c] : NULL;
}
const char *sd_weights_missing_reason(const sd_weights *w, sd_component c) {
    return (unsigned)c < SD_COMPONENT_COUNT ? w->missing[c] : NULL;
}
const char *sd_weights_config_path(const sd_weights *w, sd_component c) {
    return (unsigned)c < SD_COMPONENT_COUNT ? w->config_path[c] : NULL;
}
const char *sd_weights_tokenizer_dir(const sd_weights *w) { return w->tokenizer_dir; }

const sd_weight *sd_weights_get(const sd_weights *w, const char *canonical) {
    return canonical ? g_hash_table_lookup(w->by_name, canonical) : NULL;
}
int sd_weights_count(const sd_weights *w) { return (int)w->weights->len; }
const sd_weight *sd_weights_at(const sd_weights *w, int i) {
    return (i >= 0 && i < (int)w->weights->len) ? g_ptr_array_index(w->weights, i) : NULL;
}
int sd_weights_unmapped_count(const sd_weights *w) { return (int)w->unmapped->len; }
const char *sd_weights_unmapped_at(const sd_weights *w, int i) {
    return (i >= 0 && i < (int)w->unmapped->len) ? g_ptr_array_index(w->unmapped, i) : NULL;
}
int sd_weights_ignored_count(const sd_weights *w) { return w->n_ignored; }

const char *sd_weights_naming(const sd_weights *w, sd_component c) {
    return (unsigned)c < SD_COMPONENT_COUNT && w->naming[c] ? w->naming[c] : "-";
}
int sd_weights_ema_count(const sd_weights *w) { return w->n_ema; }
bool sd_weights_ema_used(const sd_weights *w) { return w->ema_used; }
const char *sd_weights_ema_note(const sd_weights *w) { return w->ema_note; }
void sd_weights_set_lora(sd_weights *w, const struct sd_lora_set *lora) { w->lora = lora; }
const struct sd_lora_set *sd_weights_lora(const sd_weights *w) { return w->lora; }
