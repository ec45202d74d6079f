/* safetensors reader: see safetensors.h for the format and the checks. */
#include "model/safetensors.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/errmsg.h"
#include "model/json_kind.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

struct st_file {
    char *path;
    GMappedFile *map;     /* NULL for st_open_memory */
    const uint8_t *bytes; /* the whole file */
    uint64_t size;
    int count;
    st_tensor *tensors;   /* sorted by name */
    char **names;         /* owned names, parallel to tensors */
    GHashTable *by_name;  /* name -> st_tensor* */
    GHashTable *metadata; /* key -> value, both owned */
};

/* --- dtypes ------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} DTYPES[ST_DTYPE_COUNT] = {
    [ST_F32] = {"F32", 4},         [ST_F16] = {"F16", 2},         [ST_BF16] = {"BF16", 2},
    [ST_F64] = {"F64", 8},         [ST_I64] = {"I64", 8},         [ST_I32] = {"I32", 4},
    [ST_I16] = {"I16", 2},         [ST_I8] = {"I8", 1},           [ST_U64] = {"U64", 8},
    [ST_U32] = {"U32", 4},         [ST_U16] = {"U16", 2},         [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1},       [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
    [ST_F8_E8M0] = {"F8_E8M0", 1},
};

const char *st_dtype_name(st_dtype t) { return (unsigned)t < ST_DTYPE_COUNT ? DTYPES[t].name : "?"; }

size_t st_dtype_size(st_dtype t) { return (unsigned)t < ST_DTYPE_COUNT ? DTYPES[t].size : 0; }

bool st_dtype_is_float(st_dtype t) { return t == ST_F32 || t == ST_F16 || t == ST_BF16 || t == ST_F64; }

static int dtype_from_name(const char *s) {
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (strcmp(s, DTYPES[i].name) == 0) return i;
    return -1;
}

/* --- fp16 / bf16 --------------------------------------------------------- */

float st_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / nan (payload kept) */
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t st_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t exp = (x >> 23) & 0xff;
    uint32_t man = x & 0x7fffffu;
    if (exp == 0xff) /* inf or nan (quiet) */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u); /* overflow -> inf */
    if (e <= 0) {                                   /* subnormal or zero */
        if (e < -10) return sign;
        man |= 0x800000u;
        int shift = 14 - e;
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) half++; /* may carry into inf: correct */
    return (uint16_t)(sign | half);
}

float st_bf16_to_float(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* --- messages ------------------------------------------------------------ */

const char *st_shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    if (!n) return buf;
    size_t at = 0;
    buf[0] = 0;
    at += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
    if (at < n) snprintf(buf + at, n - at, "]");
    return buf;
}

static bool node_is_int(JsonNode *n) {
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64;
}

/* --- duplicate member detection ------------------------------------------
 * json-glib keeps only the last of several members with the same name, so the
 * parser's "object-member" signal is used to see every name as it is read. */

typedef struct dup_watch {
    GHashTable *seen; /* JsonObject* -> GHashTable of names */
    char *first_dup;  /* first duplicated name */
} dup_watch;

static void on_object_member(JsonParser *parser, JsonObject *object, const char *name, gpointer user) {
    (void)parser;
    dup_watch *w = user;
    if (w->first_dup) return;
    GHashTable *names = g_hash_table_lookup(w->seen, object);
    if (!names) {
        names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_hash_table_insert(w->seen, object, names);
    }
    if (g_hash_table_contains(names, name)) w->first_dup = g_strdup(name);
    else g_hash_table_add(names, g_strdup(name));
}

/* --- open ---------------------------------------------------------------- */

typedef struct range {
    uint64_t begin, end;
    int idx;
} range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

typedef struct named {
    const char *name;
    JsonNode *node;
} named;

static int cmp_named(const void *a, const void *b) {
    return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

void st_close(st_file *f) {
    if (!f) return;
    if (f->by_name) g_hash_table_destroy(f->by_name);
    if (f->metadata) g_hash_table_destroy(f->metadata);
    if (f->names) {
        for (int i = 0; i < f->count; i++) g_free(f->names[i]);
        g_free(f->names);
    }
    g_free(f->tensors);
    if (f->map) g_mapped_file_unref(f->map);
    g_free(f->path);
    g_free(f);
}

/* Parses one tensor entry into t. Returns false with err set. */
static bool parse_tensor(const char *path, const char *name, JsonNode *node, uint64_t data_size, st_tensor *t,
                         char *err, size_t errlen) {
    if (!JSON_NODE_HOLDS_OBJECT(node)) {
        ie_set_err(err, errlen, "%s: tensor '%.200s': expected an object {dtype, shape, data_offsets}, found %s", path,
                   name, sd_json_kind(node));
        return false;
    }
    JsonObject *o = json_node_get_object(node);

    JsonNode *dn = json_object_get_member(o, "dtype");
    if (!dn || !JSON_NODE_HOLDS_VALUE(dn) || json_node_get_value_type(dn) != G_TYPE_STRING) {
        ie_set_err(err, errlen, "%s: tensor '%.200s': field \"dtype\": expected a string, found %s", path, name,
                   dn ? sd_json_kind(dn) : "none (the field is missing)");
        return false;
    }
    const char *ds = json_node_get_string(dn);
    int dt = dtype_from_name(ds);
    if (dt < 0) {
        ie_set_err(err, errlen,
                   "%s: tensor '%.200s': unknown dtype \"%.40s\" (expected one of F32, F16, BF16, F64, "
                   "I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2, F8_E8M0)",
                   path, name, ds);
        return false;
    }
    t->dtype = (st_dtype)dt;

    JsonNode *sn = json_object_get_member(o, "shape");
    if (!sn || !JSON_NODE_HOLDS_ARRAY(sn)) {
        ie_set_err(err, errlen, "%s: tensor '%.200s': field \"shape\": expected an array, found %s", path, name,
                   sn ? sd_json_kind(sn) : "none (the field is missing)");
        return false;
    }
    JsonArray *sa = json_node_get_array(sn);
    guint nd = json_array_get_length(sa);
    if (nd > ST_MAX_DIMS) {
        ie_set_err(err, errlen, "%s: tensor '%.200s': shape has %u dimensions, at most %d supported", path, name, nd,
                   ST_MAX_DIMS);
        return false;
    }
    t->ndim = (int)nd;
    uint64_t numel = 1;
    bool overflow = false;
    for (int i = 0; i < ST_MAX_DIMS; i++) t->shape[i] = 1;
    for (guint i = 0; i < nd; i++) {
        JsonNode *e = json_array_get_element(sa, i);
        if (!node_is_int(e) || json_node_get_int(e) < 0) {
            ie_set_err(err, errlen, "%s: tensor '%.200s': shape[%u]: expected a non-negative integer, found %s", path,
                       name, i, node_is_int(e) ? "a negative integer" : sd_json_kind(e));
            return false;
        }
        int64_t d = json_node_get_int(e);
        t->shape[i] = d;
        if (__builtin_mul_overflow(numel, (uint64_t)d, &numel)) overflow = true;
    }
    /* a zero dimension makes numel 0 even after an "overflow" in another */
    for (guint i = 0; i < nd; i++)
        if (t->shape[i] == 0) {
            numel = 0;
            overflow = false;
        }
    uint64_t nbytes = 0;
    if (overflow || numel > (uint64_t)INT64_MAX ||
        __builtin_mul_overflow(numel, (uint64_t)st_dtype_size(t->dtype), &nbytes)) {
        char sb[160];
        ie_set_err(err, errlen, "%s: tensor '%.200s': shape %s is too large (element count overflows)", path, name,
                   st_shape_str(t->shape, t->ndim, sb, sizeof sb));
        return false;
    }
    t->numel = (int64_t)numel;

    JsonNode *on = json_object_get_member(o, "data_offsets");
    if (!on || !JSON_NODE_HOLDS_ARRAY(on) || json_array_get_length(json_node_get_array(on)) != 2) {
        ie_set_err(err, errlen,
                   "%s: tensor '%.200s': field \"data_offsets\": expected an array [begin, end], "
                   "found %s",
                   path, name,
                   !on                         ? "none (the field is missing)"
                   : JSON_NODE_HOLDS_ARRAY(on) ? "an array of another length"
                                               : sd_json_kind(on));
        return false;
    }
    JsonArray *oa = json_node_get_array(on);
    JsonNode *bn = json_array_get_element(oa, 0), *en = json_array_get_element(oa, 1);
    for (int k = 0; k < 2; k++) {
        JsonNode *x = k ? en : bn;
        if (!node_is_int(x) || json_node_get_int(x) < 0) {
            ie_set_err(err, errlen,
                       "%s: tensor '%.200s': data_offsets[%d]: expected a non-negative integer, "
                       "found %s",
                       path, name, k, node_is_int(x) ? "a negative integer" : sd_json_kind(x));
            return false;
        }
    }
    uint64_t begin = (uint64_t)json_node_get_int(bn), end = (uint64_t)json_node_get_int(en);
    if (end < begin) {
        ie_set_err(err, errlen,
                   "%s: tensor '%.200s': data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                   "]: end is before begin",
                   path, name, begin, end);
        return false;
    }
    if (end > data_size) {
        ie_set_err(err, errlen,
                   "%s: tensor '%.200s': data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                   "] out of range: the data region holds %" G_GUINT64_FORMAT " bytes (file truncated?)",
                   path, name, begin, end, data_size);
        return false;
    }
    if (end - begin != nbytes) {
        char sb[160];
        ie_set_err(err, errlen,
                   "%s: tensor '%.200s': shape %s of %s needs %" G_GUINT64_FORMAT
                   " bytes, but data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "] hold %" G_GUINT64_FORMAT,
                   path, name, st_shape_str(t->shape, t->ndim, sb, sizeof sb), st_dtype_name(t->dtype), nbytes, begin,
                   end, end - begin);
        return false;
    }
    t->nbytes = (size_t)nbytes;
    t->file_offset = begin; /* made absolute by the caller */
    return true;
}

static ie_status open_bytes(st_file *f, char *err, size_t errlen) {
    const char *path = f->path;
    const uint64_t size = f->size;
    if (size < 8) {
        ie_set_err(err, errlen, "%s: truncated: %" G_GUINT64_FORMAT " bytes, expected at least 8 (the header length)",
                   path, size);
        return IE_ERR_FORMAT;
    }
    uint64_t hlen;
    memcpy(&hlen, f->bytes, 8);
    if (hlen > size - 8) {
        ie_set_err(err, errlen,
                   "%s: header length %" G_GUINT64_FORMAT " exceeds the file: only %" G_GUINT64_FORMAT
                   " bytes follow the length field (truncated, or not a safetensors file)",
                   path, hlen, size - 8);
        return IE_ERR_FORMAT;
    }
    if (hlen > ST_MAX_HEADER_BYTES) {
        ie_set_err(err, errlen, "%s: header length %" G_GUINT64_FORMAT " exceeds the limit of %u bytes", path, hlen,
                   ST_MAX_HEADER_BYTES);
        return IE_ERR_FORMAT;
    }
    if (hlen < 2) {
        ie_set_err(err, errlen, "%s: header of %" G_GUINT64_FORMAT " bytes is too short to be JSON", path, hlen);
        return IE_ERR_FORMAT;
    }
    const char *hdr = (const char *)f->bytes + 8;
    const char *bad = NULL;
    if (!g_utf8_validate(hdr, (gssize)hlen, &bad)) {
        ie_set_err(err, errlen, "%s: header is not valid UTF-8 JSON (bad byte 0x%02x at offset %zu)", path,
                   (unsigned)(unsigned char)*bad, (size_t)(bad - hdr) + 8);
        return IE_ERR_FORMAT;
    }
    uint64_t data_start = 8 + hlen, data_size = size - data_start;

    ie_status st = IE_ERR_FORMAT;
    JsonParser *parser = json_parser_new();
    dup_watch dw = {g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)g_hash_table_destroy),
                    NULL};
    g_signal_connect(parser, "object-member", G_CALLBACK(on_object_member), &dw);
    GError *gerr = NULL;
    named *members = NULL;
    range *ranges = NULL;
    if (!json_parser_load_from_data(parser, hdr, (gssize)hlen, &gerr)) {
        ie_set_err(err, errlen, "%s: header is not valid JSON: %s", path, gerr ? gerr->message : "parse error");
        goto done;
    }
    if (dw.first_dup) {
        ie_set_err(err, errlen, "%s: header names \"%.200s\" more than once", path, dw.first_dup);
        goto done;
    }
    JsonNode *root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        ie_set_err(err, errlen,
                   "%s: header: expected a JSON object {name: {dtype, shape, "
                   "data_offsets}}, found %s",
                   path, sd_json_kind(root));
        goto done;
    }
    JsonObject *ro = json_node_get_object(root);

    f->metadata = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    JsonNode *meta = json_object_get_member(ro, "__metadata__");
    if (meta) {
        if (!JSON_NODE_HOLDS_OBJECT(meta)) {
            ie_set_err(err, errlen, "%s: \"__metadata__\": expected an object of strings, found %s", path,
                       sd_json_kind(meta));
            goto done;
        }
        JsonObjectIter it;
        const char *k;
        JsonNode *v;
        json_object_iter_init(&it, json_node_get_object(meta));
        while (json_object_iter_next(&it, &k, &v))
            if (JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_STRING)
                g_hash_table_insert(f->metadata, g_strdup(k), g_strdup(json_node_get_string(v)));
    }

    guint nmem = json_object_get_size(ro);
    members = g_new0(named, nmem ? nmem : 1);
    int n = 0;
    {
        JsonObjectIter it;
        const char *k;
        JsonNode *v;
        json_object_iter_init(&it, ro);
        while (json_object_iter_next(&it, &k, &v))
            if (strcmp(k, "__metadata__") != 0) members[n++] = (named){k, v};
    }
    qsort(members, (size_t)n, sizeof *members, cmp_named);

    f->tensors = g_new0(st_tensor, n ? n : 1);
    f->names = g_new0(char *, n ? n : 1);
    f->by_name = g_hash_table_new(g_str_hash, g_str_equal);
    ranges = g_new0(range, n ? n : 1);
    int nr = 0;
    for (int i = 0; i < n; i++) {
        st_tensor *t = &f->tensors[i];
        if (!parse_tensor(path, members[i].name, members[i].node, data_size, t, err, errlen)) goto done;
        f->names[i] = g_strdup(members[i].name);
        f->count = i + 1;
        t->name = f->names[i];
        t->file = f;
        if (t->nbytes) ranges[nr++] = (range){t->file_offset, t->file_offset + t->nbytes, i};
        t->file_offset += data_start;
        t->data = f->bytes + t->file_offset;
        g_hash_table_insert(f->by_name, f->names[i], t);
    }
    /* no byte may belong to two tensors */
    qsort(ranges, (size_t)nr, sizeof *ranges, cmp_range);
    for (int i = 1; i < nr; i++) {
        /* sorted by begin and disjoint so far, so the ends are increasing too:
         * comparing neighbours finds any overlap */
        const range *a = &ranges[i - 1], *b = &ranges[i];
        if (b->begin < a->end) {
            ie_set_err(err, errlen,
                       "%s: tensors '%.200s' [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                       ") and '%.200s' [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ") overlap in the data region",
                       path, f->names[a->idx], a->begin, a->end, f->names[b->idx], b->begin, b->end);
            goto done;
        }
    }
    st = IE_OK;

done:
    g_free(ranges);
    g_free(members);
    if (gerr) g_error_free(gerr);
    g_signal_handlers_disconnect_by_func(parser, G_CALLBACK(on_object_member), &dw);
    g_hash_table_destroy(dw.seen);
    g_free(dw.first_dup);
    g_object_unref(parser);
    return st;
}

ie_status st_open_memory(const void *data, size_t size, const char *label, st_file **out, char *err, size_t errlen) {
    *out = NULL;
    st_file *f = g_new0(st_file, 1);
    f->path = g_strdup(label ? label : "<memory>");
    f->bytes = data;
    f->size = size;
    ie_status st = open_bytes(f, err, errlen);
    if (st != IE_OK) {
        st_close(f);
        return st;
    }
    *out = f;
    return IE_OK;
}

ie_status st_open(const char *path, st_file **out, char *err, size_t errlen) {
    *out = NULL;
    GError *gerr = NULL;
    GMappedFile *map = g_mapped_file_new(path, FALSE, &gerr);
    if (!map) {
        ie_set_err(err, errlen, "%s: cannot open: %s", path, gerr ? gerr->message : "unknown error");
        if (gerr) g_error_free(gerr);
        return IE_ERR_IO;
    }
    st_file *f = g_new0(st_file, 1);
    f->path = g_strdup(path);
    f->map = map;
    f->bytes = (const uint8_t *)g_mapped_file_get_contents(map);
    f->size = g_mapped_file_get_length(map);
    ie_status st = open_bytes(f, err, errlen);
    if (st != IE_OK) {
        st_close(f);
        return st;
    }
    *out = f;
    return IE_OK;
}

/* --- access ------------------------------------------------------------- */

const char *st_path(const st_file *f) { return f->path; }
int st_count(const st_file *f) { return f->count; }

const st_tensor *st_at(const st_file *f, int i) { return (i >= 0 && i < f->count) ? &f->tensors[i] : NULL; }

const st_tensor *st_get(const st_file *f, const char *name) {
    return name ? g_hash_table_lookup(f->by_name, name) : NULL;
}

const char *st_metadata(const st_file *f, const char *key) {
    return key ? g_hash_table_lookup(f->metadata, key) : NULL;
}

static ie_status not_float(const st_tensor *t, const char *to, char *err, size_t errlen) {
    ie_set_err(err, errlen, "%s: tensor '%.200s': dtype %s cannot be read as %s (supported: F32, F16, BF16, F64)",
               t->file ? st_path(t->file) : "?", t->name, st_dtype_name(t->dtype), to);
    return IE_ERR_UNSUPPORTED;
}

void st_release_pages(const st_tensor *t) {
    if (!t || !t->file || !t->file->map || !t->data || t->nbytes == 0) return;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t lo = ((uintptr_t)t->data + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    uintptr_t hi = ((uintptr_t)t->data + t->nbytes) / (uintptr_t)page * (uintptr_t)page;
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

ie_status st_read_f32(const st_tensor *t, float *dst, char *err, size_t errlen) {
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
        case ST_F32: memcpy(dst, p, n * 4); return IE_OK;
        case ST_F16:
            for (size_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, p + 2 * i, 2);
                dst[i] = st_half_to_float(h);
            }
            return IE_OK;
        case ST_BF16:
            for (size_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, p + 2 * i, 2);
                dst[i] = st_bf16_to_float(h);
            }
            return IE_OK;
        case ST_F64:
            for (size_t i = 0; i < n; i++) {
                double d;
                memcpy(&d, p + 8 * i, 8);
                dst[i] = (float)d;
            }
            return IE_OK;
        default: return not_float(t, "f32", err, errlen);
    }
}

ie_status st_read_f16(const st_tensor *t, uint16_t *dst, char *err, size_t errlen) {
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
        case ST_F16: memcpy(dst, p, n * 2); return IE_OK;
        case ST_F32:
            for (size_t i = 0; i < n; i++) {
                float x;
                memcpy(&x, p + 4 * i, 4);
                dst[i] = st_float_to_half(x);
            }
            return IE_OK;
        case ST_BF16:
            for (size_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, p + 2 * i, 2);
                dst[i] = st_float_to_half(st_bf16_to_float(h));
            }
            return IE_OK;
        case ST_F64:
            /* via float: double rounding can differ from direct rounding in the
         * last fp16 bit for values within 2^-24 of a tie; harmless for weights */
            for (size_t i = 0; i < n; i++) {
                double d;
                memcpy(&d, p + 8 * i, 8);
                dst[i] = st_float_to_half((float)d);
            }
            return IE_OK;
        default: return not_float(t, "f16", err, errlen);
    }
}
