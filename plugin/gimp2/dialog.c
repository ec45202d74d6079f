/* The GIMP 2.10 dialog, generated from ie_edit_param_table() (see dialog.h). */
#include "plugin/gimp2/dialog.h"

#include <math.h>
#include <string.h>

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

typedef struct row {
    const ie_param_desc *d;
    GtkWidget *widget;  /* entry, combo, check button or spin button */
    GtkObject *adj;     /* numbers: the adjustment (a scale entry's, or the spin button's) */
    GtkWidget *label;   /* NULL for check buttons */
    gboolean scale_entry;
} row;

typedef struct dialog_state {
    ivp_settings *s;
    row *rows;
    size_t nrows;
    GtkWidget *dialog, *model_entry, *output_combo;
    ie_method method; /* the method the values belong to */
    gboolean updating;
    GtkWidget *description; /* one line about the chosen method */
} dialog_state;

/* --- widgets per parameter type --------------------------------------------------------- */

static void number_steps(const ie_param_desc *d, double *step, double *page, int *digits) {
    double range = d->max - d->min;
    if (d->type == IE_PARAM_INT) {
        *step = 1;
        *page = range > 100 ? 10 : 1;
        *digits = 0;
    } else {
        *step = range <= 2 ? 0.01 : 0.1;
        *page = range <= 2 ? 0.1 : 1;
        *digits = 2;
    }
}

static void add_row(dialog_state *st, row *r, GtkTable *table, int y) {
    const ie_param_desc *d = r->d;
    gchar *label = g_strdup_printf("%s:", d->nick);
    gchar *wname = g_strconcat(IVP_WIDGET_PREFIX, d->name, NULL);
    double v = ivp_param_get_number(&st->s->params, d);
    switch (d->type) {
    case IE_PARAM_STRING:
        r->widget = gtk_entry_new();
        gtk_entry_set_width_chars(GTK_ENTRY(r->widget), strstr(d->name, "prompt") ? 44 : 24);
        gtk_entry_set_activates_default(GTK_ENTRY(r->widget), TRUE);
        gtk_entry_set_text(GTK_ENTRY(r->widget), ivp_param_get_string(&st->s->params, d));
        r->label = gimp_table_attach_aligned(table, 0, y, label, 0.0, 0.5, r->widget, 2, FALSE);
        break;
    case IE_PARAM_METHOD:
        r->widget = gtk_combo_box_text_new();
        for (int m = 0; m < IE_METHOD_COUNT; m++)
            gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(r->widget), ie_method_name((ie_method)m));
        gtk_combo_box_set_active(GTK_COMBO_BOX(r->widget), (int)v);
        r->label = gimp_table_attach_aligned(table, 0, y, label, 0.0, 0.5, r->widget, 1, TRUE);
        break;
    case IE_PARAM_BOOL:
        r->widget = gtk_check_button_new_with_label(d->nick);
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(r->widget), v != 0);
        gtk_table_attach(table, r->widget, 0, 3, y, y + 1, GTK_FILL, GTK_FILL, 0, 0);
        gtk_widget_show(r->widget);
        break;
    case IE_PARAM_INT:
    case IE_PARAM_DOUBLE: {
        double step, page;
        int digits;
        number_steps(d, &step, &page, &digits);
        if (d->max - d->min > 10000) { /* a seed: a spin button, a scale would be useless */
            r->adj = gtk_adjustment_new(v, d->min, d->max, step, page, 0);
            r->widget = gtk_spin_button_new(GTK_ADJUSTMENT(r->adj), 1, digits);
            gtk_entry_set_width_chars(GTK_ENTRY(r->widget), 12);
            r->label = gimp_table_attach_aligned(table, 0, y, label, 0.0, 0.5, r->widget, 1, TRUE);
        } else {
            r->adj = gimp_scale_entry_new(table, 0, y, label, 160, 6, v, d->min, d->max, step, page, digits, TRUE,
                                          0, 0, d->blurb, NULL);
            r->widget = GIMP_SCALE_ENTRY_SPINBUTTON(r->adj);
            r->label = GIMP_SCALE_ENTRY_LABEL(r->adj);
            r->scale_entry = TRUE;
        }
        break;
    }
    }
    gtk_widget_set_name(r->widget, wname);
    gimp_help_set_help_data(r->widget, d->blurb, NULL);
    g_free(wname);
    g_free(label);
}

/* Widgets -> settings. */
static void read_widgets(dialog_state *st) {
    for (size_t i = 0; i < st->nrows; i++) {
        row *r = &st->rows[i];
        switch (r->d->type) {
        case IE_PARAM_STRING:
            ivp_settings_set_string(st->s, r->d, gtk_entry_get_text(GTK_ENTRY(r->widget)));
            break;
        case IE_PARAM_METHOD:
            ivp_param_set_number(&st->s->params, r->d, gtk_combo_box_get_active(GTK_COMBO_BOX(r->widget)));
            break;
        case IE_PARAM_BOOL:
            ivp_param_set_number(&st->s->params, r->d,
                                 gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(r->widget)) ? 1 : 0);
            break;
        default:
            if (GTK_IS_SPIN_BUTTON(r->widget)) gtk_spin_button_update(GTK_SPIN_BUTTON(r->widget));
            ivp_param_set_number(&st->s->params, r->d, gtk_adjustment_get_value(GTK_ADJUSTMENT(r->adj)));
            break;
        }
    }
    ivp_settings_set_model_path(st->s, gtk_entry_get_text(GTK_ENTRY(st->model_entry)));
    int o = gtk_combo_box_get_active(GTK_COMBO_BOX(st->output_combo));
    st->s->output = o >= 0 && o < IVP_OUTPUT_COUNT ? (ivp_output)o : IVP_OUTPUT_NEW_LAYER;
}

/* Settings -> number widgets, and sensitivity for the current method. */
static void refresh_numbers(dialog_state *st) {
    ie_method m = st->s->params.method;
    st->updating = TRUE;
    for (size_t i = 0; i < st->nrows; i++) {
        row *r = &st->rows[i];
        double v = ivp_param_get_number(&st->s->params, r->d);
        if (r->d->type == IE_PARAM_BOOL) gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(r->widget), v != 0);
        else if (r->adj) gtk_adjustment_set_value(GTK_ADJUSTMENT(r->adj), v);
        gboolean on = ie_edit_param_applies(r->d, m, st->s->params.prompt_to_prompt);
        if (r->scale_entry) gimp_scale_entry_set_sensitive(r->adj, on);
        else {
            gtk_widget_set_sensitive(r->widget, on);
            if (r->label) gtk_widget_set_sensitive(r->label, on);
        }
    }
    if (st->description) gtk_label_set_text(GTK_LABEL(st->description), ie_method_description(m));
    st->updating = FALSE;
}

static void p2p_toggled(GtkToggleButton *b, dialog_state *st) {
    if (st->updating) return;
    read_widgets(st);
    refresh_numbers(st);
}

static void method_changed(GtkComboBox *combo, dialog_state *st) {
    if (st->updating) return;
    int m = gtk_combo_box_get_active(combo);
    if (m < 0 || m >= IE_METHOD_COUNT) return;
    read_widgets(st);
    /* The new method's defaults, unless the user changed the old method's. */
    if (ivp_settings_has_method_defaults(st->s, st->method)) ivp_settings_apply_method_defaults(st->s, (ie_method)m);
    st->method = (ie_method)m;
    refresh_numbers(st);
}

static void model_folder_chosen(GtkFileChooser *chooser, dialog_state *st) {
    gchar *path = gtk_file_chooser_get_filename(chooser);
    if (path) gtk_entry_set_text(GTK_ENTRY(st->model_entry), path);
    g_free(path);
}

/* --- the UI test hook ------------------------------------------------------------------ */

typedef struct found_widget {
    const char *name;
    GtkWidget *widget;
} found_widget;

static void find_named(GtkWidget *w, gpointer data) {
    found_widget *f = data;
    if (!f->widget && !g_strcmp0(gtk_widget_get_name(w), f->name)) f->widget = w;
    if (!f->widget && GTK_IS_CONTAINER(w)) gtk_container_forall(GTK_CONTAINER(w), find_named, f);
}

static void expand_all(GtkWidget *w, gpointer data) {
    if (GTK_IS_EXPANDER(w)) gtk_expander_set_expanded(GTK_EXPANDER(w), TRUE);
    if (GTK_IS_CONTAINER(w)) gtk_container_forall(GTK_CONTAINER(w), expand_all, data);
}

static gboolean ui_test_check(gpointer data) {
    dialog_state *st = data;
    const char *shot = g_getenv("INVEDIT_UI_TEST");
    while (gtk_events_pending()) gtk_main_iteration();

    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    int total = 0, found = 0;
    for (size_t i = 0; i < n + 2; i++) {
        const char *name = i < n ? t[i].name : i == n ? IVP_ARG_MODEL_PATH : IVP_ARG_OUTPUT;
        gchar *wname = g_strconcat(IVP_WIDGET_PREFIX, name, NULL);
        found_widget f = {wname, NULL};
        find_named(st->dialog, &f);
        total++;
        if (f.widget && gtk_widget_get_mapped(f.widget)) {
            found++;
            g_printerr("ui-test: argument %-18s widget %s\n", name, G_OBJECT_TYPE_NAME(f.widget));
        } else {
            g_printerr("ui-test: MISSING widget for argument %s%s\n", name, f.widget ? " (not shown)" : "");
        }
        g_free(wname);
    }
    g_printerr("ui-test: %d of %d arguments have a widget\n", found, total);

    GdkWindow *win = gtk_widget_get_window(st->dialog);
    gdk_window_process_updates(win, TRUE);
    gdk_flush();
    gint w = 0, h = 0;
    gdk_drawable_get_size(win, &w, &h);
    GdkPixbuf *pb = gdk_pixbuf_get_from_drawable(NULL, win, NULL, 0, 0, 0, 0, w, h);
    if (pb && gdk_pixbuf_save(pb, shot, "png", NULL, NULL)) g_printerr("ui-test: screenshot %s (%dx%d)\n", shot, w, h);
    else g_printerr("ui-test: screenshot FAILED (%s)\n", shot);
    if (pb) g_object_unref(pb);

    const char *resp = g_getenv("INVEDIT_UI_TEST_RESPONSE");
    gtk_dialog_response(GTK_DIALOG(st->dialog),
                        resp && !g_ascii_strcasecmp(resp, "cancel") ? GTK_RESPONSE_CANCEL : GTK_RESPONSE_OK);
    return G_SOURCE_REMOVE;
}


/* --- the dialog ---------------------------------------------------------------------- */

gboolean ivp_dialog2_run(ivp_settings *s, gboolean in_gimp) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    dialog_state st = {.s = s, .rows = g_new0(row, n), .nrows = n, .method = s->params.method};

    st.dialog = gimp_dialog_new(IVP_TITLE, IVP_ROLE, NULL, 0, in_gimp ? gimp_standard_help_func : NULL, IVP_PROC,
                                GTK_STOCK_CANCEL, GTK_RESPONSE_CANCEL, GTK_STOCK_OK, GTK_RESPONSE_OK, NULL);
    gtk_dialog_set_alternative_button_order(GTK_DIALOG(st.dialog), GTK_RESPONSE_OK, GTK_RESPONSE_CANCEL, -1);
    gtk_dialog_set_default_response(GTK_DIALOG(st.dialog), GTK_RESPONSE_OK);
    if (in_gimp) gimp_window_set_transient(GTK_WINDOW(st.dialog));

    GtkWidget *vbox = gtk_vbox_new(FALSE, 12);
    gtk_container_set_border_width(GTK_CONTAINER(vbox), 12);
    gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(st.dialog))), vbox, TRUE, TRUE, 0);

    size_t n_basic = 0;
    for (size_t i = 0; i < n; i++) n_basic += !t[i].advanced;

    /* Model, the basic parameters, output. */
    GtkWidget *table = gtk_table_new((guint)n_basic + 3, 3, FALSE);
    gtk_table_set_col_spacings(GTK_TABLE(table), 6);
    gtk_table_set_row_spacings(GTK_TABLE(table), 6);
    gtk_box_pack_start(GTK_BOX(vbox), table, FALSE, FALSE, 0);

    GtkWidget *hbox = gtk_hbox_new(FALSE, 6);
    st.model_entry = gtk_entry_new();
    gtk_widget_set_name(st.model_entry, IVP_WIDGET_PREFIX IVP_ARG_MODEL_PATH);
    gtk_entry_set_width_chars(GTK_ENTRY(st.model_entry), 36);
    gtk_entry_set_text(GTK_ENTRY(st.model_entry), s->model_path);
    gimp_help_set_help_data(st.model_entry, IVP_MODEL_BLURB, NULL);
    gtk_box_pack_start(GTK_BOX(hbox), st.model_entry, TRUE, TRUE, 0);
    GtkWidget *chooser = gtk_file_chooser_button_new("Choose the model folder", GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER);
    gimp_help_set_help_data(chooser, "Pick a diffusers folder; type a .safetensors path into the entry", NULL);
    if (*s->model_path && g_file_test(s->model_path, G_FILE_TEST_IS_DIR))
        gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(chooser), s->model_path);
    g_signal_connect(chooser, "file-set", G_CALLBACK(model_folder_chosen), &st);
    gtk_box_pack_start(GTK_BOX(hbox), chooser, FALSE, FALSE, 0);
    gtk_widget_show_all(hbox);
    gimp_table_attach_aligned(GTK_TABLE(table), 0, 0, IVP_MODEL_NICK ":", 0.0, 0.5, hbox, 2, FALSE);

    int y = 1;
    for (size_t i = 0; i < n; i++) {
        st.rows[i].d = &t[i];
        if (!t[i].advanced) add_row(&st, &st.rows[i], GTK_TABLE(table), y++);
        if (!t[i].advanced && t[i].type == IE_PARAM_METHOD) { /* what the method does, under its choice */
            st.description = gtk_label_new(ie_method_description(s->params.method));
            gtk_label_set_line_wrap(GTK_LABEL(st.description), TRUE);
            gtk_widget_set_size_request(st.description, 420, -1);
            gtk_misc_set_alignment(GTK_MISC(st.description), 0.0, 0.5);
            gtk_table_attach(GTK_TABLE(table), st.description, 1, 3, y, y + 1, GTK_FILL, GTK_FILL, 0, 0);
            gtk_widget_show(st.description);
            y++;
        }
    }

    st.output_combo = gtk_combo_box_text_new();
    gtk_widget_set_name(st.output_combo, IVP_WIDGET_PREFIX IVP_ARG_OUTPUT);
    for (int o = 0; o < IVP_OUTPUT_COUNT; o++)
        gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(st.output_combo), ivp_output_label((ivp_output)o));
    gtk_combo_box_set_active(GTK_COMBO_BOX(st.output_combo), (int)s->output);
    gimp_help_set_help_data(st.output_combo, IVP_OUTPUT_BLURB, NULL);
    gimp_table_attach_aligned(GTK_TABLE(table), 0, y, IVP_OUTPUT_NICK ":", 0.0, 0.5, st.output_combo, 1, TRUE);
    gtk_widget_show(table);

    /* The advanced parameters, folded away. */
    GtkWidget *expander = gtk_expander_new_with_mnemonic("_Advanced");
    gtk_box_pack_start(GTK_BOX(vbox), expander, FALSE, FALSE, 0);
    GtkWidget *adv = gtk_table_new((guint)(n - n_basic), 3, FALSE);
    gtk_table_set_col_spacings(GTK_TABLE(adv), 6);
    gtk_table_set_row_spacings(GTK_TABLE(adv), 6);
    gtk_container_set_border_width(GTK_CONTAINER(adv), 6);
    gtk_container_add(GTK_CONTAINER(expander), adv);
    y = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].advanced) add_row(&st, &st.rows[i], GTK_TABLE(adv), y++);
    gtk_widget_show_all(expander);
    gtk_widget_show(vbox);

    for (size_t i = 0; i < n; i++) {
        if (t[i].type == IE_PARAM_METHOD) g_signal_connect(st.rows[i].widget, "changed", G_CALLBACK(method_changed), &st);
        if (!strcmp(t[i].name, "prompt-to-prompt"))
            g_signal_connect(st.rows[i].widget, "toggled", G_CALLBACK(p2p_toggled), &st);
    }
    refresh_numbers(&st);

    if (g_getenv("INVEDIT_UI_TEST") && *g_getenv("INVEDIT_UI_TEST")) {
        expand_all(st.dialog, NULL); /* before it is mapped, so the window has its full size */
        g_timeout_add(1200, ui_test_check, &st);
    }
    gtk_widget_show(st.dialog);

    gboolean ok = gimp_dialog_run(GIMP_DIALOG(st.dialog)) == GTK_RESPONSE_OK;
    if (ok) read_widgets(&st);
    gtk_widget_destroy(st.dialog);
    g_free(st.rows);
    return ok;
}
