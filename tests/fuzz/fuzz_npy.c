/* libFuzzer target: the .npy reader (model/npy.c) on a memory stream, then
 * the conversions to float and int32 that the tensor harness uses. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f) return 0;
    npy_array a;
    char err[512];
    if (npy_read_stream(f, "fuzz.npy", &a, err, sizeof err) == IE_OK) {
        float *x = npy_to_f32(&a);
        int32_t *y = npy_to_i32(&a);
        char shape[128];
        npy_shape_str(&a, shape, sizeof shape);
        free(x);
        free(y);
        npy_free(&a);
    }
    fclose(f);
    return 0;
}
