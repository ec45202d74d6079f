/* The GIMP 3 dialog: a GimpProcedureDialog generated from the procedure's
 * own arguments (which plugin/gimp3/plugin.c generates from the library's parameter
 * table), so the PDB, batch scripts and the dialog cannot disagree. The
 * basic arguments come first, the advanced ones are folded into an
 * expander; the model path gets a folder chooser beside its entry; the
 * arguments that the chosen method ignores are greyed out, and picking a
 * method loads its defaults.
 *
 * Test hook: with $INVEDIT_UI_TEST set to a PNG path the dialog expands its
 * advanced section, saves a screenshot there, checks that every argument of
 * the procedure has a widget in the dialog (printing "ui-test: ..." lines to
 * stderr) and answers itself ($INVEDIT_UI_TEST_RESPONSE: ok or cancel). */
#ifndef INVEDIT_UI_DIALOG3_H
#define INVEDIT_UI_DIALOG3_H

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

/* Runs the dialog; TRUE when the user pressed OK (config holds the values). */
gboolean ivp_dialog3_run(GimpProcedure *procedure, GimpProcedureConfig *config);

#endif
