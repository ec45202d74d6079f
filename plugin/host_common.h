/* What the two hosts (plugin/gimp2/plugin.c, plugin/gimp3/plugin.c) do with
 * a drawable's pixels that needs GEGL and babl but no libgimp: the pixel
 * format, fetching the context region and the selection mask, the edit of
 * one drawable into memory, and writing a rectangle back into a buffer. The
 * hosts ask libgimp (whose calls differ between 2.10 and 3) for the buffers,
 * sizes and offsets, and do the undo group, the shadow merge and the new
 * layer themselves. */
#ifndef INVEDIT_PLUGIN_HOST_COMMON_H
#define INVEDIT_PLUGIN_HOST_COMMON_H

#include <stdbool.h>

#include <gegl.h>

#include "plugin/core.h"

/* One drawable, as the host found it. The buffers are borrowed. */
typedef struct ivp_drawable_io {
    GeglBuffer *buffer;     /* the drawable's pixels (gimp_drawable_get_buffer) */
    const Babl *space;      /* the drawable's format (gimp_drawable_get_format): its colour space */
    bool gray;              /* gimp_drawable_is_gray */
    int width, height;      /* the drawable's size */
    int offset_x, offset_y; /* its offsets in the image */
    ivp_rect sel;           /* the selection bounds in layer coordinates (gimp_drawable_mask_intersect) */
    GeglBuffer *selection;  /* the image's selection channel, NULL when nothing is selected */
} ivp_drawable_io;

/* The edit of one drawable, ready to be written. */
typedef struct ivp_edit_result {
    ivp_rect sel;       /* layer coordinates, the written part */
    int channels;       /* 4 (R'G'B'A) or 2 (Y'A) */
    float *pixels;      /* sel.width * sel.height * channels */
    float *change_mask; /* output new-layer-mask: the layer mask over sel; else NULL */
} ivp_edit_result;

/* "R'G'B'A float" or "Y'A float" in the drawable's space; *channels 4 or 2. */
const Babl *ivp_pixel_format(bool gray, const Babl *space, int *channels);

/* Fetches io's context region and selection mask, edits them with
 * ivp_edit_region and keeps the result in *res (cleared first). On failure
 * *msg (g_free it) says why, except for IE_ERR_CANCELLED. The image is not
 * touched. */
ie_status ivp_edit_drawable(const ivp_drawable_io *io, const ivp_settings *s, ie_session *session, ivp_progress *pr,
                            ivp_edit_result *res, char **msg);
void ivp_edit_result_clear(ivp_edit_result *res);

/* Writing in place. gimp_drawable_merge_shadow blends the shadow buffer
 * through the selection, but the result already went through it
 * (ivp_edit_region), and a second pass would leave a ring of the old colour
 * in a feather's inner half. So both hosts merge inside their undo group
 * like this: the selection is saved to a channel, replaced by the hard
 * rectangle of the written part (the mask is exactly 1 over everything
 * written, 0 elsewhere), the shadow merged, the selection restored from the
 * channel (an exact copy) and the channel removed, and the selected layer
 * or channel set back. With no selection the shadow is merged as it is. */

/* Writes r.width * r.height pixels of fmt at r into buf, flushes it and
 * drops the caller's reference to buf. */
void ivp_buffer_write(GeglBuffer *buf, ivp_rect r, const Babl *fmt, const float *pixels);

#endif
