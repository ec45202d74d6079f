/* invedit: the public C API of libinvedit (pkg-config: invedit).
 *
 * Edits images with Stable Diffusion inversion methods (EF-DDPM, BDIA,
 * InfEdit). One parameter struct is shared by the CLI and the GIMP plug-ins,
 * with a table that describes every parameter (name, type, range, default,
 * which methods use it) so that the CLI's options, the GIMP procedures'
 * arguments and the generated dialog all come from one place.
 *
 * Typical use (examples/edit_png.c is a complete program):
 *   ie_edit_params p;
 *   ie_edit_params_init(&p, IE_METHOD_INFEDIT);
 *   p.source_prompt = "a red circle ..."; p.target_prompt = "a blue circle ...";
 *   ie_session *s; ie_session_open("models/demo", "auto", &s, err, sizeof err);
 *   ie_edit(s, &p, &input, &output, progress_cb, user, err, sizeof err);
 *
 * Conventions: functions return an ie_status (invedit_status.h) and write a
 * sentence naming what was wrong into a caller's buffer (err, errlen); they
 * never abort. Strings passed in are borrowed for the call. Memory the
 * library hands over is freed with the matching *_free function or ie_free().
 * A session must not be used from two threads at once.
 *
 * Versions and ABI. IE_VERSION_MAJOR/MINOR/PATCH are this header's version
 * (the same as the meson project's: the build checks it), ie_version_string()
 * the loaded library's. The shared library's soname carries the ABI version
 * (libinvedit.so.0). Within one soname:
 *   - functions are not removed and their signatures do not change;
 *   - new functions, new enum values (before the *_COUNT markers, which may
 *     grow) and new status codes may be added: treat an unknown status code
 *     as a failure;
 *   - the layout of the structs (ie_edit_params, ie_image, ie_session_options,
 *     ie_edit_extras, ie_rect, ie_latents, ie_memory_plan, ie_param_desc)
 *     does not change. A new parameter (an ie_edit_params field and its
 *     entry in the parameter table) is added at the struct's end, and with a
 *     new soname: a program compiled against the older, smaller struct cannot
 *     hold it. Always fill ie_edit_params with ie_edit_params_init() (or
 *     ie_generate_params_init()) before setting fields, never with a brace
 *     initializer listing every field, so that a recompile picks up the new
 *     fields' defaults.
 * ie_session is opaque and may change freely. While the major version is 0,
 * a minor version may change the API; when it changes the ABI the soname's
 * number goes up.
 */
#ifndef INVEDIT_H
#define INVEDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <invedit_status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ie_method {
    IE_METHOD_EF_DDPM = 0, /* edit-friendly DDPM inversion (Huberman-Spiegelglas et al., CVPR 2024) */
    IE_METHOD_BDIA = 1,    /* BDIA-DDIM exact inversion (Zhang et al., ECCV 2024) */
    IE_METHOD_INFEDIT = 2, /* InfEdit: virtual inversion + unified attention control (CVPR 2024) */
    IE_METHOD_COUNT
} ie_method;

IE_API const char *ie_method_name(ie_method m); /* "ef-ddpm", "bdia", "infedit" */
IE_API bool ie_method_from_name(const char *s, ie_method *out);

/* Everything an edit needs besides the image and the model. Strings are
 * borrowed (the caller keeps them alive during the call). 0 / NULL fields
 * fall back to the method's defaults, set by ie_edit_params_init(). */
typedef struct ie_edit_params {
    ie_method method;
    const char *source_prompt;   /* describes the input image */
    const char *target_prompt;   /* describes the wanted edit */
    const char *negative_prompt; /* unconditional prompt; "" by default */
    int steps;                   /* diffusion steps N */
    double strength;             /* fraction of the grid that is re-generated:
                                    EF-DDPM 1 - skip/N, BDIA 0.8, InfEdit 1 */
    double cfg_source;           /* guidance for the source prompt */
    double cfg_target;           /* guidance for the target prompt */
    double eta;                  /* EF-DDPM / DDCM noise level */
    double gamma;                /* BDIA's gamma */
    bool keep_z1;                /* EF-DDPM: keep the last noise map (exact reconstruction) */
    bool prompt_to_prompt;       /* EF-DDPM, BDIA: Prompt-to-Prompt attention control */
    double shift_x, shift_y;     /* EF-DDPM: move the content through the noise maps, as a
                                    fraction of the width / height (+ right / down) */
    double cross_replace;        /* fraction of steps with cross-attention control */
    double self_replace;         /* fraction of steps with self-attention control */
    const char *blend_words;     /* InfEdit: target-side words to edit locally ("" = none) */
    const char *keep_words;      /* InfEdit: source-side words to keep ("" = none) */
    double blend_threshold;      /* InfEdit thresh_e */
    double keep_threshold;       /* InfEdit thresh_m */
    int64_t seed;                /* noise seed */
    const char *device;          /* "auto", "cpu", "vulkan", "vulkan:N" */
    /* Loading options (used when a session is opened, ie_session_options_from_params) */
    const char *vae;  /* a separate VAE file or folder ("" = the model's own) */
    const char *lora; /* LoRAs: "FILE[:SCALE]" entries separated by ';' ("" = none) */
    const char *ema;  /* a checkpoint's EMA copy: "auto" (not used when the trained
                                    weights are there, as diffusers and A1111), "yes", "no" */
    /* Full-resolution compositing (edit/composite.h): */
    const char *composite;   /* "keep-detail" (default; "" or NULL too), "replace-region", "off" */
    double change_threshold; /* colour change (0..1 per channel) at which the change mask is 1/2 */
    int work_size;           /* longer side of the working size in pixels; 0 = the model's native */
    /* memory (issue 10) */
    bool fp32;     /* network weights kept in fp32 (default: stored in fp16, computed
                                    in fp32 on every backend; half the memory) */
    bool no_cache; /* neither use nor fill the inversion cache (see ie_session_set_cache) */
} ie_edit_params;

/* Fills p with the defaults of method m (docs/methods.md: EF-DDPM N=100, skip 36,
 * cfg 3.5/15; BDIA N=50, strength 0.8, cfg 3, gamma 0.94; InfEdit N=15,
 * g_s 1, g_t 2, cross 0.7, self 0.3, thresholds 0.6). */
IE_API void ie_edit_params_init(ie_edit_params *p, ie_method m);

/* --- parameter descriptions ------------------------------------------------ */

typedef enum ie_param_type {
    IE_PARAM_INT,
    IE_PARAM_DOUBLE,
    IE_PARAM_BOOL,
    IE_PARAM_STRING,
    IE_PARAM_METHOD, /* enum ie_method, written as its name */
} ie_param_type;

/* InfEdit samples on a grid of this many steps: --steps above it is refused
 * (ie_edit_params_validate). EF-DDPM needs eta > 0. */
#define IE_INFEDIT_MAX_STEPS 50

/* Bit set of methods a parameter applies to. */
#define IE_FOR(m) (1u << (m))
#define IE_FOR_ALL ((1u << IE_METHOD_COUNT) - 1)

typedef struct ie_param_desc {
    const char *name;  /* "target-prompt": CLI option --target-prompt, GIMP argument name */
    const char *nick;  /* short label for a dialog */
    const char *blurb; /* one-line help */
    ie_param_type type;
    size_t offset;    /* offsetof(ie_edit_params, field) */
    double min, max;  /* numeric range */
    unsigned methods; /* IE_FOR(...) bits */
    bool advanced;    /* folded away in dialogs */
} ie_param_desc;

/* One line that says what method m does, for dialogs and help. */
IE_API const char *ie_method_description(ie_method m);
/* Whether d matters for method m (d->methods), given whether Prompt-to-Prompt
 * is on (EF-DDPM's and BDIA's attention-control fractions apply only with it):
 * dialogs grey out the rest. */
IE_API bool ie_edit_param_applies(const ie_param_desc *d, ie_method m, bool prompt_to_prompt);

/* The table of every parameter, in dialog order; *count receives its length. */
IE_API const ie_param_desc *ie_edit_param_table(size_t *count);
IE_API const ie_param_desc *ie_edit_param_find(const char *name);
/* The method-independent default of a parameter (for GIMP's argument
 * registration); for per-method defaults use ie_edit_params_init. */
IE_API double ie_edit_param_default_number(const ie_param_desc *d);
IE_API const char *ie_edit_param_default_string(const ie_param_desc *d);

/* Sets one parameter from text ("0.8", "yes", "infedit"), checking type and
 * range; on error returns IE_ERR_ARG and explains in err. Strings are
 * borrowed, not copied. */
IE_API ie_status ie_edit_param_set(ie_edit_params *p, const ie_param_desc *d, const char *value, char *err,
                                   size_t errlen);
/* Checks a whole parameter set (ranges, prompts present); IE_ERR_ARG with a
 * message naming the parameter. */
IE_API ie_status ie_edit_params_validate(const ie_edit_params *p, char *err, size_t errlen);


/* --- images and edits ---------------------------------------------------------- */

/* An image in memory: row-major, channels interleaved, non-linear sRGB values
 * in [0, 1]. 3 channels (RGB) or 4 (RGBA: alpha is carried through as it is).
 * Grayscale callers expand to RGB. */
typedef struct ie_image {
    int width, height;
    int channels;
    float *pixels;
} ie_image;

/* Allocates pixels for w x h x channels; IE_ERR_NOMEM on failure. */
IE_API ie_status ie_image_alloc(ie_image *img, int width, int height, int channels);
IE_API void ie_image_free(ie_image *img);

/* Progress: fraction in [0, 1] and a short text ("inverting 12/100").
 * Return false to cancel: the edit stops with IE_ERR_CANCELLED and writes
 * nothing to the output. */
typedef bool (*ie_edit_progress_fn)(void *user, double fraction, const char *text);

/* A model loaded on a device; reuse it across edits (loading is the slow part). */
typedef struct ie_session ie_session;

/* Opens a model: a diffusers folder or a single-file SD 1.x .safetensors.
 * device: "auto", "cpu", "vulkan", "vulkan:N" (NULL = auto). When the device
 * can't be used the CPU backend is used and ie_session_note() says why. */
IE_API ie_status ie_session_open(const char *model_path, const char *device, ie_session **out, char *err,
                                 size_t errlen);

/* What a session is loaded with besides the model (the loading-time
 * parameters of ie_edit_params: device, vae, lora, ema). NULL fields are
 * the defaults. */
typedef struct ie_session_options {
    const char *device; /* as ie_session_open */
    const char *vae;    /* a separate VAE: LDM or diffusers-named .safetensors, or a diffusers (vae/) folder */
    const char *lora;   /* "FILE[:SCALE]" entries separated by ';' or newlines, merged into the weights */
    const char *ema;    /* "auto", "yes", "no" */
} ie_session_options;

IE_API ie_session_options ie_session_options_from_params(const ie_edit_params *p);
/* ie_session_open with options. LoRAs are merged into the weights as they
 * are loaded; a different set of LoRAs (or VAE) needs a new session:
 * ie_session_matches tells whether s was opened with these options. */
IE_API ie_status ie_session_open_with(const char *model_path, const ie_session_options *opt, ie_session **out,
                                      char *err, size_t errlen);
IE_API bool ie_session_matches(const ie_session *s, const char *model_path, const ie_session_options *opt);
/* What was loaded, one fact a line: tokenizer source, networks' files and
 * naming, EMA choice, VAE source, LoRAs, skipped tensors. */
IE_API const char *ie_session_describe(const ie_session *s);
IE_API void ie_session_close(ie_session *s);
IE_API const char *ie_session_device(const ie_session *s); /* backend description */
IE_API const char *ie_session_note(const ie_session *s);   /* "" or why the CPU fallback was taken */
/* Tokens text takes in a prompt (without the start/end tokens); *max_tokens
 * receives how many the model reads (75 for SD 1.x), the rest is dropped. */
IE_API int ie_session_prompt_tokens(const ie_session *s, const char *text, int *max_tokens);
/* Image sides are processed at multiples of this (pixels): the VAE's 8 times
 * the UNet's downsampling. Other sizes are resized to the nearest multiple
 * (within the model's working resolution) and back. */
IE_API int ie_session_size_multiple(const ie_session *s);
/* The model's native resolution in pixels (e.g. 512 for SD 1.5). */
IE_API int ie_session_native_size(const ie_session *s);
/* What the last edit, generation or inversion on s cost: UNet forward passes
 * (one per diffusion step and CFG batch) and image-evaluations (the sum of
 * their batch sizes: CFG counts 2, InfEdit's three branches 6). Either
 * pointer may be NULL. */
IE_API void ie_session_last_run(const ie_session *s, int64_t *unet_calls, int64_t *unet_evals);
/* The wall time of the last run's UNet calls (with their attention control),
 * seconds: divided by the image-evaluations it is the cost of one inside an
 * edit, to compare with a standalone UNet evaluation of the same batch. */
IE_API double ie_session_last_unet_seconds(const ie_session *s);

/* The inversion cache. What an edit computes from the image and the source
 * side alone (the encoded latent; EF-DDPM's noise maps and x_t; BDIA's latent
 * pair) is kept, so the next edit of the same image and source with another
 * target skips the inversion. Keys cover the model (files' sizes, times and
 * headers), device and precision, the image's content and working size, the
 * source and negative prompts, the inversion's parameters and the seed; a hit
 * gives the same bits as the computation. A session starts with a memory
 * level (mem_bytes 512 MiB) and a disk level in $XDG_CACHE_HOME/invedit
 * (~/.cache/invedit; $INVEDIT_CACHE_DIR overrides it) capped at 2 GiB
 * ($INVEDIT_CACHE_MB), least recently used entries evicted first. This call
 * replaces both: dir NULL = no disk level, mem_bytes 0 = no memory level.
 * ie_edit_params.no_cache turns the cache off for one edit. */
IE_API ie_status ie_session_set_cache(ie_session *s, int64_t mem_bytes, const char *dir, int64_t disk_bytes);
/* The disk folder in use, or NULL. */
IE_API const char *ie_session_cache_dir(const ie_session *s);
/* Whether the last edit on s took its inversion (or, for InfEdit, its encoded
 * latent) from the cache. */
IE_API bool ie_session_last_cached(const ie_session *s);

/* Edits `in` according to p, writing a newly allocated image of the same size
 * and channels into *out (free with ie_image_free). The working resolution is
 * the input's size scaled so its longer side is the model's native size (or
 * p->work_size), rounded to the size multiple. The result is composited at
 * the input's resolution (p->composite): pixels the edit did not change are
 * the input's own, bit for bit; changed ones are the resized edit plus the
 * input's fine detail (keep-detail) or the resized edit (replace-region);
 * "off" is the plain resized edit everywhere. */
IE_API ie_status ie_edit(ie_session *s, const ie_edit_params *p, const ie_image *in, ie_image *out,
                         ie_edit_progress_fn progress, void *user, char *err, size_t errlen);

/* Optional inputs and outputs of ie_edit_ex; any field may be NULL. */
typedef struct ie_edit_extras {
    const float *region; /* in: in->width * in->height selection weights in [0, 1], or NULL (the whole
                            image). The change mask is limited to min(1, 2 region): a selection's
                            0.5 contour is its edge, inside it the edit applies in full (no ring of
                            old colour in a feather), the outer half of a feather blends. */
    ie_image *mask;      /* out: the change mask at the input's size, 1 channel in [0, 1] (all 1
                            with composite off) */
    ie_image *unmasked;  /* out: the edit with the input's detail everywhere, before masking (what
                            a painted mask reveals) */
} ie_edit_extras;

/* A rectangle in pixels. */
typedef struct ie_rect {
    int x, y, width, height;
} ie_rect;

/* The part of a width x height image the model should see to edit a
 * selection with bounds sel, for a working size whose longer side is `work`
 * pixels (0: 512). Prompts describe the whole image, so the whole image is
 * used when it fits the working size well enough: its longer side is at most
 * 2 work, or the selection spans at least a quarter of it. Otherwise a square
 * around the selection's centre with side max(longer side + mean side, work)
 * (padding by half the selection's mean side each way, and at least the
 * working size), moved inside the image and clamped to it. */
IE_API ie_rect ie_edit_context(ie_rect sel, int width, int height, int work);

/* ie_edit with extras (NULL = ie_edit). Outputs are allocated only on success. */
IE_API ie_status ie_edit_ex(ie_session *s, const ie_edit_params *p, const ie_image *in, ie_image *out,
                            const ie_edit_extras *extras, ie_edit_progress_fn progress, void *user, char *err,
                            size_t errlen);

/* --- memory plan (issue 10) ----------------------------------------------------
 * What an edit of an in_w x in_h image with p will hold at its peak, from a
 * dry run of each network at the working size (nothing is computed or
 * allocated). The phases run one after the other (text encoder, VAE encoder,
 * the method's UNet loop, VAE decoder) and each frees its activations when it
 * ends, so the device peak is the weights plus the largest phase. Bytes. */
typedef struct ie_memory_plan {
    int work_w, work_h;                                          /* working size (pixels) */
    int unet_batch;                                              /* the largest UNet batch of the method */
    uint64_t weights_unet, weights_vae, weights_text;            /* in the edit's precision */
    uint64_t act_text, act_vae_encode, act_unet, act_vae_decode; /* activation buffers per phase */
    uint64_t attention;     /* attention probabilities a control asks for + its state */
    uint64_t scratch;       /* CPU backend: widened fp16 weights, im2col columns */
    uint64_t host;          /* images and latents in host memory (input, working, output) */
    uint64_t device_peak;   /* the backend's memory at the peak phase (incl. scratch) */
    uint64_t largest;       /* the largest single tensor */
    uint64_t vulkan_device; /* the same edit's device memory on a Vulkan device (fp16 weights
                                    unless fp32; no CPU scratch): weights + the largest phase */
    uint64_t total;         /* what the process needs: device_peak + host (+ runtime) on the
                                    CPU backend; device_peak on a GPU */
    const char *peak_phase; /* "UNet loop", "VAE decode", ... */
} ie_memory_plan;

IE_API ie_status ie_session_memory_plan(ie_session *s, const ie_edit_params *p, int in_w, int in_h, int in_channels,
                                        ie_memory_plan *out, char *err, size_t errlen);

/* --- version ------------------------------------------------------------------ */

#define IE_VERSION_MAJOR 0
#define IE_VERSION_MINOR 1
#define IE_VERSION_PATCH 0
#define IE_VERSION_NUMBER (IE_VERSION_MAJOR * 10000 + IE_VERSION_MINOR * 100 + IE_VERSION_PATCH)

/* The loaded library's version, "MAJOR.MINOR.PATCH" (may be newer than the
 * header a program was compiled with). */
IE_API const char *ie_version_string(void);
/* The same as MAJOR * 10000 + MINOR * 100 + PATCH, to compare with IE_VERSION_NUMBER. */
IE_API int ie_version_number(void);

/* Frees text and data the library hands over (ie_model_describe,
 * ie_devices_describe, ie_selfcheck). NULL is accepted. */
IE_API void ie_free(void *ptr);

/* --- reconstruction, generation, inversion (whole images) ---------------------------- */

/* Turns edit parameters into a reconstruction's: the target prompt and
 * guidance become the source's, no attention control or local blending,
 * EF-DDPM keeps z1 and regenerates the whole grid (strength 1), InfEdit uses
 * guidance 2 when the source's is at most 1 (its reconstruction needs
 * guidance on both branches). ie_reconstruct applies it itself; call it to
 * validate the parameters before opening a model. */
IE_API void ie_reconstruct_params(ie_edit_params *p);

/* Inverts `in` and regenerates it with its own source prompt (the
 * reconstruction that measures a method's exactness): ie_edit with
 * ie_reconstruct_params(p) applied to a copy of p. *out as for ie_edit. */
IE_API ie_status ie_reconstruct(ie_session *s, const ie_edit_params *p, const ie_image *in, ie_image *out,
                                ie_edit_progress_fn progress, void *user, char *err, size_t errlen);

/* The model's view of `in`: resized to the working size (longer side
 * work_size, 0 = the model's native size), through the VAE encoder
 * (posterior mean) and decoder, and resized back to in's size; RGB (3
 * channels). The ceiling of any reconstruction's quality. */
IE_API ie_status ie_vae_roundtrip(ie_session *s, const ie_image *in, int work_size, ie_image *out, char *err,
                                  size_t errlen);

/* Parameters for text to image: BDIA's defaults with 50 steps, target
 * guidance 5 and gamma 0 (plain DDIM, eta 0). */
IE_API void ie_generate_params_init(ie_edit_params *p);

/* Text to image with BDIA-DDIM (gamma 0 = plain DDIM) from noise drawn from
 * p->seed, using p->target_prompt, p->negative_prompt, p->steps (0 = 50),
 * p->cfg_target and p->gamma; p->method is ignored. width / height 0 = the
 * model's native size; other sizes are rounded to the nearest multiple of
 * ie_session_size_multiple (at least one multiple). *out receives a new RGB
 * image of the rounded size. */
IE_API ie_status ie_generate(ie_session *s, const ie_edit_params *p, int width, int height, ie_image *out,
                             ie_edit_progress_fn progress, void *user, char *err, size_t errlen);

/* Latents in the UNet's space: n arrays [channels, height, width] one after
 * the other, row-major. */
typedef struct ie_latents {
    float *data;
    int n, channels, height, width;
} ie_latents;

/* The inversion alone: `in` at its working size, encoded by the VAE (the
 * posterior mean for EF-DDPM, a sample drawn from p->seed for BDIA) and
 * inverted. EF-DDPM gives [x_N, z_N, ..., z_1] (the noisiest latent and every
 * noise map), BDIA [z_K-1, z_K-2] (the pair regeneration starts from).
 * InfEdit inverts nothing (IE_ERR_ARG). Free with ie_latents_free. */
IE_API ie_status ie_invert(ie_session *s, const ie_edit_params *p, const ie_image *in, ie_latents *out, char *err,
                           size_t errlen);
IE_API void ie_latents_free(ie_latents *l);
/* Writes l as a NumPy .npy file of float32 [n, channels, height, width],
 * atomically (a temporary file renamed when complete). */
IE_API ie_status ie_latents_save_npy(const ie_latents *l, const char *path, char *err, size_t errlen);

/* --- models and devices ---------------------------------------------------------- */

/* What a model path holds, as the loader sees it, without loading any network
 * onto a device, one fact a line: the tokenizer, each network's file, naming,
 * tensor count and dtypes, the EMA choice, the VAE source, the LoRAs (opt->lora)
 * and what they adapt, skipped tensors, and the check of every tensor's shape
 * (opt may be NULL; its device is not used). When the model cannot be opened
 * at all, *text is NULL and err says why. Otherwise *text (free with ie_free)
 * holds the description, and the status is IE_OK when the model can be
 * edited, else the code of the last problem the text lists (a missing
 * tokenizer, a bad LoRA, missing or mis-shaped tensors; IE_ERR_UNSUPPORTED
 * for another model family). */
IE_API ie_status ie_model_describe(const char *model_path, const ie_session_options *opt, char **text, char *err,
                                   size_t errlen);

/* The Vulkan devices, their limits and whether they can be used, and which
 * backend "auto" (or $INVEDIT_DEVICE) selects; several lines. NULL only when
 * out of memory. Free with ie_free. */
IE_API char *ie_devices_describe(void);

/* Runs a 3x3 convolution on the CPU backend and on every Vulkan device and
 * compares them; *text (free with ie_free) is the report. IE_OK when every
 * backend ran and agreed with the CPU within 1e-4 (relative), else
 * IE_ERR_DEVICE (or IE_ERR_NOMEM). */
IE_API ie_status ie_selfcheck(char **text);

/* Whether `device` is a valid device request ("auto", "cpu", "vulkan",
 * "vulkan:N"); if not, err says why. */
IE_API bool ie_device_valid(const char *device, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
