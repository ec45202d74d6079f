/* The host-independent part of the GIMP plug-ins: everything both hosts
 * (plugin/gimp3/ for GIMP 3, plugin/gimp2/ for GIMP 2.10) share that needs
 * only GLib: the settings (the library's ie_edit_params plus the plug-in's
 * own two arguments), generic access to a parameter through its table
 * entry, the last-used-values key file, the edit region, progress and
 * cancel, the checks and the session opening before an edit, the edit of one
 * region including the compositing through the selection mask, and the
 * messages. What needs GEGL is in plugin/host_common.h, what the dialogs
 * share in ui/dialog_layout.h.
 *
 * Pixels cross this boundary as the hosts fetch them through babl:
 * "R'G'B'A float" (4 channels) or "Y'A float" (2 channels), row-major, non-
 * linear values in [0, 1]; the hosts write the result back in the same format
 * so that GEGL converts it to the drawable's precision. */
#ifndef INVEDIT_PLUGIN_CORE_H
#define INVEDIT_PLUGIN_CORE_H

#include <stdbool.h>
#include <stddef.h>

#include <invedit.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- names shared by both hosts ------------------------------------------------ */

#define IVP_PROC "plug-in-invedit"
#define IVP_BINARY "invedit"
#define IVP_ROLE "gimp-invedit"
#define IVP_MENU_LABEL "_Diffusion Edit..."
#define IVP_MENU_PATH "<Image>/Filters/Generic"
#define IVP_TITLE "Diffusion Edit"

/* The plug-in's own arguments, beside the library's parameter table. */
#define IVP_ARG_MODEL_PATH "model-path"
#define IVP_ARG_OUTPUT "output"

typedef enum ivp_output {
    IVP_OUTPUT_NEW_LAYER = 0,      /* a new layer above the edited one (non-destructive) */
    IVP_OUTPUT_IN_PLACE = 1,       /* the drawable itself, through the shadow buffer */
    IVP_OUTPUT_NEW_LAYER_MASK = 2, /* a new layer holding the edit, with the change mask (times the
                                      selection) as its layer mask, for the user to paint */
    IVP_OUTPUT_COUNT
} ivp_output;

const char *ivp_output_name(ivp_output o);  /* "new-layer", "in-place", "new-layer-mask" */
const char *ivp_output_label(ivp_output o); /* "New layer", "In place", "New layer + change mask" */
/* Whether o writes a new layer (new-layer, new-layer-mask). */
bool ivp_output_is_new_layer(ivp_output o);
bool ivp_output_from_name(const char *s, ivp_output *out);

/* Nick, blurb and the environment variable consulted when model-path is "". */
#define IVP_MODEL_NICK "Model"
#define IVP_MODEL_BLURB                                                                                                \
    "Stable Diffusion 1.x model: a diffusers folder (model_index.json, unet/, vae/, "                                  \
    "text_encoder/, tokenizer/) or a single-file .safetensors checkpoint"
#define IVP_MODEL_ENV "INVEDIT_MODEL"
#define IVP_OUTPUT_NICK "Output"
#define IVP_OUTPUT_BLURB                                                                                               \
    "new-layer: add the result as a new layer above; in-place: edit the layer itself; "                                \
    "new-layer-mask: a new layer with the change mask as its layer mask (paint it to correct)"

/* --- settings: the parameter struct plus what the plug-in adds ---------------- */

typedef struct ivp_settings {
    ie_edit_params params; /* its strings point into `owned` (or at "") */
    char *model_path;      /* owned, never NULL */
    ivp_output output;
    char **owned; /* one owned string per table entry (NULL for non-strings) */
} ivp_settings;

/* InfEdit's defaults (the table's method-independent defaults), model_path "". */
void ivp_settings_init(ivp_settings *s);
void ivp_settings_clear(ivp_settings *s);
void ivp_settings_set_model_path(ivp_settings *s, const char *path);

/* Generic access to one parameter of p through its table entry. Numbers
 * cover INT, DOUBLE, BOOL (0/1) and METHOD (its index). */
double ivp_param_get_number(const ie_edit_params *p, const ie_param_desc *d);
void ivp_param_set_number(ie_edit_params *p, const ie_param_desc *d, double v);
const char *ivp_param_get_string(const ie_edit_params *p, const ie_param_desc *d);
/* Copies value into s (NULL counts as ""). */
void ivp_settings_set_string(ivp_settings *s, const ie_param_desc *d, const char *value);

/* Checks a number against d's range (and wholeness for integers); false
 * with "strength: 2 is outside 0.01..1" in err. Locale-independent, unlike
 * parsing text. */
bool ivp_param_check_number(const ie_param_desc *d, double v, char *err, size_t errlen);

/* The numbers and booleans whose defaults depend on the method (all but
 * the strings, the method and the seed). */
bool ivp_param_follows_method(const ie_param_desc *d);

/* Whether every method-dependent number and boolean of s equals method m's
 * default: the dialogs load the new method's defaults on a method change
 * only then, so values the user changed (or loaded) are kept. */
bool ivp_settings_has_method_defaults(const ivp_settings *s, ie_method m);

/* Resets the numbers and booleans that depend on the method (steps,
 * strength, guidance, ...) to method m's defaults and sets the method;
 * prompts, words, seed and device are kept. */
void ivp_settings_apply_method_defaults(ivp_settings *s, ie_method m);

/* What both dialogs do when the user picks method `to` while the values
 * belong to `from`: the new method's defaults are loaded when s holds
 * from's defaults (ivp_settings_has_method_defaults), else the user's
 * values stay. Sets the method either way; true when defaults were loaded. */
bool ivp_settings_switch_method(ivp_settings *s, ie_method from, ie_method to);

/* The model path to use: s->model_path, or $INVEDIT_MODEL when that is "".
 * Returns NULL (and explains in err) when neither is set. */
const char *ivp_settings_model_path(const ivp_settings *s, char *err, size_t errlen);

/* Last-used values in a key file ([invedit] name=value, one key per table
 * entry plus model-path and output). Loading keeps the current value of any
 * key that is missing or invalid, so an old file never breaks the plug-in. */
bool ivp_settings_load(ivp_settings *s, const char *path, char *err, size_t errlen);
bool ivp_settings_save(const ivp_settings *s, const char *path, char *err, size_t errlen);
/* One line describing the settings, for logs ("method=infedit steps=15 ..."). */
char *ivp_settings_describe(const ivp_settings *s); /* g_free() it */

/* --- the edit region ----------------------------------------------------------- */

typedef struct ivp_rect {
    int x, y, width, height;
} ivp_rect;

/* The plan for one drawable: from the selection bounds `sel` (layer
 * coordinates, as gimp_drawable_mask_intersect gives them) to the context
 * region `ctx` that is fetched and edited, and the part `write` (relative to
 * ctx) that is written back. ctx is the library's ie_edit_context for a
 * working size whose longer side is `work` pixels: the whole layer when it
 * fits the working size well enough, so prompts written for the whole image
 * apply; else a generous square around the selection. */
void ivp_region_plan(ivp_rect sel, int layer_width, int layer_height, int work, ivp_rect *ctx, ivp_rect *write);
/* The working size's longer side for params on session (work-size or the native size). */
int ivp_work_size(ie_session *session, const ie_edit_params *params);

/* --- progress and cancel ---------------------------------------------------------- */

/* Adapts the library's progress callback to a host: scales the fraction into
 * [base, base + span] of the whole run, forwards text changes and fractions,
 * echoes to stderr in batch mode (gimp-console shows no progress bar), and
 * answers false (cancel) after SIGTERM/SIGINT or, for tests, after
 * $INVEDIT_TEST_CANCEL_AFTER steps. */
typedef struct ivp_progress {
    void (*set_text)(const char *text); /* may be NULL */
    void (*update)(double fraction);    /* may be NULL */
    bool echo;
    const char *label; /* prefix, e.g. the layer name */
    double base, span;
    int steps_seen, last_echo_decile;
    char last_text[128];
} ivp_progress;

/* The whole run (base 0, span 1), labelled IVP_PROGRESS_LABEL, reporting to
 * the host's set_text and update (gimp_progress_set_text/_update). */
void ivp_progress_init(ivp_progress *pr, bool echo, void (*set_text)(const char *text),
                       void (*update)(double fraction));
bool ivp_progress_cb(void *user, double fraction, const char *text);
/* Makes SIGTERM/SIGINT cancel the running edit (nothing is written):
 * ivp_progress_cb answers false from then on. */
void ivp_install_cancel_handlers(void);

/* --- editing one region ----------------------------------------------------------- */

typedef struct ivp_region_job {
    /* The context region, as fetched: ctx.width * ctx.height pixels of
     * `channels` floats (4: R'G'B'A, 2: Y'A). */
    const float *pixels;
    int width, height, channels;
    /* The part that is written back (the selection bounds), relative to the
     * context region. */
    ivp_rect write;
    /* Selection mask for `write` (write.width * write.height values in
     * [0, 1]), or NULL: the host's write applies the selection itself
     * (gimp_drawable_merge_shadow does, for in-place edits). */
    const float *mask;
    /* Optional output (write.width * write.height values): the library's
     * change mask times the selection mask. When set, `out` receives the
     * edit before the change mask (with the input's detail everywhere):
     * the pixels of a layer whose layer mask is change_mask. */
    float *change_mask;
} ivp_region_job;

/* Edits job's context region with the session's model and composites the
 * result into out (write.width * write.height * channels floats):
 *   - the selection mask goes to the library as the edit's region (its change
 *     mask is limited to min(1, 2 mask): full edit inside the selection's
 *     0.5 contour, so a feather leaves no ring of old colour there);
 *   - where the library left a pixel unchanged (outside the selection and
 *     wherever the edit changed nothing) the input pixel is copied, bit for bit;
 *   - alpha is the input's;
 *   - grayscale (2 channels) is expanded to RGB for the model and reduced to
 *     luminance afterwards.
 * progress gets fraction 0..1 of this region; returning false cancels
 * (IE_ERR_CANCELLED, out untouched). On error err explains. */
ie_status ivp_edit_region(ie_session *session, const ie_edit_params *params, const ivp_region_job *job, float *out,
                          ie_edit_progress_fn progress, void *user, char *err, size_t errlen);

/* --- the run, before and after the pixels ---------------------------------------------- */

/* Checks the settings before an edit: the parameters (ie_edit_params_validate)
 * and the model path (ivp_settings_model_path). IE_OK with *model set, else
 * *msg (g_free it) says what is wrong: IE_ERR_ARG for a bad parameter (the
 * caller's mistake: a calling error), IE_ERR_IO for a missing model path. */
ie_status ivp_settings_check(const ivp_settings *s, const char **model, char **msg);

/* Opens model with s's session options. On failure *msg (g_free it) has
 * the message for the user. On success, *note_box is the note (the CPU
 * fallback) to show in a message box, or NULL: only when the run is
 * interactive and Vulkan was asked for by name; the note always goes to
 * stderr. g_free it. */
ie_status ivp_session_open(const ivp_settings *s, const char *model, bool interactive, ie_session **session, char **msg,
                           char **note_box);

/* The name of the new layer an edit adds: "Diffusion edit: <target prompt>". g_free() it. */
char *ivp_result_layer_name(const ivp_settings *s);

/* A user-facing message for a library error: the library's text with advice
 * where there is some (out of memory, no device, bad model). g_free() it. */
char *ivp_error_message(ie_status st, const char *what, const char *detail);

/* Messages shared by the hosts. */
#define IVP_PROGRESS_LABEL "Diffusion edit"
#define IVP_MSG_LOADING IVP_PROGRESS_LABEL ": loading the model"
#define IVP_MSG_CANCELLED "invedit: cancelled, the image is unchanged"
#define IVP_MSG_NO_DISPLAY "invedit: no display for the dialog; call it with RUN-NONINTERACTIVE"
#define IVP_MSG_GROUP "invedit cannot edit a layer group: pick one of its layers"
#define IVP_MSG_NEEDS_LAYER                                                                                            \
    "output new-layer and new-layer-mask need a layer (not a mask or channel): use output in-place"
#define IVP_MSG_INDEXED "invedit needs an RGB or grayscale image; use Image \342\226\270 Mode \342\226\270 RGB"
#define IVP_MSG_NO_SELECTION                                                                                           \
    "The selection does not touch the layer '%s': select a region on it, or use Select \342\226\270 "                  \
    "None to edit the whole layer"

#ifdef __cplusplus
}
#endif
#endif
