/* Edits a PNG with libinvedit: edit_png MODEL IN.png SOURCE TARGET OUT.png
 * Build: cc edit_png.c $(pkg-config --cflags --libs invedit) -lpng */
#include <invedit.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 6) return fprintf(stderr, "usage: %s MODEL IN.png SOURCE TARGET OUT.png\n", argv[0]), 2;
    png_image png = {.version = PNG_IMAGE_VERSION};
    if (!png_image_begin_read_from_file(&png, argv[2])) return fprintf(stderr, "%s: %s\n", argv[2], png.message), 1;
    png.format = PNG_FORMAT_RGB;
    unsigned char *bytes = malloc(PNG_IMAGE_SIZE(png));
    if (!bytes || !png_image_finish_read(&png, NULL, bytes, 0, NULL))
        return fprintf(stderr, "cannot read %s\n", argv[2]), 1;
    ie_image in = {0}, out = {0};
    if (ie_image_alloc(&in, (int)png.width, (int)png.height, 3)) return 1;
    for (size_t i = 0; i < (size_t)png.width * png.height * 3; i++) in.pixels[i] = bytes[i] / 255.0f;

    char err[1024];
    ie_session *s = NULL;
    ie_edit_params p;
    ie_edit_params_init(&p, IE_METHOD_INFEDIT);
    p.source_prompt = argv[3];
    p.target_prompt = argv[4];
    ie_status st = ie_session_open(argv[1], "auto", &s, err, sizeof err);
    if (!st) st = ie_edit(s, &p, &in, &out, NULL, NULL, err, sizeof err);
    if (st) return fprintf(stderr, "invedit %s: %s\n", ie_status_name(st), err), 1;

    for (size_t i = 0; i < (size_t)png.width * png.height * 3; i++)
        bytes[i] = (unsigned char)(out.pixels[i] * 255.0f + 0.5f);
    if (!png_image_write_to_file(&png, argv[5], 0, bytes, 0, NULL))
        return fprintf(stderr, "%s: %s\n", argv[5], png.message), 1;
    printf("libinvedit %s: %s -> %s (%ux%u, %s)\n", ie_version_string(), argv[2], argv[5], png.width, png.height,
           ie_session_device(s));
    ie_session_close(s);
    ie_image_free(&in);
    ie_image_free(&out);
    free(bytes);
    return 0;
}
