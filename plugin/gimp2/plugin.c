/* invedit for GIMP 2.10 (libgimp-2.0): the host layer. It registers
 * plug-in-invedit with a GimpParamDef array generated from the library's
 * parameter table, reads the arguments (or the dialog, or the last-used
 * values), fetches the pixels through GEGL, lets plugin/core.c and the
 * library do the edit, and writes the result back once. */
#include <string.h>

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include "plugin/core.h"
#include "plugin/gimp2/dialog.h"

/* Positional PDB arguments: run-mode, image, drawable, model-path, the
 * table's entries in table order, output. */
#define N_FIXED 4 /* run-mode, image, drawable, model-path */

static void query(void);
static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals,
                GimpParam **return_vals);

const GimpPlugInInfo PLUG_IN_INFO = {NULL, NULL, query, run};

MAIN()

static GimpPDBArgType pdb_type(ie_param_type t) {
    switch (t) {
    case IE_PARAM_DOUBLE: return GIMP_PDB_FLOAT;
    case IE_PARAM_STRING:
    case IE_PARAM_METHOD: return GIMP_PDB_STRING;
    case IE_PARAM_INT:
    case IE_PARAM_BOOL: break;
    }
    return GIMP_PDB_INT32;
}

/* "blurb (0.01..1, default 1)" and the like: 2.10's PDB browser shows only
 * this text, so the range and default go into it. */
static gchar *pdb_description(const ie_param_desc *d) {
    switch (d->type) {
    case IE_PARAM_METHOD: {
        GString *g = g_string_new(d->blurb);
        g_string_append(g, " (");
        for (int m = 0; m < IE_METHOD_COUNT; m++)
            g_string_append_printf(g, "%s\"%s\"", m ? ", " : "", ie_method_name((ie_method)m));
        g_string_append_printf(g, "; default \"%s\")",
                               ie_method_name((ie_method)ie_edit_param_default_number(d)));
        return g_string_free(g, FALSE);
    }
    case IE_PARAM_BOOL:
        return g_strdup_printf("%s (0 or 1, default %g)", d->blurb, ie_edit_param_default_number(d));
    case IE_PARAM_STRING:
        return g_strdup_printf("%s (default \"%s\")", d->blurb, ie_edit_param_default_string(d));
    default:
        return g_strdup_printf("%s (%g..%g, default %g)", d->blurb, d->min, d->max, ie_edit_param_default_number(d));
    }
}

static void query(void) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    gint nargs = N_FIXED + (gint)n + 1;
    GimpParamDef *args = g_new0(GimpParamDef, nargs);
    args[0] = (GimpParamDef){GIMP_PDB_INT32, (gchar *)"run-mode",
                             (gchar *)"The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1), "
                                      "RUN-WITH-LAST-VALS (2) }"};
    args[1] = (GimpParamDef){GIMP_PDB_IMAGE, (gchar *)"image", (gchar *)"Input image"};
    args[2] = (GimpParamDef){GIMP_PDB_DRAWABLE, (gchar *)"drawable", (gchar *)"Drawable to edit"};
    args[3] = (GimpParamDef){GIMP_PDB_STRING, (gchar *)IVP_ARG_MODEL_PATH,
                             (gchar *)IVP_MODEL_BLURB " (\"\": $" IVP_MODEL_ENV ")"};
    for (size_t i = 0; i < n; i++)
        args[N_FIXED + i] = (GimpParamDef){pdb_type(t[i].type), (gchar *)t[i].name, pdb_description(&t[i])};
    args[nargs - 1] = (GimpParamDef){GIMP_PDB_STRING, (gchar *)IVP_ARG_OUTPUT,
                                     (gchar *)IVP_OUTPUT_BLURB " (default \"new-layer\")"};

    gimp_install_procedure(IVP_PROC, "Edit a photo from text with a diffusion model",
                           "Inverts the selection (with some context around it) into the noise space of a "
                           "Stable Diffusion 1.x model and regenerates it from a target prompt, with "
                           "EF-DDPM inversion, BDIA or InfEdit. Pixels outside the selection are not "
                           "changed. The result goes into a new layer or replaces the layer.",
                           "invedit authors", "invedit authors", "2025", IVP_MENU_LABEL, "RGB*, GRAY*",
                           GIMP_PLUGIN, nargs, 0, args, NULL);
    gimp_plugin_menu_register(IVP_PROC, IVP_MENU_PATH);
}

/* --- arguments ------------------------------------------------------------------------- */

static gchar *settings_path(void) { return g_build_filename(gimp_directory(), "invedit.ini", NULL); }

/* Reads the positional arguments into s; FALSE with a message on a bad one. */
static gboolean read_args(gint nparams, const GimpParam *param, ivp_settings *s, gchar **msg) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    gint want = N_FIXED + (gint)n + 1;
    if (nparams != want) {
        *msg = g_strdup_printf(IVP_PROC " takes %d arguments, got %d", want, nparams);
        return FALSE;
    }
    ivp_settings_set_model_path(s, param[3].data.d_string);
    for (size_t i = 0; i < n; i++) {
        const ie_param_desc *d = &t[i];
        const GimpParam *p = &param[N_FIXED + i];
        char err[256];
        double v = 0;
        switch (d->type) {
        case IE_PARAM_STRING: ivp_settings_set_string(s, d, p->data.d_string); continue;
        case IE_PARAM_METHOD: {
            ie_method m;
            if (!ie_method_from_name(p->data.d_string, &m)) {
                *msg = g_strdup_printf("%s: unknown method '%s' (ef-ddpm, bdia or infedit)", d->name,
                                       p->data.d_string ? p->data.d_string : "");
                return FALSE;
            }
            v = m;
            break;
        }
        case IE_PARAM_DOUBLE: v = p->data.d_float; break;
        case IE_PARAM_BOOL:
        case IE_PARAM_INT: v = p->data.d_int32; break;
        }
        if (!ivp_param_check_number(d, v, err, sizeof err)) {
            *msg = g_strdup(err);
            return FALSE;
        }
        ivp_param_set_number(&s->params, d, v);
    }
    const gchar *out = param[want - 1].data.d_string;
    if (!ivp_output_from_name(out && *out ? out : "new-layer", &s->output)) {
        *msg = g_strdup_printf(IVP_ARG_OUTPUT ": '%s' is not new-layer or in-place", out);
        return FALSE;
    }
    return TRUE;
}

/* --- the edit ---------------------------------------------------------------------------- */

typedef struct edit_result {
    ivp_rect sel; /* layer coordinates, the written part */
    gint channels;
    gfloat *pixels; /* sel.width * sel.height * channels */
    gfloat *change_mask; /* output new-layer-mask: the layer mask over sel */
} edit_result;

static void progress_text(const char *text) { gimp_progress_set_text(text); }
static void progress_update(double f) { gimp_progress_update(f); }

static const Babl *pixel_format(gint32 drawable, gint *channels) {
    gboolean gray = gimp_drawable_is_gray(drawable);
    *channels = gray ? 2 : 4;
    return babl_format_with_space(gray ? "Y'A float" : "R'G'B'A float", gimp_drawable_get_format(drawable));
}

/* Fetches the selection mask over sel (layer coordinates of drawable). */
static gfloat *fetch_mask(gint32 image, gint32 drawable, ivp_rect sel) {
    if (gimp_selection_is_empty(image)) return NULL;
    gint ox = 0, oy = 0;
    gimp_drawable_offsets(drawable, &ox, &oy);
    gfloat *mask = g_try_new(gfloat, (gsize)sel.width * sel.height);
    if (!mask) return NULL;
    GeglBuffer *buf = gimp_drawable_get_buffer(gimp_image_get_selection(image));
    gegl_buffer_get(buf, GEGL_RECTANGLE(ox + sel.x, oy + sel.y, sel.width, sel.height), 1.0, babl_format("Y float"),
                    mask, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
    g_object_unref(buf);
    return mask;
}

/* Edits one drawable into *res without touching the image. */
static GimpPDBStatusType edit_drawable(gint32 image, gint32 drawable, const ivp_settings *s, ie_session *session,
                                       ivp_progress *pr, edit_result *res, gchar **msg) {
    gint x, y, w, h;
    if (!gimp_drawable_mask_intersect(drawable, &x, &y, &w, &h) || w <= 0 || h <= 0) {
        gchar *name = gimp_item_get_name(drawable);
        *msg = g_strdup_printf(IVP_MSG_NO_SELECTION, name);
        g_free(name);
        return GIMP_PDB_EXECUTION_ERROR;
    }
    ivp_rect sel = {x, y, w, h}, ctx;
    ivp_region_job job = {0};
    ivp_region_plan(sel, gimp_drawable_width(drawable), gimp_drawable_height(drawable),
                    ivp_work_size(session, &s->params), &ctx, &job.write);
    const Babl *fmt = pixel_format(drawable, &job.channels);
    job.width = ctx.width;
    job.height = ctx.height;
    gfloat *pixels = g_try_new(gfloat, (gsize)ctx.width * ctx.height * job.channels);
    res->pixels = g_try_new(gfloat, (gsize)w * h * job.channels);
    if (!pixels || !res->pixels) {
        g_free(pixels);
        *msg = ivp_error_message(IE_ERR_NOMEM, "invedit", "no memory for the region");
        return GIMP_PDB_EXECUTION_ERROR;
    }
    GeglBuffer *buf = gimp_drawable_get_buffer(drawable);
    gegl_buffer_get(buf, GEGL_RECTANGLE(ctx.x, ctx.y, ctx.width, ctx.height), 1.0, fmt, pixels,
                    GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
    g_object_unref(buf);
    job.pixels = pixels;
    /* The library composites through the selection (full edit inside its 0.5
     * contour, the outer half of a feather blends); every output writes that
     * result as it is (write_result). */
    gfloat *mask = fetch_mask(image, drawable, sel);
    job.mask = mask;
    if (s->output == IVP_OUTPUT_NEW_LAYER_MASK && !(job.change_mask = res->change_mask = g_try_new(gfloat, (gsize)w * h))) {
        g_free(pixels);
        g_free(mask);
        *msg = ivp_error_message(IE_ERR_NOMEM, "invedit", "no memory for the change mask");
        return GIMP_PDB_EXECUTION_ERROR;
    }

    char err[512] = "";
    ie_status st = ivp_edit_region(session, &s->params, &job, res->pixels, ivp_progress_cb, pr, err, sizeof err);
    g_free(pixels);
    g_free(mask);
    if (st == IE_ERR_CANCELLED) return GIMP_PDB_CANCEL;
    if (st != IE_OK) {
        *msg = ivp_error_message(st, "invedit", err);
        return GIMP_PDB_EXECUTION_ERROR;
    }
    res->sel = sel;
    res->channels = job.channels;
    return GIMP_PDB_SUCCESS;
}

/* Merges the shadow buffer over r as it is. gimp_drawable_merge_shadow blends
 * the shadow through the selection, but the result already went through it
 * (ivp_edit_region), and a second pass would leave a ring of the old colour in
 * a feather's inner half. So, inside the caller's undo group: the selection is
 * saved to a channel, replaced by the hard rectangle r (the mask is exactly 1
 * over everything written, 0 elsewhere), the shadow merged, the selection
 * restored from the channel (an exact copy) and the channel removed, and the
 * active layer or channel set back. */
static void merge_shadow_unmasked(gint32 image, gint32 drawable, ivp_rect r) {
    if (gimp_selection_is_empty(image)) {
        gimp_drawable_merge_shadow(drawable, TRUE); /* no selection: nothing to undo twice */
        return;
    }
    gint32 active_layer = gimp_image_get_active_layer(image), active_channel = gimp_image_get_active_channel(image);
    gint ox = 0, oy = 0;
    gimp_drawable_offsets(drawable, &ox, &oy);
    gint32 saved = gimp_selection_save(image);
    gimp_context_push();
    gimp_context_set_feather(FALSE);
    gimp_context_set_antialias(FALSE);
    gimp_image_select_rectangle(image, GIMP_CHANNEL_OP_REPLACE, ox + r.x, oy + r.y, r.width, r.height);
    gimp_drawable_merge_shadow(drawable, TRUE);
    if (saved != -1) {
        gimp_image_select_item(image, GIMP_CHANNEL_OP_REPLACE, saved);
        gimp_image_remove_channel(image, saved);
    }
    gimp_context_pop();
    if (active_channel != -1)
        gimp_image_set_active_channel(image, active_channel);
    else if (active_layer != -1)
        gimp_image_set_active_layer(image, active_layer);
}

static void write_result(gint32 image, gint32 drawable, const ivp_settings *s, const edit_result *res) {
    gint channels;
    const Babl *fmt = pixel_format(drawable, &channels);
    const ivp_rect r = res->sel;
    if (s->output == IVP_OUTPUT_IN_PLACE) {
        GeglBuffer *shadow = gimp_drawable_get_shadow_buffer(drawable);
        gegl_buffer_set(shadow, GEGL_RECTANGLE(r.x, r.y, r.width, r.height), 0, fmt, res->pixels, GEGL_AUTO_ROWSTRIDE);
        gegl_buffer_flush(shadow);
        g_object_unref(shadow);
        merge_shadow_unmasked(image, drawable, r);
        gimp_drawable_update(drawable, r.x, r.y, r.width, r.height);
        return;
    }
    /* A copy of the layer above it, with the edited region written in. */
    gint32 layer = gimp_layer_copy(drawable);
    const gchar *prompt = s->params.target_prompt;
    gchar *name = g_strdup_printf("Diffusion edit: %.40s", prompt && *prompt ? prompt : "result");
    gimp_item_set_name(layer, name);
    g_free(name);
    gimp_image_insert_layer(image, layer, gimp_item_get_parent(drawable), gimp_image_get_item_position(image, drawable));
    GeglBuffer *buf = gimp_drawable_get_buffer(layer);
    gegl_buffer_set(buf, GEGL_RECTANGLE(r.x, r.y, r.width, r.height), 0, fmt, res->pixels, GEGL_AUTO_ROWSTRIDE);
    gegl_buffer_flush(buf);
    g_object_unref(buf);
    if (res->change_mask) {
        /* the change mask as the layer's mask (black elsewhere): the user can paint corrections */
        if (gimp_layer_get_mask(layer) != -1) gimp_layer_remove_mask(layer, GIMP_MASK_DISCARD);
        gint32 lm = gimp_layer_create_mask(layer, GIMP_ADD_MASK_BLACK);
        gimp_layer_add_mask(layer, lm);
        GeglBuffer *mb = gimp_drawable_get_buffer(lm);
        gegl_buffer_set(mb, GEGL_RECTANGLE(r.x, r.y, r.width, r.height), 0, babl_format("Y float"), res->change_mask,
                        GEGL_AUTO_ROWSTRIDE);
        gegl_buffer_flush(mb);
        g_object_unref(mb);
    }
    gimp_drawable_update(layer, 0, 0, gimp_drawable_width(layer), gimp_drawable_height(layer));
}

/* Checks that drawable can be edited with these settings. */
static gboolean check_drawable(gint32 drawable, const ivp_settings *s, gchar **msg) {
    if (!gimp_item_is_valid(drawable) || !gimp_item_is_drawable(drawable)) {
        *msg = g_strdup("invedit needs a layer to edit");
        return FALSE;
    }
    if (gimp_drawable_is_indexed(drawable)) {
        *msg = g_strdup(IVP_MSG_INDEXED);
        return FALSE;
    }
    if (gimp_item_is_group(drawable)) {
        *msg = g_strdup("invedit cannot edit a layer group: pick one of its layers");
        return FALSE;
    }
    if (ivp_output_is_new_layer(s->output) && !gimp_item_is_layer(drawable)) {
        *msg = g_strdup("output new-layer and new-layer-mask need a layer (not a mask or channel): use output in-place");
        return FALSE;
    }
    gint x, y, w, h;
    if (!gimp_drawable_mask_intersect(drawable, &x, &y, &w, &h) || w <= 0 || h <= 0) {
        gchar *name = gimp_item_get_name(drawable);
        *msg = g_strdup_printf(IVP_MSG_NO_SELECTION, name);
        g_free(name);
        return FALSE;
    }
    return TRUE;
}

static GimpPDBStatusType run_edit(gint32 image, gint32 drawable, const ivp_settings *s, GimpRunMode mode,
                                  gchar **msg) {
    char err[512] = "";
    if (!check_drawable(drawable, s, msg)) return GIMP_PDB_EXECUTION_ERROR;
    ie_status st = ie_edit_params_validate(&s->params, err, sizeof err);
    if (st != IE_OK) {
        *msg = g_strdup(err);
        return GIMP_PDB_CALLING_ERROR;
    }
    const char *model = ivp_settings_model_path(s, err, sizeof err);
    if (!model) {
        *msg = g_strdup(err);
        return GIMP_PDB_EXECUTION_ERROR;
    }

    gboolean batch = mode == GIMP_RUN_NONINTERACTIVE;
    gimp_progress_init("Diffusion edit: loading the model");
    ie_session *session = NULL;
    ie_session_options so = ie_session_options_from_params(&s->params);
    st = ie_session_open_with(model, &so, &session, err, sizeof err);
    if (st != IE_OK) {
        *msg = ivp_error_message(st, "Could not open the model", err);
        return GIMP_PDB_EXECUTION_ERROR;
    }
    const char *note = ie_session_note(session);
    if (note && *note) {
        gchar *m = g_strdup_printf("invedit: %s (%s)", note, ie_session_device(session));
        /* The CPU fallback: a message box only when Vulkan was asked for by name. */
        g_printerr("%s\n", m);
        if (!batch && g_str_has_prefix(s->params.device, "vulkan")) gimp_message(m);
        g_free(m);
    }

    ivp_progress pr;
    ivp_progress_init(&pr, batch);
    pr.set_text = progress_text;
    pr.update = progress_update;
    pr.label = "Diffusion edit";
    edit_result res = {{0, 0, 0, 0}, 0, NULL, NULL};
    GimpPDBStatusType status = edit_drawable(image, drawable, s, session, &pr, &res, msg);
    ie_session_close(session);

    /* Only a finished edit is written: cancel or failure leave the image as it was. */
    if (status == GIMP_PDB_SUCCESS) {
        gimp_image_undo_group_start(image);
        write_result(image, drawable, s, &res);
        gimp_image_undo_group_end(image);
    }
    g_free(res.pixels);
    g_free(res.change_mask);
    gimp_progress_end();
    return status;
}

static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals,
                GimpParam **return_vals) {
    static GimpParam values[2];
    static gchar *message = NULL;
    GimpRunMode mode = nparams > 0 ? (GimpRunMode)param[0].data.d_int32 : GIMP_RUN_NONINTERACTIVE;
    GimpPDBStatusType status = GIMP_PDB_SUCCESS;
    gchar *msg = NULL;
    ivp_settings s;

    *nreturn_vals = 1;
    *return_vals = values;
    values[0].type = GIMP_PDB_STATUS;

    gegl_init(NULL, NULL);
    gimp_plugin_enable_precision();
    ivp_install_cancel_handlers();
    ivp_settings_init(&s);
    gchar *ini = settings_path();

    if (nparams < 3) {
        msg = g_strdup(IVP_PROC ": needs run-mode, image and drawable");
        status = GIMP_PDB_CALLING_ERROR;
    } else if (mode == GIMP_RUN_NONINTERACTIVE) {
        if (!read_args(nparams, param, &s, &msg)) status = GIMP_PDB_CALLING_ERROR;
    } else {
        char err[256];
        ivp_settings_load(&s, ini, err, sizeof err); /* a missing file keeps the defaults */
        if (mode == GIMP_RUN_INTERACTIVE) {
            const gchar *display = g_getenv("DISPLAY");
            if (!display || !*display) {
                msg = g_strdup("invedit: no display for the dialog; call it with RUN-NONINTERACTIVE");
                status = GIMP_PDB_CALLING_ERROR;
            } else {
                gimp_ui_init(IVP_BINARY, FALSE);
                if (!ivp_dialog2_run(&s, TRUE)) status = GIMP_PDB_CANCEL;
            }
        }
    }

    if (status == GIMP_PDB_SUCCESS) {
        gint32 image = param[1].data.d_image, drawable = param[2].data.d_drawable;
        gchar *desc = ivp_settings_describe(&s);
        g_printerr("invedit: run-mode=%d %s\n", (int)mode, desc);
        g_free(desc);
        status = run_edit(image, drawable, &s, mode, &msg);
        if (status == GIMP_PDB_SUCCESS) {
            char err[256];
            if (!ivp_settings_save(&s, ini, err, sizeof err)) g_printerr("invedit: %s\n", err);
            if (mode != GIMP_RUN_NONINTERACTIVE) gimp_displays_flush();
        }
    }
    if (status == GIMP_PDB_CANCEL) g_printerr("invedit: cancelled, the image is unchanged\n");

    /* 2.10 convention: an error message as a second return value. */
    g_free(message);
    message = msg;
    values[0].data.d_status = status;
    if (msg && status != GIMP_PDB_SUCCESS && status != GIMP_PDB_CANCEL) {
        *nreturn_vals = 2;
        values[1].type = GIMP_PDB_STRING;
        values[1].data.d_string = message;
        if (mode == GIMP_RUN_INTERACTIVE) gimp_message(message);
    }
    g_free(ini);
    ivp_settings_clear(&s);
    (void)name;
}
