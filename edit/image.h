/* ie_image helpers used by the pipeline and its front ends. */
#ifndef INVEDIT_IMAGE_H
#define INVEDIT_IMAGE_H

#include <invedit.h>

/* Resizes `in` to width x height (same channels) into a new image *out. */
ie_status ie_image_resize(const ie_image *in, int width, int height, ie_image *out);

/* The working size for an image: scaled so the longer side is `native`,
 * each side rounded to a multiple of `multiple` (at least one multiple). */
void ie_working_size(int width, int height, int native, int multiple, int *w_out, int *h_out);

#endif
