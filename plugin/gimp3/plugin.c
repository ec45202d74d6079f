/* invedit for GIMP 3 (libgimp-3.0): the host layer. A GimpPlugIn subclass
 * with one image procedure, plug-in-invedit, whose arguments are generated
 * from the library's parameter table (plus model-path and output). The run
 * function reads the GimpProcedureConfig (filled by the caller, the dialog or
 * the last-used values that GIMP keeps), fetches the pixels through GEGL, lets
 * plugin/core.c and the library do the edit, and writes the result once,
 * inside one undo group. */
#include <string.h>

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include "plugin/core.h"
#include "plugin/gimp3/dialog.h"
#include "plugin/host_common.h"
#include "ui/dialog_layout.h"

typedef struct _Invedit {
    GimpPlugIn parent_instance;
} Invedit;

typedef struct _InveditClass {
    GimpPlugInClass parent_class;
} InveditClass;

#define INVEDIT_TYPE (invedit_get_type())
GType invedit_get_type(void) G_GNUC_CONST;

static GList *invedit_query_procedures(GimpPlugIn *plug_in);
static GimpProcedure *invedit_create_procedure(GimpPlugIn *plug_in, const gchar *name);
static gboolean invedit_set_i18n(GimpPlugIn *plug_in, const gchar *name, gchar **domain, gchar **catalog_dir);
static GimpValueArray *invedit_run(GimpProcedure *procedure, GimpRunMode run_mode, GimpImage *image,
                                   GimpDrawable **drawables, GimpProcedureConfig *config, gpointer run_data);

G_DEFINE_TYPE(Invedit, invedit, GIMP_TYPE_PLUG_IN)

GIMP_MAIN(INVEDIT_TYPE)

static void invedit_class_init(InveditClass *klass) {
    GimpPlugInClass *plug_in_class = GIMP_PLUG_IN_CLASS(klass);
    plug_in_class->query_procedures = invedit_query_procedures;
    plug_in_class->create_procedure = invedit_create_procedure;
    plug_in_class->set_i18n = invedit_set_i18n;
}

static void invedit_init(Invedit *self) { (void)self; }

/* No translations are shipped; without this GIMP logs "catalog directory does
 * not exist" on every start. */
static gboolean invedit_set_i18n(GimpPlugIn *plug_in, const gchar *name, gchar **domain, gchar **catalog_dir) {
    (void)plug_in, (void)name, (void)domain, (void)catalog_dir;
    return FALSE;
}

static GList *invedit_query_procedures(GimpPlugIn *plug_in) {
    (void)plug_in;
    return g_list_append(NULL, g_strdup(IVP_PROC));
}

/* --- arguments, generated from the table -------------------------------------------- */

static GimpChoice *method_choice(void) {
    GimpChoice *c = gimp_choice_new();
    for (int m = 0; m < IE_METHOD_COUNT; m++)
        gimp_choice_add(c, ie_method_name((ie_method)m), m, ivp_ui_method_label((ie_method)m), NULL);
    return c;
}

static GimpChoice *output_choice(void) {
    GimpChoice *c = gimp_choice_new();
    for (int o = 0; o < IVP_OUTPUT_COUNT; o++)
        gimp_choice_add(c, ivp_output_name((ivp_output)o), o, ivp_output_label((ivp_output)o), NULL);
    return c;
}

static void add_table_arguments(GimpProcedure *proc) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    for (size_t i = 0; i < n; i++) {
        const ie_param_desc *d = &t[i];
        double def = ie_edit_param_default_number(d);
        switch (d->type) {
            case IE_PARAM_INT:
                gimp_procedure_add_int_argument(proc, d->name, d->nick, d->blurb, (gint)d->min, (gint)d->max, (gint)def,
                                                G_PARAM_READWRITE);
                break;
            case IE_PARAM_DOUBLE:
                gimp_procedure_add_double_argument(proc, d->name, d->nick, d->blurb, d->min, d->max, def,
                                                   G_PARAM_READWRITE);
                break;
            case IE_PARAM_BOOL:
                gimp_procedure_add_boolean_argument(proc, d->name, d->nick, d->blurb, def != 0, G_PARAM_READWRITE);
                break;
            case IE_PARAM_STRING:
                gimp_procedure_add_string_argument(proc, d->name, d->nick, d->blurb, ie_edit_param_default_string(d),
                                                   G_PARAM_READWRITE);
                break;
            case IE_PARAM_METHOD:
                gimp_procedure_add_choice_argument(proc, d->name, d->nick, d->blurb, method_choice(),
                                                   ie_method_name((ie_method)def), G_PARAM_READWRITE);
                break;
        }
    }
}

static GimpProcedure *invedit_create_procedure(GimpPlugIn *plug_in, const gchar *name) {
    if (strcmp(name, IVP_PROC) != 0) return NULL;
    GimpProcedure *proc = gimp_image_procedure_new(plug_in, name, GIMP_PDB_PROC_TYPE_PLUGIN, invedit_run, NULL, NULL);
    gimp_procedure_set_image_types(proc, "RGB*, GRAY*");
    gimp_procedure_set_sensitivity_mask(proc, GIMP_PROCEDURE_SENSITIVE_DRAWABLE | GIMP_PROCEDURE_SENSITIVE_DRAWABLES);
    gimp_procedure_set_menu_label(proc, IVP_MENU_LABEL);
    gimp_procedure_add_menu_path(proc, IVP_MENU_PATH);
    gimp_procedure_set_documentation(
        proc, "Edit a photo from text with a diffusion model",
        "Inverts the selection (with some context around it) into the noise space of a Stable Diffusion 1.x "
        "model and regenerates it from a target prompt, with EF-DDPM inversion, BDIA or InfEdit. Pixels "
        "outside the selection are not changed. The result goes into a new layer above each selected layer, "
        "or replaces the layer's pixels (output in-place).",
        name);
    gimp_procedure_set_attribution(proc, "invedit authors", "invedit authors", "2025");

    gimp_procedure_add_string_argument(proc, IVP_ARG_MODEL_PATH, IVP_MODEL_NICK,
                                       IVP_MODEL_BLURB " (\"\": $" IVP_MODEL_ENV ")", "", G_PARAM_READWRITE);
    add_table_arguments(proc);
    gimp_procedure_add_choice_argument(proc, IVP_ARG_OUTPUT, IVP_OUTPUT_NICK, IVP_OUTPUT_BLURB, output_choice(),
                                       ivp_output_name(IVP_OUTPUT_NEW_LAYER), G_PARAM_READWRITE);
    return proc;
}

/* GimpProcedureConfig -> settings. */
static void read_config(GimpProcedureConfig *config, ivp_settings *s) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    for (size_t i = 0; i < n; i++) {
        const ie_param_desc *d = &t[i];
        switch (d->type) {
            case IE_PARAM_INT: {
                gint v = 0;
                g_object_get(config, d->name, &v, NULL);
                ivp_param_set_number(&s->params, d, v);
                break;
            }
            case IE_PARAM_DOUBLE: {
                gdouble v = 0;
                g_object_get(config, d->name, &v, NULL);
                ivp_param_set_number(&s->params, d, v);
                break;
            }
            case IE_PARAM_BOOL: {
                gboolean v = FALSE;
                g_object_get(config, d->name, &v, NULL);
                ivp_param_set_number(&s->params, d, v ? 1 : 0);
                break;
            }
            case IE_PARAM_STRING: {
                gchar *v = NULL;
                g_object_get(config, d->name, &v, NULL);
                ivp_settings_set_string(s, d, v);
                g_free(v);
                break;
            }
            case IE_PARAM_METHOD:
                ivp_param_set_number(&s->params, d, gimp_procedure_config_get_choice_id(config, d->name));
                break;
        }
    }
    gchar *model = NULL;
    g_object_get(config, IVP_ARG_MODEL_PATH, &model, NULL);
    ivp_settings_set_model_path(s, model);
    g_free(model);
    s->output = (ivp_output)gimp_procedure_config_get_choice_id(config, IVP_ARG_OUTPUT);
}

/* --- the edit ------------------------------------------------------------------------------ */

static void progress_text(const char *text) { gimp_progress_set_text(text); }
static void progress_update(double f) { gimp_progress_update(f); }

static GimpValueArray *fail(GimpProcedure *proc, GimpPDBStatusType status, const gchar *msg) {
    GError *e = g_error_new_literal(GIMP_PLUG_IN_ERROR, 0, msg);
    return gimp_procedure_new_return_values(proc, status, e);
}

static gboolean check_drawable(GimpDrawable *d, const ivp_settings *s, gchar **msg) {
    gint x, y, w, h;
    if (gimp_drawable_is_indexed(d)) {
        *msg = g_strdup(IVP_MSG_INDEXED);
        return FALSE;
    }
    if (gimp_item_is_group(GIMP_ITEM(d))) {
        *msg = g_strdup(IVP_MSG_GROUP);
        return FALSE;
    }
    if (ivp_output_is_new_layer(s->output) && !GIMP_IS_LAYER(d)) {
        *msg = g_strdup(IVP_MSG_NEEDS_LAYER);
        return FALSE;
    }
    if (!gimp_drawable_mask_intersect(d, &x, &y, &w, &h) || w <= 0 || h <= 0) {
        *msg = g_strdup_printf(IVP_MSG_NO_SELECTION, gimp_item_get_name(GIMP_ITEM(d)));
        return FALSE;
    }
    return TRUE;
}

/* Edits one drawable into *res, without touching the image. */
static GimpPDBStatusType edit_drawable(GimpImage *image, GimpDrawable *d, const ivp_settings *s, ie_session *session,
                                       ivp_progress *pr, ivp_edit_result *res, gchar **msg) {
    gint x = 0, y = 0, w = 0, h = 0;
    gimp_drawable_mask_intersect(d, &x, &y, &w, &h); /* check_drawable made sure it does */
    ivp_drawable_io io = {gimp_drawable_get_buffer(d),
                          gimp_drawable_get_format(d),
                          gimp_drawable_is_gray(d),
                          gimp_drawable_get_width(d),
                          gimp_drawable_get_height(d),
                          0,
                          0,
                          {x, y, w, h},
                          gimp_selection_is_empty(image)
                              ? NULL
                              : gimp_drawable_get_buffer(GIMP_DRAWABLE(gimp_image_get_selection(image)))};
    gimp_drawable_get_offsets(d, &io.offset_x, &io.offset_y);
    ie_status st = ivp_edit_drawable(&io, s, session, pr, res, msg);
    g_object_unref(io.buffer);
    if (io.selection) g_object_unref(io.selection);
    return st == IE_OK ? GIMP_PDB_SUCCESS : st == IE_ERR_CANCELLED ? GIMP_PDB_CANCEL : GIMP_PDB_EXECUTION_ERROR;
}

/* Merges the shadow buffer over r as it is, the way host_common.h ("Writing
 * in place") describes, and sets the selected layers or channels back. */
static void merge_shadow_unmasked(GimpImage *image, GimpDrawable *d, ivp_rect r) {
    if (gimp_selection_is_empty(image)) {
        gimp_drawable_merge_shadow(d, TRUE);
        return;
    }
    GimpLayer **layers = gimp_image_get_selected_layers(image);
    GimpChannel **channels = gimp_image_get_selected_channels(image);
    gint ox = 0, oy = 0;
    gimp_drawable_get_offsets(d, &ox, &oy);
    GimpChannel *saved = gimp_selection_save(image);
    gimp_context_push();
    gimp_context_set_feather(FALSE);
    gimp_context_set_antialias(FALSE);
    gimp_image_select_rectangle(image, GIMP_CHANNEL_OP_REPLACE, ox + r.x, oy + r.y, r.width, r.height);
    gimp_drawable_merge_shadow(d, TRUE);
    if (saved) {
        gimp_image_select_item(image, GIMP_CHANNEL_OP_REPLACE, GIMP_ITEM(saved));
        gimp_image_remove_channel(image, saved);
    }
    gimp_context_pop();
    if (channels && channels[0]) gimp_image_set_selected_channels(image, (const GimpChannel **)channels);
    else if (layers) gimp_image_set_selected_layers(image, (const GimpLayer **)layers);
    g_free(layers);
    g_free(channels);
}

static void write_result(GimpImage *image, GimpDrawable *d, const ivp_settings *s, const ivp_edit_result *res) {
    gint channels;
    const Babl *fmt = ivp_pixel_format(gimp_drawable_is_gray(d), gimp_drawable_get_format(d), &channels);
    const ivp_rect r = res->sel;
    if (s->output == IVP_OUTPUT_IN_PLACE) {
        ivp_buffer_write(gimp_drawable_get_shadow_buffer(d), r, fmt, res->pixels);
        merge_shadow_unmasked(image, d, r);
        gimp_drawable_update(d, r.x, r.y, r.width, r.height);
        return;
    }
    /* A copy of the layer above it, with the edited region written in. */
    GimpLayer *layer = gimp_layer_copy(GIMP_LAYER(d));
    gchar *name = ivp_result_layer_name(s);
    gimp_item_set_name(GIMP_ITEM(layer), name);
    g_free(name);
    GimpItem *parent = gimp_item_get_parent(GIMP_ITEM(d));
    gimp_image_insert_layer(image, layer, parent ? GIMP_LAYER(parent) : NULL,
                            gimp_image_get_item_position(image, GIMP_ITEM(d)));
    ivp_buffer_write(gimp_drawable_get_buffer(GIMP_DRAWABLE(layer)), r, fmt, res->pixels);
    if (res->change_mask) {
        /* the change mask as the layer's mask (black elsewhere): the user can paint corrections */
        if (gimp_layer_get_mask(layer)) gimp_layer_remove_mask(layer, GIMP_MASK_DISCARD);
        GimpLayerMask *lm = gimp_layer_create_mask(layer, GIMP_ADD_MASK_BLACK);
        gimp_layer_add_mask(layer, lm);
        ivp_buffer_write(gimp_drawable_get_buffer(GIMP_DRAWABLE(lm)), r, babl_format("Y float"), res->change_mask);
    }
    gimp_drawable_update(GIMP_DRAWABLE(layer), 0, 0, gimp_drawable_get_width(GIMP_DRAWABLE(layer)),
                         gimp_drawable_get_height(GIMP_DRAWABLE(layer)));
}

static gboolean have_display(void) {
    const gchar *x = g_getenv("DISPLAY"), *wl = g_getenv("WAYLAND_DISPLAY");
    return (x && *x) || (wl && *wl);
}

static GimpValueArray *invedit_run(GimpProcedure *procedure, GimpRunMode run_mode, GimpImage *image,
                                   GimpDrawable **drawables, GimpProcedureConfig *config, gpointer run_data) {
    (void)run_data;
    gegl_init(NULL, NULL);
    ivp_install_cancel_handlers();

    gint n_drawables = drawables ? gimp_core_object_array_get_length((GObject **)drawables) : 0;
    if (n_drawables < 1) return fail(procedure, GIMP_PDB_CALLING_ERROR, IVP_PROC " needs at least one drawable");

    if (run_mode == GIMP_RUN_INTERACTIVE) {
        if (!have_display()) return fail(procedure, GIMP_PDB_CALLING_ERROR, IVP_MSG_NO_DISPLAY);
        gimp_ui_init(IVP_BINARY);
        if (!ivp_dialog3_run(procedure, config))
            return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, NULL);
    }

    ivp_settings s;
    ivp_settings_init(&s);
    read_config(config, &s);
    gchar *desc = ivp_settings_describe(&s);
    g_printerr("invedit: run-mode=%d drawables=%d %s\n", (int)run_mode, n_drawables, desc);
    g_free(desc);

    GimpPDBStatusType status = GIMP_PDB_SUCCESS;
    gchar *msg = NULL;
    for (gint i = 0; i < n_drawables && status == GIMP_PDB_SUCCESS; i++)
        if (!check_drawable(drawables[i], &s, &msg)) status = GIMP_PDB_EXECUTION_ERROR;
    const char *model = NULL;
    if (status == GIMP_PDB_SUCCESS) {
        ie_status st = ivp_settings_check(&s, &model, &msg);
        if (st != IE_OK) status = st == IE_ERR_ARG ? GIMP_PDB_CALLING_ERROR : GIMP_PDB_EXECUTION_ERROR;
    }

    ie_session *session = NULL;
    gboolean batch = run_mode == GIMP_RUN_NONINTERACTIVE;
    if (status == GIMP_PDB_SUCCESS) {
        gimp_progress_init(IVP_MSG_LOADING);
        gchar *note = NULL;
        if (ivp_session_open(&s, model, !batch, &session, &msg, &note) != IE_OK) status = GIMP_PDB_EXECUTION_ERROR;
        if (note) gimp_message(note);
        g_free(note);
    }

    /* Edit every drawable first; write only when all succeeded, so a cancel
     * or an error never leaves a half-edited image. */
    ivp_edit_result *results = g_new0(ivp_edit_result, n_drawables);
    for (gint i = 0; i < n_drawables && status == GIMP_PDB_SUCCESS; i++) {
        ivp_progress pr;
        ivp_progress_init(&pr, batch, progress_text, progress_update);
        pr.base = (double)i / n_drawables;
        pr.span = 1.0 / n_drawables;
        status = edit_drawable(image, drawables[i], &s, session, &pr, &results[i], &msg);
    }
    if (session) ie_session_close(session);

    if (status == GIMP_PDB_SUCCESS) {
        gimp_image_undo_group_start(image);
        for (gint i = 0; i < n_drawables; i++) write_result(image, drawables[i], &s, &results[i]);
        gimp_image_undo_group_end(image);
        if (run_mode != GIMP_RUN_NONINTERACTIVE) gimp_displays_flush();
    }
    for (gint i = 0; i < n_drawables; i++) ivp_edit_result_clear(&results[i]);
    g_free(results);
    gimp_progress_end();
    ivp_settings_clear(&s);

    if (status == GIMP_PDB_CANCEL) {
        g_printerr("%s\n", IVP_MSG_CANCELLED);
        return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, NULL);
    }
    if (status != GIMP_PDB_SUCCESS) {
        GimpValueArray *ret = fail(procedure, status, msg);
        g_free(msg);
        return ret;
    }
    return gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, NULL);
}
