/* Binding checkpoint tensors to ie_tensors. See weights.h. */
#include "model/weights.h"

#include "model/lora.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ie_dtype sd_wtype_resolve(sd_wtype t, ie_backend *be) {
    switch (t) {
        case SD_WTYPE_F32: return IE_F32;
        case SD_WTYPE_F16: return IE_F16;
        case SD_WTYPE_AUTO: break;
    }
    (void)be; /* fp16 on both backends: the CPU backend widens it inside its GEMM packing */
    return IE_F16;
}

const char *sd_wtype_name(sd_wtype t) {
    switch (t) {
        case SD_WTYPE_AUTO: return "auto";
        case SD_WTYPE_F32: return "f32";
        case SD_WTYPE_F16: return "f16";
    }
    return "?";
}

void sd_tensor_list_free(sd_tensor_list *l) {
    for (int i = 0; i < l->n; i++) ie_tensor_free(l->t[i]);
    free(l->t);
    memset(l, 0, sizeof *l);
}

static bool list_push(sd_tensor_list *l, ie_tensor *t) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        ie_tensor **p = realloc(l->t, (size_t)cap * sizeof *p);
        if (!p) return false;
        l->t = p;
        l->cap = cap;
    }
    l->t[l->n++] = t;
    l->bytes += ie_tensor_nbytes(t);
    return true;
}

/* --- the binder ---------------------------------------------------------------------- */

static ie_tensor *bind_tensor(sd_walk *w, int ndim, const int64_t *shape, const char *name);

void sd_binder_init(sd_binder *b, ie_backend *be, sd_wtype wt, const sd_weights *src, sd_component comp,
                    sd_tensor_list *owner) {
    memset(b, 0, sizeof *b);
    b->walk.tensor = bind_tensor;
    b->be = be;
    b->dtype = sd_wtype_resolve(wt, be);
    b->src = src;
    b->owner = owner;
    snprintf(b->prefix, sizeof b->prefix, "%s.", sd_component_name(comp));
}

static void problem(sd_binder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(sd_binder *b, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    char *p = realloc(b->problems, b->problems_len + (size_t)n + 2);
    if (!p) return;
    b->problems = p;
    memcpy(p + b->problems_len, line, (size_t)n);
    p[b->problems_len + (size_t)n] = '\n';
    b->problems_len += (size_t)n + 1;
    p[b->problems_len] = 0;
}

/* Finds `name` (with the prefix already applied); the canonical shape goes to
 * ndim/shape. */
static const st_tensor *lookup(const sd_binder *b, const char *name, int *ndim, int64_t *shape) {
    const sd_weight *w = sd_weights_get(b->src, name);
    if (!w) return NULL;
    *ndim = w->ndim;
    for (int i = 0; i < ST_MAX_DIMS; i++) shape[i] = w->shape[i];
    return w->t;
}

/* The walk's callback (tensors.h): prefix + name, checked against shape[ndim];
 * NULL when missing or misshapen (recorded). */
static ie_tensor *bind_tensor(sd_walk *w, int ndim, const int64_t *shape, const char *name) {
    sd_binder *b = (sd_binder *)(void *)w;
    char full[280], want[96], got[96];
    snprintf(full, sizeof full, "%s%s", b->prefix, name);
    st_shape_str(shape, ndim, want, sizeof want);
    int fndim = 0;
    int64_t fshape[ST_MAX_DIMS];
    const st_tensor *t = lookup(b, full, &fndim, fshape);
    if (!t) {
        b->n_missing++;
        problem(b, "%s: missing (expected %s)", full, want);
        return NULL;
    }
    bool same = fndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = fshape[i] == shape[i];
    if (!same) {
        b->n_mismatched++;
        problem(b, "%s: expected %s, found %s", full, want, st_shape_str(fshape, fndim, got, sizeof got));
        return NULL;
    }
    if (!st_dtype_is_float(t->dtype)) {
        b->n_unreadable++;
        problem(b, "%s: dtype %s is not a float type", full, st_dtype_name(t->dtype));
        return NULL;
    }
    if (b->status) return NULL;

    ie_dtype dt = ndim >= 2 ? b->dtype : IE_F32;
    ie_tensor *x = ie_tensor_new(b->be, dt, ndim, shape);
    if (!x) {
        b->status = IE_ERR_NOMEM;
        problem(b, "%s: cannot allocate %s: %s", full, want, ie_backend_errmsg(b->be));
        return NULL;
    }
    char err[256] = "";
    ie_status s;
    void *dst = x->host; /* CPU backend: convert straight into the tensor */
    void *tmp = NULL;
    if (!dst) dst = tmp = malloc(ie_tensor_nbytes(x));
    if (!dst) {
        s = IE_ERR_NOMEM;
        snprintf(err, sizeof err, "out of host memory");
    } else {
        const sd_lora_set *lora = b->src ? sd_weights_lora(b->src) : NULL;
        if (lora && sd_lora_set_has(lora, full)) {
            /* LoRA: merged in fp32 on the host, then converted (lora.h) */
            int64_t numel = t->numel;
            float *f = dt == IE_F32 ? dst : malloc((size_t)numel * sizeof *f);
            s = f ? st_read_f32(t, f, err, sizeof err) : IE_ERR_NOMEM;
            if (!f) snprintf(err, sizeof err, "out of host memory");
            if (!s) s = sd_lora_set_apply(lora, full, f, numel, err, sizeof err);
            if (!s && dt != IE_F32)
                for (int64_t i = 0; i < numel; i++) ((uint16_t *)dst)[i] = st_float_to_half(f[i]);
            if (f != dst) free(f);
        } else {
            s = dt == IE_F32 ? st_read_f32(t, dst, err, sizeof err) : st_read_f16(t, dst, err, sizeof err);
        }
        if (!s && tmp) {
            s = ie_tensor_upload(x, tmp);
            if (s) snprintf(err, sizeof err, "%s", ie_backend_errmsg(b->be));
        }
    }
    free(tmp);
    /* the file's bytes of this tensor are no longer needed: without this the
     * mapped checkpoint stays in the resident set next to its copy */
    st_release_pages(t);
    if (s || !list_push(b->owner, x)) {
        ie_tensor_free(x);
        b->status = s ? s : IE_ERR_NOMEM;
        problem(b, "%s: %s", full, s ? err : "out of host memory");
        return NULL;
    }
    b->n_bound++;
    return x;
}

ie_status sd_binder_finish(sd_binder *b, const char *what, char *err, size_t errlen) {
    ie_status s = b->status;
    int bad = b->n_missing + b->n_mismatched + b->n_unreadable;
    if (!s && bad) s = IE_ERR_FORMAT;
    if (s && err && errlen) {
        int off = snprintf(err, errlen, "%s: %d tensors missing, %d misshapen, %d unreadable%s\n", what, b->n_missing,
                           b->n_mismatched, b->n_unreadable, b->status ? " (stopped on an error)" : "");
        /* the first problems, at most ~12 lines */
        const char *p = b->problems ? b->problems : "";
        for (int line = 0; *p && line < 12 && off >= 0 && (size_t)off < errlen; line++) {
            const char *e = strchr(p, '\n');
            size_t len = e ? (size_t)(e - p + 1) : strlen(p);
            off += snprintf(err + off, errlen - (size_t)off, "  %.*s", (int)len, p);
            p += len;
        }
        if (*p && off >= 0 && (size_t)off < errlen) snprintf(err + off, errlen - (size_t)off, "  ...\n");
    }
    free(b->problems);
    b->problems = NULL;
    b->problems_len = 0;
    return s;
}
