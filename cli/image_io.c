/* PNG (libpng) and JPEG (libjpeg) files <-> ie_image. See image_io.h.
 *
 * Palette and grayscale PNGs are expanded to RGB(A); 16-bit PNGs are scaled
 * to 8 bits per channel. libpng warnings about image data (anything but an
 * ancillary chunk) and every libjpeg warning (corrupt or missing data) are
 * errors here: a damaged file is refused, not edited. */
#include "image_io.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/atomic_file.h"

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

/* --- limits ---------------------------------------------------------------------- */

static double max_pixels(void) {
    const char *s = getenv("INVEDIT_MAX_MEGAPIXELS");
    if (s && *s) {
        char *end;
        double v = strtod(s, &end);
        if (end != s && !*end && v > 0 && v < 1e6) return v * 1e6;
    }
    return IMAGE_MAX_PIXELS;
}

/* The header's size against the bound, before any pixel buffer exists. */
static ie_status check_size(const char *name, const char *kind, uint64_t w, uint64_t h, int channels, char *err,
                            size_t errlen) {
    if (w == 0 || h == 0) {
        snprintf(err, errlen, "%s: the %s header gives an empty image (%llux%llu)", name, kind, (unsigned long long)w,
                 (unsigned long long)h);
        return IE_ERR_FORMAT;
    }
    double px = (double)w * (double)h, limit = max_pixels();
    if (px > limit || w > 65535 || h > 65535) {
        double mib = px * channels * sizeof(float) / 1048576.0;
        snprintf(err, errlen,
                 "%s: the %s header says %llux%llu (%.1f megapixels), over the limit of %.1f megapixels "
                 "(sides at most 65535); decoding it would need %.0f MiB for the pixels alone. "
                 "Scale it down first, or raise the limit with INVEDIT_MAX_MEGAPIXELS",
                 name, kind, (unsigned long long)w, (unsigned long long)h, px / 1e6, limit / 1e6, mib);
        return IE_ERR_FORMAT;
    }
    return IE_OK;
}

/* --- EXIF orientation ------------------------------------------------------------- */

/* The Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block, or 1
 * when absent or malformed. Every read is bounds-checked against n. One tag
 * of IFD0 is all we need, so this is read here rather than through libexif
 * (one dependency less for the CLI and the GIMP chroot build); the libFuzzer
 * targets fuzz_image_jpeg and fuzz_image_png reach it with EXIF seeds. */
static int exif_orientation(const unsigned char *t, size_t n) {
    if (n < 8) return 1;
    bool le;
    if (t[0] == 'I' && t[1] == 'I') le = true;
    else if (t[0] == 'M' && t[1] == 'M') le = false;
    else return 1;
#define RD16(o) (le ? (unsigned)t[o] | (unsigned)t[(o) + 1] << 8 : (unsigned)t[o] << 8 | (unsigned)t[(o) + 1])
#define RD32(o)                                                                                                        \
    (le ? (uint32_t)t[o] | (uint32_t)t[(o) + 1] << 8 | (uint32_t)t[(o) + 2] << 16 | (uint32_t)t[(o) + 3] << 24         \
        : (uint32_t)t[o] << 24 | (uint32_t)t[(o) + 1] << 16 | (uint32_t)t[(o) + 2] << 8 | (uint32_t)t[(o) + 3])
    if (RD16(2) != 42) return 1;
    size_t ifd = RD32(4);
    if (ifd < 8 || ifd >= n || n - ifd < 2) return 1;
    size_t count = RD16(ifd);
    for (size_t i = 0; i < count; i++) {
        size_t e = ifd + 2 + 12 * i;
        if (e > n || n - e < 12) break;
        if (RD16(e) != 0x0112) continue;
        unsigned type = RD16(e + 2);
        uint32_t cnt = RD32(e + 4);
        if (type != 3 || cnt < 1) return 1; /* SHORT */
        unsigned v = RD16(e + 8);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
#undef RD16
#undef RD32
}

/* Turns img upright for EXIF orientation o (2..8: mirrored and/or rotated). */
static ie_status apply_orientation(ie_image *img, int o, const char *name, char *err, size_t errlen) {
    if (o <= 1 || o > 8) return IE_OK;
    int W = img->width, H = img->height, C = img->channels;
    bool swap = o >= 5;
    ie_image out = {0};
    if (ie_image_alloc(&out, swap ? H : W, swap ? W : H, C)) {
        snprintf(err, errlen, "%s: out of memory turning the image upright", name);
        return IE_ERR_NOMEM;
    }
    for (int y = 0; y < out.height; y++)
        for (int x = 0; x < out.width; x++) {
            int sx, sy;
            switch (o) {
                case 2:
                    sx = W - 1 - x;
                    sy = y;
                    break; /* mirrored */
                case 3:
                    sx = W - 1 - x;
                    sy = H - 1 - y;
                    break; /* rotated 180 */
                case 4:
                    sx = x;
                    sy = H - 1 - y;
                    break; /* flipped */
                case 5:
                    sx = y;
                    sy = x;
                    break; /* transposed */
                case 6:
                    sx = y;
                    sy = H - 1 - x;
                    break; /* shown rotated 90 clockwise */
                case 7:
                    sx = W - 1 - y;
                    sy = H - 1 - x;
                    break; /* transversed */
                default:
                    sx = W - 1 - y;
                    sy = x;
                    break; /* 8: shown rotated 90 counter-clockwise */
            }
            memcpy(out.pixels + ((size_t)y * out.width + x) * C, img->pixels + ((size_t)sy * W + sx) * C,
                   sizeof(float) * (size_t)C);
        }
    ie_image_free(img);
    *img = out;
    return IE_OK;
}

/* --- PNG ------------------------------------------------------------------------ */

typedef struct png_ctx {
    const unsigned char *data;
    size_t len, off;
    char msg[256];     /* the error */
    char warning[256]; /* the first warning about image data */
} png_ctx;

static void png_mem_read(png_structp png, png_bytep out, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->off) png_error(png, "the file ends early (truncated)");
    memcpy(out, c->data + c->off, n);
    c->off += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings about an ancillary chunk ("iCCP: known incorrect sRGB profile")
 * name it first, lower-case initial: those are harmless. Anything else
 * (IDAT data errors, CRC, bad lengths) makes the file corrupt. */
static void png_on_warning(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    bool ancillary = strlen(msg) > 5 && msg[4] == ':' && msg[0] >= 'a' && msg[0] <= 'z';
    if (!ancillary && !c->warning[0]) snprintf(c->warning, sizeof c->warning, "%s", msg);
}

static ie_status png_load_mem(const unsigned char *data, size_t len, const char *name, ie_image *img, char *err,
                              size_t errlen) {
    png_ctx ctx = {.data = data, .len = len};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    unsigned char *volatile buf = NULL;
    png_bytep *volatile rows = NULL;
    volatile ie_status status = IE_ERR_FORMAT;
    if (!png || !info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        snprintf(err, errlen, "%s: out of memory", name);
        return IE_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        if (status != IE_ERR_NOMEM) snprintf(err, errlen, "%s: corrupt PNG (%s)", name, ctx.msg);
        goto done;
    }
    png_set_read_fn(png, &ctx, png_mem_read);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    bool alpha = (ctype & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS);
    int channels = alpha ? 4 : 3;
    status = check_size(name, "PNG", w, h, channels, err, errlen);
    if (status) goto done;
    status = IE_ERR_FORMAT;
    png_set_expand(png); /* palette -> RGB, low-bit gray -> 8 bits, tRNS -> alpha */
    if (depth == 16) png_set_scale_16(png);
    if (!(ctype & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if ((int)png_get_channels(png, info) != channels) png_error(png, "unexpected channel count");
    size_t rowbytes = png_get_rowbytes(png, info);
    buf = malloc(rowbytes * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!buf || !rows) {
        status = IE_ERR_NOMEM;
        snprintf(err, errlen, "%s: out of memory (%ux%u)", name, w, h);
        png_error(png, "out of memory");
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = buf + rowbytes * y;
    png_read_image(png, rows);
    png_read_end(png, info); /* the CRCs and chunks after the image data, up to IEND */
    if (ctx.warning[0]) {
        snprintf(err, errlen, "%s: corrupt PNG (%s)", name, ctx.warning);
        goto done;
    }
    int orientation = 1;
#ifdef PNG_eXIf_SUPPORTED
    png_bytep exif = NULL;
    png_uint_32 exif_len = 0;
    if (png_get_eXIf_1(png, info, &exif_len, &exif) && exif) orientation = exif_orientation(exif, exif_len);
#endif
    if (ie_image_alloc(img, (int)w, (int)h, channels)) {
        status = IE_ERR_NOMEM;
        snprintf(err, errlen, "%s: out of memory (%ux%u)", name, w, h);
        goto done;
    }
    for (size_t i = 0; i < (size_t)w * h * channels; i++) img->pixels[i] = buf[i] / 255.0f;
    status = apply_orientation(img, orientation, name, err, errlen);
done:
    png_destroy_read_struct(&png, &info, NULL);
    free(buf);
    free(rows);
    if (status) ie_image_free(img);
    return status;
}

static unsigned char to_u8(float v) {
    if (!(v > 0)) return 0;
    if (v >= 1) return 255;
    return (unsigned char)(v * 255.0f + 0.5f);
}

static ie_status png_save(FILE *fp, const char *path, const ie_image *img, char *err, size_t errlen) {
    png_ctx ctx = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    unsigned char *volatile row = malloc((size_t)img->width * img->channels);
    if (!png || !info || !row) {
        png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
        free(row);
        snprintf(err, errlen, "%s: out of memory", path);
        return IE_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        snprintf(err, errlen, "%s: cannot write PNG (%s)", path, ctx.msg);
        png_destroy_write_struct(&png, &info);
        free(row);
        return IE_ERR_IO;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 img->channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t n = (size_t)img->width * img->channels;
    for (int y = 0; y < img->height; y++) {
        const float *src = img->pixels + (size_t)y * n;
        for (size_t i = 0; i < n; i++) row[i] = to_u8(src[i]);
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
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

/* Level -1 is a warning about corrupt or missing data ("Premature end of
 * JPEG file", "Corrupt JPEG data: ..."): an error here. Trace messages
 * (level >= 0) are dropped. */
static void jpeg_warn_is_error(j_common_ptr c, int level) {
    if (level < 0) jpeg_fail(c);
}

static ie_status jpeg_load_mem(const unsigned char *data, size_t len, const char *name, ie_image *img, char *err,
                               size_t errlen) {
    struct jpeg_decompress_struct d;
    jpeg_err je;
    unsigned char *volatile row = NULL;
    volatile ie_status status = IE_ERR_FORMAT;
    d.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = jpeg_fail;
    je.mgr.emit_message = jpeg_warn_is_error;
    if (setjmp(je.jump)) {
        snprintf(err, errlen, "%s: corrupt JPEG (%s)", name, je.msg);
        jpeg_destroy_decompress(&d);
        free(row);
        ie_image_free(img);
        return IE_ERR_FORMAT;
    }
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, data, (unsigned long)len);
    jpeg_save_markers(&d, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&d, TRUE);
    bool cmyk = d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK;
    if (d.num_components != 1 && d.num_components != 3 && !cmyk) {
        snprintf(err, errlen,
                 "%s: JPEG with %d colour components in colour space %d is not supported "
                 "(grayscale, RGB/YCbCr, CMYK and YCCK are)",
                 name, d.num_components, (int)d.jpeg_color_space);
        goto fail;
    }
    status = check_size(name, "JPEG", d.image_width, d.image_height, 3, err, errlen);
    if (status) goto fail;
    d.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    int orientation = 1;
    for (jpeg_saved_marker_ptr m = d.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && !memcmp(m->data, "Exif\0\0", 6)) {
            orientation = exif_orientation(m->data + 6, m->data_length - 6);
            break;
        }
    jpeg_start_decompress(&d);
    int comps = d.output_components;
    if (comps != (cmyk ? 4 : 3)) {
        snprintf(err, errlen, "%s: unexpected JPEG output (%d components)", name, comps);
        status = IE_ERR_FORMAT;
        goto fail;
    }
    if (ie_image_alloc(img, (int)d.output_width, (int)d.output_height, 3) ||
        !(row = malloc((size_t)d.output_width * comps))) {
        snprintf(err, errlen, "%s: out of memory (%ux%u)", name, d.output_width, d.output_height);
        status = IE_ERR_NOMEM;
        goto fail;
    }
    /* Adobe (Photoshop, most cameras' CMYK) stores CMYK inverted. */
    bool inverted = d.saw_Adobe_marker;
    while (d.output_scanline < d.output_height) {
        size_t y = d.output_scanline;
        JSAMPROW rp = row;
        jpeg_read_scanlines(&d, &rp, 1);
        float *dst = img->pixels + y * d.output_width * 3;
        for (size_t x = 0; x < d.output_width; x++) {
            if (!cmyk) {
                for (int k = 0; k < 3; k++) dst[x * 3 + k] = row[x * 3 + k] / 255.0f;
                continue;
            }
            const unsigned char *p = row + x * 4;
            float kk = inverted ? p[3] / 255.0f : 1.0f - p[3] / 255.0f;
            for (int k = 0; k < 3; k++) {
                float c = inverted ? p[k] / 255.0f : 1.0f - p[k] / 255.0f; /* 1 - ink */
                dst[x * 3 + k] = c * kk;
            }
        }
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    free(row);
    return apply_orientation(img, orientation, name, err, errlen);
fail:
    jpeg_destroy_decompress(&d);
    free(row);
    ie_image_free(img);
    return status ? status : IE_ERR_FORMAT;
}

static ie_status jpeg_save(FILE *fp, const char *path, const ie_image *img, int quality, char *err, size_t errlen) {
    struct jpeg_compress_struct c;
    jpeg_err je;
    unsigned char *volatile row = malloc((size_t)img->width * 3);
    if (!row) {
        snprintf(err, errlen, "%s: out of memory", path);
        return IE_ERR_NOMEM;
    }
    c.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = jpeg_fail;
    if (setjmp(je.jump)) {
        snprintf(err, errlen, "%s: cannot write JPEG (%s)", path, je.msg);
        jpeg_destroy_compress(&c);
        free(row);
        return IE_ERR_IO;
    }
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, fp);
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
    return IE_OK;
}
#endif

/* --- dispatch ------------------------------------------------------------------------ */

ie_status image_load_mem(const unsigned char *data, size_t len, const char *name, ie_image *img, char *err,
                         size_t errlen) {
    memset(img, 0, sizeof *img);
    if (len >= 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8)) return png_load_mem(data, len, name, img, err, errlen);
    if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) {
#ifdef HAVE_JPEG
        return jpeg_load_mem(data, len, name, img, err, errlen);
#else
        snprintf(err, errlen, "%s: JPEG support was not built in", name);
        return IE_ERR_UNSUPPORTED;
#endif
    }
    snprintf(err, errlen, len ? "%s: not a PNG or JPEG file" : "%s: empty file", name);
    return IE_ERR_FORMAT;
}

/* Reads the whole of fd (a file, FIFO, pipe or terminal) once. */
static ie_status read_all(int fd, const char *name, unsigned char **out, size_t *outlen, char *err, size_t errlen) {
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", name);
        return IE_ERR_NOMEM;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= IMAGE_MAX_FILE_BYTES) {
                free(buf);
                snprintf(err, errlen, "%s: larger than %zu MiB; not read", name, IMAGE_MAX_FILE_BYTES >> 20);
                return IE_ERR_FORMAT;
            }
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                snprintf(err, errlen, "%s: out of memory", name);
                return IE_ERR_NOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            snprintf(err, errlen, "%s: cannot read (%s)", name, e == EISDIR ? "it is a directory" : strerror(e));
            return IE_ERR_IO;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    *out = buf;
    *outlen = len;
    return IE_OK;
}

ie_status image_load(const char *path, ie_image *img, char *err, size_t errlen) {
    memset(img, 0, sizeof *img);
    bool std_in = !strcmp(path, "-");
    const char *name = std_in ? "standard input" : path;
    int fd = std_in ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
        return IE_ERR_IO;
    }
    unsigned char *data = NULL;
    size_t len = 0;
    ie_status s = read_all(fd, name, &data, &len, err, errlen);
    if (!std_in) close(fd);
    if (s) return s;
    s = image_load_mem(data, len, name, img, err, errlen);
    free(data);
    return s;
}

static bool is_special(const char *path) {
    struct stat st;
    return !strcmp(path, "-") || (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode));
}

ie_status image_output_format(const char *path, image_format *fmt, char *err, size_t errlen) {
    if (is_jpeg_name(path)) {
#ifdef HAVE_JPEG
        *fmt = IMAGE_JPEG;
        return IE_OK;
#else
        snprintf(err, errlen, "%s: JPEG support was not built in; use .png", path);
        return IE_ERR_UNSUPPORTED;
#endif
    }
    if (has_ext(path, ".png") || is_special(path)) {
        *fmt = IMAGE_PNG;
        return IE_OK;
    }
    const char *base = strrchr(path, '/');
    const char *dot = strrchr(base ? base : path, '.');
    snprintf(err, errlen, "%s: unknown output format '%s' (use .png, .jpg or .jpeg)", path, dot ? dot : "no extension");
    return IE_ERR_ARG;
}

ie_status image_check_output(const char *path, char *err, size_t errlen) {
    image_format fmt;
    ie_status s = image_output_format(path, &fmt, err, errlen);
    if (s) return s;
    if (!ie_afile_check_writable(path, err, errlen)) return IE_ERR_IO;
    return IE_OK;
}

bool image_has_transparency(const ie_image *img) {
    if (img->channels != 4) return false;
    for (size_t i = 0; i < (size_t)img->width * img->height; i++)
        if (img->pixels[i * 4 + 3] < 1.0f) return true;
    return false;
}

ie_status image_save(const char *path, const ie_image *img, char *err, size_t errlen) {
    image_format fmt;
    ie_status s = image_output_format(path, &fmt, err, errlen);
    if (s) return s;
    ie_afile f;
    if (!ie_afile_open(&f, path, err, errlen)) return IE_ERR_IO;
#ifdef HAVE_JPEG
    if (fmt == IMAGE_JPEG) s = jpeg_save(f.fp, path, img, 95, err, errlen);
    else
#endif
        s = png_save(f.fp, path, img, err, errlen);
    if (s) {
        size_t n = strlen(err);
        if (n < errlen)
            snprintf(err + n, errlen - n, "%s", f.tmp ? "; the file was not changed" : "; the output is incomplete");
        ie_afile_abort(&f);
        return s;
    }
    if (!ie_afile_commit(&f, err, errlen)) return IE_ERR_IO;
    return IE_OK;
}
