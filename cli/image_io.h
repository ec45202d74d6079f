/* Image files for the command line: PNG and JPEG in and out, as ie_image
 * (interleaved float sRGB in [0, 1]; RGB, or RGBA for PNGs with alpha).
 *
 * Reading is strict: the file (or standard input, "-") is read once into
 * memory and decoded from there, so FIFOs and pipes work; truncated or
 * corrupt data is an error, never a partly grey image; the pixel count is
 * checked against IMAGE_MAX_PIXELS from the header before any pixel buffer
 * is allocated; EXIF orientation (JPEG APP1, PNG eXIf) is applied; CMYK and
 * YCCK JPEGs are converted to RGB.
 *
 * Writing goes through util/atomic_file.h: the previous file at the path
 * survives any failure. */
#ifndef INVEDIT_IMAGE_IO_H
#define INVEDIT_IMAGE_IO_H

#include <stddef.h>

#include <invedit.h>

/* The default bound on width x height of an input image (50 megapixels);
 * INVEDIT_MAX_MEGAPIXELS overrides it. */
#define IMAGE_MAX_PIXELS 50000000.0

/* The largest file image_load reads (bytes). */
#define IMAGE_MAX_FILE_BYTES ((size_t)1 << 30)

typedef enum { IMAGE_PNG, IMAGE_JPEG } image_format;

/* Reads a PNG or JPEG (by content, not by name); "-" is standard input. */
ie_status image_load(const char *path, ie_image *img, char *err, size_t errlen);
/* Decodes a PNG or JPEG held in memory; name is used in messages. */
ie_status image_load_mem(const unsigned char *data, size_t len, const char *name, ie_image *img, char *err,
                         size_t errlen);

/* The format written for an output path: .png -> PNG, .jpg/.jpeg/.jpe -> JPEG
 * (any case); "-" and existing special files (/dev/null, FIFOs) get PNG
 * unless named like a JPEG. Anything else is an error (IE_ERR_ARG) naming
 * the extensions that are known. */
ie_status image_output_format(const char *path, image_format *fmt, char *err, size_t errlen);

/* Checks before any long work that path can be written as an image: a known
 * extension, an existing writable folder. IE_ERR_ARG or IE_ERR_IO with a
 * message. */
ie_status image_check_output(const char *path, char *err, size_t errlen);

/* Writes PNG or JPEG (quality 95, alpha dropped) as image_output_format
 * says, atomically; "-" is standard output. */
ie_status image_save(const char *path, const ie_image *img, char *err, size_t errlen);

/* True when img has an alpha channel with any pixel not fully opaque. */
bool image_has_transparency(const ie_image *img);

#endif
