/* The GIMP 3 dialog, built from the shared layout (ui/dialog_layout.h) over
 * the procedure's arguments (dialog.h). */
#include "plugin/gimp3/dialog.h"

#include <string.h>

#include "plugin/core.h"
#include "ui/dialog_layout.h"

typedef struct dialog_state {
    GimpProcedure *procedure;
    GimpProcedureConfig *config;
    GtkWidget *dialog;
    ie_method method;       /* the method the values belong to */
    GtkWidget *description; /* one line about the chosen method */
} dialog_state;

/* A number or switch of the config as a double. */
static double config_number(GimpProcedureConfig *config, const ie_param_desc *d) {
    gint i = 0;
    gdouble x = 0;
    gboolean b = FALSE;
    switch (d->type) {
        case IE_PARAM_INT: g_object_get(config, d->name, &i, NULL); return i;
        case IE_PARAM_DOUBLE: g_object_get(config, d->name, &x, NULL); return x;
        case IE_PARAM_BOOL: g_object_get(config, d->name, &b, NULL); return b ? 1 : 0;
        default: return 0;
    }
}

/* The arguments that belong to the dialog: all but run-mode, image and drawables. */
static gboolean is_dialog_argument(const GParamSpec *ps) {
    return strcmp(ps->name, "run-mode") && strcmp(ps->name, "image") && strcmp(ps->name, "drawables");
}

/* Greys out what the method ignores, and says in one line what it does. */
static void update_sensitivity(dialog_state *st) {
    size_t n;
    const ivp_ui_item *items = ivp_ui_layout(&n);
    ie_method m = (ie_method)gimp_procedure_config_get_choice_id(st->config, "method");
    gboolean p2p = FALSE;
    g_object_get(st->config, "prompt-to-prompt", &p2p, NULL);
    for (size_t i = 0; i < n; i++) {
        if (!items[i].param) continue;
        GtkWidget *w = gimp_procedure_dialog_get_widget(GIMP_PROCEDURE_DIALOG(st->dialog), items[i].name, G_TYPE_NONE);
        if (w) gtk_widget_set_sensitive(w, ivp_ui_item_sensitive(&items[i], m, p2p != FALSE));
    }
    if (st->description) gtk_label_set_text(GTK_LABEL(st->description), ie_method_description(m));
}

/* A switch that changes what applies (Prompt-to-Prompt). */
static void switch_changed(GObject *config, GParamSpec *pspec, dialog_state *st) {
    (void)config, (void)pspec;
    update_sensitivity(st);
}

/* Picking a method loads its defaults for the numbers and switches, unless
 * the user changed the previous method's (or loaded other settings). */
static void method_changed(GObject *config, GParamSpec *pspec, dialog_state *st) {
    (void)config, (void)pspec;
    ie_method m = (ie_method)gimp_procedure_config_get_choice_id(st->config, "method");
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    ivp_settings s;
    ivp_settings_init(&s);
    for (size_t i = 0; i < n; i++)
        if (ivp_param_follows_method(&t[i])) ivp_param_set_number(&s.params, &t[i], config_number(st->config, &t[i]));
    if (ivp_settings_switch_method(&s, st->method, m)) {
        for (size_t i = 0; i < n; i++) {
            const ie_param_desc *d = &t[i];
            if (!ivp_param_follows_method(d)) continue;
            double v = ivp_param_get_number(&s.params, d);
            if (d->type == IE_PARAM_INT) g_object_set(st->config, d->name, (gint)v, NULL);
            else if (d->type == IE_PARAM_DOUBLE) g_object_set(st->config, d->name, v, NULL);
            else if (d->type == IE_PARAM_BOOL) g_object_set(st->config, d->name, (gboolean)(v != 0), NULL);
        }
    }
    ivp_settings_clear(&s);
    st->method = m;
    update_sensitivity(st);
}

static void model_folder_chosen(GtkFileChooser *chooser, dialog_state *st) {
    gchar *path = gtk_file_chooser_get_filename(chooser);
    if (path) g_object_set(st->config, IVP_ARG_MODEL_PATH, path, NULL);
    g_free(path);
}

/* --- the UI test hook ------------------------------------------------------------------ */

static void expand_all(GtkWidget *w, gpointer data) {
    if (GTK_IS_EXPANDER(w)) gtk_expander_set_expanded(GTK_EXPANDER(w), TRUE);
    if (GTK_IS_CONTAINER(w)) gtk_container_forall(GTK_CONTAINER(w), expand_all, data);
}

static gboolean ui_test_check(gpointer data) {
    dialog_state *st = data;
    const char *shot = g_getenv("INVEDIT_UI_TEST");
    while (gtk_events_pending()) gtk_main_iteration();

    /* Every argument of the procedure, and every table entry, needs a shown widget. */
    gint nargs = 0, total = 0, found = 0;
    GParamSpec **args = gimp_procedure_get_arguments(st->procedure, &nargs);
    for (gint i = 0; i < nargs; i++) {
        if (!is_dialog_argument(args[i])) continue;
        total++;
        GtkWidget *w = gimp_procedure_dialog_get_widget(GIMP_PROCEDURE_DIALOG(st->dialog), args[i]->name, G_TYPE_NONE);
        if (w && gtk_widget_is_ancestor(w, st->dialog) && gtk_widget_get_mapped(w)) {
            found++;
            g_printerr("ui-test: argument %-18s widget %s\n", args[i]->name, G_OBJECT_TYPE_NAME(w));
        } else {
            g_printerr("ui-test: MISSING widget for argument %s\n", args[i]->name);
        }
    }
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    for (size_t i = 0; i < n; i++)
        if (!gimp_procedure_find_argument(st->procedure, t[i].name))
            g_printerr("ui-test: MISSING procedure argument for table entry %s\n", t[i].name);
    g_printerr("ui-test: %d of %d arguments have a widget (table: %zu entries)\n", found, total, n);

    GdkWindow *win = gtk_widget_get_window(st->dialog);
    gdk_display_sync(gdk_window_get_display(win));
    gint w = gdk_window_get_width(win), h = gdk_window_get_height(win);
    GdkPixbuf *pb = gdk_pixbuf_get_from_window(win, 0, 0, w, h);
    if (pb && gdk_pixbuf_save(pb, shot, "png", NULL, NULL)) g_printerr("ui-test: screenshot %s (%dx%d)\n", shot, w, h);
    else g_printerr("ui-test: screenshot FAILED (%s)\n", shot);
    if (pb) g_object_unref(pb);

    const char *resp = g_getenv("INVEDIT_UI_TEST_RESPONSE");
    gtk_dialog_response(GTK_DIALOG(st->dialog),
                        resp && !g_ascii_strcasecmp(resp, "cancel") ? GTK_RESPONSE_CANCEL : GTK_RESPONSE_OK);
    return G_SOURCE_REMOVE;
}


/* --- the dialog ---------------------------------------------------------------------- */

gboolean ivp_dialog3_run(GimpProcedure *procedure, GimpProcedureConfig *config) {
    dialog_state st = {procedure, config, NULL, (ie_method)gimp_procedure_config_get_choice_id(config, "method"), NULL};
    st.dialog = gimp_procedure_dialog_new(procedure, config, IVP_TITLE);
    GimpProcedureDialog *dlg = GIMP_PROCEDURE_DIALOG(st.dialog);

    /* One widget per layout item, of the kind the layout says. */
    size_t n;
    const ivp_ui_item *items = ivp_ui_layout(&n);
    for (size_t i = 0; i < n; i++) {
        const ivp_ui_item *it = &items[i];
        GtkWidget *w = NULL;
        switch (it->kind) {
            case IVP_UI_SCALE: gimp_procedure_dialog_get_spin_scale(dlg, it->name, 1.0); break;
            case IVP_UI_SPIN: gimp_procedure_dialog_get_widget(dlg, it->name, GIMP_TYPE_LABEL_SPIN); break;
            case IVP_UI_CHOICE:
                /* the output's few values as radio buttons; the method as a combo (its default) */
                if (!it->param) gimp_procedure_dialog_get_widget(dlg, it->name, GIMP_TYPE_INT_RADIO_FRAME);
                break;
            case IVP_UI_ENTRY:
                w = gimp_procedure_dialog_get_widget(dlg, it->name, G_TYPE_NONE);
                if (it->width_chars > 0 && GIMP_IS_LABEL_ENTRY(w))
                    gtk_entry_set_width_chars(GTK_ENTRY(gimp_label_entry_get_entry(GIMP_LABEL_ENTRY(w))),
                                              it->width_chars);
                break;
            case IVP_UI_CHECK: break; /* the default: a check button */
            case IVP_UI_DESCRIPTION:
                st.description = gimp_procedure_dialog_get_label(dlg, it->name, "", FALSE, FALSE);
                gtk_label_set_line_wrap(GTK_LABEL(st.description), TRUE);
                gtk_label_set_max_width_chars(GTK_LABEL(st.description), 60);
                gtk_label_set_xalign(GTK_LABEL(st.description), 0.0);
                break;
        }
    }

    /* Each section in a box of its own, top to bottom; a folded one inside
     * an expander under its title; the model path's box gets the folder
     * chooser beside the entry. */
    static const char *const box_ids[IVP_UI_SECTION_COUNT] = {"model-box", "basic-box", "output-box", "advanced-box"};
    GList *sections = NULL;
    for (int sec = 0; sec < IVP_UI_SECTION_COUNT; sec++) {
        size_t count;
        const ivp_ui_item *first = ivp_ui_section_items((ivp_ui_section)sec, &count);
        if (!count) continue;
        GList *names = NULL;
        for (size_t i = 0; i < count; i++) names = g_list_append(names, (gpointer)first[i].name);
        GtkWidget *box = gimp_procedure_dialog_fill_box_list(dlg, box_ids[sec], names);
        g_list_free(names);
        if (sec == IVP_UI_SECTION_MODEL) {
            gtk_orientable_set_orientation(GTK_ORIENTABLE(box), GTK_ORIENTATION_HORIZONTAL);
            GtkWidget *chooser =
                gtk_file_chooser_button_new(IVP_UI_MODEL_CHOOSER_TITLE, GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER);
            gtk_widget_set_tooltip_text(chooser, IVP_UI_MODEL_CHOOSER_TOOLTIP);
            g_signal_connect(chooser, "file-set", G_CALLBACK(model_folder_chosen), &st);
            gtk_box_pack_end(GTK_BOX(box), chooser, FALSE, FALSE, 0);
            gtk_widget_show(chooser);
        }
        const char *title = ivp_ui_section_title((ivp_ui_section)sec);
        if (title && ivp_ui_section_folded((ivp_ui_section)sec)) {
            /* interned: the ids outlive this function wherever the dialog keeps them */
            gchar *id = g_strconcat(box_ids[sec], "-label", NULL);
            const gchar *label_id = g_intern_string(id);
            g_free(id);
            id = g_strconcat(box_ids[sec], "-expander", NULL);
            const gchar *expander_id = g_intern_string(id);
            g_free(id);
            gimp_procedure_dialog_get_label(dlg, label_id, title, FALSE, TRUE);
            gimp_procedure_dialog_fill_expander(dlg, expander_id, label_id, FALSE, box_ids[sec]);
            sections = g_list_append(sections, (gpointer)expander_id);
        } else {
            sections = g_list_append(sections, (gpointer)box_ids[sec]);
        }
    }
    gimp_procedure_dialog_fill_list(dlg, sections);
    g_list_free(sections);

    update_sensitivity(&st);
    /* The items whose value changes what applies: the method (which also
     * loads its defaults) and Prompt-to-Prompt. */
    gulong *handlers = g_new0(gulong, n);
    for (size_t i = 0; i < n; i++) {
        if (!items[i].refreshes_sensitivity) continue;
        gchar *signal = g_strconcat("notify::", items[i].name, NULL);
        gboolean is_method = items[i].param && items[i].param->type == IE_PARAM_METHOD;
        handlers[i] =
            g_signal_connect(config, signal, is_method ? G_CALLBACK(method_changed) : G_CALLBACK(switch_changed), &st);
        g_free(signal);
    }

    const gchar *test = g_getenv("INVEDIT_UI_TEST");
    if (test && *test) {
        expand_all(st.dialog, NULL); /* before it is mapped, so the window has its full size */
        g_timeout_add(1200, ui_test_check, &st);
    }

    gboolean ok = gimp_procedure_dialog_run(dlg);
    for (size_t i = 0; i < n; i++)
        if (handlers[i]) g_signal_handler_disconnect(config, handlers[i]);
    g_free(handlers);
    gtk_widget_destroy(st.dialog);
    return ok;
}
