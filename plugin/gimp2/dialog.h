/* The GIMP 2.10 dialog (GTK 2 + libgimpwidgets), built from the layout that
 * both dialogs share (ui/dialog_layout.h, generated from the library's
 * parameter table): one widget per item (scale or spin button for numbers,
 * entry for strings, combo for the method and the output, check box for
 * booleans), a folder chooser beside the model path, and the advanced
 * parameters folded into an expander. */
#ifndef INVEDIT_UI_DIALOG2_H
#define INVEDIT_UI_DIALOG2_H

#include <gtk/gtk.h>

#include "plugin/core.h"

/* Shows the dialog for s; on OK copies the values into s and returns TRUE.
 * in_gimp: the plug-in runs inside GIMP (help button, transient window);
 * FALSE for the standalone UI test. Test hook: with $INVEDIT_UI_TEST set to
 * a PNG path the dialog expands its advanced section, saves a screenshot
 * there, checks that every argument has a widget (printing "ui-test: ..."
 * lines) and answers itself ($INVEDIT_UI_TEST_RESPONSE: ok or cancel). */
gboolean ivp_dialog2_run(ivp_settings *s, gboolean in_gimp);

/* Widget name of an argument's widget: "invedit-<argument name>". */
#define IVP_WIDGET_PREFIX "invedit-"

#endif
