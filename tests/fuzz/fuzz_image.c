/* libFuzzer targets: the CLI's image loader (cli/image_io.c) from memory,
 * the way `invedit edit --image` decodes every file.
 *   fuzz_image_png:  the input is a PNG (the signature is added when missing)
 *   fuzz_image_jpeg: the input is a JPEG (SOI added when missing); EXIF
 *                    orientation, CMYK/YCCK and the warnings-as-errors path
 * FUZZ_FORMAT selects the target (0 PNG, 1 JPEG). The pixel bound is lowered
 * to 4 megapixels so that huge headers are refused quickly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image_io.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("INVEDIT_MAX_MEGAPIXELS", "4", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
#if FUZZ_FORMAT == 0
    static const uint8_t magic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
#else
    static const uint8_t magic[] = {0xff, 0xd8, 0xff};
#endif
    const size_t m = sizeof magic;
    uint8_t *buf = malloc(size + m);
    if (!buf) return 0;
    size_t len = size;
    if (size >= m && !memcmp(data, magic, m)) {
        memcpy(buf, data, size);
    } else {
        memcpy(buf, magic, m);
        memcpy(buf + m, data, size);
        len += m;
    }
    ie_image img;
    char err[1024];
    if (image_load_mem(buf, len, "fuzz", &img, err, sizeof err) == IE_OK) {
        /* touch every pixel: a wrong size would show under ASan */
        float s = 0;
        for (size_t i = 0; i < (size_t)img.width * img.height * img.channels; i++) s += img.pixels[i];
        if (s < 0) abort();
        ie_image_free(&img);
    }
    free(buf);
    return 0;
}
