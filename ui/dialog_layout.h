/* What the plug-ins' two dialogs (plugin/gimp2/dialog.c, GTK 2 by hand, and
 * plugin/gimp3/dialog.c, a GimpProcedureDialog) share, without a toolkit:
 * which widgets there are, in which section and order, their labels and
 * tooltips, what kind of widget each argument gets, and which are greyed out
 * for the chosen method. Both dialogs walk this list, so they cannot
 * disagree with each other or with the library's parameter table
 * (ie_edit_param_table), from which it is built. */
#ifndef INVEDIT_UI_DIALOG_LAYOUT_H
#define INVEDIT_UI_DIALOG_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>

#include <invedit.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The sections, top to bottom. */
typedef enum ivp_ui_section {
    IVP_UI_SECTION_MODEL,    /* the model path, with a folder chooser beside its entry */
    IVP_UI_SECTION_BASIC,    /* the table's basic parameters in table order; the method's description
                                right under the method */
    IVP_UI_SECTION_OUTPUT,   /* where the result goes */
    IVP_UI_SECTION_ADVANCED, /* the advanced parameters in table order, folded away */
    IVP_UI_SECTION_COUNT
} ivp_ui_section;

typedef enum ivp_ui_kind {
    IVP_UI_ENTRY,       /* a text entry (strings) */
    IVP_UI_CHOICE,      /* one of a few named values (the method, the output) */
    IVP_UI_CHECK,       /* a check button (booleans); its label is its own */
    IVP_UI_SCALE,       /* a slider with a spin button (numbers) */
    IVP_UI_SPIN,        /* a spin button alone: a range too wide for a slider (the seed) */
    IVP_UI_DESCRIPTION, /* a read-only line: what the chosen method does */
} ivp_ui_kind;

typedef struct ivp_ui_item {
    const char *name;    /* the argument's name (also its widget's id); IVP_UI_DESCRIPTION_ID for the description */
    const char *label;   /* without a colon; "" for the description */
    const char *tooltip; /* the argument's one-line help; NULL for the description */
    ivp_ui_kind kind;
    ivp_ui_section section;
    const ie_param_desc *param; /* its table entry; NULL for model-path, output and the description */
    /* IVP_UI_SCALE and IVP_UI_SPIN: arrow and page increments and decimals
     * (the GTK 2 dialog sets them; GIMP 3 takes them from the argument) */
    double step, page;
    int digits;
    int width_chars; /* IVP_UI_ENTRY: the entry's width in characters (prompts and the model path are wide) */
    /* Changing this item's value changes which items are sensitive (the
     * method, Prompt-to-Prompt): the dialogs refresh sensitivity on it. */
    bool refreshes_sensitivity;
} ivp_ui_item;

#define IVP_UI_DESCRIPTION_ID "method-description"
#define IVP_UI_MODEL_CHOOSER_TITLE "Choose the model folder"
#define IVP_UI_MODEL_CHOOSER_TOOLTIP "Pick a diffusers folder; type a .safetensors path into the entry"

/* Every widget of the dialog in display order (sections in enum order, each
 * contiguous); *count receives the length. Built once from the parameter
 * table; never NULL. */
const ivp_ui_item *ivp_ui_layout(size_t *count);

/* The items of section s: returns the first, *count receives how many. */
const ivp_ui_item *ivp_ui_section_items(ivp_ui_section s, size_t *count);

/* The item named name, or NULL. */
const ivp_ui_item *ivp_ui_find(const char *name);

/* The section's heading ("_Advanced", with its mnemonic), or NULL for the
 * sections that have none. */
const char *ivp_ui_section_title(ivp_ui_section s);
/* Whether the section is folded into an expander (closed at first). */
bool ivp_ui_section_folded(ivp_ui_section s);

/* Whether it's useful to set the item for method m (and Prompt-to-Prompt
 * on or off): the dialogs grey out the rest. Items outside the parameter
 * table are always sensitive. */
bool ivp_ui_item_sensitive(const ivp_ui_item *it, ie_method m, bool prompt_to_prompt);

/* The method's name in the dialogs' choice ("InfEdit (few steps)"). */
const char *ivp_ui_method_label(ie_method m);

#ifdef __cplusplus
}
#endif
#endif
