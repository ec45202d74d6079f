/* SD 1.x configs: config.json parsing (json-glib), detection from shapes and
 * the weight check (the expected tensors come from tensors.c). See config.h. */
#include "model/config.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/errmsg.h"
#include "model/json_kind.h"

/* --- defaults ------------------------------------------------------------ */

void sd_unet_config_default(sd_unet_config *c) {
    static const int boc[4] = {320, 640, 1280, 1280};
    memset(c, 0, sizeof *c);
    c->in_channels = 4;
    c->out_channels = 4;
    c->n_levels = 4;
    for (int i = 0; i < 4; i++) {
        c->block_out_channels[i] = boc[i];
        c->down_cross_attn[i] = i < 3;
        c->up_cross_attn[i] = i > 0;
    }
    for (int i = 0; i < SD_MAX_LEVELS; i++) c->heads[i] = 8;
    c->layers_per_block = 2;
    c->transformer_layers_per_block = 1;
    c->cross_attention_dim = 768;
    c->norm_num_groups = 32;
    c->norm_eps = 1e-5f;
    c->time_cond_proj_dim = 0;
    c->sample_size = 64;
    c->use_linear_projection = false;
    c->flip_sin_to_cos = true;
    c->freq_shift = 0;
    c->downsample_padding = 1;
}

void sd_vae_config_default(sd_vae_config *c) {
    static const int boc[4] = {128, 256, 512, 512};
    memset(c, 0, sizeof *c);
    c->in_channels = 3;
    c->out_channels = 3;
    c->n_levels = 4;
    for (int i = 0; i < 4; i++) c->block_out_channels[i] = boc[i];
    c->layers_per_block = 2;
    c->latent_channels = 4;
    c->norm_num_groups = 32;
    c->scaling_factor = 0.18215f;
    c->sample_size = 512;
    c->mid_block_add_attention = true;
    c->use_quant_conv = c->use_post_quant_conv = true;
}

void sd_clip_text_config_default(sd_clip_text_config *c) {
    memset(c, 0, sizeof *c);
    c->hidden_size = 768;
    c->intermediate_size = 3072;
    c->num_attention_heads = 12;
    c->num_hidden_layers = 12;
    c->max_position_embeddings = 77;
    c->vocab_size = 49408;
    c->hidden_act = SD_CLIP_QUICK_GELU;
    c->layer_norm_eps = 1e-5f;
}

/* --- JSON field readers ---------------------------------------------------
 * Absent or null fields keep the value already in the struct. */

typedef struct jctx {
    const char *label;
    char *err;
    size_t errlen;
    ie_status st;
} jctx;

static bool fail(jctx *j, ie_status st, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static bool fail(jctx *j, ie_status st, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ie_set_err(j->err, j->errlen, "%s: %s", j->label, msg);
    j->st = st;
    return false;
}

static JsonNode *field(JsonObject *o, const char *name) {
    JsonNode *n = json_object_get_member(o, name);
    return (n && !JSON_NODE_HOLDS_NULL(n)) ? n : NULL;
}

static bool is_int(JsonNode *n) { return JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64; }

static bool int_in(jctx *j, JsonNode *n, const char *what, int lo, int hi, int *dst) {
    if (!is_int(n) || json_node_get_int(n) < lo || json_node_get_int(n) > hi) {
        if (is_int(n))
            return fail(j, IE_ERR_FORMAT, "%s: expected an integer in [%d, %d], found %" G_GINT64_FORMAT, what, lo, hi,
                        json_node_get_int(n));
        return fail(j, IE_ERR_FORMAT, "%s: expected an integer in [%d, %d], found %s", what, lo, hi, sd_json_kind(n));
    }
    *dst = (int)json_node_get_int(n);
    return true;
}

static bool get_int(jctx *j, JsonObject *o, const char *name, int lo, int hi, int *dst) {
    JsonNode *n = field(o, name);
    return !n || int_in(j, n, name, lo, hi, dst);
}

static bool get_float(jctx *j, JsonObject *o, const char *name, double lo, double hi, float *dst) {
    JsonNode *n = field(o, name);
    if (!n) return true;
    if (!JSON_NODE_HOLDS_VALUE(n) ||
        (json_node_get_value_type(n) != G_TYPE_DOUBLE && json_node_get_value_type(n) != G_TYPE_INT64))
        return fail(j, IE_ERR_FORMAT, "%s: expected a number, found %s", name, sd_json_kind(n));
    double v = json_node_get_double(n); /* converts integers too */
    if (!(v >= lo && v <= hi))
        return fail(j, IE_ERR_FORMAT, "%s: expected a number in [%g, %g], found %g", name, lo, hi, v);
    *dst = (float)v;
    return true;
}

static bool get_bool(jctx *j, JsonObject *o, const char *name, bool *dst) {
    JsonNode *n = field(o, name);
    if (!n) return true;
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
        return fail(j, IE_ERR_FORMAT, "%s: expected true or false, found %s", name, sd_json_kind(n));
    *dst = json_node_get_boolean(n);
    return true;
}

/* A non-empty integer list of at most max entries. */
static bool get_int_list(jctx *j, JsonObject *o, const char *name, int lo, int hi, int max, int *dst, int *count) {
    JsonNode *n = field(o, name);
    if (!n) return true;
    if (!JSON_NODE_HOLDS_ARRAY(n))
        return fail(j, IE_ERR_FORMAT, "%s: expected a list of integers, found %s", name, sd_json_kind(n));
    JsonArray *a = json_node_get_array(n);
    guint len = json_array_get_length(a);
    if (len < 1 || len > (guint)max)
        return fail(j, IE_ERR_UNSUPPORTED, "%s: %u entries, expected 1 to %d", name, len, max);
    for (guint i = 0; i < len; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s[%u]", name, i);
        if (!int_in(j, json_array_get_element(a, i), what, lo, hi, &dst[i])) return false;
    }
    *count = (int)len;
    return true;
}

/* An integer (used for every level) or a list of n_levels integers. */
static bool get_int_per_level(jctx *j, JsonObject *o, const char *name, int lo, int hi, int n_levels, int *dst) {
    JsonNode *n = field(o, name);
    if (!n) return true;
    if (JSON_NODE_HOLDS_ARRAY(n)) {
        int tmp[SD_MAX_LEVELS], cnt = 0;
        if (!get_int_list(j, o, name, lo, hi, SD_MAX_LEVELS, tmp, &cnt)) return false;
        if (cnt != n_levels)
            return fail(j, IE_ERR_FORMAT, "%s: %d entries, but block_out_channels has %d", name, cnt, n_levels);
        memcpy(dst, tmp, sizeof(int) * (size_t)cnt);
        return true;
    }
    int v;
    if (!int_in(j, n, name, lo, hi, &v)) return false;
    for (int i = 0; i < n_levels; i++) dst[i] = v;
    return true;
}

/* A list of n_levels strings, each `a` (-> false) or `b` (-> true). */
static bool get_block_types(jctx *j, JsonObject *o, const char *name, int n_levels, const char *a, const char *b,
                            bool *dst, bool *given) {
    JsonNode *n = field(o, name);
    *given = n != NULL;
    if (!n) return true;
    if (!JSON_NODE_HOLDS_ARRAY(n))
        return fail(j, IE_ERR_FORMAT, "%s: expected a list of block type names, found %s", name, sd_json_kind(n));
    JsonArray *arr = json_node_get_array(n);
    guint len = json_array_get_length(arr);
    if ((int)len != n_levels)
        return fail(j, IE_ERR_FORMAT, "%s: %u entries, but block_out_channels has %d", name, len, n_levels);
    for (guint i = 0; i < len; i++) {
        JsonNode *e = json_array_get_element(arr, i);
        if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING)
            return fail(j, IE_ERR_FORMAT, "%s[%u]: expected a block type name, found %s", name, i, sd_json_kind(e));
        const char *s = json_node_get_string(e);
        if (strcmp(s, a) == 0) dst[i] = false;
        else if (b && strcmp(s, b) == 0) dst[i] = true;
        else
            return fail(j, IE_ERR_UNSUPPORTED, "%s[%u]: unsupported block type \"%.64s\" (expected %s%s%s)", name, i, s,
                        a, b ? " or " : "", b ? b : "");
    }
    return true;
}

/* The field, when present and not null, must equal `want` (a string). */
static bool want_string(jctx *j, JsonObject *o, const char *name, const char *want) {
    JsonNode *n = field(o, name);
    if (!n) return true;
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return fail(j, IE_ERR_FORMAT, "%s: expected \"%s\", found %s", name, want, sd_json_kind(n));
    if (strcmp(json_node_get_string(n), want) != 0)
        return fail(j, IE_ERR_UNSUPPORTED, "%s: \"%.64s\" is not supported (SD 1.x uses \"%s\")", name,
                    json_node_get_string(n), want);
    return true;
}

/* The field must be absent or null (a feature SD 1.x does not use). */
static bool want_absent(jctx *j, JsonObject *o, const char *name) {
    if (field(o, name))
        return fail(j, IE_ERR_UNSUPPORTED, "%s is set: not an SD 1.x model (unsupported feature)", name);
    return true;
}

static bool want_false(jctx *j, JsonObject *o, const char *name) {
    bool v = false;
    if (!get_bool(j, o, name, &v)) return false;
    if (v) return fail(j, IE_ERR_UNSUPPORTED, "%s: true is not supported (SD 1.x uses false)", name);
    return true;
}

static bool divides(jctx *j, const char *what, int d, const char *of, int idx, int v) {
    if (d <= 0 || v % d != 0) return fail(j, IE_ERR_FORMAT, "%s %d does not divide %s[%d] = %d", what, d, of, idx, v);
    return true;
}

/* Parses json into a root object; the caller unrefs the parser. */
static JsonObject *parse_root(jctx *j, const char *json, size_t len, JsonParser **parser) {
    *parser = json_parser_new();
    GError *gerr = NULL;
    if (len > (size_t)G_MAXSSIZE / 2) {
        fail(j, IE_ERR_FORMAT, "too large");
        return NULL;
    }
    if (!g_utf8_validate(json, (gssize)len, NULL)) {
        fail(j, IE_ERR_FORMAT, "not valid UTF-8 JSON");
        return NULL;
    }
    if (!json_parser_load_from_data(*parser, json, (gssize)len, &gerr)) {
        fail(j, IE_ERR_FORMAT, "not valid JSON: %s", gerr ? gerr->message : "parse error");
        if (gerr) g_error_free(gerr);
        return NULL;
    }
    JsonNode *root = json_parser_get_root(*parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        fail(j, IE_ERR_FORMAT, "expected a JSON object, found %s", root ? sd_json_kind(root) : "nothing");
        return NULL;
    }
    return json_node_get_object(root);
}

ie_status sd_unet_config_parse(const char *json, size_t len, const char *label, sd_unet_config *c, char *err,
                               size_t errlen) {
    jctx j = {label ? label : "unet config", err, errlen, IE_OK};
    JsonParser *parser = NULL;
    JsonObject *o = parse_root(&j, json, len, &parser);
    sd_unet_config_default(c);
    bool ok = o != NULL;
    bool given = false;
    ok = ok && get_int_list(&j, o, "block_out_channels", 1, 65536, SD_MAX_LEVELS, c->block_out_channels, &c->n_levels);
    /* default block types for any level count: attention everywhere but the
     * deepest down level and the first up level (SD 1.5 for 4 levels) */
    for (int i = 0; ok && i < SD_MAX_LEVELS; i++) {
        c->down_cross_attn[i] = i < c->n_levels - 1;
        c->up_cross_attn[i] = i > 0 && i < c->n_levels;
    }
    ok = ok && get_int(&j, o, "in_channels", 1, 65536, &c->in_channels);
    ok = ok && get_int(&j, o, "out_channels", 1, 65536, &c->out_channels);
    ok = ok && get_int(&j, o, "layers_per_block", 1, SD_MAX_LAYERS_PER_BLOCK, &c->layers_per_block);
    ok = ok && get_block_types(&j, o, "down_block_types", c->n_levels, "DownBlock2D", "CrossAttnDownBlock2D",
                               c->down_cross_attn, &given);
    ok = ok && get_block_types(&j, o, "up_block_types", c->n_levels, "UpBlock2D", "CrossAttnUpBlock2D",
                               c->up_cross_attn, &given);
    ok = ok && want_string(&j, o, "mid_block_type", "UNetMidBlock2DCrossAttn");
    /* heads: num_attention_heads wins over attention_head_dim (diffusers) */
    if (ok && field(o, "num_attention_heads"))
        ok = get_int_per_level(&j, o, "num_attention_heads", 1, 4096, c->n_levels, c->heads);
    else ok = ok && get_int_per_level(&j, o, "attention_head_dim", 1, 4096, c->n_levels, c->heads);
    if (ok && field(o, "transformer_layers_per_block")) {
        int t[SD_MAX_LEVELS] = {0};
        ok = get_int_per_level(&j, o, "transformer_layers_per_block", 1, 16, c->n_levels, t);
        for (int i = 1; i < c->n_levels && ok; i++)
            if (t[i] != t[0])
                ok = fail(&j, IE_ERR_UNSUPPORTED,
                          "transformer_layers_per_block: different values per level are not "
                          "supported");
        if (ok) c->transformer_layers_per_block = t[0];
    }
    ok = ok && get_int(&j, o, "cross_attention_dim", 1, 65536, &c->cross_attention_dim);
    ok = ok && get_int(&j, o, "norm_num_groups", 1, 65536, &c->norm_num_groups);
    ok = ok && get_float(&j, o, "norm_eps", 0, 1, &c->norm_eps);
    ok = ok && get_int(&j, o, "time_cond_proj_dim", 1, 65536, &c->time_cond_proj_dim);
    ok = ok && get_int(&j, o, "sample_size", 1, 65536, &c->sample_size);
    ok = ok && get_bool(&j, o, "use_linear_projection", &c->use_linear_projection);
    ok = ok && get_bool(&j, o, "flip_sin_to_cos", &c->flip_sin_to_cos);
    ok = ok && get_float(&j, o, "freq_shift", -65536, 65536, &c->freq_shift);
    ok = ok && get_int(&j, o, "downsample_padding", 0, 16, &c->downsample_padding);
    /* features SD 1.x does not have */
    ok = ok && want_string(&j, o, "act_fn", "silu");
    ok = ok && want_string(&j, o, "resnet_time_scale_shift", "default");
    ok = ok && want_string(&j, o, "time_embedding_type", "positional");
    ok = ok && want_absent(&j, o, "class_embed_type");
    ok = ok && want_absent(&j, o, "addition_embed_type");
    ok = ok && want_absent(&j, o, "encoder_hid_dim");
    ok = ok && want_absent(&j, o, "time_embedding_dim");
    ok = ok && want_absent(&j, o, "timestep_post_act");
    ok = ok && want_false(&j, o, "only_cross_attention");
    ok = ok && want_false(&j, o, "dual_cross_attention");
    ok = ok && want_false(&j, o, "center_input_sample");
    int k = 3;
    ok = ok && get_int(&j, o, "conv_in_kernel", 3, 3, &k);
    ok = ok && get_int(&j, o, "conv_out_kernel", 3, 3, &k);
    for (int i = 0; ok && i < c->n_levels; i++) {
        ok = divides(&j, "norm_num_groups", c->norm_num_groups, "block_out_channels", i, c->block_out_channels[i]);
        if (ok && (c->down_cross_attn[i] || c->up_cross_attn[i] || i == c->n_levels - 1))
            ok = divides(&j, "the head count (attention_head_dim)", c->heads[i], "block_out_channels", i,
                         c->block_out_channels[i]);
    }
    if (parser) g_object_unref(parser);
    return ok ? IE_OK : j.st;
}

ie_status sd_vae_config_parse(const char *json, size_t len, const char *label, sd_vae_config *c, char *err,
                              size_t errlen) {
    jctx j = {label ? label : "vae config", err, errlen, IE_OK};
    JsonParser *parser = NULL;
    JsonObject *o = parse_root(&j, json, len, &parser);
    sd_vae_config_default(c);
    bool ok = o != NULL, given;
    bool types[SD_MAX_LEVELS];
    ok = ok && get_int_list(&j, o, "block_out_channels", 1, 65536, SD_MAX_LEVELS, c->block_out_channels, &c->n_levels);
    ok = ok && get_int(&j, o, "in_channels", 1, 65536, &c->in_channels);
    ok = ok && get_int(&j, o, "out_channels", 1, 65536, &c->out_channels);
    ok = ok && get_int(&j, o, "layers_per_block", 1, SD_MAX_LAYERS_PER_BLOCK, &c->layers_per_block);
    ok = ok && get_int(&j, o, "latent_channels", 1, 65536, &c->latent_channels);
    ok = ok && get_int(&j, o, "norm_num_groups", 1, 65536, &c->norm_num_groups);
    ok = ok && get_float(&j, o, "scaling_factor", 1e-9, 1e9, &c->scaling_factor);
    ok = ok && get_int(&j, o, "sample_size", 1, 65536, &c->sample_size);
    ok = ok && get_bool(&j, o, "mid_block_add_attention", &c->mid_block_add_attention);
    ok = ok && get_bool(&j, o, "use_quant_conv", &c->use_quant_conv);
    ok = ok && get_bool(&j, o, "use_post_quant_conv", &c->use_post_quant_conv);
    ok = ok && get_block_types(&j, o, "down_block_types", c->n_levels, "DownEncoderBlock2D", NULL, types, &given);
    ok = ok && get_block_types(&j, o, "up_block_types", c->n_levels, "UpDecoderBlock2D", NULL, types, &given);
    ok = ok && want_string(&j, o, "act_fn", "silu");
    ok = ok && want_absent(&j, o, "shift_factor");
    ok = ok && want_absent(&j, o, "latents_mean");
    for (int i = 0; ok && i < c->n_levels; i++)
        ok = divides(&j, "norm_num_groups", c->norm_num_groups, "block_out_channels", i, c->block_out_channels[i]);
    if (parser) g_object_unref(parser);
    return ok ? IE_OK : j.st;
}

ie_status sd_clip_text_config_parse(const char *json, size_t len, const char *label, sd_clip_text_config *c, char *err,
                                    size_t errlen) {
    jctx j = {label ? label : "text_encoder config", err, errlen, IE_OK};
    JsonParser *parser = NULL;
    JsonObject *o = parse_root(&j, json, len, &parser);
    sd_clip_text_config_default(c);
    bool ok = o != NULL;
    ok = ok && get_int(&j, o, "hidden_size", 1, 65536, &c->hidden_size);
    ok = ok && get_int(&j, o, "intermediate_size", 1, 1 << 20, &c->intermediate_size);
    ok = ok && get_int(&j, o, "num_attention_heads", 1, 4096, &c->num_attention_heads);
    ok = ok && get_int(&j, o, "num_hidden_layers", 1, 1024, &c->num_hidden_layers);
    ok = ok && get_int(&j, o, "max_position_embeddings", 1, 65536, &c->max_position_embeddings);
    ok = ok && get_int(&j, o, "vocab_size", 1, 1 << 24, &c->vocab_size);
    ok = ok && get_float(&j, o, "layer_norm_eps", 0, 1, &c->layer_norm_eps);
    JsonNode *act = o ? field(o, "hidden_act") : NULL;
    if (ok && act) {
        const char *s = JSON_NODE_HOLDS_VALUE(act) && json_node_get_value_type(act) == G_TYPE_STRING
                            ? json_node_get_string(act)
                            : NULL;
        if (!s) ok = fail(&j, IE_ERR_FORMAT, "hidden_act: expected a string, found %s", sd_json_kind(act));
        else if (strcmp(s, "quick_gelu") == 0) c->hidden_act = SD_CLIP_QUICK_GELU;
        else if (strcmp(s, "gelu") == 0) c->hidden_act = SD_CLIP_GELU;
        else
            ok =
                fail(&j, IE_ERR_UNSUPPORTED, "hidden_act: \"%.64s\" is not supported (expected quick_gelu or gelu)", s);
    }
    if (ok && c->hidden_size % c->num_attention_heads != 0)
        ok = fail(&j, IE_ERR_FORMAT, "num_attention_heads %d does not divide hidden_size %d", c->num_attention_heads,
                  c->hidden_size);
    if (parser) g_object_unref(parser);
    return ok ? IE_OK : j.st;
}

/* --- detection from shapes ---------------------------------------------- */

static const sd_weight *getf(const sd_weights *w, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static const sd_weight *getf(const sd_weights *w, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return sd_weights_get(w, name);
}

static bool dim_ok(int64_t d) { return d >= 1 && d <= 1 << 24; }

ie_status sd_unet_config_detect(const sd_weights *w, sd_unet_config *c, char *err, size_t errlen) {
    sd_unet_config_default(c);
    const sd_weight *ci = sd_weights_get(w, "unet.conv_in.weight");
    if (!ci || ci->ndim != 4 || !dim_ok(ci->shape[0]) || !dim_ok(ci->shape[1])) {
        ie_set_err(err, errlen, "%s: cannot detect the UNet architecture: unet.conv_in.weight is %s",
                   sd_weights_path(w), ci ? "not [C, in, 3, 3]" : "missing");
        return IE_ERR_FORMAT;
    }
    c->in_channels = (int)ci->shape[1];
    int n = 0;
    const sd_weight *r;
    while (n < SD_MAX_LEVELS && (r = getf(w, "unet.down_blocks.%d.resnets.0.conv1.weight", n)) && dim_ok(r->shape[0]))
        c->block_out_channels[n++] = (int)r->shape[0];
    if (n == 0) {
        ie_set_err(err, errlen,
                   "%s: cannot detect the UNet architecture: unet.down_blocks.0.resnets.0.conv1.weight "
                   "is missing",
                   sd_weights_path(w));
        return IE_ERR_FORMAT;
    }
    c->n_levels = n;
    int lpb = 0;
    while (lpb < SD_MAX_LAYERS_PER_BLOCK && getf(w, "unet.down_blocks.0.resnets.%d.conv1.weight", lpb)) lpb++;
    c->layers_per_block = lpb;
    int attn_level = -1;
    for (int i = 0; i < n; i++) {
        c->down_cross_attn[i] = getf(w, "unet.down_blocks.%d.attentions.0.norm.weight", i) != NULL;
        c->up_cross_attn[i] = getf(w, "unet.up_blocks.%d.attentions.0.norm.weight", i) != NULL;
        if (c->down_cross_attn[i] && attn_level < 0) attn_level = i;
        /* SD 1.x: 8 heads. Fall back to head size 64 if 8 does not divide. */
        c->heads[i] = c->block_out_channels[i] % 8 == 0    ? 8
                      : c->block_out_channels[i] % 64 == 0 ? c->block_out_channels[i] / 64
                                                           : 1;
    }
    char pfx[96];
    if (attn_level >= 0) snprintf(pfx, sizeof pfx, "unet.down_blocks.%d.attentions.0", attn_level);
    else snprintf(pfx, sizeof pfx, "unet.mid_block.attentions.0");
    const sd_weight *k = getf(w, "%s.transformer_blocks.0.attn2.to_k.weight", pfx);
    if (k && k->ndim == 2 && dim_ok(k->shape[1])) c->cross_attention_dim = (int)k->shape[1];
    int tl = 0;
    while (tl < 16 && getf(w, "%s.transformer_blocks.%d.norm1.weight", pfx, tl)) tl++;
    if (tl) c->transformer_layers_per_block = tl;
    const sd_weight *pi = getf(w, "%s.proj_in.weight", pfx);
    if (pi) c->use_linear_projection = pi->ndim == 2;
    const sd_weight *cp = sd_weights_get(w, "unet.time_embedding.cond_proj.weight");
    if (cp && cp->ndim == 2 && dim_ok(cp->shape[1])) c->time_cond_proj_dim = (int)cp->shape[1];
    const sd_weight *co = sd_weights_get(w, "unet.conv_out.weight");
    if (co && dim_ok(co->shape[0])) c->out_channels = (int)co->shape[0];
    return IE_OK;
}

ie_status sd_vae_config_detect(const sd_weights *w, sd_vae_config *c, char *err, size_t errlen) {
    sd_vae_config_default(c);
    int n = 0;
    const sd_weight *r;
    while (n < SD_MAX_LEVELS && (r = getf(w, "vae.encoder.down_blocks.%d.resnets.0.conv1.weight", n)) &&
           dim_ok(r->shape[0]))
        c->block_out_channels[n++] = (int)r->shape[0];
    int lpb = 0;
    if (n) {
        while (lpb < SD_MAX_LAYERS_PER_BLOCK && getf(w, "vae.encoder.down_blocks.0.resnets.%d.conv1.weight", lpb))
            lpb++;
    } else { /* decoder only: levels in reverse */
        int m = 0, ch[SD_MAX_LEVELS];
        while (m < SD_MAX_LEVELS && (r = getf(w, "vae.decoder.up_blocks.%d.resnets.0.conv1.weight", m)) &&
               dim_ok(r->shape[0]))
            ch[m++] = (int)r->shape[0];
        for (int i = 0; i < m; i++) c->block_out_channels[i] = ch[m - 1 - i];
        n = m;
        while (lpb <= SD_MAX_LAYERS_PER_BLOCK && getf(w, "vae.decoder.up_blocks.0.resnets.%d.conv1.weight", lpb)) lpb++;
        lpb -= 1; /* decoder blocks have layers_per_block + 1 resnets */
    }
    if (n == 0 || lpb < 1) {
        ie_set_err(err, errlen,
                   "%s: cannot detect the VAE architecture: neither "
                   "vae.encoder.down_blocks.0.resnets.0.conv1.weight nor "
                   "vae.decoder.up_blocks.0.resnets.0.conv1.weight is there",
                   sd_weights_path(w));
        return IE_ERR_FORMAT;
    }
    c->n_levels = n;
    c->layers_per_block = lpb;
    const sd_weight *x;
    if ((x = sd_weights_get(w, "vae.post_quant_conv.weight")) && dim_ok(x->shape[0]))
        c->latent_channels = (int)x->shape[0];
    else if ((x = sd_weights_get(w, "vae.decoder.conv_in.weight")) && x->ndim == 4 && dim_ok(x->shape[1]))
        c->latent_channels = (int)x->shape[1];
    else if ((x = sd_weights_get(w, "vae.encoder.conv_out.weight")) && dim_ok(x->shape[0] / 2))
        c->latent_channels = (int)(x->shape[0] / 2);
    if ((x = sd_weights_get(w, "vae.encoder.conv_in.weight")) && x->ndim == 4 && dim_ok(x->shape[1]))
        c->in_channels = (int)x->shape[1];
    if ((x = sd_weights_get(w, "vae.decoder.conv_out.weight")) && dim_ok(x->shape[0]))
        c->out_channels = (int)x->shape[0];
    c->mid_block_add_attention = sd_weights_get(w, "vae.encoder.mid_block.attentions.0.to_q.weight") ||
                                 sd_weights_get(w, "vae.decoder.mid_block.attentions.0.to_q.weight");
    c->use_quant_conv = sd_weights_get(w, "vae.quant_conv.weight") != NULL;
    c->use_post_quant_conv = sd_weights_get(w, "vae.post_quant_conv.weight") != NULL;
    return IE_OK;
}

ie_status sd_clip_text_config_detect(const sd_weights *w, sd_clip_text_config *c, char *err, size_t errlen) {
    sd_clip_text_config_default(c);
    const sd_weight *te = sd_weights_get(w, "text_encoder.text_model.embeddings.token_embedding.weight");
    if (!te || te->ndim != 2 || !dim_ok(te->shape[0]) || !dim_ok(te->shape[1])) {
        ie_set_err(err, errlen,
                   "%s: cannot detect the text encoder: "
                   "text_encoder.text_model.embeddings.token_embedding.weight is %s",
                   sd_weights_path(w), te ? "not [vocab, hidden]" : "missing");
        return IE_ERR_FORMAT;
    }
    c->vocab_size = (int)te->shape[0];
    c->hidden_size = (int)te->shape[1];
    const sd_weight *pe = sd_weights_get(w, "text_encoder.text_model.embeddings.position_embedding.weight");
    if (pe && dim_ok(pe->shape[0])) c->max_position_embeddings = (int)pe->shape[0];
    int L = 0;
    while (L < 1024 && getf(w, "text_encoder.text_model.encoder.layers.%d.layer_norm1.weight", L)) L++;
    c->num_hidden_layers = L ? L : c->num_hidden_layers;
    const sd_weight *fc1 = sd_weights_get(w, "text_encoder.text_model.encoder.layers.0.mlp.fc1.weight");
    if (fc1 && dim_ok(fc1->shape[0])) c->intermediate_size = (int)fc1->shape[0];
    /* CLIP text towers use 64-wide heads (CLIP-L: 768 = 12 x 64) */
    c->num_attention_heads = c->hidden_size % 64 == 0 ? c->hidden_size / 64 : 1;
    return IE_OK;
}

/* --- the model config -------------------------------------------------- */

const char *sd_variant_name(sd_variant v) {
    switch (v) {
        case SD_VARIANT_SD1: return "SD 1.x";
        case SD_VARIANT_SD1_INPAINT: return "SD 1.x inpainting (9 input channels)";
        case SD_VARIANT_SD1_PIX2PIX: return "SD 1.x instruct-pix2pix (8 input channels)";
        case SD_VARIANT_SD2: return "SD 2.x (not supported)";
        default: return "unknown";
    }
}

static void note(sd_model_config *cfg, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void note(sd_model_config *cfg, const char *fmt, ...) {
    size_t at = strlen(cfg->notes);
    if (at + 2 >= sizeof cfg->notes) return;
    if (at) cfg->notes[at++] = '\n';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cfg->notes + at, sizeof cfg->notes - at, fmt, ap);
    va_end(ap);
}

static ie_status load_json_file(const char *path, char **text, size_t *len, char *err, size_t errlen) {
    GError *gerr = NULL;
    gsize n = 0;
    if (!g_file_get_contents(path, text, &n, &gerr)) {
        ie_set_err(err, errlen, "%s: cannot read: %s", path, gerr ? gerr->message : "error");
        if (gerr) g_error_free(gerr);
        return IE_ERR_IO;
    }
    *len = n;
    return IE_OK;
}

ie_status sd_model_config_load(const sd_weights *w, sd_model_config *cfg, char *err, size_t errlen) {
    memset(cfg, 0, sizeof *cfg);
    sd_unet_config_default(&cfg->unet);
    sd_vae_config_default(&cfg->vae);
    sd_clip_text_config_default(&cfg->text);
    for (int c = 0; c < SD_COMPONENT_COUNT; c++) {
        cfg->has[c] = sd_weights_has(w, c);
        if (!cfg->has[c]) continue;
        const char *path = sd_weights_config_path(w, c);
        ie_status st;
        if (path) {
            char *text = NULL;
            size_t len = 0;
            st = load_json_file(path, &text, &len, err, errlen);
            if (st != IE_OK) return st;
            if (c == SD_UNET) st = sd_unet_config_parse(text, len, path, &cfg->unet, err, errlen);
            else if (c == SD_VAE) st = sd_vae_config_parse(text, len, path, &cfg->vae, err, errlen);
            else st = sd_clip_text_config_parse(text, len, path, &cfg->text, err, errlen);
            g_free(text);
        } else {
            cfg->detected[c] = true;
            if (c == SD_UNET) st = sd_unet_config_detect(w, &cfg->unet, err, errlen);
            else if (c == SD_VAE) st = sd_vae_config_detect(w, &cfg->vae, err, errlen);
            else st = sd_clip_text_config_detect(w, &cfg->text, err, errlen);
            if (st == IE_OK && sd_weights_layout(w) == SD_LAYOUT_DIFFUSERS)
                note(cfg, "%s/config.json is absent: architecture detected from tensor shapes", sd_component_name(c));
        }
        if (st != IE_OK) return st;
    }
    cfg->lcm = cfg->has[SD_UNET] && cfg->unet.time_cond_proj_dim > 0;
    cfg->variant = SD_VARIANT_SD1;
    if ((cfg->has[SD_TEXT_ENCODER] && cfg->text.hidden_size == 1024) ||
        (cfg->has[SD_UNET] && cfg->unet.cross_attention_dim == 1024))
        cfg->variant = SD_VARIANT_SD2;
    else if (cfg->has[SD_UNET] && cfg->unet.in_channels == 9) cfg->variant = SD_VARIANT_SD1_INPAINT;
    else if (cfg->has[SD_UNET] && cfg->unet.in_channels == 8) cfg->variant = SD_VARIANT_SD1_PIX2PIX;
    else if (cfg->has[SD_UNET] && cfg->unet.in_channels != 4) cfg->variant = SD_VARIANT_UNKNOWN;
    if (cfg->has[SD_UNET] && cfg->has[SD_TEXT_ENCODER] && cfg->unet.cross_attention_dim != cfg->text.hidden_size)
        note(cfg, "the UNet's cross_attention_dim %d differs from the text encoder's hidden_size %d",
             cfg->unet.cross_attention_dim, cfg->text.hidden_size);
    return IE_OK;
}

static size_t list_str(const int *v, int n, char *buf, size_t len) {
    size_t at = 0;
    at += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < n && at < len; i++) at += (size_t)snprintf(buf + at, len - at, "%s%d", i ? ", " : "", v[i]);
    if (at < len) at += (size_t)snprintf(buf + at, len - at, "]");
    return at;
}

const char *sd_model_config_describe(const sd_model_config *cfg, char *buf, size_t n) {
    if (!n) return buf;
    GString *g = g_string_new(sd_variant_name(cfg->variant));
    if (cfg->lcm) g_string_append(g, " (LCM)");
    char l[128];
    if (cfg->has[SD_UNET]) {
        list_str(cfg->unet.block_out_channels, cfg->unet.n_levels, l, sizeof l);
        g_string_append_printf(g, "; UNet %s x%d, %d heads, context %d%s", l, cfg->unet.layers_per_block,
                               cfg->unet.heads[0], cfg->unet.cross_attention_dim,
                               cfg->detected[SD_UNET] ? " (detected)" : "");
    }
    if (cfg->has[SD_VAE]) {
        list_str(cfg->vae.block_out_channels, cfg->vae.n_levels, l, sizeof l);
        g_string_append_printf(g, "; VAE %s x%d, %d latent channels, scale %g%s", l, cfg->vae.layers_per_block,
                               cfg->vae.latent_channels, (double)cfg->vae.scaling_factor,
                               cfg->detected[SD_VAE] ? " (detected)" : "");
    }
    if (cfg->has[SD_TEXT_ENCODER])
        g_string_append_printf(g, "; CLIP %d layers x %d, %d heads, vocab %d%s", cfg->text.num_hidden_layers,
                               cfg->text.hidden_size, cfg->text.num_attention_heads, cfg->text.vocab_size,
                               cfg->detected[SD_TEXT_ENCODER] ? " (detected)" : "");
    g_strlcpy(buf, g->str, n);
    g_string_free(g, TRUE);
    return buf;
}

/* --- the check ------------------------------------------------------------ */

void sd_check_report_free(sd_check_report *rep) {
    if (!rep) return;
    g_strfreev(rep->problems);
    g_strfreev(rep->unused);
    memset(rep, 0, sizeof *rep);
}

static bool same_shape(const sd_tensor_spec *s, const sd_weight *x) {
    if (s->ndim != x->ndim) return false;
    for (int i = 0; i < s->ndim; i++)
        if (s->shape[i] != x->shape[i]) return false;
    return true;
}

ie_status sd_weights_check(const sd_weights *w, const sd_model_config *cfg, sd_check_report *rep, char *err,
                           size_t errlen) {
    memset(rep, 0, sizeof *rep);
    GPtrArray *problems = g_ptr_array_new();
    GPtrArray *unused = g_ptr_array_new();
    GHashTable *expected = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    const sd_ldm_layout lay = sd_weights_ldm_layout(w);
    const bool single = sd_weights_layout(w) == SD_LAYOUT_SINGLE_FILE;
    for (int c = 0; c < SD_COMPONENT_COUNT; c++) {
        if (!sd_weights_has(w, c) || !cfg->has[c]) {
            g_ptr_array_add(problems, g_strdup_printf("%s: absent (%s)", sd_component_name(c),
                                                      sd_weights_missing_reason(w, c) ? sd_weights_missing_reason(w, c)
                                                                                      : "not in the configuration"));
            rep->n_absent++;
            continue;
        }
        sd_tensor_spec *spec = NULL;
        int n = sd_expected_tensors(cfg, c, &spec);
        rep->n_expected += n;
        for (int i = 0; i < n; i++) {
            const sd_tensor_spec *s = &spec[i];
            g_hash_table_add(expected, g_strdup(s->name));
            const sd_weight *x = sd_weights_get(w, s->name);
            char want[160], got[160], ldm[256] = "", ldm_name[200];
            st_shape_str(s->shape, s->ndim, want, sizeof want);
            if (!x) {
                if (single && sd_name_to_ldm(s->name, &lay, ldm_name, sizeof ldm_name))
                    snprintf(ldm, sizeof ldm, " (in file: %s)", ldm_name);
                g_ptr_array_add(problems, g_strdup_printf("%s: missing%s", s->name, ldm));
                rep->n_missing++;
                continue;
            }
            if (strcmp(x->t->name, x->name) != 0 && single) snprintf(ldm, sizeof ldm, " (in file: %s)", x->t->name);
            if (!same_shape(s, x)) {
                g_ptr_array_add(problems, g_strdup_printf("%s: expected %s, found %s%s", s->name, want,
                                                          st_shape_str(x->shape, x->ndim, got, sizeof got), ldm));
                rep->n_mismatched++;
            } else if (!st_dtype_is_float(x->t->dtype)) {
                g_ptr_array_add(problems, g_strdup_printf("%s: dtype %s, expected F32, F16 or BF16%s", s->name,
                                                          st_dtype_name(x->t->dtype), ldm));
                rep->n_not_float++;
            }
        }
        g_free(spec);
    }
    for (int i = 0; i < sd_weights_count(w); i++) {
        const sd_weight *x = sd_weights_at(w, i);
        if (!cfg->has[x->component] || g_hash_table_contains(expected, x->name)) continue;
        g_ptr_array_add(unused, g_strdup(x->name));
        rep->n_unused++;
    }
    for (int i = 0; i < sd_weights_unmapped_count(w); i++) {
        g_ptr_array_add(unused, g_strdup(sd_weights_unmapped_at(w, i)));
        rep->n_unused++;
    }
    rep->n_problems = (int)problems->len;
    rep->n_unused_names = (int)unused->len;
    g_ptr_array_add(problems, NULL);
    g_ptr_array_add(unused, NULL);
    rep->problems = (char **)g_ptr_array_free(problems, FALSE);
    rep->unused = (char **)g_ptr_array_free(unused, FALSE);
    g_hash_table_destroy(expected);
    if (rep->n_problems == 0) return IE_OK;
    GString *g = g_string_new(NULL);
    g_string_append_printf(g, "%s: ", sd_weights_path(w));
    if (rep->n_absent) g_string_append_printf(g, "%d component(s) absent; ", rep->n_absent);
    g_string_append_printf(g, "%d of %d expected tensors missing, %d with the wrong shape, %d not float",
                           rep->n_missing, rep->n_expected, rep->n_mismatched, rep->n_not_float);
    for (int i = 0; i < rep->n_problems && i < 3; i++) g_string_append_printf(g, "; %s", rep->problems[i]);
    if (rep->n_problems > 3) g_string_append_printf(g, "; ... (%d more)", rep->n_problems - 3);
    ie_set_err(err, errlen, "%s", g->str);
    g_string_free(g, TRUE);
    return IE_ERR_FORMAT;
}
