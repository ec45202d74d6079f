/* The hosts' GEGL side (host_common.h). */
#include "plugin/host_common.h"

#include <string.h>

const Babl *ivp_pixel_format(bool gray, const Babl *space, int *channels) {
    *channels = gray ? 2 : 4;
    return babl_format_with_space(gray ? "Y'A float" : "R'G'B'A float", space);
}

void ivp_edit_result_clear(ivp_edit_result *res) {
    g_free(res->pixels);
    g_free(res->change_mask);
    memset(res, 0, sizeof *res);
}

/* The selection mask over sel (layer coordinates), or NULL when nothing is
 * selected. *nomem when it could not be allocated. */
static float *fetch_mask(const ivp_drawable_io *io, bool *nomem) {
    *nomem = false;
    if (!io->selection) return NULL;
    const ivp_rect sel = io->sel;
    float *mask = g_try_new(float, (gsize)sel.width *sel.height);
    if (!mask) {
        *nomem = true;
        return NULL;
    }
    gegl_buffer_get(io->selection, GEGL_RECTANGLE(io->offset_x + sel.x, io->offset_y + sel.y, sel.width, sel.height),
                    1.0, babl_format("Y float"), mask, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
    return mask;
}

ie_status ivp_edit_drawable(const ivp_drawable_io *io, const ivp_settings *s, ie_session *session, ivp_progress *pr,
                            ivp_edit_result *res, char **msg) {
    memset(res, 0, sizeof *res);
    const ivp_rect sel = io->sel;
    if (sel.width <= 0 || sel.height <= 0) {
        *msg = g_strdup("invedit: nothing to edit (the selection does not touch the layer)");
        return IE_ERR_ARG;
    }
    ivp_rect ctx;
    ivp_region_job job = {0};
    ivp_region_plan(sel, io->width, io->height, ivp_work_size(session, &s->params), &ctx, &job.write);
    const Babl *fmt = ivp_pixel_format(io->gray, io->space, &job.channels);
    job.width = ctx.width;
    job.height = ctx.height;
    float *pixels = g_try_new(float, (gsize)ctx.width *ctx.height *job.channels);
    res->pixels = g_try_new(float, (gsize)sel.width *sel.height *job.channels);
    bool nomem = !pixels || !res->pixels;
    /* The library composites through the selection (full edit inside its 0.5
     * contour, the outer half of a feather blends); every output writes that
     * result as it is. */
    float *mask = nomem ? NULL : fetch_mask(io, &nomem);
    if (!nomem && s->output == IVP_OUTPUT_NEW_LAYER_MASK)
        nomem = !(job.change_mask = res->change_mask = g_try_new(float, (gsize)sel.width *sel.height));
    if (nomem) {
        g_free(pixels);
        g_free(mask);
        ivp_edit_result_clear(res);
        *msg = ivp_error_message(IE_ERR_NOMEM, "invedit", "no memory for the region");
        return IE_ERR_NOMEM;
    }
    gegl_buffer_get(io->buffer, GEGL_RECTANGLE(ctx.x, ctx.y, ctx.width, ctx.height), 1.0, fmt, pixels,
                    GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
    job.pixels = pixels;
    job.mask = mask;

    char err[512] = "";
    ie_status st = ivp_edit_region(session, &s->params, &job, res->pixels, ivp_progress_cb, pr, err, sizeof err);
    g_free(pixels);
    g_free(mask);
    if (st != IE_OK) {
        ivp_edit_result_clear(res);
        if (st != IE_ERR_CANCELLED) *msg = ivp_error_message(st, "invedit", err);
        return st;
    }
    res->sel = sel;
    res->channels = job.channels;
    return IE_OK;
}

void ivp_buffer_write(GeglBuffer *buf, ivp_rect r, const Babl *fmt, const float *pixels) {
    gegl_buffer_set(buf, GEGL_RECTANGLE(r.x, r.y, r.width, r.height), 0, fmt, pixels, GEGL_AUTO_ROWSTRIDE);
    gegl_buffer_flush(buf);
    g_object_unref(buf);
}
