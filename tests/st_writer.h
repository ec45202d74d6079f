/* Test helper (header-only): writes safetensors files and raw headers.
 *
 *   stw *w = stw_new();
 *   stw_add(w, "x.weight", "F32", 2, (int64_t[]){2, 3}, data);   // data NULL = zeros
 *   stw_write(w, path, false);                                     // true = sparse zeros
 *   stw_free(w);
 */
#ifndef INVEDIT_ST_WRITER_H
#define INVEDIT_ST_WRITER_H

#include <glib.h>
#include <glib/gstdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct stw_tensor {
    char *name, *dtype;
    int ndim;
    int64_t shape[8];
    size_t nbytes;
    void *data; /* owned copy or NULL */
} stw_tensor;

typedef struct stw {
    GPtrArray *t;
    GString *meta; /* extra members appended to the header (raw JSON, starting with ',') */
} stw;

static size_t stw_dtype_size(const char *dt) {
    if (!strcmp(dt, "F32") || !strcmp(dt, "I32") || !strcmp(dt, "U32")) return 4;
    if (!strcmp(dt, "F16") || !strcmp(dt, "BF16") || !strcmp(dt, "I16") || !strcmp(dt, "U16")) return 2;
    if (!strcmp(dt, "F64") || !strcmp(dt, "I64") || !strcmp(dt, "U64")) return 8;
    return 1;
}

static void stw_tensor_free(gpointer p) {
    stw_tensor *x = p;
    g_free(x->name);
    g_free(x->dtype);
    g_free(x->data);
    g_free(x);
}

static inline stw *stw_new(void) {
    stw *w = g_new0(stw, 1);
    w->t = g_ptr_array_new_with_free_func(stw_tensor_free);
    w->meta = g_string_new(NULL);
    return w;
}

static inline void stw_free(stw *w) {
    g_ptr_array_free(w->t, TRUE);
    g_string_free(w->meta, TRUE);
    g_free(w);
}

static inline void stw_add(stw *w, const char *name, const char *dtype, int ndim, const int64_t *shape,
                           const void *data) {
    stw_tensor *x = g_new0(stw_tensor, 1);
    x->name = g_strdup(name);
    x->dtype = g_strdup(dtype);
    x->ndim = ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        x->shape[i] = shape[i];
        n *= (size_t)shape[i];
    }
    x->nbytes = n * stw_dtype_size(dtype);
    if (data) x->data = g_memdup2(data, x->nbytes);
    g_ptr_array_add(w->t, x);
}

/* The JSON header (unpadded) for the tensors in order, data packed. */
static inline GString *stw_header(const stw *w) {
    GString *h = g_string_new("{");
    size_t off = 0;
    for (guint i = 0; i < w->t->len; i++) {
        const stw_tensor *x = g_ptr_array_index(w->t, i);
        g_string_append_printf(h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", x->name, x->dtype);
        for (int d = 0; d < x->ndim; d++) g_string_append_printf(h, "%s%" G_GINT64_FORMAT, d ? "," : "", x->shape[d]);
        g_string_append_printf(h, "],\"data_offsets\":[%zu,%zu]}", off, off + x->nbytes);
        off += x->nbytes;
    }
    g_string_append(h, w->meta->str);
    g_string_append(h, "}");
    return h;
}

/* Writes the file; with sparse, tensors without data become a hole. */
static inline bool stw_write(const stw *w, const char *path, bool sparse) {
    GString *h = stw_header(w);
    while (h->len % 8) g_string_append_c(h, ' ');
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    uint64_t n = h->len;
    fwrite(&n, 8, 1, f);
    fwrite(h->str, 1, h->len, f);
    size_t total = 0;
    bool ok = true;
    for (guint i = 0; i < w->t->len; i++) {
        const stw_tensor *x = g_ptr_array_index(w->t, i);
        if (x->data) {
            fseek(f, (long)(8 + h->len + total), SEEK_SET);
            ok &= fwrite(x->data, 1, x->nbytes, f) == x->nbytes;
        } else if (!sparse) {
            char zero[4096] = {0};
            fseek(f, (long)(8 + h->len + total), SEEK_SET);
            for (size_t k = 0; k < x->nbytes; k += sizeof zero) {
                size_t m = x->nbytes - k < sizeof zero ? x->nbytes - k : sizeof zero;
                ok &= fwrite(zero, 1, m, f) == m;
            }
        }
        total += x->nbytes;
    }
    fflush(f);
    ok &= ftruncate(fileno(f), (off_t)(8 + h->len + total)) == 0;
    fclose(f);
    g_string_free(h, TRUE);
    return ok;
}

/* Writes 8-byte length `len_field` + raw header bytes + `data_bytes` zero bytes. */
static inline bool stw_write_raw(const char *path, uint64_t len_field, const char *hdr, size_t hdr_len,
                                 size_t data_bytes) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    fwrite(&len_field, 8, 1, f);
    fwrite(hdr, 1, hdr_len, f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
    return true;
}

#endif
