/* NumPy .npy files: read and write dense little-endian arrays.
 *
 * Format (numpy.lib.format, versions 1.0-3.0):
 *     "\x93NUMPY" | major | minor | u16 (v1) or u32 (v2/3) header length |
 *     ASCII dict {'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), } |
 *     raw data, C order
 * Read: descr <f4, <f2, <f8, <i4, <i8, |u1, |b1 (little-endian or
 * byte-order-free only), C order, up to NPY_MAX_DIMS dims; the data are
 * converted to float or int32 on request. Write: <f4 and <i4, version 1.0.
 * Used by the reference tests (tests/data/ref) and the CLI's tensor harness.
 */
#ifndef INVEDIT_NPY_H
#define INVEDIT_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vkcompute/ops.h" /* ie_status */

#ifdef __cplusplus
extern "C" {
#endif

#define NPY_MAX_DIMS 8

typedef enum npy_dtype {
    NPY_F32 = 0,
    NPY_F16,
    NPY_F64,
    NPY_I32,
    NPY_I64,
    NPY_U8,
    NPY_BOOL,
} npy_dtype;

typedef struct npy_array {
    npy_dtype dtype; /* as stored in the file */
    int ndim;        /* 0 for a scalar */
    int64_t shape[NPY_MAX_DIMS];
    int64_t numel;
    void *data; /* numel elements of dtype, malloc'ed */
} npy_array;

/* Reads a whole file. On failure the status is IE_ERR_IO / IE_ERR_FORMAT /
 * IE_ERR_UNSUPPORTED and err names the file and the problem. */
ie_status npy_read(const char *path, npy_array *out, char *err, size_t errlen);
/* The same from an open stream (e.g. fmemopen); path names it in messages. */
ie_status npy_read_stream(FILE *f, const char *path, npy_array *out, char *err, size_t errlen);
void npy_free(npy_array *a);

/* The array's elements converted to float / int32 (malloc'ed; NULL when out
 * of memory). Integer -> float is exact below 2^24; float -> int truncates. */
float *npy_to_f32(const npy_array *a);
int32_t *npy_to_i32(const npy_array *a);

/* Convenience: reads a file straight into a malloc'ed float array.
 * *ndim / shape (NPY_MAX_DIMS entries) receive the shape when non-NULL. */
float *npy_load_f32(const char *path, int *ndim, int64_t *shape, char *err, size_t errlen);

/* Writes numel = prod(shape) elements. */
ie_status npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, char *err, size_t errlen);
ie_status npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape, char *err,
                        size_t errlen);

/* "[2, 4, 8, 8]" into buf; returns buf. */
const char *npy_shape_str(const npy_array *a, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
