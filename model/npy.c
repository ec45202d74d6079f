/* NumPy .npy reader/writer. See npy.h. */
#include "model/npy.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic_file.h"

static ie_status npy_fail(ie_status s, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ie_status npy_fail(ie_status s, char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return s;
}

static const struct {
    const char *descr;
    npy_dtype dtype;
    size_t size;
} NPY_TYPES[] = {
    {"<f4", NPY_F32, 4}, {"<f2", NPY_F16, 2}, {"<f8", NPY_F64, 8},  {"<i4", NPY_I32, 4},
    {"<i8", NPY_I64, 8}, {"|u1", NPY_U8, 1},  {"|b1", NPY_BOOL, 1},
};

static size_t npy_dtype_size(npy_dtype t) {
    for (size_t i = 0; i < sizeof NPY_TYPES / sizeof NPY_TYPES[0]; i++)
        if (NPY_TYPES[i].dtype == t) return NPY_TYPES[i].size;
    return 0;
}

/* Finds 'key': in the header dict and returns a pointer just after the colon. */
static const char *npy_find_key(const char *h, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (isspace((unsigned char)*p)) p++;
    if (*p != ':') return NULL;
    p++;
    while (isspace((unsigned char)*p)) p++;
    return p;
}

static ie_status npy_parse_header(const char *path, const char *h, npy_array *a, char *err, size_t errlen) {
    const char *p = npy_find_key(h, "descr");
    if (!p || (*p != '\'' && *p != '"')) return npy_fail(IE_ERR_FORMAT, err, errlen, "%s: header has no 'descr'", path);
    char descr[16] = {0};
    char q = *p++;
    size_t n = 0;
    while (*p && *p != q && n < sizeof descr - 1) descr[n++] = *p++;
    /* '=' and '<' mean little-endian on the hosts we support; '|' for bytes. */
    if (descr[0] == '=') descr[0] = '<';
    if (!strcmp(descr, "<u1")) descr[0] = '|';
    if (!strcmp(descr, "<b1")) descr[0] = '|';
    bool found = false;
    for (size_t i = 0; i < sizeof NPY_TYPES / sizeof NPY_TYPES[0]; i++)
        if (!strcmp(descr, NPY_TYPES[i].descr)) {
            a->dtype = NPY_TYPES[i].dtype;
            found = true;
        }
    if (!found)
        return npy_fail(IE_ERR_UNSUPPORTED, err, errlen,
                        "%s: dtype '%s' is not supported (expected <f4, <f2, <f8, <i4, <i8, |u1, |b1)", path, descr);

    p = npy_find_key(h, "fortran_order");
    if (!p) return npy_fail(IE_ERR_FORMAT, err, errlen, "%s: header has no 'fortran_order'", path);
    if (!strncmp(p, "True", 4))
        return npy_fail(IE_ERR_UNSUPPORTED, err, errlen, "%s: Fortran-order arrays are not supported", path);

    p = npy_find_key(h, "shape");
    if (!p || *p != '(') return npy_fail(IE_ERR_FORMAT, err, errlen, "%s: header has no 'shape'", path);
    p++;
    a->ndim = 0;
    a->numel = 1;
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',') p++;
        if (*p == ')') break;
        if (!isdigit((unsigned char)*p)) return npy_fail(IE_ERR_FORMAT, err, errlen, "%s: bad 'shape' in header", path);
        if (a->ndim == NPY_MAX_DIMS)
            return npy_fail(IE_ERR_UNSUPPORTED, err, errlen, "%s: more than %d dimensions", path, NPY_MAX_DIMS);
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (errno || v < 0 || v > ((long long)1 << 40))
            return npy_fail(IE_ERR_FORMAT, err, errlen, "%s: bad dimension in 'shape'", path);
        a->shape[a->ndim++] = v;
        if (v != 0 && a->numel > ((int64_t)1 << 40) / v) /* checked before multiplying: no overflow */
            return npy_fail(IE_ERR_FORMAT, err, errlen, "%s: array too large", path);
        a->numel *= v;
        p = end;
    }
    for (int i = a->ndim; i < NPY_MAX_DIMS; i++) a->shape[i] = 1;
    return IE_OK;
}

ie_status npy_read(const char *path, npy_array *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return npy_fail(IE_ERR_IO, err, errlen, "%s: %s", path, strerror(errno));
    ie_status s = npy_read_stream(f, path, out, err, errlen);
    fclose(f);
    return s;
}

ie_status npy_read_stream(FILE *f, const char *path, npy_array *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    ie_status s = IE_OK;
    char *header = NULL;
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        s = npy_fail(IE_ERR_FORMAT, err, errlen, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    uint32_t hlen;
    if (pre[6] == 1) {
        hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            s = npy_fail(IE_ERR_FORMAT, err, errlen, "%s: truncated header", path);
            goto done;
        }
        hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    } else {
        s = npy_fail(IE_ERR_UNSUPPORTED, err, errlen, "%s: .npy version %d.%d", path, pre[6], pre[7]);
        goto done;
    }
    if (hlen > (1u << 20)) {
        s = npy_fail(IE_ERR_FORMAT, err, errlen, "%s: header length %u too large", path, hlen);
        goto done;
    }
    header = malloc(hlen + 1);
    if (!header || fread(header, 1, hlen, f) != hlen) {
        s = npy_fail(header ? IE_ERR_FORMAT : IE_ERR_NOMEM, err, errlen, "%s: truncated header", path);
        goto done;
    }
    header[hlen] = 0;
    s = npy_parse_header(path, header, out, err, errlen);
    if (s) goto done;
    size_t nbytes = (size_t)out->numel * npy_dtype_size(out->dtype);
    /* The header's size against what the file holds, before allocating it. */
    off_t here = ftello(f);
    if (here >= 0 && fseeko(f, 0, SEEK_END) == 0) {
        off_t end = ftello(f);
        if (fseeko(f, here, SEEK_SET) != 0) {
            s = npy_fail(IE_ERR_IO, err, errlen, "%s: cannot seek", path);
            goto done;
        }
        if (end >= here && (uint64_t)(end - here) < (uint64_t)nbytes) {
            s = npy_fail(IE_ERR_FORMAT, err, errlen,
                         "%s: truncated data (the header's shape needs %zu bytes, the file has %lld)", path, nbytes,
                         (long long)(end - here));
            goto done;
        }
    }
    out->data = malloc(nbytes ? nbytes : 1);
    if (!out->data) {
        s = npy_fail(IE_ERR_NOMEM, err, errlen, "%s: out of memory (%zu bytes)", path, nbytes);
        goto done;
    }
    if (fread(out->data, 1, nbytes, f) != nbytes) {
        s = npy_fail(IE_ERR_FORMAT, err, errlen, "%s: truncated data (expected %zu bytes)", path, nbytes);
        goto done;
    }
done:
    free(header);
    if (s) npy_free(out);
    return s;
}

void npy_free(npy_array *a) {
    if (!a) return;
    free(a->data);
    a->data = NULL;
}

static float npy_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | exp << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp - 15 + 127) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static double npy_get(const npy_array *a, int64_t i) {
    switch (a->dtype) {
        case NPY_F32: {
            float v;
            memcpy(&v, (char *)a->data + 4 * i, 4);
            return v;
        }
        case NPY_F16: {
            uint16_t v;
            memcpy(&v, (char *)a->data + 2 * i, 2);
            return npy_half_to_float(v);
        }
        case NPY_F64: {
            double v;
            memcpy(&v, (char *)a->data + 8 * i, 8);
            return v;
        }
        case NPY_I32: {
            int32_t v;
            memcpy(&v, (char *)a->data + 4 * i, 4);
            return v;
        }
        case NPY_I64: {
            int64_t v;
            memcpy(&v, (char *)a->data + 8 * i, 8);
            return (double)v;
        }
        case NPY_U8:
        case NPY_BOOL: return ((const uint8_t *)a->data)[i];
    }
    return 0;
}

float *npy_to_f32(const npy_array *a) {
    float *o = malloc((size_t)(a->numel ? a->numel : 1) * sizeof *o);
    if (!o) return NULL;
    if (a->dtype == NPY_F32) {
        memcpy(o, a->data, (size_t)a->numel * 4);
        return o;
    }
    for (int64_t i = 0; i < a->numel; i++) {
        double v = npy_get(a, i); /* beyond float's range: +-inf, not undefined behaviour */
        o[i] = v > FLT_MAX ? INFINITY : v < -FLT_MAX ? -INFINITY : (float)v;
    }
    return o;
}

int32_t *npy_to_i32(const npy_array *a) {
    int32_t *o = malloc((size_t)(a->numel ? a->numel : 1) * sizeof *o);
    if (!o) return NULL;
    for (int64_t i = 0; i < a->numel; i++) { /* saturating; NaN -> 0 */
        double v = npy_get(a, i);
        o[i] = v != v ? 0 : v >= 2147483647.0 ? INT32_MAX : v <= -2147483648.0 ? INT32_MIN : (int32_t)v;
    }
    return o;
}

float *npy_load_f32(const char *path, int *ndim, int64_t *shape, char *err, size_t errlen) {
    npy_array a;
    if (npy_read(path, &a, err, errlen)) return NULL;
    float *o = npy_to_f32(&a);
    if (!o) npy_fail(IE_ERR_NOMEM, err, errlen, "%s: out of memory", path);
    if (ndim) *ndim = a.ndim;
    if (shape)
        for (int i = 0; i < NPY_MAX_DIMS; i++) shape[i] = a.shape[i];
    npy_free(&a);
    return o;
}

static ie_status npy_write(const char *path, const char *descr, const void *data, size_t elsize, int ndim,
                           const int64_t *shape, char *err, size_t errlen) {
    if (ndim < 0 || ndim > NPY_MAX_DIMS) return npy_fail(IE_ERR_ARG, err, errlen, "%s: %d dimensions", path, ndim);
    char dict[256];
    int64_t numel = 1;
    int off = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++) {
        off += snprintf(dict + off, sizeof dict - (size_t)off, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
        numel *= shape[i];
    }
    off += snprintf(dict + off, sizeof dict - (size_t)off, "), }");
    /* Pad with spaces so that the data start at a multiple of 64, end with '\n'. */
    size_t total = 10 + (size_t)off + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t hlen = padded - 10;
    char *header = malloc(padded);
    if (!header) return npy_fail(IE_ERR_NOMEM, err, errlen, "%s: out of memory", path);
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    header[8] = (char)(hlen & 0xff);
    header[9] = (char)(hlen >> 8);
    memcpy(header + 10, dict, (size_t)off);
    memset(header + 10 + off, ' ', hlen - (size_t)off - 1);
    header[padded - 1] = '\n';
    /* atomically: a failed write leaves any previous file as it was */
    ie_afile f;
    if (!ie_afile_open(&f, path, err, errlen)) {
        free(header);
        return IE_ERR_IO;
    }
    bool ok = fwrite(header, 1, padded, f.fp) == padded && fwrite(data, elsize, (size_t)numel, f.fp) == (size_t)numel;
    free(header);
    if (!ok) {
        int e = errno;
        ie_afile_abort(&f);
        return npy_fail(IE_ERR_IO, err, errlen, "%s: write failed (%s); the file was not changed", path, strerror(e));
    }
    return ie_afile_commit(&f, err, errlen) ? IE_OK : IE_ERR_IO;
}

ie_status npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, char *err, size_t errlen) {
    return npy_write(path, "<f4", data, 4, ndim, shape, err, errlen);
}

ie_status npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape, char *err,
                        size_t errlen) {
    return npy_write(path, "<i4", data, 4, ndim, shape, err, errlen);
}

const char *npy_shape_str(const npy_array *a, char *buf, size_t n) {
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < a->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}
