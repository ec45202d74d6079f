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
#include "plugin/host_common.h"

/* Positional PDB arguments: run-mode, image, drawable, model-path, the
 * table's entries in table order, output. */
#define N_FIXED 4 /* run-mode, image, drawable, model-path */

static void query(void);
static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals, GimpParam **return_vals);

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
            g_string_append_printf(g, "; default \"%s\")", ie_method_name((ie_method)ie_edit_param_default_number(d)));
            return g_string_free(g, FALSE);
        }
        case IE_PARAM_BOOL:
            return g_strdup_printf("%s (0 or 1, default %g)", d->blurb, ie_edit_param_default_number(d));
        case IE_PARAM_STRING: return g_strdup_printf("%s (default \"%s\")", d->blurb, ie_edit_param_default_string(d));
        default:
            return g_strdup_printf("%s (%g..%g, default %g)", d->blurb, d->min, d->max,
                                   ie_edit_param_default_number(d));
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
    args[nargs - 1] =
        (GimpParamDef){GIMP_PDB_STRING, (gchar *)IVP_ARG_OUTPUT, (gchar *)IVP_OUTPUT_BLURB " (default \"new-layer\")"};

    gimp_install_procedure(IVP_PROC, "Edit a photo from text with a diffusion model",
                           "Inverts the selection (with some context around it) into the noise space of a "
                           "Stable Diffusion 1.x model and regenerates it from a target prompt, with "
                           "EF-DDPM inversion, BDIA or InfEdit. Pixels outside the selection are not "
                           "changed. The result goes into a new layer or replaces the layer.",
                           "invedit authors", "invedit authors", "2025", IVP_MENU_LABEL, "RGB*, GRAY*", GIMP_PLUGIN,
                           nargs, 0, args, NULL);
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

static void progress_text(const char *text) { gimp_progress_set_text(text); }
static void progress_update(double f) { gimp_progress_update(f); }

/* Edits one drawable into *res without touching the image. */
static GimpPDBStatusType edit_drawable(gint32 image, gint32 drawable, const ivp_settings *s, ie_session *session,
                                       ivp_progress *pr, ivp_edit_result *res, gchar **msg) {
    gint x = 0, y = 0, w = 0, h = 0;
    gimp_drawable_mask_intersect(drawable, &x, &y, &w, &h); /* check_drawable made sure it does */
    ivp_drawable_io io = {gimp_drawable_get_buffer(drawable),
                          gimp_drawable_get_format(drawable),
                          gimp_drawable_is_gray(drawable),
                          gimp_drawable_width(drawable),
                          gimp_drawable_height(drawable),
                          0,
                          0,
                          {x, y, w, h},
                          gimp_selection_is_empty(image) ? NULL
                                                         : gimp_drawable_get_buffer(gimp_image_get_selection(image))};
    gimp_drawable_offsets(drawable, &io.offset_x, &io.offset_y);
    ie_status st = ivp_edit_drawable(&io, s, session, pr, res, msg);
    g_object_unref(io.buffer);
    if (io.selection) g_object_unref(io.selection);
    return st == IE_OK ? GIMP_PDB_SUCCESS : st == IE_ERR_CANCELLED ? GIMP_PDB_CANCEL : GIMP_PDB_EXECUTION_ERROR;
}

/* Merges the shadow buffer over r as it is, the way host_common.h ("Writing
 * in place") describes, and sets the active layer or channel back. */
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
    if (active_channel != -1) gimp_image_set_active_channel(image, active_channel);
    else if (active_layer != -1) gimp_image_set_active_layer(image, active_layer);
}

static void write_result(gint32 image, gint32 drawable, const ivp_settings *s, const ivp_edit_result *res) {
    gint channels;
    const Babl *fmt = ivp_pixel_format(gimp_drawable_is_gray(drawable), gimp_drawable_get_format(drawable), &channels);
    const ivp_rect r = res->sel;
    if (s->output == IVP_OUTPUT_IN_PLACE) {
        ivp_buffer_write(gimp_drawable_get_shadow_buffer(drawable), r, fmt, res->pixels);
        merge_shadow_unmasked(image, drawable, r);
        gimp_drawable_update(drawable, r.x, r.y, r.width, r.height);
        return;
    }
    /* A copy of the layer above it, with the edited region written in. */
    gint32 layer = gimp_layer_copy(drawable);
    gchar *name = ivp_result_layer_name(s);
    gimp_item_set_name(layer, name);
    g_free(name);
    gimp_image_insert_layer(image, layer, gimp_item_get_parent(drawable),
                            gimp_image_get_item_position(image, drawable));
    ivp_buffer_write(gimp_drawable_get_buffer(layer), r, fmt, res->pixels);
    if (res->change_mask) {
        /* the change mask as the layer's mask (black elsewhere): the user can paint corrections */
        if (gimp_layer_get_mask(layer) != -1) gimp_layer_remove_mask(layer, GIMP_MASK_DISCARD);
        gint32 lm = gimp_layer_create_mask(layer, GIMP_ADD_MASK_BLACK);
        gimp_layer_add_mask(layer, lm);
        ivp_buffer_write(gimp_drawable_get_buffer(lm), r, babl_format("Y float"), res->change_mask);
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
        *msg = g_strdup(IVP_MSG_GROUP);
        return FALSE;
    }
    if (ivp_output_is_new_layer(s->output) && !gimp_item_is_layer(drawable)) {
        *msg = g_strdup(IVP_MSG_NEEDS_LAYER);
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

static GimpPDBStatusType run_edit(gint32 image, gint32 drawable, const ivp_settings *s, GimpRunMode mode, gchar **msg) {
    if (!check_drawable(drawable, s, msg)) return GIMP_PDB_EXECUTION_ERROR;
    const char *model = NULL;
    ie_status st = ivp_settings_check(s, &model, msg);
    if (st != IE_OK) return st == IE_ERR_ARG ? GIMP_PDB_CALLING_ERROR : GIMP_PDB_EXECUTION_ERROR;

    gboolean batch = mode == GIMP_RUN_NONINTERACTIVE;
    gimp_progress_init(IVP_MSG_LOADING);
    ie_session *session = NULL;
    gchar *note = NULL;
    if (ivp_session_open(s, model, !batch, &session, msg, &note) != IE_OK) return GIMP_PDB_EXECUTION_ERROR;
    if (note) gimp_message(note);
    g_free(note);

    ivp_progress pr;
    ivp_progress_init(&pr, batch, progress_text, progress_update);
    ivp_edit_result res = {{0, 0, 0, 0}, 0, NULL, NULL};
    GimpPDBStatusType status = edit_drawable(image, drawable, s, session, &pr, &res, msg);
    ie_session_close(session);

    /* Only a finished edit is written: cancel or failure leave the image as it was. */
    if (status == GIMP_PDB_SUCCESS) {
        gimp_image_undo_group_start(image);
        write_result(image, drawable, s, &res);
        gimp_image_undo_group_end(image);
    }
    ivp_edit_result_clear(&res);
    gimp_progress_end();
    return status;
}

static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals, GimpParam **return_vals) {
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
                msg = g_strdup(IVP_MSG_NO_DISPLAY);
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
    if (status == GIMP_PDB_CANCEL) g_printerr("%s\n", IVP_MSG_CANCELLED);

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
