/* safetensors reader: memory-mapped, validated, zero-copy.
 *
 * File layout (https://github.com/huggingface/safetensors):
 *     u64 little-endian N | N bytes of UTF-8 JSON header | raw tensor bytes
 * The header maps tensor names to {"dtype": "F16", "shape": [..],
 * "data_offsets": [begin, end]} (offsets relative to the first byte after the
 * header) and may hold "__metadata__": {string: string}.
 *
 * st_open() maps the file and checks the whole header before returning:
 * header length against the file size, JSON syntax (json-glib), every field's
 * type, dtype names, shape entries (non-negative integers, at most
 * ST_MAX_DIMS), offsets inside the data region with begin <= end, byte size ==
 * numel * dtype size, no two tensors sharing bytes, no duplicate names. All
 * arithmetic is overflow-checked. A file that passes can be read without
 * further checks. Every error message names the file, the tensor or field,
 * and what was expected versus found.
 *
 * Every safetensors dtype is listed (st_count/st_at/st_get see all tensors,
 * e.g. the I64 `position_ids` of real checkpoints), but only F32, F16 and
 * BF16 (and F64) can be read as floats: st_read_* fails with
 * IE_ERR_UNSUPPORTED on the others, so a caller simply ignores the tensors it
 * does not need. A dtype string that safetensors does not define fails
 * st_open with IE_ERR_FORMAT.
 *
 * Data pointers point into the mapping and may be unaligned; read them with
 * memcpy or the st_read_* converters. Little-endian hosts only. An open
 * st_file is immutable, so any number of threads may read it.
 */
#ifndef INVEDIT_SAFETENSORS_H
#define INVEDIT_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vkcompute/ops.h" /* ie_status */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum st_dtype {
    ST_F32 = 0,
    ST_F16,
    ST_BF16,
    ST_F64,
    /* listed, not readable as float */
    ST_I64,
    ST_I32,
    ST_I16,
    ST_I8,
    ST_U64,
    ST_U32,
    ST_U16,
    ST_U8,
    ST_BOOL,
    ST_F8_E4M3,
    ST_F8_E5M2,
    ST_F8_E8M0,
    ST_DTYPE_COUNT
} st_dtype;

#define ST_MAX_DIMS 8
/* The JSON header may not exceed this (the same limit as the reference
 * implementation's 100 MB). */
#define ST_MAX_HEADER_BYTES (100u * 1000u * 1000u)

typedef struct st_file st_file;

typedef struct st_tensor {
    const char *name;
    st_dtype dtype;
    int ndim;                   /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS]; /* outermost first; unused entries are 1 */
    int64_t numel;
    const void *data;     /* into the mapping; may be unaligned */
    size_t nbytes;        /* == numel * st_dtype_size(dtype) */
    uint64_t file_offset; /* of data, from the start of the file */
    const st_file *file;  /* the file it lives in (for messages) */
} st_tensor;

/* Maps and validates `path`. On failure *out is NULL, err holds the reason
 * and the status is IE_ERR_IO (cannot open/map) or IE_ERR_FORMAT. */
ie_status st_open(const char *path, st_file **out, char *err, size_t errlen);

/* The same checks on bytes already in memory, which are NOT copied: they must
 * outlive the st_file. `label` names the data in messages (e.g. "<memory>"). */
ie_status st_open_memory(const void *data, size_t size, const char *label, st_file **out, char *err, size_t errlen);

void st_close(st_file *f);

/* Drops the resident pages of a tensor's bytes in a mapped file (st_open)
 * after they have been copied out: mapped file pages count in the process's
 * resident set for as long as they are mapped. A hint only: a later read
 * faults them back in from the page cache. Only whole pages inside the
 * tensor's bytes are dropped; nothing happens for st_open_memory files. */
void st_release_pages(const st_tensor *t);

/* The path (or label) given to st_open / st_open_memory. */
const char *st_path(const st_file *f);

/* Tensors, sorted by name: st_at(f, 0 .. st_count(f) - 1). */
int st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, int i);
/* NULL when there is no tensor of that name. */
const st_tensor *st_get(const st_file *f, const char *name);

/* A "__metadata__" string, or NULL. Non-string metadata values are skipped. */
const char *st_metadata(const st_file *f, const char *key);

/* "F32", "BF16", ... (the file format's spelling). */
const char *st_dtype_name(st_dtype t);
size_t st_dtype_size(st_dtype t);
/* True for the dtypes st_read_f32 / st_read_f16 accept: F32, F16, BF16, F64. */
bool st_dtype_is_float(st_dtype t);

/* Converts the tensor's numel elements into dst (numel floats / halfs).
 * F16 -> F32 is exact; F32/F64/BF16 -> F16 rounds to nearest even.
 * IE_ERR_UNSUPPORTED (with a message naming file, tensor and dtype) for
 * non-float dtypes. err may be NULL. */
ie_status st_read_f32(const st_tensor *t, float *dst, char *err, size_t errlen);
ie_status st_read_f16(const st_tensor *t, uint16_t *dst, char *err, size_t errlen);

/* "[640, 320, 3, 3]" into buf (truncated to n); returns buf. */
const char *st_shape_str(const int64_t *shape, int ndim, char *buf, size_t n);

/* IEEE half <-> float, exposed for tests. */
float st_half_to_float(uint16_t h);
uint16_t st_float_to_half(float f);
float st_bf16_to_float(uint16_t b);

#ifdef __cplusplus
}
#endif
#endif
