/* bench-methods: seconds per edit for each method (EF-DDPM, BDIA, InfEdit)
 * on each backend, with the UNet passes counted, through the public API
 * (ie_session_open + ie_edit: the same call the CLI and the plug-ins make).
 *
 *   bench-methods [--models demo,sd15] [--backends cpu,vulkan] [--methods ef-ddpm,bdia,infedit]
 *                 [--reps 1] [--steps N] [--demo PATH] [--seed N]
 *
 * Models.
 *   demo  models/demo (64x64 images, 4x8x8 latents), each method at its
 *         defaults (ie_edit_params_init): the README's edit.
 *   sd15  SD 1.5 shapes with random weights at 512x512 (UNet 859.5 M, VAE
 *         83.7 M, CLIP text 123 M parameters, written as F16 to a temporary
 *         folder; the tokenizer is the demo model's). The numbers are
 *         noise but every network runs at full size, so the time is a real
 *         SD 1.5 edit's. On this 2-core CPU one UNet pass of a CFG batch
 *         takes ~20 s, so a default EF-DDPM edit (~164 passes) would take an
 *         hour: --steps N (default 4 for sd15) runs fewer steps, and the
 *         report also gives the seconds per UNet pass and, when the demo
 *         model ran at its defaults in the same run, an estimate of the
 *         default-steps edit = (seconds - UNet loop) + s/pass x the default
 *         pass count (the pass counts depend on the method's settings only,
 *         not on the model). sd15 is skipped on a Vulkan device that is
 *         itself a CPU (lavapipe: ~1 h per pass at 512x512).
 *
 * Timing. Per method: one first edit (plans and allocates activation
 * memory), then the best of --reps (0: report the first). Wall clock of
 * ie_edit: prompt encoding, VAE encode, the method's UNet loop, VAE decode.
 * The UNet loop is timed from the progress callback (first step to
 * "decoding"). "passes" are UNet forward passes (one per step and CFG batch),
 * "evals" image-evaluations (the sum of their batch sizes: CFG counts 2,
 * InfEdit's three branches 6), from ie_session_last_run; "s/eval" the time
 * inside the UNet calls (with their attention control) per image-evaluation
 * (ie_session_last_unet_seconds), to set against bench-networks' standalone
 * evaluation of the same batch.
 *
 * The inversion cache. The timed edits above run with no_cache (each inverts).
 * Then, per method, a "first edit" into an empty in-memory cache and a
 * "new target" edit of the same image and source that takes the inversion
 * (EF-DDPM's maps, BDIA's pair; InfEdit: only the VAE encoding) from it, with
 * the ratio of their times, the best of --reps + 1 pairs (--no-cache-pair skips this).
 */
#include <invedit.h>
#include "random_model.h"
#include "edit/pipeline.h" /* ie_session_backend (issue 10: device memory) */

#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef BENCH_SOURCE_ROOT
#define BENCH_SOURCE_ROOT "."
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct opts {
    bool model_demo, model_sd15;
    bool backend_cpu, backend_vulkan;
    bool method[IE_METHOD_COUNT];
    int reps;
    int steps; /* -1: defaults (demo), 4 (sd15) */
    uint64_t seed;
    const char *demo;
    bool plan_only;       /* issue 10: print the memory plans, run no edit */
    const char *sd15_dir; /* issue 10: an SD 1.5 folder already written (bench-write-sd15) */
    bool cache_pair;      /* time a first and a repeated (cached) edit per method */
} opts;

/* progress: when the UNet loop starts and ends */
typedef struct clock_marks {
    double loop_start, loop_end;
} clock_marks;

static bool on_progress(void *user, double fraction, const char *text) {
    clock_marks *c = user;
    double t = now();
    if (fraction > 0.0 && c->loop_start == 0 && strcmp(text, "encoding prompts")) c->loop_start = t;
    if (!strcmp(text, "decoding") && c->loop_end == 0) c->loop_end = t;
    return true;
}

typedef struct method_result {
    bool ran;
    int steps;
    int64_t passes, evals;
    double first, best, loop;
    double unet; /* seconds inside the UNet calls of the best edit (ie_session_last_unet_seconds) */
} method_result;

/* --- memory (issue 10) -------------------------------------------------------------
 * Per method: the process's peak resident set over its edits (the kernel's
 * high-water mark, reset before the method through /proc/self/clear_refs)
 * and the session's memory plan of the same edit (ie_session_memory_plan: a
 * dry run), with the Vulkan device memory the edit would take on a GPU. */
static void peak_rss_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static double peak_rss_gb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb / (1024.0 * 1024.0);
}

static void print_memory(ie_session *s, const ie_edit_params *p, const ie_image *in, double peak_gb) {
    ie_memory_plan mp;
    char err[256] = "";
    const double G = 1024.0 * 1024.0 * 1024.0, M = 1024.0 * 1024.0;
    if (ie_session_memory_plan(s, p, in->width, in->height, in->channels, &mp, err, sizeof err)) {
        printf("  %-8s   memory plan failed: %s\n", "", err);
        return;
    }
    uint64_t in_use = 0, dev_peak = 0;
    ie_backend_memory(ie_session_backend(s), &in_use, &dev_peak);
    printf("  %-8s   memory: peak resident %.2f GiB, backend tensors %.1f MiB; plan %.2f GiB (%s; weights unet %.2f "
           "vae %.2f text %.2f, activations unet(batch %d) %.2f vae enc/dec %.2f/%.2f, attention %.3f, scratch %.2f, "
           "host %.2f GiB); Vulkan device plan %.1f MiB, largest tensor %.0f MiB\n",
           "", peak_gb, dev_peak / M, mp.total / G, mp.peak_phase, mp.weights_unet / G, mp.weights_vae / G,
           mp.weights_text / G, mp.unet_batch, mp.act_unet / G, mp.act_vae_encode / G, mp.act_vae_decode / G,
           mp.attention / G, mp.scratch / G, mp.host / G, mp.vulkan_device / M, mp.largest / M);
}

/* A test card: a vertical gradient background and a red disc on the left. */
static ie_status make_input(int size, ie_image *img) {
    ie_status st = ie_image_alloc(img, size, size, 3);
    if (st) return st;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            float *p = img->pixels + ((size_t)y * size + x) * 3;
            double dx = x - 0.3 * size, dy = y - 0.5 * size, r = 0.2 * size;
            bool disc = dx * dx + dy * dy < r * r;
            p[0] = disc ? 0.85f : 0.15f;
            p[1] = disc ? 0.1f : 0.2f + 0.2f * (float)y / (float)size;
            p[2] = disc ? 0.1f : 0.8f;
        }
    return IE_OK;
}

/* --- the inversion cache: a first edit, then the same image and source with a new target ---- */

/* Times two edits through a fresh in-memory cache (a disk hit adds one file read): the
 * first fills it, the second (another target) takes the inversion (InfEdit: the encoding)
 * from it. The pass counts say what was skipped. */
static void cache_pair(ie_session *s, const ie_edit_params *p0, const ie_image *in, int size, int reps) {
    ie_edit_params p = *p0;
    p.no_cache = false;
    char err[1024] = "";
    double t[2] = {0, 0};
    int64_t passes[2] = {0, 0};
    bool hit = false;
    for (int k = 0; k < 2 * (reps + 1); k++) { /* the best of reps + 1 pairs */
        if (k % 2 == 0) {
            ie_session_set_cache(s, (int64_t)4 << 30, NULL, 0); /* empty, memory only */
            p.target_prompt = p0->target_prompt;
        } else {
            p.target_prompt = "a green circle on the left on a blue background";
        }
        ie_image out = {0};
        double t0 = now();
        ie_status st = ie_edit(s, &p, in, &out, NULL, NULL, err, sizeof err);
        double dt = now() - t0;
        if (t[k % 2] == 0 || dt < t[k % 2]) t[k % 2] = dt;
        ie_image_free(&out);
        if (st) {
            printf("  %-8s cache: failed: %s\n", "", err);
            ie_session_set_cache(s, 0, NULL, 0);
            return;
        }
        ie_session_last_run(s, &passes[k % 2], NULL);
        if (k % 2 == 1) hit = ie_session_last_cached(s);
    }
    ie_session_set_cache(s, 0, NULL, 0);
    printf("  %-8s first edit %.3f s (%lld passes), new target %.3f s (%lld passes, %s from the cache): %.0f %%"
           " at %dx%d\n",
           "", t[0], (long long)passes[0], t[1], (long long)passes[1],
           p.method == IE_METHOD_INFEDIT ? "encoding" : "inversion", t[1] / t[0] * 100, size, size);
    if (!hit) printf("  %-8s   (the second edit missed the cache)\n", "");
    fflush(stdout);
}

static void run_model(const opts *o, const char *label, const char *path, bool is_sd15, int steps,
                      const int64_t *default_passes, int64_t *passes_out) {
    static const char *src = "a red circle on the left on a blue background";
    static const char *tgt = "a yellow circle on the left on a blue background";
    for (int bi = 0; bi < 2; bi++) {
        const char *dev = bi == 0 ? "cpu" : "vulkan";
        if ((bi == 0 && !o->backend_cpu) || (bi == 1 && !o->backend_vulkan)) continue;
        char err[1024] = "";
        double t0 = now();
        ie_session *s = NULL;
        ie_status st = ie_session_open(path, dev, &s, err, sizeof err);
        if (st) {
            printf("%s %s: cannot open: %s\n", label, dev, err);
            continue;
        }
        double load = now() - t0;
        const char *desc = ie_session_device(s);
        if (bi == 1 && ie_session_note(s)[0]) {
            printf("%s vulkan: skipped (%s)\n", label, ie_session_note(s));
            ie_session_close(s);
            continue;
        }
        if (bi == 1 && is_sd15 && strstr(desc, "(CPU)")) {
            printf("%s vulkan: skipped: %s is a CPU Vulkan device (lavapipe needs ~1 h per 512x512 UNet pass)\n", label,
                   desc);
            ie_session_close(s);
            continue;
        }
        int size = ie_session_native_size(s);
        printf("\n%s on %s: %dx%d, loaded in %.1f s\n", label, desc, size, size, load);
        printf("  %-8s %5s %6s %6s %9s %9s %9s %9s %9s %9s\n", "method", "steps", "passes", "evals", "edit s",
               "first s", "loop s", "s/pass", "other s", "s/eval");
        fflush(stdout);
        ie_image in = {0};
        st = make_input(size, &in);
        for (int m = 0; !st && m < IE_METHOD_COUNT; m++) {
            if (!o->method[m]) continue;
            ie_edit_params p;
            ie_edit_params_init(&p, (ie_method)m);
            p.source_prompt = src;
            p.target_prompt = tgt;
            p.seed = (int64_t)o->seed;
            if (m == IE_METHOD_INFEDIT) p.blend_words = "yellow";
            if (steps > 0) p.steps = steps;
            p.no_cache = true; /* every timed edit inverts; the cache's effect is timed apart (cache_pair) */
            method_result r = {0};
            r.steps = p.steps;
            peak_rss_reset(); /* issue 10 */
            ie_backend_reset_peak(ie_session_backend(s));
            if (o->plan_only) {
                printf("  %-8s %5d (memory plan only)\n", ie_method_name((ie_method)m), p.steps);
                print_memory(s, &p, &in, peak_rss_gb());
                fflush(stdout);
                continue;
            }
            for (int rep = 0; rep <= o->reps; rep++) {
                ie_image out = {0};
                clock_marks cm = {0};
                double t1 = now();
                ie_status es = ie_edit(s, &p, &in, &out, on_progress, &cm, err, sizeof err);
                double dt = now() - t1;
                ie_image_free(&out);
                if (es) {
                    printf("  %-8s failed: %s\n", ie_method_name((ie_method)m), err);
                    r.ran = false;
                    break;
                }
                double loop = cm.loop_end > cm.loop_start && cm.loop_start > 0 ? cm.loop_end - cm.loop_start : dt;
                if (rep == 0) r.first = dt;
                /* the best timed edit (after the first), or the first with --reps 0 */
                bool timed = o->reps == 0 || rep > 0;
                if (timed && (r.best == 0 || dt < r.best))
                    r.best = dt, r.loop = loop, r.unet = ie_session_last_unet_seconds(s);
                ie_session_last_run(s, &r.passes, &r.evals);
                r.ran = true;
            }
            if (!r.ran) continue;
            double per_pass = r.passes ? r.loop / (double)r.passes : 0;
            printf("  %-8s %5d %6lld %6lld %9.3f %9.3f %9.3f %9.4f %9.3f %9.4f\n", ie_method_name((ie_method)m),
                   r.steps, (long long)r.passes, (long long)r.evals, r.best, r.first, r.loop, per_pass, r.best - r.loop,
                   r.evals ? r.unet / (double)r.evals : 0.0);
            print_memory(s, &p, &in, peak_rss_gb()); /* issue 10 */
            if (passes_out && bi == 0) passes_out[m] = r.passes;
            if (o->cache_pair) cache_pair(s, &p, &in, size, o->reps);
            if (default_passes && default_passes[m] > 0 && steps > 0)
                printf("  %-8s   at its default steps (%lld passes, counted on the demo model): ~%.0f s\n", "",
                       (long long)default_passes[m], (r.best - r.loop) + per_pass * (double)default_passes[m]);
            fflush(stdout);
        }
        ie_image_free(&in);
        ie_session_close(s);
    }
}

static bool parse_list(const char *arg, const char *const *names, int n, bool *out) {
    for (int i = 0; i < n; i++) out[i] = false;
    gchar **parts = g_strsplit(arg, ",", -1);
    bool ok = parts[0] != NULL;
    for (int k = 0; ok && parts[k]; k++) {
        bool found = false;
        for (int i = 0; i < n; i++)
            if (!strcmp(parts[k], names[i])) out[i] = found = true;
        ok = found;
    }
    g_strfreev(parts);
    return ok;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench-methods [--models demo,sd15] [--backends cpu,vulkan] [--methods ef-ddpm,bdia,infedit]\n"
               "                     [--reps 1] [--steps N] [--demo PATH] [--seed N]\n\n"
               "Seconds per edit of each method on each backend, UNet passes counted (see bench/methods.c).\n\n"
               "  --models LIST    demo (models/demo, default) and/or sd15 (SD 1.5 shapes, random weights, 512x512)\n"
               "  --backends LIST  cpu, vulkan (default both)\n"
               "  --methods LIST   default all three\n"
               "  --reps N         timed edits after the first; the best is reported (default 1; 0: the first)\n"
               "  --steps N        steps for every method (default: each method's own for demo, 4 for sd15)\n"
               "  --demo PATH      the demo model folder (default models/demo in the source tree)\n"
               "  --seed N         noise and random weights (default 0)\n"
               "  --plan-only      print each method's memory plan (a dry run), run no edit\n"
               "  --sd15-dir DIR   use the SD 1.5-shaped folder DIR (bench-write-sd15) instead of writing one\n"
               "  --no-cache-pair  skip the inversion cache's first-edit / new-target timing per method\n");
}

int main(int argc, char **argv) {
    opts o = {.model_demo = true,
              .backend_cpu = true,
              .backend_vulkan = true,
              .reps = 1,
              .steps = -1,
              .demo = BENCH_SOURCE_ROOT "/models/demo",
              .cache_pair = true};
    for (int m = 0; m < IE_METHOD_COUNT; m++) o.method[m] = true;
    static const char *const models[] = {"demo", "sd15"}, *const backends[] = {"cpu", "vulkan"};
    static const char *const methods[] = {"ef-ddpm", "bdia", "infedit"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        bool ok = i + 1 < argc;
        if (ok && !strcmp(a, "--models")) {
            bool b[2];
            ok = parse_list(argv[++i], models, 2, b);
            o.model_demo = b[0], o.model_sd15 = b[1];
        } else if (ok && !strcmp(a, "--backends")) {
            bool b[2];
            ok = parse_list(argv[++i], backends, 2, b);
            o.backend_cpu = b[0], o.backend_vulkan = b[1];
        } else if (ok && !strcmp(a, "--methods")) ok = parse_list(argv[++i], methods, 3, o.method);
        else if (ok && !strcmp(a, "--reps")) ok = (o.reps = atoi(argv[++i])) >= 0;
        else if (ok && !strcmp(a, "--steps")) ok = (o.steps = atoi(argv[++i])) >= 1;
        else if (ok && !strcmp(a, "--demo")) o.demo = argv[++i];
        else if (ok && !strcmp(a, "--seed")) o.seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--plan-only")) o.plan_only = ok = true; /* issue 10 */
        else if (ok && !strcmp(a, "--sd15-dir")) o.sd15_dir = argv[++i];
        else if (!strcmp(a, "--no-cache-pair")) ok = true, o.cache_pair = false;
        else ok = false;
        if (!ok) {
            fprintf(stderr, "bench-methods: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    int64_t demo_passes[IE_METHOD_COUNT] = {0};
    if (o.model_demo)
        run_model(&o, "demo", o.demo, false, o.steps > 0 ? o.steps : 0, NULL, o.steps > 0 ? NULL : demo_passes);
    if (o.model_sd15 && o.sd15_dir) { /* issue 10: a folder written by bench-write-sd15 */
        printf("\nSD 1.5 shapes, random weights, in %s:\n", o.sd15_dir);
        run_model(&o, "sd15", o.sd15_dir, true, o.steps > 0 ? o.steps : 4, demo_passes, NULL);
        o.model_sd15 = false;
    }
    if (o.model_sd15) {
        char *dir = g_dir_make_tmp("invedit-bench-sd15-XXXXXX", NULL);
        char err[1024] = "";
        char *tok = g_build_filename(o.demo, "tokenizer", NULL);
        printf("\nSD 1.5 shapes, random weights (seed %llu), in %s:\n", (unsigned long long)o.seed, dir ? dir : "?");
        double t0 = now();
        if (dir && bench_write_random_sd15(dir, tok, o.seed, err, sizeof err)) {
            printf("  written in %.1f s\n", now() - t0);
            run_model(&o, "sd15", dir, true, o.steps > 0 ? o.steps : 4, demo_passes, NULL);
        } else {
            printf("  failed: %s\n", err[0] ? err : "no temporary folder");
        }
        if (dir) {
            char *cmd = g_strdup_printf("rm -rf '%s'", dir);
            if (system(cmd) != 0) fprintf(stderr, "bench-methods: could not remove %s\n", dir);
            g_free(cmd);
        }
        g_free(tok);
        g_free(dir);
    }
    return 0;
}
