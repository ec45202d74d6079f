/* Image files for the command line: PNG and JPEG in and out, as ie_image
 * (interleaved float sRGB in [0, 1]; RGB, or RGBA for PNGs with alpha). */
#ifndef INVEDIT_IMAGE_IO_H
#define INVEDIT_IMAGE_IO_H

#include "invedit.h"

/* Reads a PNG or JPEG (by content, not by name). */
ie_status image_load(const char *path, ie_image *img, char *err, size_t errlen);
/* Writes JPEG for .jpg/.jpeg names (quality 95, alpha dropped), else PNG. */
ie_status image_save(const char *path, const ie_image *img, char *err, size_t errlen);

#endif
