/* PNG (libpng's simplified API) and JPEG (libjpeg) files <-> ie_image.
 * Palette and grayscale PNGs are expanded to RGB(A); 16-bit PNGs are read
 * at 8 bits per channel. */
#include "image_io.h"

#include <ctype.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef HAVE_JPEG
#include <jpeglib.h>
#endif

static bool has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), e = strlen(ext);
    return n >= e && !strcasecmp(path + n - e, ext);
}

static bool is_jpeg_name(const char *path) {
    return has_ext(path, ".jpg") || has_ext(path, ".jpeg") || has_ext(path, ".jpe");
}

/* --- PNG ------------------------------------------------------------------------ */

static ie_status png_load(const char *path, ie_image *img, char *err, size_t errlen) {
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&pi, path)) {
        snprintf(err, errlen, "%s: not a readable PNG (%s)", path, pi.message);
        return IE_ERR_FORMAT;
    }
    int channels = (pi.format & PNG_FORMAT_FLAG_ALPHA) ? 4 : 3;
    pi.format = channels == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    if (pi.width == 0 || pi.height == 0 || pi.width > 32768 || pi.height > 32768) {
        snprintf(err, errlen, "%s: unsupported image size %ux%u", path, pi.width, pi.height);
        png_image_free(&pi);
        return IE_ERR_FORMAT;
    }
    size_t n = PNG_IMAGE_SIZE(pi);
    unsigned char *buf = malloc(n);
    if (!buf) {
        png_image_free(&pi);
        snprintf(err, errlen, "%s: out of memory", path);
        return IE_ERR_NOMEM;
    }
    if (!png_image_finish_read(&pi, NULL, buf, 0, NULL)) {
        snprintf(err, errlen, "%s: corrupt PNG (%s)", path, pi.message);
        free(buf);
        return IE_ERR_FORMAT;
    }
    ie_status s = ie_image_alloc(img, (int)pi.width, (int)pi.height, channels);
    if (s == IE_OK)
        for (size_t i = 0; i < (size_t)pi.width * pi.height * channels; i++) img->pixels[i] = buf[i] / 255.0f;
    else
        snprintf(err, errlen, "%s: out of memory", path);
    free(buf);
    return s;
}

static unsigned char to_u8(float v) {
    if (!(v > 0)) return 0;
    if (v >= 1) return 255;
    return (unsigned char)(v * 255.0f + 0.5f);
}

static ie_status png_save(const char *path, const ie_image *img, char *err, size_t errlen) {
    size_t n = (size_t)img->width * img->height * img->channels;
    unsigned char *buf = malloc(n);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        return IE_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) buf[i] = to_u8(img->pixels[i]);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)img->width;
    pi.height = (png_uint_32)img->height;
    pi.format = img->channels == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    int ok = png_image_write_to_file(&pi, path, 0, buf, 0, NULL);
    free(buf);
    if (!ok) {
        snprintf(err, errlen, "%s: cannot write PNG (%s)", path, pi.message);
        return IE_ERR_IO;
    }
    return IE_OK;
}

/* --- JPEG ------------------------------------------------------------------------ */

#ifdef HAVE_JPEG
typedef struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_fail(j_common_ptr c) {
    jpeg_err *e = (jpeg_err *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jump, 1);
}

static void jpeg_quiet(j_common_ptr c, int level) { (void)c; (void)level; }

static ie_status jpeg_load(const char *path, ie_image *img, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return IE_ERR_IO;
    }
    struct jpeg_decompress_struct d;
    jpeg_err je;
    unsigned char *row = NULL;
    d.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = jpeg_fail;
    je.mgr.emit_message = jpeg_quiet;
    if (setjmp(je.jump)) {
        snprintf(err, errlen, "%s: corrupt JPEG (%s)", path, je.msg);
        jpeg_destroy_decompress(&d);
        fclose(f);
        free(row);
        ie_image_free(img);
        return IE_ERR_FORMAT;
    }
    jpeg_create_decompress(&d);
    jpeg_stdio_src(&d, f);
    jpeg_read_header(&d, TRUE);
    d.out_color_space = JCS_RGB;
    jpeg_start_decompress(&d);
    if (d.output_width > 32768 || d.output_height > 32768 || d.output_components != 3) {
        snprintf(err, errlen, "%s: unsupported JPEG (%ux%u, %d components)", path, d.output_width,
                 d.output_height, d.output_components);
        jpeg_destroy_decompress(&d);
        fclose(f);
        return IE_ERR_FORMAT;
    }
    ie_status s = ie_image_alloc(img, (int)d.output_width, (int)d.output_height, 3);
    row = malloc((size_t)d.output_width * 3);
    if (s != IE_OK || !row) {
        snprintf(err, errlen, "%s: out of memory", path);
        jpeg_destroy_decompress(&d);
        fclose(f);
        free(row);
        ie_image_free(img);
        return IE_ERR_NOMEM;
    }
    while (d.output_scanline < d.output_height) {
        size_t y = d.output_scanline;
        JSAMPROW rp = row;
        jpeg_read_scanlines(&d, &rp, 1);
        for (size_t x = 0; x < (size_t)d.output_width * 3; x++)
            img->pixels[y * d.output_width * 3 + x] = row[x] / 255.0f;
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    fclose(f);
    free(row);
    return IE_OK;
}

static ie_status jpeg_save(const char *path, const ie_image *img, int quality, char *err, size_t errlen) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot create", path);
        return IE_ERR_IO;
    }
    struct jpeg_compress_struct c;
    jpeg_err je;
    unsigned char *row = malloc((size_t)img->width * 3);
    c.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = jpeg_fail;
    if (!row || setjmp(je.jump)) {
        snprintf(err, errlen, "%s: cannot write JPEG (%s)", path, row ? je.msg : "out of memory");
        if (row) jpeg_destroy_compress(&c);
        fclose(f);
        free(row);
        return IE_ERR_IO;
    }
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)img->width;
    c.image_height = (JDIMENSION)img->height;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        const float *src = img->pixels + (size_t)c.next_scanline * img->width * img->channels;
        for (int x = 0; x < img->width; x++)
            for (int k = 0; k < 3; k++) row[x * 3 + k] = to_u8(src[x * img->channels + k]);
        JSAMPROW rp = row;
        jpeg_write_scanlines(&c, &rp, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    if (fclose(f) != 0) {
        snprintf(err, errlen, "%s: write failed", path);
        return IE_ERR_IO;
    }
    return IE_OK;
}
#endif

/* --- dispatch ------------------------------------------------------------------------ */

ie_status image_load(const char *path, ie_image *img, char *err, size_t errlen) {
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return IE_ERR_IO;
    }
    unsigned char magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got >= 8 && !memcmp(magic, "\x89PNG\r\n\x1a\n", 8)) return png_load(path, img, err, errlen);
    if (got >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff) {
#ifdef HAVE_JPEG
        return jpeg_load(path, img, err, errlen);
#else
        snprintf(err, errlen, "%s: JPEG support was not built in", path);
        return IE_ERR_UNSUPPORTED;
#endif
    }
    snprintf(err, errlen, "%s: not a PNG or JPEG file", path);
    return IE_ERR_FORMAT;
}

ie_status image_save(const char *path, const ie_image *img, char *err, size_t errlen) {
    if (is_jpeg_name(path)) {
#ifdef HAVE_JPEG
        return jpeg_save(path, img, 95, err, errlen);
#else
        snprintf(err, errlen, "%s: JPEG support was not built in; use .png", path);
        return IE_ERR_UNSUPPORTED;
#endif
    }
    return png_save(path, img, err, errlen);
}
