/* invedit edit | reconstruct | generate: the headless harness.
 *
 * Options come from the library's parameter table (invedit.h), so the CLI,
 * the GIMP procedures and their dialog always agree. */
#include "commands.h"

#include "args.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/atomic_file.h"
#include "image_io.h"
#include "manifest.h"

/* --- options ------------------------------------------------------------------ */

static void print_param_help(FILE *f, unsigned methods) {
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    for (size_t i = 0; i < n; i++) {
        const ie_param_desc *d = &t[i];
        if (!(d->methods & methods)) continue;
        char arg[48];
        switch (d->type) {
            case IE_PARAM_INT: snprintf(arg, sizeof arg, "--%s N", d->name); break;
            case IE_PARAM_DOUBLE: snprintf(arg, sizeof arg, "--%s X", d->name); break;
            case IE_PARAM_BOOL: snprintf(arg, sizeof arg, "--%s yes|no", d->name); break;
            default: snprintf(arg, sizeof arg, "--%s TEXT", d->name); break;
        }
        fprintf(f, "  %-28s %s", arg, d->blurb);
        if (d->type == IE_PARAM_INT || d->type == IE_PARAM_DOUBLE) fprintf(f, " [%g..%g", d->min, d->max);
        /* narrower limits of some methods (ie_edit_params_validate) */
        if (!strcmp(d->name, "steps")) fprintf(f, "; infedit at most %d", IE_INFEDIT_MAX_STEPS);
        if (!strcmp(d->name, "eta")) fprintf(f, "; ef-ddpm above 0");
        if (d->type == IE_PARAM_INT || d->type == IE_PARAM_DOUBLE) fprintf(f, "]");
        if (d->methods != IE_FOR_ALL) {
            fprintf(f, " (");
            for (int m = 0, k = 0; m < IE_METHOD_COUNT; m++)
                if (d->methods & IE_FOR(m)) fprintf(f, "%s%s", k++ ? ", " : "", ie_method_name((ie_method)m));
            fprintf(f, " only)");
        }
        fprintf(f, "\n");
    }
}

static const char *exit_codes =
    "exit status: 0 ok, 1 failed while running (e.g. NaN in the network), 2 bad usage (also an output\n"
    "             path that cannot be written: unknown extension, missing folder), 3 bad input file or\n"
    "             model, 4 device or memory error, 130 cancelled (Ctrl-C, SIGTERM: no file is changed)\n";

static const char *image_notes =
    "Input: PNG or JPEG by content; '-' reads standard input (FIFOs and pipes work). Damaged or\n"
    "truncated files are refused. At most 50 megapixels (INVEDIT_MAX_MEGAPIXELS changes it); EXIF\n"
    "orientation is applied; CMYK JPEGs are converted to RGB.\n"
    "Output: .png, or .jpg/.jpeg (no alpha: a warning when the input has transparency); '-' writes a\n"
    "PNG to standard output. The file is written to a temporary file and renamed when complete, so\n"
    "a failure or Ctrl-C leaves any previous file untouched. Options of other methods are ignored\n"
    "with a warning.\n";

/* Checks done before the model loads: the device string, the parameters,
 * and that every output can be written. 0 or an exit code. */
static int check_device_param(const char *cmd, const cli_opts *o) {
    char err[256];
    if (o->p.device && !ie_device_valid(o->p.device, err, sizeof err)) {
        fprintf(stderr, "invedit %s: --device: %s\n", cmd, err);
        return 2;
    }
    return 0;
}

static int check_output(const char *cmd, const char *opt, const char *path) {
    char err[1024];
    if (!path) return 0;
    if (image_check_output(path, err, sizeof err)) {
        fprintf(stderr, "invedit %s: %s: %s\n", cmd, opt, err);
        return 2;
    }
    return 0;
}

/* Prompts longer than the model reads are cut: say so. */
static void warn_long_prompts(const char *cmd, ie_session *s, const ie_edit_params *p, bool source) {
    const char *names[3] = {"target prompt", source ? "source prompt" : NULL, "negative prompt"};
    const char *texts[3] = {p->target_prompt, source ? p->source_prompt : NULL, p->negative_prompt};
    for (int i = 0; i < 3; i++) {
        if (!texts[i] || !texts[i][0]) continue;
        int max = 0, n = ie_session_prompt_tokens(s, texts[i], &max);
        if (n > max)
            fprintf(stderr,
                    "invedit %s: warning: the %s has %d tokens; the model reads the first %d, the rest "
                    "is ignored\n",
                    cmd, names[i], n, max);
    }
}

/* --- progress on a terminal ------------------------------------------------------- */

typedef struct progress_state {
    bool tty, quiet;
    double started;
    int last_pct;
} progress_state;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool progress_cb(void *user, double fraction, const char *text) {
    progress_state *ps = user;
    if (ps->quiet || !ps->tty) return true;
    int pct = (int)(fraction * 100);
    char bar[31];
    int fill = (int)(fraction * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r[%s] %3d%% %-28s %6.1fs", bar, pct, text, now() - ps->started);
    if (fraction >= 1.0) fprintf(stderr, "\n");
    fflush(stderr);
    ps->last_pct = pct;
    return true;
}

static ie_session *open_session(const cli_opts *o, int *code) {
    char err[1024];
    ie_session *s = NULL;
    ie_session_options so = ie_session_options_from_params(&o->p);
    ie_status st = ie_session_open_with(o->model, &so, &s, err, sizeof err);
    if (st) {
        fprintf(stderr, "invedit: cannot load the model: %s\n", err);
        *code = cli_exit_code(st);
        return NULL;
    }
    if (!o->quiet) {
        fprintf(stderr, "model %s on %s\n", o->model, ie_session_device(s));
        if (ie_session_note(s)[0]) fprintf(stderr, "note: %s\n", ie_session_note(s));
    }
    return s;
}

static double psnr(const ie_image *a, const ie_image *b) {
    double se = 0;
    size_t n = 0;
    for (size_t i = 0; i < (size_t)a->width * a->height; i++)
        for (int k = 0; k < 3; k++) {
            double d = a->pixels[i * a->channels + k] - b->pixels[i * b->channels + k];
            se += d * d;
            n++;
        }
    double mse = se / (double)n;
    return mse > 0 ? 10 * log10(1.0 / mse) : INFINITY;
}

/* --- edit / reconstruct ------------------------------------------------------------ */

/* The 1-channel change mask as a grey RGB image. */
static ie_status save_mask(const char *path, const ie_image *mask, char *err, size_t errlen) {
    ie_image grey = {0};
    ie_status st = ie_image_alloc(&grey, mask->width, mask->height, 3);
    if (st) {
        snprintf(err, errlen, "out of memory");
        return st;
    }
    for (size_t i = 0; i < (size_t)mask->width * mask->height; i++)
        for (int k = 0; k < 3; k++) grey.pixels[i * 3 + k] = mask->pixels[i];
    st = image_save(path, &grey, err, errlen);
    ie_image_free(&grey);
    return st;
}

static void edit_usage(FILE *f, const char *cmd) {
    if (!strcmp(cmd, "edit"))
        fprintf(f, "usage: invedit edit --model PATH --image IN --source TEXT --target TEXT [options] -o OUT\n\n"
                   "Inverts IN into the model's noise space and regenerates it from the target prompt.\n");
    else
        fprintf(f, "usage: invedit reconstruct --model PATH --image IN --source TEXT [options] [-o OUT]\n\n"
                   "Inverts IN and regenerates it with the same prompt; prints the reconstruction PSNR\n"
                   "(and the VAE's own round-trip PSNR, the ceiling). EF-DDPM keeps z1 here.\n");
    fprintf(f, "\nPNG or JPEG in and out (by extension). Any size: the image is resized so its longer side\n"
               "is the model's native size (sides a multiple of 64 for SD, of the VAE factor x UNet\n"
               "downsampling in general), edited, and resized back; alpha is kept as it is.\n\n"
               "  --model PATH                 diffusers folder or SD 1.x .safetensors (or INVEDIT_MODEL)\n"
               "  --image FILE                 input image ('-': standard input)\n"
               "  -o FILE                      output image (.png, .jpg, .jpeg; '-': PNG to standard output);\n"
               "                               with several --target options a pattern:\n"
               "                               -o out-%%d.png writes out-1.png for the first target, ...\n"
               "                               (one inversion for all of them)\n"
               "  --save-input FILE            also write the model's view of the input (VAE round trip)\n"
               "  --save-mask FILE             also write the change mask (white = edited, grey = blended)\n"
               "  --mask FILE                  edit only this selection (grey image of the input's size, white =\n"
               "                               selected); the model sees the context a GIMP selection gets\n"
               "  -q, --quiet                  no progress bar\n");
    print_param_help(f, IE_FOR_ALL);
    fprintf(f, "\n%s\n%s", image_notes, exit_codes);
}

/* --mask: the selection's context (ie_edit_context, as the GIMP plug-ins) is edited with the
 * selection as the region; everything outside the context is the input. */
static ie_status edit_selection(ie_session *s, const cli_opts *o, const ie_image *in, ie_image *out, ie_image *mask_out,
                                progress_state *ps, char *err, size_t errlen) {
    ie_image sel = {0}, crop = {0}, res = {0}, cmask = {0};
    float *region = NULL;
    ie_status st = image_load(o->mask, &sel, err, errlen);
    if (!st && (sel.width != in->width || sel.height != in->height)) {
        snprintf(err, errlen, "%s: the mask is %dx%d, the image %dx%d", o->mask, sel.width, sel.height, in->width,
                 in->height);
        st = IE_ERR_FORMAT;
    }
    int x0 = in->width, y0 = in->height, x1 = -1, y1 = -1, W = in->width, C = in->channels;
    for (int y = 0; !st && y < in->height; y++)
        for (int x = 0; x < W; x++)
            if (sel.pixels[((size_t)y * W + x) * sel.channels] > 0) {
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
    if (!st && x1 < 0) {
        snprintf(err, errlen, "%s: the mask selects nothing (white = edit)", o->mask);
        st = IE_ERR_FORMAT;
    }
    ie_rect ctx = {0, 0, 0, 0};
    if (!st) {
        ctx = ie_edit_context((ie_rect){x0, y0, x1 - x0 + 1, y1 - y0 + 1}, W, in->height,
                              o->p.work_size > 0 ? o->p.work_size : ie_session_native_size(s));
        st = ie_image_alloc(&crop, ctx.width, ctx.height, C);
        region = malloc(sizeof(float) * (size_t)ctx.width * ctx.height);
        if (!st && !region) st = IE_ERR_NOMEM;
    }
    for (int y = 0; !st && y < ctx.height; y++)
        for (int x = 0; x < ctx.width; x++) {
            size_t src = (size_t)(ctx.y + y) * W + ctx.x + x, dst = (size_t)y * ctx.width + x;
            memcpy(crop.pixels + dst * C, in->pixels + src * C, sizeof(float) * C);
            region[dst] = sel.pixels[src * sel.channels];
        }
    ie_edit_extras ex = {region, mask_out ? &cmask : NULL, NULL};
    if (!st) st = ie_edit_ex(s, &o->p, &crop, &res, &ex, progress_cb, ps, err, errlen);
    if (!st) st = ie_image_alloc(out, W, in->height, C);
    if (!st && mask_out) st = ie_image_alloc(mask_out, W, in->height, 1);
    if (!st) {
        memcpy(out->pixels, in->pixels, sizeof(float) * (size_t)W * in->height * C);
        for (int y = 0; y < ctx.height; y++) {
            size_t dst = (size_t)(ctx.y + y) * W + ctx.x;
            memcpy(out->pixels + dst * C, res.pixels + (size_t)y * ctx.width * C, sizeof(float) * ctx.width * C);
            if (mask_out)
                memcpy(mask_out->pixels + dst, cmask.pixels + (size_t)y * ctx.width, sizeof(float) * ctx.width);
        }
    } else if (st == IE_ERR_NOMEM && !err[0]) {
        snprintf(err, errlen, "out of memory");
    }
    free(region);
    ie_image_free(&sel);
    ie_image_free(&crop);
    ie_image_free(&res);
    ie_image_free(&cmask);
    return st;
}

/* --- several targets: --target A --target B -o out-%d.png ---------------------------------- */

static bool several_targets(const cli_opts *o) {
    char err[256];
    return o->n_targets > 1 || output_pattern_fields(o->output, err, sizeof err) > 0;
}

/* Usage errors before the model loads: a bad pattern, or several targets without one. */
static bool several_targets_check(const cli_opts *o) {
    char err[512];
    int f = output_pattern_fields(o->output, err, sizeof err);
    if (f < 0) fprintf(stderr, "invedit edit: %s\n", err);
    else if (o->n_targets > 1 && f == 0)
        fprintf(stderr,
                "invedit edit: %d targets need an output pattern with %%d, e.g. -o out-%%d.png "
                "(%%d = 1 for the first --target)\n",
                o->n_targets);
    return f < 0 || (o->n_targets > 1 && f == 0);
}

static int edit_targets(ie_session *s, cli_opts *o, const ie_image *in) {
    /* --no-cache: no disk cache, but the targets still share one inversion in memory */
    if (o->p.no_cache) ie_session_set_cache(s, (int64_t)512 << 20, NULL, 0), o->p.no_cache = false;
    const char *one[1] = {o->p.target_prompt};
    cli_progress rp;
    cli_progress_init(&rp, o->quiet, o->n_targets > 0 ? o->n_targets : 1);
    int failed = 0;
    int code = cli_edit_targets(s, &o->p, in, o->n_targets > 0 ? o->targets : one, o->n_targets > 0 ? o->n_targets : 1,
                                o->output, true, &rp, &failed);
    return code ? code : failed ? 1 : 0;
}

int cmd_edit(int argc, char **argv, bool reconstruct) {
    const char *cmd = reconstruct ? "reconstruct" : "edit";
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            edit_usage(stdout, cmd);
            return 0;
        }
    cli_opts o;
    memset(&o, 0, sizeof o);
    int code = cli_parse(argc, argv, &o, cmd);
    if (code) return code;
    if (!o.image || (!reconstruct && !o.output)) {
        fprintf(stderr, "invedit %s: --image and -o are required (see --help)\n", cmd);
        return 2;
    }
    if ((code = check_device_param(cmd, &o)) || (code = check_output(cmd, "-o", o.output)) ||
        (code = check_output(cmd, "--save-input", o.save_input)))
        return code;
    if (!reconstruct && several_targets_check(&o)) return 2;
    if (reconstruct) ie_reconstruct_params(&o.p); /* the reconstruction's parameters, checked below */
    char err[1024] = "";
    if (ie_edit_params_validate(&o.p, err, sizeof err)) {
        fprintf(stderr, "invedit %s: %s\n", cmd, err);
        return 2;
    }
    ie_image in = {0}, out = {0};
    ie_status st = image_load(o.image, &in, err, sizeof err);
    if (st) {
        fprintf(stderr, "invedit %s: %s\n", cmd, err);
        return cli_exit_code(st);
    }
    image_format fmt;
    if (image_has_transparency(&in) &&
        ((o.output && !image_output_format(o.output, &fmt, err, sizeof err) && fmt == IMAGE_JPEG) ||
         (o.save_input && !image_output_format(o.save_input, &fmt, err, sizeof err) && fmt == IMAGE_JPEG)))
        fprintf(stderr,
                "invedit %s: warning: %s has transparency, which JPEG cannot store: the JPEG output "
                "is opaque (write .png to keep alpha)\n",
                cmd, o.image);
    ie_session *s = open_session(&o, &code);
    if (!s) {
        ie_image_free(&in);
        return code;
    }
    warn_long_prompts(cmd, s, &o.p, true);
    if (!reconstruct && several_targets(&o)) { /* one inversion, one output per target (cmd_batch.c) */
        code = edit_targets(s, &o, &in);
        ie_image_free(&in);
        ie_session_close(s);
        return code;
    }
    progress_state ps = {isatty(2), o.quiet, now(), -1};
    ie_image mask = {0};
    ie_edit_extras extras = {NULL, o.save_mask ? &mask : NULL, NULL};
    if (o.mask) st = edit_selection(s, &o, &in, &out, o.save_mask ? &mask : NULL, &ps, err, sizeof err);
    else if (reconstruct && !o.save_mask) st = ie_reconstruct(s, &o.p, &in, &out, progress_cb, &ps, err, sizeof err);
    else st = ie_edit_ex(s, &o.p, &in, &out, &extras, progress_cb, &ps, err, sizeof err);
    if (!st && o.save_mask) st = save_mask(o.save_mask, &mask, err, sizeof err);
    ie_image_free(&mask);
    if (st) {
        if (ps.tty && !o.quiet) fprintf(stderr, "\n");
        fprintf(stderr, "invedit %s: %s\n", cmd, err);
        code = cli_exit_code(st);
    }
    if (!st && !o.quiet) {
        int64_t calls, evals;
        ie_session_last_run(s, &calls, &evals);
        const double unet_s = ie_session_last_unet_seconds(s);
        fprintf(stderr, "%s: %.1f s, %lld UNet passes (%lld image-evaluations", ie_method_name(o.p.method),
                now() - ps.started, (long long)calls, (long long)evals);
        if (evals > 0) fprintf(stderr, ", %.1f s in the UNet: %.2f s each", unet_s, unet_s / (double)evals);
        fprintf(stderr, ")\n");
    }
    if (!st && o.output) {
        st = image_save(o.output, &out, err, sizeof err);
        if (st) {
            fprintf(stderr, "invedit %s: %s\n", cmd, err);
            code = cli_exit_code(st);
        }
    }
    if (!st && (reconstruct || o.save_input)) {
        /* the VAE round trip of the input at the working size: the ceiling */
        ie_image back = {0};
        st = ie_vae_roundtrip(s, &in, o.p.work_size, &back, err, sizeof err);
        if (!st && o.save_input) st = image_save(o.save_input, &back, err, sizeof err);
        if (!st && reconstruct)
            printf("reconstruction PSNR %.2f dB (method %s, %d steps); VAE round trip alone %.2f dB\n", psnr(&in, &out),
                   ie_method_name(o.p.method), o.p.steps, psnr(&in, &back));
        if (st) {
            fprintf(stderr, "invedit %s: %s\n", cmd, err);
            code = cli_exit_code(st);
        }
        ie_image_free(&back);
    }
    ie_image_free(&in);
    ie_image_free(&out);
    ie_session_close(s);
    return code;
}

/* --- generate ------------------------------------------------------------------------ */

int cmd_generate(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: invedit generate --model PATH --prompt TEXT [--steps 50] [--cfg-target 5]\n"
                   "                        [--gamma 0] [--seed N] [--width W --height H] -o OUT\n"
                   "       invedit generate --model PATH --prompts FILE [...] -o DIR\n\n"
                   "Text to image with BDIA-DDIM; --gamma 0 (default) is plain DDIM (eta 0), else 0.05..1.\n"
                   "--steps 1..1000, --seed, --negative-prompt, --device as for edit; other methods'\n"
                   "options are ignored with a warning. Output .png or .jpg (atomic, as for edit).\n"
                   "With --prompts, one prompt per line; image i goes to DIR/NNNN.png with seed + i.\n\n%s",
                   exit_codes);
            return 0;
        }
    cli_opts o;
    memset(&o, 0, sizeof o);
    int code = cli_parse(argc, argv, &o, "generate");
    if (code) return code;
    if (!o.output || (!o.prompt && !o.prompts_file)) {
        fprintf(stderr, "invedit generate: --prompt (or --prompts FILE) and -o are required (see --help)\n");
        return 2;
    }
    if ((code = check_device_param("generate", &o))) return code;
    if (o.prompts_file) { /* DIR must exist and be writable */
        char probe[4096], err[1024];
        snprintf(probe, sizeof probe, "%s/0000.png", o.output);
        struct stat dst;
        if (stat(o.output, &dst) != 0 || !S_ISDIR(dst.st_mode) || !ie_afile_check_writable(probe, err, sizeof err)) {
            fprintf(stderr, "invedit generate: -o %s: with --prompts, -o must be an existing folder you can write to\n",
                    o.output);
            return 2;
        }
    } else if ((code = check_output("generate", "-o", o.output))) {
        return code;
    }
    bool gamma_given = false, steps_given = false, cfg_given = false;
    for (int i = 1; i < argc; i++) {
        gamma_given |= !strcmp(argv[i], "--gamma");
        steps_given |= !strcmp(argv[i], "--steps");
        cfg_given |= !strcmp(argv[i], "--cfg-target");
    }
    FILE *pf = NULL;
    if (o.prompts_file && !(pf = fopen(o.prompts_file, "r"))) {
        fprintf(stderr, "invedit generate: --prompts %s: cannot open (%s)\n", o.prompts_file, strerror(errno));
        return 3;
    }
    ie_session *s = open_session(&o, &code);
    if (!s) {
        if (pf) fclose(pf);
        return code;
    }
    ie_edit_params p = o.p;
    p.method = IE_METHOD_BDIA;
    p.target_prompt = o.prompt;
    p.source_prompt = "";
    p.steps = steps_given ? o.p.steps : 50;
    p.cfg_target = cfg_given ? o.p.cfg_target : 5.0;
    p.gamma = gamma_given ? o.p.gamma : 0.0;
    char err[1024] = "";
    progress_state ps = {isatty(2), o.quiet, now(), -1};
    ie_image img = {0};
    ie_status st = IE_OK;
    char line[1024], path[4096];
    for (int idx = 0; !st; idx++) {
        const char *prompt = o.prompt;
        snprintf(path, sizeof path, "%s", o.output);
        if (pf) {
            if (!fgets(line, sizeof line, pf)) break;
            line[strcspn(line, "\r\n")] = 0;
            prompt = line;
            snprintf(path, sizeof path, "%s/%04d.png", o.output, idx);
            p.seed = o.p.seed + idx;
        }
        p.target_prompt = prompt;
        warn_long_prompts("generate", s, &p, false);
        st = ie_generate(s, &p, o.width, o.height, &img, progress_cb, &ps, err, sizeof err);
        if (!st) st = image_save(path, &img, err, sizeof err);
        ie_image_free(&img);
        if (!pf) break;
    }
    if (pf) fclose(pf);
    if (st) {
        fprintf(stderr, "invedit generate: %s\n", err[0] ? err : ie_status_name(st));
        code = cli_exit_code(st);
    }
    ie_image_free(&img);
    ie_session_close(s);
    return code;
}

/* --- invert -------------------------------------------------------------------------- */

int cmd_invert(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: invedit invert --model PATH --image IN --source TEXT --method ef-ddpm|bdia [options] -o "
                   "OUT.npy\n\n"
                   "Inverts IN and writes the result as a NumPy array of latents [n, C, h, w]:\n"
                   "  ef-ddpm: [x_N, z_N, ..., z_1], the noisiest latent and every noise map;\n"
                   "  bdia:    [z_K-1, z_K-2], the pair that regeneration starts from.\n"
                   "(InfEdit needs no inversion.) Options as for 'invedit edit --help'.\n\n%s",
                   exit_codes);
            return 0;
        }
    cli_opts o;
    memset(&o, 0, sizeof o);
    int code = cli_parse(argc, argv, &o, "invert");
    if (code) return code;
    if (!o.image || !o.output) {
        fprintf(stderr, "invedit invert: --image and -o are required (see --help)\n");
        return 2;
    }
    if ((code = check_device_param("invert", &o))) return code;
    {
        char cerr[1024];
        if (!ie_afile_check_writable(o.output, cerr, sizeof cerr)) {
            fprintf(stderr, "invedit invert: -o: %s\n", cerr);
            return 2;
        }
        if (ie_edit_params_validate(&o.p, cerr, sizeof cerr)) {
            fprintf(stderr, "invedit invert: %s\n", cerr);
            return 2;
        }
    }
    char err[1024] = "";
    ie_image in = {0};
    ie_status st = image_load(o.image, &in, err, sizeof err);
    if (st) {
        fprintf(stderr, "invedit invert: %s\n", err);
        return cli_exit_code(st);
    }
    ie_session *s = open_session(&o, &code);
    if (!s) {
        ie_image_free(&in);
        return code;
    }
    ie_latents lat = {0};
    st = ie_invert(s, &o.p, &in, &lat, err, sizeof err);
    if (!st) st = ie_latents_save_npy(&lat, o.output, err, sizeof err);
    if (st) {
        fprintf(stderr, "invedit invert: %s\n", err[0] ? err : ie_status_name(st));
        code = cli_exit_code(st);
    } else if (!o.quiet) {
        fprintf(stderr, "wrote %s: [%d, %d, %d, %d]\n", o.output, lat.n, lat.channels, lat.height, lat.width);
    }
    ie_latents_free(&lat);
    ie_image_free(&in);
    ie_session_close(s);
    return code;
}
