/* invedit batch MANIFEST: many edits with one model load, resumable and
 * shardable (docs/batch.md); and the several-targets edit
 * (invedit edit --target A --target B -o out-%d.png) that shares its loop.
 *
 * Each item's outputs are written atomically (image_save), so an output that
 * exists is complete: a restarted batch skips it (unless --force). Items are
 * numbered in manifest order (blank and '#' lines are not items); shard K/N
 * takes the items whose number i has i mod N == K, so shards never share an
 * output and need no coordinator. */
#include "commands.h"

#include "args.h"
#include "manifest.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/atomic_file.h"
#include "image_io.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fmt_duration(double s, char *out, size_t n) {
    if (s < 0 || s > 1e7) {
        snprintf(out, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

/* --- progress: this edit, and the whole run with its ETA ------------------------------------ */


static double eta_of(const cli_progress *rp, double fraction_of_current) {
    if (rp->timed == 0) return -1;
    double per = rp->timed_s / rp->timed;
    return per * ((double)(rp->total - rp->done) - fraction_of_current);
}

static bool on_progress(void *user, double fraction, const char *text) {
    cli_progress *rp = user;
    if (rp->quiet || !rp->tty) return true;
    char eta[32];
    fmt_duration(eta_of(rp, fraction), eta, sizeof eta);
    double overall = rp->total ? ((double)rp->done + fraction) / rp->total : 1;
    fprintf(stderr, "\r\033[K%s: %3d%% %-24s | all %3d%% ETA %s", rp->label, (int)(fraction * 100), text,
            (int)(overall * 100), eta);
    fflush(stderr);
    return true;
}

/* A shard killed mid-write (SIGKILL, pre-emption) leaves its temporary file
 * (".NAME.XXXXXX.part", util/atomic_file.h) next to the output; the output
 * itself is never partial. Items belong to one shard, so the shard that
 * writes NAME again may remove them. */
static void remove_stale_temporaries(const char *path) {
    char *dir = g_path_get_dirname(path), *base = g_path_get_basename(path);
    char *prefix = g_strconcat(".", base, ".", NULL);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d)))
        if (g_str_has_prefix(n, prefix) && g_str_has_suffix(n, ".part") && strlen(n) == strlen(prefix) + 6 + 5) {
            char *p = g_build_filename(dir, n, NULL);
            g_unlink(p);
            g_free(p);
        }
    if (d) g_dir_close(d);
    g_free(prefix);
    g_free(base);
    g_free(dir);
}

/* --- one image, one or several targets ------------------------------------------------------ */

int cli_edit_targets(ie_session *s, const ie_edit_params *p_in, const ie_image *in, const char *const *targets,
                     int n_targets, const char *output, bool force, cli_progress *rp, int *failed) {
    int code = 0;
    for (int i = 0; i < n_targets; i++) {
        char path[4096], err[1024] = "";
        int fields = output_pattern_fields(output, err, sizeof err);
        if (fields < 0 || !output_pattern_expand(output, i + 1, path, sizeof path)) {
            fprintf(stderr, "invedit: %s\n", err[0] ? err : "output name too long");
            (*failed)++;
            rp->done++;
            code = 2;
            continue;
        }
        char *label = g_strconcat(rp->label ? rp->label : "", path, NULL);
        if (!force && g_file_test(path, G_FILE_TEST_EXISTS)) {
            rp->done++;
            if (!rp->quiet) fprintf(stderr, "%s: exists, skipped\n", label);
            g_free(label);
            continue;
        }
        if (rp->clean_stale) remove_stale_temporaries(path);
        ie_edit_params p = *p_in;
        p.target_prompt = targets[i];
        ie_image out = {0};
        const char *saved_label = rp->label;
        rp->label = label;
        double t0 = now();
        ie_status st = ie_afile_check_writable(path, err, sizeof err) ? IE_OK : IE_ERR_IO;
        if (!st) st = ie_edit(s, &p, in, &out, on_progress, rp, err, sizeof err);
        if (!st) st = image_save(path, &out, err, sizeof err);
        double dt = now() - t0;
        ie_image_free(&out);
        rp->label = saved_label;
        rp->done++;
        if (rp->tty && !rp->quiet) fprintf(stderr, "\r\033[K");
        if (st) {
            fprintf(stderr, "%s: FAILED: %s\n", label, err);
            (*failed)++;
            code = cli_exit_code(st);
            g_free(label);
            if (st == IE_ERR_CANCELLED) return code;
            continue;
        }
        rp->timed++;
        rp->timed_s += dt;
        if (!rp->quiet) {
            int64_t calls;
            ie_session_last_run(s, &calls, NULL);
            char eta[32], el[32];
            fmt_duration(eta_of(rp, 0), eta, sizeof eta);
            fmt_duration(now() - rp->started, el, sizeof el);
            fprintf(stderr, "%s: %s %.1f s, %lld UNet passes%s | done %d/%d, %s elapsed, ETA %s\n", label,
                    ie_method_name(p.method), dt, (long long)calls,
                    ie_session_last_cached(s)
                        ? (p.method == IE_METHOD_INFEDIT ? " (encoding from the cache)" : " (inversion from the cache)")
                        : "",
                    rp->done, rp->total, el, eta);
        }
        g_free(label);
    }
    return code;
}

void cli_progress_init(cli_progress *rp, bool quiet, int total) {
    memset(rp, 0, sizeof *rp);
    rp->tty = isatty(2);
    rp->quiet = quiet;
    rp->started = now();
    rp->total = total;
}

/* --- invedit batch -------------------------------------------------------------------------- */

static volatile sig_atomic_t cancelled;

static void on_signal(int sig) {
    ie_afile_remove_pending();
    cancelled = 1;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void batch_usage(FILE *f) {
    fprintf(f, "usage: invedit batch MANIFEST [--model PATH] [--shard K/N] [--force] [--dry-run] [-q] [options]\n\n"
               "Runs the edits listed in MANIFEST (JSON Lines, one object per line; '-' reads standard input)\n"
               "with one model load. Each line gives \"image\", \"output\", \"source\", \"target\" (a string, or\n"
               "an array with an output pattern such as \"out-%%d.png\"), optionally \"method\" and any other\n"
               "option below by its name, e.g.\n"
               "  {\"image\": \"in/a.png\", \"source\": \"a red circle\", \"target\": \"a yellow circle\", "
               "\"output\": \"out/a.png\", \"steps\": 30}\n\n"
               "  --model PATH       diffusers folder or SD 1.x .safetensors (or INVEDIT_MODEL)\n"
               "  --shard K/N        run only items K, K+N, K+2N, ... (items numbered from 0; 0 <= K < N),\n"
               "                     e.g. --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT\n"
               "  --force            redo items whose output exists (default: skip them, so a restarted\n"
               "                     batch goes on where it stopped)\n"
               "  --dry-run          check every line and list what would run; load no model\n"
               "  --no-cache         no disk cache (items of the same image and source still share an\n"
               "                     inversion within the run)\n"
               "  -q, --quiet        only failures and the summary\n"
               "Any other option (--method, --steps, --seed, ...) is a default for every item; a line's own\n"
               "keys win. See 'invedit edit --help' for them, and docs/batch.md for GNU parallel and Slurm.\n\n"
               "exit status: 0 every item ok; otherwise the number of failed items (at most 100), or\n"
               "             2 bad usage / unreadable manifest, 3 bad model, 4 device error (before any item),\n"
               "             130 cancelled. The last line on stderr counts ok, skipped and failed items.\n");
}

typedef struct line_ref {
    char *text;
    size_t len;
    int lineno;
} line_ref;

int cmd_batch(int argc, char **argv) {
    const char *manifest = NULL, *model = NULL, *device = NULL;
    bool force = false, quiet = false, dry = false, no_cache = false;
    long shard_k = 0, shard_n = 1;
    ie_method default_method = IE_METHOD_INFEDIT;
    manifest_default *defs = g_new0(manifest_default, (size_t)argc + 1);
    int ndef = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            batch_usage(stdout);
            g_free(defs);
            return 0;
        }
        if (!strcmp(a, "--force")) force = true;
        else if (!strcmp(a, "--dry-run")) dry = true;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = true;
        else if (!strcmp(a, "--no-cache")) no_cache = true;
        else if (a[0] != '-' || !strcmp(a, "-")) {
            if (manifest) {
                fprintf(stderr, "invedit batch: one manifest only ('%s' and '%s')\n", manifest, a);
                g_free(defs);
                return 2;
            }
            manifest = a;
        } else if (!v || strncmp(a, "--", 2)) {
            fprintf(stderr, "invedit batch: %s\n", v ? "unexpected argument (see --help)" : "option needs a value");
            g_free(defs);
            return 2;
        } else {
            i++;
            const char *name = a + 2;
            if (!strcmp(name, "model")) model = v;
            else if (!strcmp(name, "shard")) {
                char *end = NULL;
                errno = 0;
                shard_k = strtol(v, &end, 10);
                bool ok = end != v && *end == '/' && !errno;
                if (ok) {
                    const char *nstart = end + 1;
                    shard_n = strtol(nstart, &end, 10);
                    ok = end != nstart && !*end && !errno && shard_n >= 1 && shard_n <= 1000000 && shard_k >= 0 &&
                         shard_k < shard_n;
                }
                if (!ok) {
                    fprintf(stderr, "invedit batch: --shard '%s': expected K/N with 0 <= K < N\n", v);
                    g_free(defs);
                    return 2;
                }
            } else {
                if (!strcmp(name, "source")) name = "source-prompt";
                else if (!strcmp(name, "target")) name = "target-prompt";
                else if (!strcmp(name, "negative")) name = "negative-prompt";
                const ie_param_desc *d = ie_edit_param_find(name);
                ie_edit_params probe;
                char err[256];
                ie_edit_params_init(&probe, IE_METHOD_INFEDIT);
                if (!d || ie_edit_param_set(&probe, d, v, err, sizeof err)) {
                    if (!d) fprintf(stderr, "invedit batch: unknown option '%s' (see --help)\n", a);
                    else fprintf(stderr, "invedit batch: %s\n", err);
                    g_free(defs);
                    return 2;
                }
                if (d->type == IE_PARAM_METHOD) default_method = probe.method;
                if (!strcmp(d->name, "device")) device = v;
                defs[ndef++] = (manifest_default){d, v};
            }
        }
    }
    if (!manifest) {
        fprintf(stderr, "invedit batch: no MANIFEST given (see --help)\n");
        g_free(defs);
        return 2;
    }
    if (!model) model = getenv("INVEDIT_MODEL");
    if (!model && !dry) {
        fprintf(stderr, "invedit batch: --model PATH is required (or set INVEDIT_MODEL)\n");
        g_free(defs);
        return 2;
    }

    /* read the manifest; items are its non-blank lines */
    gchar *text = NULL;
    gsize tlen = 0;
    GError *ge = NULL;
    bool read_ok;
    if (!strcmp(manifest, "-")) {
        GString *gs = g_string_new(NULL);
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) g_string_append_len(gs, buf, (gssize)n);
        read_ok = !ferror(stdin);
        tlen = gs->len;
        text = g_string_free(gs, FALSE);
    } else {
        read_ok = g_file_get_contents(manifest, &text, &tlen, &ge);
    }
    if (!read_ok) {
        fprintf(stderr, "invedit batch: cannot read %s: %s\n", manifest, ge ? ge->message : "read error");
        g_clear_error(&ge);
        g_free(defs);
        return 2;
    }
    GArray *lines = g_array_new(FALSE, FALSE, sizeof(line_ref));
    int lineno = 0;
    for (char *c = text; c < text + tlen;) {
        char *e = memchr(c, '\n', (size_t)(text + tlen - c));
        size_t len = e ? (size_t)(e - c) : (size_t)(text + tlen - c);
        lineno++;
        if (!manifest_line_is_blank(c, len)) {
            line_ref r = {c, len, lineno};
            g_array_append_val(lines, r);
        }
        c += len + 1;
    }
    int n_items = (int)lines->len, mine = 0;
    for (int i = 0; i < n_items; i++) mine += i % shard_n == shard_k;

    /* parse this shard's items first: a bad line is reported before any work */
    manifest_item *items = g_new0(manifest_item, (size_t)n_items + 1);
    bool *bad = g_new0(bool, (size_t)n_items + 1);
    int failed = 0, ok = 0, skipped = 0, total_edits = 0;
    for (int i = 0; i < n_items; i++) {
        if (i % shard_n != shard_k) continue;
        line_ref *r = &g_array_index(lines, line_ref, i);
        char err[1024];
        if (!manifest_parse_line(r->text, r->len, default_method, defs, ndef, &items[i], err, sizeof err)) {
            fprintf(stderr, "%s:%d: item %d: %s\n", manifest, r->lineno, i, err);
            bad[i] = true;
            failed++;
            continue;
        }
        if (items[i].model && model && strcmp(items[i].model, model)) {
            fprintf(stderr, "%s:%d: item %d: model %s differs from the batch's %s (one model per batch)\n", manifest,
                    r->lineno, i, items[i].model, model);
            bad[i] = true;
            failed++;
            continue;
        }
        if (device && strcmp(items[i].p.device, device)) {
            fprintf(stderr, "%s:%d: item %d: device %s differs from the batch's %s (one device per batch)\n", manifest,
                    r->lineno, i, items[i].p.device, device);
            bad[i] = true;
            failed++;
            continue;
        }
        total_edits += items[i].n_targets;
    }
    if (!quiet)
        fprintf(stderr, "%s: %d items%s, %d in this shard (%ld/%ld), %d edits\n", manifest, n_items,
                shard_n > 1 ? " in all" : "", mine, shard_k, shard_n, total_edits);

    int code = 0;
    ie_session *s = NULL;
    if (dry) {
        for (int i = 0; i < n_items; i++) {
            if (i % shard_n != shard_k || bad[i]) continue;
            for (int t = 0; t < items[i].n_targets; t++) {
                char path[4096];
                if (!output_pattern_expand(items[i].output, t + 1, path, sizeof path)) continue;
                printf("%d\t%s\t%s\t%s\t%s\n", i, ie_method_name(items[i].p.method), items[i].image, path,
                       !force && g_file_test(path, G_FILE_TEST_EXISTS) ? "exists" : "to do");
            }
        }
    } else if (mine > failed) {
        char err[1024] = "";
        ie_status st = ie_session_open(model, device, &s, err, sizeof err);
        if (st) {
            fprintf(stderr, "invedit batch: cannot load the model: %s\n", err);
            code = cli_exit_code(st);
        } else {
            if (!quiet) {
                fprintf(stderr, "model %s on %s\n", model, ie_session_device(s));
                if (ie_session_note(s)[0]) fprintf(stderr, "note: %s\n", ie_session_note(s));
            }
            /* --no-cache: no disk level, but one inversion per image and source within the run */
            if (no_cache) ie_session_set_cache(s, (int64_t)512 << 20, NULL, 0);
            signal(SIGINT, on_signal);
            signal(SIGTERM, on_signal);
            cli_progress ro;
            cli_progress_init(&ro, quiet, total_edits);
            ro.clean_stale = true;
            for (int i = 0; i < n_items && !code; i++) {
                if (i % shard_n != shard_k || bad[i]) continue;
                manifest_item *it = &items[i];
                line_ref *r = &g_array_index(lines, line_ref, i);
                char label[512];
                snprintf(label, sizeof label, "[item %d, %s:%d] %s -> ", i, manifest, r->lineno, it->image);
                /* are all outputs there already? then the image need not even be read */
                int todo = 0;
                for (int t = 0; t < it->n_targets; t++) {
                    char path[4096];
                    if (output_pattern_expand(it->output, t + 1, path, sizeof path) &&
                        (force || !g_file_test(path, G_FILE_TEST_EXISTS)))
                        todo++;
                }
                if (!todo) {
                    ro.done += it->n_targets;
                    skipped += it->n_targets;
                    if (!quiet) fprintf(stderr, "%s%s: done before, skipped\n", label, it->output);
                    continue;
                }
                skipped += it->n_targets - todo;
                ie_image in = {0};
                ie_status ist = image_load(it->image, &in, err, sizeof err);
                if (ist) {
                    fprintf(stderr, "%s%s: FAILED: %s\n", label, it->output, err);
                    failed += todo;
                    ro.done += it->n_targets;
                    continue;
                }
                if (no_cache) it->p.no_cache = false; /* the memory level above */
                int f0 = failed;
                ro.label = label;
                int c = cli_edit_targets(s, &it->p, &in, it->targets, it->n_targets, it->output, force, &ro, &failed);
                ok += todo - (failed - f0);
                if (c == 130 || cancelled) code = 130;
                ie_image_free(&in);
            }
        }
    }
    fprintf(stderr, "invedit batch: %d ok, %d skipped (done before), %d failed%s\n", ok, skipped, failed,
            shard_n > 1 ? " in this shard" : "");
    ie_session_close(s);
    for (int i = 0; i < n_items; i++) manifest_item_clear(&items[i]);
    g_free(items);
    g_free(bad);
    g_array_free(lines, TRUE);
    g_free(text);
    g_free(defs);
    if (code) return code;
    return failed > 100 ? 100 : failed;
}
