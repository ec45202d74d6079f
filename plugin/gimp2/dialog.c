/* The GIMP 2.10 dialog, built from the shared layout (ui/dialog_layout.h, see dialog.h). */
#include "plugin/gimp2/dialog.h"

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include "ui/dialog_layout.h"

typedef struct row {
    const ivp_ui_item *it;
    GtkWidget *widget; /* entry, combo, check button, spin button or label */
    GtkObject *adj;    /* numbers: the adjustment (a scale entry's, or the spin button's) */
    GtkWidget *label;  /* NULL for check buttons and the description */
    gboolean scale_entry;
} row;

typedef struct dialog_state {
    ivp_settings *s;
    row *rows; /* one per layout item, in layout order */
    size_t nrows;
    GtkWidget *dialog;
    ie_method method; /* the method the values belong to */
    gboolean updating;
} dialog_state;

static void model_folder_chosen(GtkFileChooser *chooser, GtkWidget *entry);

/* --- widgets per layout item ------------------------------------------------------------- */

/* The item's current value as a number: a parameter's, or the output's index. */
static double item_number(const dialog_state *st, const ivp_ui_item *it) {
    if (it->param) return ivp_param_get_number(&st->s->params, it->param);
    return (double)st->s->output;
}

static void add_row(dialog_state *st, row *r, GtkTable *table, int y) {
    const ivp_ui_item *it = r->it;
    const ie_param_desc *d = it->param;
    gchar *label = g_strdup_printf("%s:", it->label);
    double v = item_number(st, it);
    switch (it->kind) {
        case IVP_UI_ENTRY: {
            r->widget = gtk_entry_new();
            if (it->width_chars > 0) gtk_entry_set_width_chars(GTK_ENTRY(r->widget), it->width_chars);
            gtk_entry_set_activates_default(GTK_ENTRY(r->widget), TRUE);
            gtk_entry_set_text(GTK_ENTRY(r->widget), d ? ivp_param_get_string(&st->s->params, d) : st->s->model_path);
            GtkWidget *attach = r->widget;
            if (it->section == IVP_UI_SECTION_MODEL) { /* the entry and a folder chooser */
                attach = gtk_hbox_new(FALSE, 6);
                gtk_box_pack_start(GTK_BOX(attach), r->widget, TRUE, TRUE, 0);
                GtkWidget *chooser =
                    gtk_file_chooser_button_new(IVP_UI_MODEL_CHOOSER_TITLE, GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER);
                gimp_help_set_help_data(chooser, IVP_UI_MODEL_CHOOSER_TOOLTIP, NULL);
                if (*st->s->model_path && g_file_test(st->s->model_path, G_FILE_TEST_IS_DIR))
                    gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(chooser), st->s->model_path);
                g_signal_connect(chooser, "file-set", G_CALLBACK(model_folder_chosen), r->widget);
                gtk_box_pack_start(GTK_BOX(attach), chooser, FALSE, FALSE, 0);
                gtk_widget_show_all(attach);
            }
            r->label = gimp_table_attach_aligned(table, 0, y, label, 0.0, 0.5, attach, 2, FALSE);
            break;
        }
        case IVP_UI_CHOICE:
            r->widget = gtk_combo_box_text_new();
            if (d)
                for (int m = 0; m < IE_METHOD_COUNT; m++)
                    gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(r->widget), ivp_ui_method_label((ie_method)m));
            else
                for (int o = 0; o < IVP_OUTPUT_COUNT; o++)
                    gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(r->widget), ivp_output_label((ivp_output)o));
            gtk_combo_box_set_active(GTK_COMBO_BOX(r->widget), (int)v);
            r->label = gimp_table_attach_aligned(table, 0, y, label, 0.0, 0.5, r->widget, 1, TRUE);
            break;
        case IVP_UI_CHECK:
            r->widget = gtk_check_button_new_with_label(it->label);
            gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(r->widget), v != 0);
            gtk_table_attach(table, r->widget, 0, 3, y, y + 1, GTK_FILL, GTK_FILL, 0, 0);
            gtk_widget_show(r->widget);
            break;
        case IVP_UI_SPIN:
            r->adj = gtk_adjustment_new(v, d->min, d->max, it->step, it->page, 0);
            r->widget = gtk_spin_button_new(GTK_ADJUSTMENT(r->adj), 1, it->digits);
            gtk_entry_set_width_chars(GTK_ENTRY(r->widget), 12);
            r->label = gimp_table_attach_aligned(table, 0, y, label, 0.0, 0.5, r->widget, 1, TRUE);
            break;
        case IVP_UI_SCALE:
            r->adj = gimp_scale_entry_new(table, 0, y, label, 160, 6, v, d->min, d->max, it->step, it->page, it->digits,
                                          TRUE, 0, 0, it->tooltip, NULL);
            r->widget = GIMP_SCALE_ENTRY_SPINBUTTON(r->adj);
            r->label = GIMP_SCALE_ENTRY_LABEL(r->adj);
            r->scale_entry = TRUE;
            break;
        case IVP_UI_DESCRIPTION:
            r->widget = gtk_label_new("");
            gtk_label_set_line_wrap(GTK_LABEL(r->widget), TRUE);
            gtk_widget_set_size_request(r->widget, 420, -1);
            gtk_misc_set_alignment(GTK_MISC(r->widget), 0.0, 0.5);
            gtk_table_attach(table, r->widget, 1, 3, y, y + 1, GTK_FILL, GTK_FILL, 0, 0);
            gtk_widget_show(r->widget);
            break;
    }
    gchar *wname = g_strconcat(IVP_WIDGET_PREFIX, it->name, NULL);
    gtk_widget_set_name(r->widget, wname);
    if (it->tooltip) gimp_help_set_help_data(r->widget, it->tooltip, NULL);
    g_free(wname);
    g_free(label);
}

/* Widgets -> settings. */
static void read_widgets(dialog_state *st) {
    for (size_t i = 0; i < st->nrows; i++) {
        row *r = &st->rows[i];
        const ie_param_desc *d = r->it->param;
        switch (r->it->kind) {
            case IVP_UI_ENTRY:
                if (d) ivp_settings_set_string(st->s, d, gtk_entry_get_text(GTK_ENTRY(r->widget)));
                else ivp_settings_set_model_path(st->s, gtk_entry_get_text(GTK_ENTRY(r->widget)));
                break;
            case IVP_UI_CHOICE: {
                int k = gtk_combo_box_get_active(GTK_COMBO_BOX(r->widget));
                if (d) ivp_param_set_number(&st->s->params, d, k);
                else st->s->output = k >= 0 && k < IVP_OUTPUT_COUNT ? (ivp_output)k : IVP_OUTPUT_NEW_LAYER;
                break;
            }
            case IVP_UI_CHECK:
                ivp_param_set_number(&st->s->params, d,
                                     gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(r->widget)) ? 1 : 0);
                break;
            case IVP_UI_SPIN:
            case IVP_UI_SCALE:
                gtk_spin_button_update(GTK_SPIN_BUTTON(r->widget));
                ivp_param_set_number(&st->s->params, d, gtk_adjustment_get_value(GTK_ADJUSTMENT(r->adj)));
                break;
            case IVP_UI_DESCRIPTION: break;
        }
    }
}

/* Settings -> number widgets, the method's description, and sensitivity for the current method. */
static void refresh_numbers(dialog_state *st) {
    ie_method m = st->s->params.method;
    st->updating = TRUE;
    for (size_t i = 0; i < st->nrows; i++) {
        row *r = &st->rows[i];
        if (r->it->kind == IVP_UI_DESCRIPTION) gtk_label_set_text(GTK_LABEL(r->widget), ie_method_description(m));
        if (!r->it->param) continue;
        double v = ivp_param_get_number(&st->s->params, r->it->param);
        if (r->it->kind == IVP_UI_CHECK) gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(r->widget), v != 0);
        else if (r->adj) gtk_adjustment_set_value(GTK_ADJUSTMENT(r->adj), v);
        gboolean on = ivp_ui_item_sensitive(r->it, m, st->s->params.prompt_to_prompt);
        if (r->scale_entry) gimp_scale_entry_set_sensitive(r->adj, on);
        else {
            gtk_widget_set_sensitive(r->widget, on);
            if (r->label) gtk_widget_set_sensitive(r->label, on);
        }
    }
    st->updating = FALSE;
}

/* A switch that changes what applies (Prompt-to-Prompt). */
static void switch_toggled(GtkToggleButton *b, dialog_state *st) {
    if (st->updating) return;
    read_widgets(st);
    refresh_numbers(st);
}

static void method_changed(GtkComboBox *combo, dialog_state *st) {
    if (st->updating) return;
    int m = gtk_combo_box_get_active(combo);
    if (m < 0 || m >= IE_METHOD_COUNT) return;
    read_widgets(st);
    ivp_settings_switch_method(st->s, st->method, (ie_method)m);
    st->method = (ie_method)m;
    refresh_numbers(st);
}

static void model_folder_chosen(GtkFileChooser *chooser, GtkWidget *entry) {
    gchar *path = gtk_file_chooser_get_filename(chooser);
    if (path) gtk_entry_set_text(GTK_ENTRY(entry), path);
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

    int total = 0, found = 0;
    for (size_t i = 0; i < st->nrows; i++) {
        if (st->rows[i].it->kind == IVP_UI_DESCRIPTION) continue; /* not an argument */
        const char *name = st->rows[i].it->name;
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
    const ivp_ui_item *items = ivp_ui_layout(&n);
    dialog_state st = {.s = s, .rows = g_new0(row, n), .nrows = n, .method = s->params.method};

    st.dialog = gimp_dialog_new(IVP_TITLE, IVP_ROLE, NULL, 0, in_gimp ? gimp_standard_help_func : NULL, IVP_PROC,
                                GTK_STOCK_CANCEL, GTK_RESPONSE_CANCEL, GTK_STOCK_OK, GTK_RESPONSE_OK, NULL);
    gtk_dialog_set_alternative_button_order(GTK_DIALOG(st.dialog), GTK_RESPONSE_OK, GTK_RESPONSE_CANCEL, -1);
    gtk_dialog_set_default_response(GTK_DIALOG(st.dialog), GTK_RESPONSE_OK);
    if (in_gimp) gimp_window_set_transient(GTK_WINDOW(st.dialog));

    GtkWidget *vbox = gtk_vbox_new(FALSE, 12);
    gtk_container_set_border_width(GTK_CONTAINER(vbox), 12);
    gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(st.dialog))), vbox, TRUE, TRUE, 0);

    /* The sections that are not folded share one table (model, basic
     * parameters, output); a folded one gets an expander and a table of its own. */
    GtkWidget *table = NULL;
    int y = 0;
    for (int sec = 0; sec < IVP_UI_SECTION_COUNT; sec++) {
        size_t count;
        const ivp_ui_item *first = ivp_ui_section_items((ivp_ui_section)sec, &count);
        if (!count) continue;
        gboolean folded = ivp_ui_section_folded((ivp_ui_section)sec);
        if (folded || !table) {
            /* as many rows as it will hold: empty rows would still take their spacing */
            guint rows = 0;
            for (int k = sec; k < IVP_UI_SECTION_COUNT; k++) {
                size_t c;
                ivp_ui_section_items((ivp_ui_section)k, &c);
                if (k > sec && (folded || ivp_ui_section_folded((ivp_ui_section)k))) break;
                rows += (guint)c;
            }
            table = gtk_table_new(rows, 3, FALSE);
            gtk_table_set_col_spacings(GTK_TABLE(table), 6);
            gtk_table_set_row_spacings(GTK_TABLE(table), 6);
            y = 0;
            if (folded) {
                GtkWidget *expander = gtk_expander_new_with_mnemonic(ivp_ui_section_title((ivp_ui_section)sec));
                gtk_container_set_border_width(GTK_CONTAINER(table), 6);
                gtk_container_add(GTK_CONTAINER(expander), table);
                gtk_box_pack_start(GTK_BOX(vbox), expander, FALSE, FALSE, 0);
            } else {
                gtk_box_pack_start(GTK_BOX(vbox), table, FALSE, FALSE, 0);
            }
        }
        for (size_t i = 0; i < count; i++) {
            row *r = &st.rows[first - items + i];
            r->it = &first[i];
            add_row(&st, r, GTK_TABLE(table), y++);
        }
        if (folded) table = NULL; /* a later unfolded section starts a table below the expander */
    }
    gtk_widget_show_all(vbox);

    for (size_t i = 0; i < n; i++) {
        if (!items[i].refreshes_sensitivity) continue;
        if (items[i].kind == IVP_UI_CHOICE && items[i].param && items[i].param->type == IE_PARAM_METHOD)
            g_signal_connect(st.rows[i].widget, "changed", G_CALLBACK(method_changed), &st);
        else if (items[i].kind == IVP_UI_CHECK)
            g_signal_connect(st.rows[i].widget, "toggled", G_CALLBACK(switch_toggled), &st);
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
