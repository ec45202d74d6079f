/* libFuzzer: the safetensors header parser on arbitrary bytes (in memory).
 * Every accepted file must satisfy the reader's promises: each tensor's bytes
 * lie inside the buffer, nbytes = numel * dtype size, lookups by name agree,
 * no two tensors share bytes, and float tensors convert. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file *f = NULL;
    char err[1024];
    if (st_open_memory(data, size, "fuzz", &f, err, sizeof err) != IE_OK) {
        assert(f == NULL && err[0] != 0);
        return 0;
    }
    const uint8_t *lo = data, *hi = data + size;
    uint64_t sum = 0;
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        assert(t && st_get(f, t->name) == t);
        assert(t->nbytes == (size_t)t->numel * st_dtype_size(t->dtype));
        assert((const uint8_t *)t->data >= lo && (const uint8_t *)t->data + t->nbytes <= hi);
        sum += t->nbytes;
        if (i > 0) assert(strcmp(st_at(f, i - 1)->name, t->name) < 0);
        if (st_dtype_is_float(t->dtype) && t->numel <= (1 << 20)) {
            float *x = malloc((size_t)t->numel * sizeof(float) + 1);
            uint16_t *h = malloc((size_t)t->numel * sizeof(uint16_t) + 1);
            assert(st_read_f32(t, x, err, sizeof err) == IE_OK);
            assert(st_read_f16(t, h, err, sizeof err) == IE_OK);
            free(x);
            free(h);
        } else if (!st_dtype_is_float(t->dtype)) {
            float x;
            assert(st_read_f32(t, &x, err, sizeof err) == IE_ERR_UNSUPPORTED);
        }
    }
    assert(sum <= size); /* disjoint ranges inside the buffer */
    st_metadata(f, "format");
    st_close(f);
    return 0;
}
