/* Change-only compositing: the full-resolution result of an edit keeps the
 * input's own pixels wherever the edit did not change it.
 *
 * The model works at a small working size (the longer side = the model's
 * native size). Every method has the input's reconstruction at that size at
 * no extra UNet cost — for all three it is the input latent x0 itself:
 * BDIA's round trip and EF-DDPM with the last noise map kept regenerate x0
 * exactly, and InfEdit's source branch predicts x0 by construction — so
 * decode(x0) (one extra VAE decode) against decode(edit) is what the edit
 * changed, free of the VAE's own loss.
 *
 * Change mask, at the working size (cell = the VAE factor, one latent pixel):
 *   1. d = max over R, G, B of |edit - reconstruction|
 *   2. smoothed: Gaussian, sigma = cell / 2 (noise of single pixels is not a change)
 *   3. soft threshold: smoothstep from threshold / 2 (0) to 3 threshold / 2 (1)
 *   4. regions (8-connected, mask > 0) smaller than one latent cell (cell^2
 *      pixels) are dropped: the model cannot change less on purpose
 *   5. grown by cell / 4 (max filter) and feathered (Gaussian, sigma cell / 4)
 *      so the soft edge falls outside the changed object;
 *      values below 1/1024 become 0, above 1 - 1/1024 become 1.
 * The mask is resampled bilinearly to the full size (zeros stay exact zeros).
 *
 * Full-resolution output, per pixel with mask m:
 *   m == 0:          the input pixel, bit for bit (alpha always is the input's)
 *   keep-detail:     e = up(edit) + A (input - up(down(input)))
 *   replace-region:  e = up(edit)
 *   output = input + m (e - input), clamped to [0, 1]
 *   off:             up(edit) everywhere (the plain resize back; mask = 1)
 * up() and down() are the pipeline's own resampler (ie_image_resize), so
 * input - up(down(input)) is exactly the detail the working size cannot
 * carry. A, the detail gain, is the local colour map that takes the
 * reconstruction to the edit, fitted at the working size over windows of
 * (cell + 1)^2 pixels (a guided filter regularised towards the identity):
 *     A = (Cov(edit, rec) + eps I) (Cov(rec, rec) + eps I)^-1,  eps = 0.005
 * then box-averaged and resampled bilinearly. Where the window is flat (the
 * input's grain is far below what the working size renders) A is the
 * identity and the detail is kept as it is; across an edge whose colours the
 * edit changed (red|blue -> yellow|blue) A maps the input's sharp edge to
 * the new colours, so no ring of the old colour is left; where the edit
 * removed an edge (a shape change) A is near 0 across it and the old edge
 * does not ghost through.
 */
#ifndef INVEDIT_COMPOSITE_H
#define INVEDIT_COMPOSITE_H

#include <stdbool.h>

#include <invedit.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ie_composite_mode {
    IE_COMPOSITE_KEEP_DETAIL = 0,
    IE_COMPOSITE_REPLACE_REGION = 1,
    IE_COMPOSITE_OFF = 2,
    IE_COMPOSITE_COUNT
} ie_composite_mode;

const char *ie_composite_mode_name(ie_composite_mode m); /* "keep-detail", "replace-region", "off" */
/* NULL or "" mean the default (keep-detail). */
bool ie_composite_mode_from_name(const char *s, ie_composite_mode *out);

/* The working-size change mask [H * W] (steps 1-5 above) from two RGB
 * images of the same size. */
ie_status ie_change_mask(const ie_image *rec, const ie_image *edit, double threshold, int cell, float *mask);

/* The local colour map from the reconstruction to the edit, gain [9][H * W]
 * (row-major 3x3 per pixel), as described above. */
ie_status ie_detail_gain(const ie_image *rec, const ie_image *edit, int cell, float *gain);

typedef struct ie_composite_args {
    const ie_image *input; /* full size, 3 or 4 channels */
    const ie_image *work;  /* the input at the working size (RGB) */
    const ie_image *rec;   /* decoded reconstruction at the working size (RGB) */
    const ie_image *edit;  /* decoded edit at the working size (RGB) */
    ie_composite_mode mode;
    double threshold;
    int cell;            /* the VAE factor */
    const float *region; /* optional: full-size selection weights; the mask is limited to
                               min(1, 2 region) (ie_edit_extras) */
} ie_composite_args;

/* Writes *out (the input's size and channels) and, when not NULL, *mask (1
 * channel, full size) and *unmasked (the edit with detail everywhere, the
 * input's channels). On error nothing is allocated. */
ie_status ie_composite(const ie_composite_args *a, ie_image *out, ie_image *mask, ie_image *unmasked);

#ifdef __cplusplus
}
#endif
#endif
