/* Test helper: loads an image with the CLI's loader (cli/image_io.c) and
 * writes what it decoded with image_save, so a test can compare the pixels
 * with an independent decoder (PIL).
 *
 *   image_probe IN OUT     exit 0, or the CLI's exit code for the load/save error */
#include <stdio.h>

#include "image_io.h"

static int exit_code(ie_status s) {
    switch (s) {
        case IE_OK: return 0;
        case IE_ERR_ARG: return 2;
        case IE_ERR_NOMEM: return 4;
        default: return 3;
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: image_probe IN OUT\n");
        return 2;
    }
    char err[1024];
    ie_image img = {0};
    ie_status s = image_load(argv[1], &img, err, sizeof err);
    if (!s) {
        printf("%dx%d %d channels\n", img.width, img.height, img.channels);
        s = image_save(argv[2], &img, err, sizeof err);
    }
    if (s) fprintf(stderr, "image_probe: %s\n", err);
    ie_image_free(&img);
    return exit_code(s);
}
