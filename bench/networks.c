/* bench-networks: seconds per SD 1.5 UNet evaluation on each backend, the
 * effective GFLOP/s, peak device memory, and PyTorch CPU on the same model
 * and inputs in the same run.
 *
 *   bench-networks [--sizes 256,512] [--batch 2] [--backends cpu,vulkan] [--device N]
 *                  [--reps 2] [--threads N] [--model PATH] [--seed N] [--fp32]
 *                  [--no-torch] [--torch-reps N] [--python PATH] [--profile] [--quick]
 *
 * The model. By default the SD 1.5 UNet configuration (sd_unet_config_default:
 * [320, 640, 1280, 1280], 8 heads, context 768; 859.5 M parameters) with
 * random weights: every tensor the configuration needs (sd_expected_tensors)
 * is drawn from a seeded generator (kernels and matrices uniform in
 * ±1/sqrt(fan_in) as PyTorch's default initialisation, norm gammas 1 ± 0.1,
 * biases uniform ±1/sqrt(fan_in)) and written as an F16 diffusers file into a
 * temporary folder ($TMPDIR, else /dev/shm when it has room, else /tmp;
 * 1.7 GB, deleted at exit), which both the C loader and the
 * PyTorch side read: the two run the same weights and their outputs are
 * compared. --model PATH times a real checkpoint instead (a diffusers folder
 * or single file; PyTorch reads it when it is a diffusers folder, else builds
 * random weights from the same configuration and only the timing compares).
 *
 * Per backend and size (pixels; the latent is size/8), batch B (CFG = 2),
 * context 77 tokens: one warm-up evaluation (plans and allocates the
 * activation buffers), then the best of --reps, wall clock including
 * ie_backend_sync. Sizes run largest first, so that the first evaluation at
 * the largest size gives the clean peak of ie_backend_memory: weights, then
 * activations (peak − weights − inputs/outputs) printed separately. On a
 * Vulkan device that is itself a CPU (lavapipe, ~100x slower than the CPU
 * backend here) only the smallest size runs, one evaluation, unless --sizes
 * is given (each skip is printed).
 *
 * FLOPs are counted from the configuration (count_unet below): every conv
 * (2·Cout·Cin·k²·OH·OW per image), every linear (2·N·K per token), and the
 * attention matmuls (q·kᵀ and p·v: 4·Lq·Lk·C per image); norms, softmax and
 * elementwise ops are not counted. SD 1.5 at 512², batch 1 = 803 GFLOP
 * (docs/engine.md, "Where the compute goes"); GFLOP/s = counted FLOPs / seconds.
 *
 * PyTorch: bench/torch_unet.py (tools/sdref's UNet, fp32, torch.no_grad,
 * torch.set_num_threads = the CPU backend's thread count, one warm-up, best
 * of --torch-reps) runs as a subprocess after the C backends, with the same
 * config.json, weights and inputs (.npy in the temporary folder); the ratio
 * printed is cpu seconds / torch seconds (< 1: the CPU backend is faster).
 *
 * --profile (CPU backend): one more evaluation per size with every op timed
 * (the engine's per-op profile, ie_backend_profile_begin/end in
 * vkcompute/ops.h), printed as seconds and GFLOP/s per op kind.
 *
 * The machine may be shared: run it with nice and read best-of-N numbers.
 */
#include "vkcompute/ops.h"
#include "random_model.h"
#include "model/npy.h"
#include "model/sd.h"

#include <cblas.h>
#include <errno.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_TORCH_SCRIPT
#define BENCH_TORCH_SCRIPT "bench/torch_unet.py"
#endif

#define MAX_SIZES 8
#define CONTEXT_LEN 77
#define MIB (1024.0 * 1024.0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --- FLOPs from the configuration ---------------------------------------------------- */

typedef struct flops {
    double conv, linear, attn;
} flops;

static double flops_total(const flops *f) { return f->conv + f->linear + f->attn; }

/* 2·Cout·Cin·k²·OH·OW per image */
static void count_conv(flops *f, double B, double ohw, int cout, int cin, int k) {
    f->conv += 2.0 * B * ohw * cout * cin * k * k;
}
static void count_linear(flops *f, double rows, int n, int k) { f->linear += 2.0 * rows * n * k; }

static void count_resnet(flops *f, double B, double hw, int cin, int cout, int T) {
    count_conv(f, B, hw, cout, cin, 3);                  /* conv1 */
    count_linear(f, B, cout, T);                         /* time_emb_proj */
    count_conv(f, B, hw, cout, cout, 3);                 /* conv2 */
    if (cin != cout) count_conv(f, B, hw, cout, cin, 1); /* conv_shortcut */
}

/* Transformer2D over L = h·w tokens of C channels, context Lc x D. */
static void count_transformer(flops *f, const sd_unet_config *p, double B, double L, int C, int Lc) {
    const int D = p->cross_attention_dim;
    if (p->use_linear_projection) count_linear(f, B * L, C, C); /* proj_in */
    else count_conv(f, B, L, C, C, 1);
    count_linear(f, B * L, 3 * C, C);  /* attn1 to_q, to_k, to_v */
    f->attn += 4.0 * B * L * L * C;    /* q·kᵀ and p·v over all heads */
    count_linear(f, B * L, C, C);      /* attn1 to_out */
    count_linear(f, B * L, C, C);      /* attn2 to_q */
    count_linear(f, B * Lc, 2 * C, D); /* attn2 to_k, to_v */
    f->attn += 4.0 * B * L * Lc * C;
    count_linear(f, B * L, C, C);                               /* attn2 to_out */
    count_linear(f, B * L, 8 * C, C);                           /* ff.net.0.proj (GEGLU) */
    count_linear(f, B * L, C, 4 * C);                           /* ff.net.2 */
    if (p->use_linear_projection) count_linear(f, B * L, C, C); /* proj_out */
    else count_conv(f, B, L, C, C, 1);
}

/* One UNet evaluation at latent h x w, batch B, context length Lc: the same
 * walk as unet_run (model/unet.c). */
static flops count_unet(const sd_unet_config *p, int B, int h, int w, int Lc) {
    flops f = {0, 0, 0};
    const int n = p->n_levels, lpb = p->layers_per_block, C0 = p->block_out_channels[0], T = 4 * C0;
    if (p->time_cond_proj_dim > 0) count_linear(&f, B, C0, p->time_cond_proj_dim);
    count_linear(&f, B, T, C0);
    count_linear(&f, B, T, T);
    count_conv(&f, B, (double)h * w, C0, p->in_channels, 3);           /* conv_in */
    int ch[1 + SD_MAX_LEVELS * (SD_MAX_LAYERS_PER_BLOCK + 1)], ns = 0; /* skip channels */
    ch[ns++] = C0;
    int cin = C0;
    for (int i = 0; i < n; i++) {
        int C = p->block_out_channels[i];
        for (int j = 0; j < lpb; j++) {
            count_resnet(&f, B, (double)h * w, j == 0 ? cin : C, C, T);
            if (p->down_cross_attn[i]) count_transformer(&f, p, B, (double)h * w, C, Lc);
            ch[ns++] = C;
        }
        if (i < n - 1) {
            h /= 2;
            w /= 2;
            count_conv(&f, B, (double)h * w, C, C, 3); /* downsampler, stride 2 */
            ch[ns++] = C;
        }
        cin = C;
    }
    int Cl = p->block_out_channels[n - 1];
    count_resnet(&f, B, (double)h * w, Cl, Cl, T);
    count_transformer(&f, p, B, (double)h * w, Cl, Lc);
    count_resnet(&f, B, (double)h * w, Cl, Cl, T);
    int prev = Cl;
    for (int i = 0; i < n; i++) {
        int C = p->block_out_channels[n - 1 - i];
        for (int j = 0; j <= lpb; j++) {
            count_resnet(&f, B, (double)h * w, prev + ch[--ns], C, T);
            prev = C;
            if (p->up_cross_attn[i]) count_transformer(&f, p, B, (double)h * w, C, Lc);
        }
        if (i < n - 1) {
            h *= 2;
            w *= 2;
            count_conv(&f, B, (double)h * w, C, C, 3); /* upsampler conv at 2h x 2w */
        }
    }
    count_conv(&f, B, (double)h * w, p->out_channels, C0, 3); /* conv_out */
    return f;
}

/* --- the random model on disk ---------------------------------------------------------- */

static void json_int_list(GString *s, const char *key, const int *v, int n) {
    g_string_append_printf(s, "  \"%s\": [", key);
    for (int i = 0; i < n; i++) g_string_append_printf(s, "%s%d", i ? ", " : "", v[i]);
    g_string_append(s, "],\n");
}

/* diffusers config.json of the configuration (what tools/sdref reads). */
static bool write_config_json(const char *path, const sd_unet_config *p) {
    GString *s = g_string_new("{\n  \"_class_name\": \"UNet2DConditionModel\",\n");
    g_string_append_printf(s, "  \"in_channels\": %d,\n  \"out_channels\": %d,\n", p->in_channels, p->out_channels);
    json_int_list(s, "block_out_channels", p->block_out_channels, p->n_levels);
    json_int_list(s, "attention_head_dim", p->heads, p->n_levels);
    g_string_append(s, "  \"down_block_types\": [");
    for (int i = 0; i < p->n_levels; i++)
        g_string_append_printf(s, "%s\"%s\"", i ? ", " : "",
                               p->down_cross_attn[i] ? "CrossAttnDownBlock2D" : "DownBlock2D");
    g_string_append(s, "],\n  \"up_block_types\": [");
    for (int i = 0; i < p->n_levels; i++)
        g_string_append_printf(s, "%s\"%s\"", i ? ", " : "", p->up_cross_attn[i] ? "CrossAttnUpBlock2D" : "UpBlock2D");
    g_string_append(s, "],\n  \"mid_block_type\": \"UNetMidBlock2DCrossAttn\",\n");
    g_string_append_printf(s, "  \"layers_per_block\": %d,\n  \"cross_attention_dim\": %d,\n", p->layers_per_block,
                           p->cross_attention_dim);
    g_string_append_printf(s, "  \"norm_num_groups\": %d,\n  \"norm_eps\": %.9g,\n", p->norm_num_groups,
                           (double)p->norm_eps);
    g_string_append_printf(s, "  \"use_linear_projection\": %s,\n  \"flip_sin_to_cos\": %s,\n",
                           p->use_linear_projection ? "true" : "false", p->flip_sin_to_cos ? "true" : "false");
    g_string_append_printf(s, "  \"freq_shift\": %.9g,\n  \"downsample_padding\": %d,\n", (double)p->freq_shift,
                           p->downsample_padding);
    if (p->time_cond_proj_dim > 0) g_string_append_printf(s, "  \"time_cond_proj_dim\": %d,\n", p->time_cond_proj_dim);
    else g_string_append(s, "  \"time_cond_proj_dim\": null,\n");
    g_string_append_printf(s, "  \"sample_size\": %d\n}\n", p->sample_size);
    bool ok = g_file_set_contents(path, s->str, (gssize)s->len, NULL);
    g_string_free(s, TRUE);
    return ok;
}

/* --- per-op profile (CPU backend) ------------------------------------------------------------- */

/* The engine's per-op table (ie_backend_profile_begin/end), by time, descending. */
static void profile_print(const ie_op_stats *st, int n, int size, double total) {
    int order[IE_OP_KINDS];
    if (n > IE_OP_KINDS) n = IE_OP_KINDS;
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (st[order[j]].seconds > st[order[i]].seconds) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    printf("\nprofile, cpu, %dx%d: %.2f s in one evaluation\n", size, size, total);
    printf("  %-20s %6s %9s %6s %10s\n", "op", "calls", "seconds", "share", "GFLOP/s");
    for (int i = 0; i < n; i++) {
        const ie_op_stats *e = &st[order[i]];
        if (!e->calls) continue;
        printf("  %-20s %6ld %9.3f %5.1f%%", e->name, e->calls, e->seconds, 100.0 * e->seconds / total);
        if (e->flops > 0) printf(" %10.1f", e->flops / e->seconds * 1e-9);
        printf("\n");
    }
}

/* --- one backend ----------------------------------------------------------------------------- */

typedef struct opts {
    int sizes[MAX_SIZES], nsizes;
    bool sizes_given;
    int batch, reps, torch_reps, threads, device;
    uint64_t seed;
    bool cpu, vulkan, torch, profile, fp32;
    const char *model, *python;
} opts;

typedef struct result {
    bool ran;
    double best, first;
    char skipped[160]; /* why it did not run */
} result;

typedef struct backend_run {
    const char *label; /* "cpu" / "vulkan" */
    char desc[320];
    result r[MAX_SIZES];
    double load_secs;
    uint64_t weight_bytes, act_bytes, peak_bytes, io_bytes; /* at the largest size run */
    double rss_mib; /* process resident set after that evaluation (Linux), or 0 */
    int mem_size;
} backend_run;

typedef struct bench {
    opts o;
    char dir[256];            /* temporary folder */
    char model_path[512];     /* what the C loader opens */
    char torch_weights[1024]; /* "" = random on the torch side */
    sd_unet_config cfg;
    double params;
} bench;

static void path_join(char *out, size_t n, const char *dir, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* Inputs for one size, the same for every backend and for PyTorch:
 * x [B, Cin, s/8, s/8] ~ N(0, 1); written as x_<size>.npy. */
static float *make_input(const bench *b, int size, int64_t shape[4]) {
    shape[0] = b->o.batch;
    shape[1] = b->cfg.in_channels;
    shape[2] = shape[3] = size / 8;
    size_t n = (size_t)(shape[0] * shape[1] * shape[2] * shape[3]);
    float *x = malloc(n * sizeof *x);
    uint64_t s = b->o.seed * 1000 + (uint64_t)size;
    for (size_t i = 0; x && i < n; i++) x[i] = bench_rng_normal(&s);
    return x;
}

/* The process's resident set now (Linux /proc/self/statm), MiB; 0 when unknown. */
static double rss_mib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long long size, resident;
    int n = f ? fscanf(f, "%lld %lld", &size, &resident) : 0;
    if (f) fclose(f);
    return n == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) / MIB : 0;
}

/* reps: timed evaluations after the warm-up; 0 reports the warm-up itself. */
static bool run_backend(bench *b, ie_backend *be, backend_run *br, int reps) {
    const opts *o = &b->o;
    char err[2048];
    snprintf(br->desc, sizeof br->desc, "%s", ie_backend_description(be));
    uint64_t use0;
    ie_backend_memory(be, &use0, NULL);
    double t0 = now();
    sd_weights *w = NULL;
    unet *u = NULL;
    ie_status s = sd_weights_open(b->model_path, &w, err, sizeof err);
    if (!s) s = unet_load(be, w, &b->cfg, o->fp32 ? SD_WTYPE_F32 : SD_WTYPE_AUTO, &u, err, sizeof err);
    sd_weights_close(w);
    if (s) {
        printf("%s: cannot load the UNet: %s\n", br->label, err);
        return false;
    }
    br->load_secs = now() - t0;
    uint64_t use1;
    ie_backend_memory(be, &use1, NULL);
    br->weight_bytes = use1 - use0;
    printf("%s: %s; UNet weights %.0f MiB (%s), loaded in %.1f s\n", br->label, br->desc, br->weight_bytes / MIB,
           sd_wtype_name(o->fp32 ? SD_WTYPE_F32 : SD_WTYPE_AUTO), br->load_secs);
    fflush(stdout);

    /* the same context for every size: [B, 77, D] ~ N(0, 1); timesteps 981 (a CFG pair) */
    int64_t cs[3] = {o->batch, CONTEXT_LEN, b->cfg.cross_attention_dim};
    size_t nc = (size_t)(cs[0] * cs[1] * cs[2]);
    float *ctxh = malloc(nc * sizeof *ctxh), *t = malloc(sizeof(float) * (size_t)o->batch);
    uint64_t sd = o->seed * 1000 + 1;
    for (size_t i = 0; ctxh && i < nc; i++) ctxh[i] = bench_rng_normal(&sd);
    for (int i = 0; t && i < o->batch; i++) t[i] = 981.0f;
    ie_tensor *ctx = ie_tensor_new(be, IE_F32, 3, cs);
    s = ctxh && t && ctx ? ie_tensor_upload_f32(ctx, ctxh) : IE_ERR_NOMEM;

    for (int si = 0; !s && si < o->nsizes; si++) {
        result *r = &br->r[si];
        if (r->skipped[0]) {
            printf("%s %dx%d: skipped (%s)\n", br->label, o->sizes[si], o->sizes[si], r->skipped);
            fflush(stdout);
            continue;
        }
        int size = o->sizes[si];
        int64_t xs[4];
        float *xh = make_input(b, size, xs);
        int64_t os[4] = {xs[0], b->cfg.out_channels, xs[2], xs[3]};
        ie_tensor *x = ie_tensor_new(be, IE_F32, 4, xs), *out = ie_tensor_new(be, IE_F32, 4, os);
        ie_status st = xh && x && out ? ie_tensor_upload_f32(x, xh) : IE_ERR_NOMEM;
        ie_backend_reset_peak(be);
        /* warm-up: plans and allocates the activation buffers at this size */
        double t1 = now();
        if (!st) st = unet_forward(u, out, x, t, ctx, NULL);
        if (!st) st = ie_backend_sync(be);
        r->first = now() - t1;
        if (!st && !br->mem_size) { /* the largest size: the clean peak */
            uint64_t peak;
            ie_backend_memory(be, NULL, &peak);
            br->mem_size = size;
            br->peak_bytes = peak - use0;
            br->io_bytes = ie_tensor_nbytes(x) + ie_tensor_nbytes(out) + ie_tensor_nbytes(ctx);
            br->act_bytes = unet_activation_bytes(u);
            br->rss_mib = rss_mib();
        }
        r->best = r->first;
        for (int rep = 0; !st && rep < reps; rep++) {
            t1 = now();
            st = unet_forward(u, out, x, t, ctx, NULL);
            if (!st) st = ie_backend_sync(be);
            double dt = now() - t1;
            if (rep == 0 || dt < r->best) r->best = dt;
        }
        if (st) {
            printf("%s %dx%d: failed: %s %s\n", br->label, size, size, ie_status_name(st),
                   u->err[0] ? u->err : ie_backend_errmsg(be));
            snprintf(r->skipped, sizeof r->skipped, "failed: %s", ie_status_name(st));
        } else {
            r->ran = true;
            if (reps)
                printf("%s %dx%d batch %d: best %.3f s of %d (first %.3f s)\n", br->label, size, size, o->batch,
                       r->best, reps, r->first);
            else printf("%s %dx%d batch %d: %.3f s (one evaluation)\n", br->label, size, size, o->batch, r->best);
            /* the output, for the comparisons */
            size_t n = (size_t)ie_tensor_numel(out);
            float *oh = malloc(n * sizeof *oh);
            char path[512], name[64];
            snprintf(name, sizeof name, "%s_out_%d.npy", br->label, size);
            path_join(path, sizeof path, b->dir, name);
            if (oh && !ie_tensor_download_f32(out, oh)) npy_write_f32(path, oh, 4, os, err, sizeof err);
            free(oh);
            if (o->profile && ie_backend_kind_of(be) == IE_BACKEND_CPU) {
                ie_op_stats prof[IE_OP_KINDS];
                ie_backend_profile_begin(be);
                t1 = now();
                st = unet_forward(u, out, x, t, ctx, NULL);
                double total = now() - t1;
                int np = ie_backend_profile_end(be, prof, IE_OP_KINDS);
                if (!st) profile_print(prof, np, size, total);
            }
        }
        fflush(stdout);
        ie_tensor_free(x);
        ie_tensor_free(out);
        free(xh);
    }
    ie_tensor_free(ctx);
    free(ctxh);
    free(t);
    unet_free(u);
    return true;
}

/* --- PyTorch ------------------------------------------------------------------------------------ */

/* 'text' quoted for sh */
static void shell_quote(GString *s, const char *text) {
    g_string_append_c(s, '\'');
    for (const char *p = text; *p; p++) {
        if (*p == '\'') g_string_append(s, "'\\''");
        else g_string_append_c(s, *p);
    }
    g_string_append_c(s, '\'');
}

static void run_torch(bench *b, int threads, result *tr) {
    const opts *o = &b->o;
    char cfg[512], sizes[128] = "";
    path_join(cfg, sizeof cfg, b->dir, "unet/config.json");
    for (int i = 0; i < o->nsizes; i++) {
        size_t l = strlen(sizes);
        snprintf(sizes + l, sizeof sizes - l, "%s%d", i ? "," : "", o->sizes[i]);
    }
    GString *cmd = g_string_new("");
    g_string_append_printf(cmd, "OMP_NUM_THREADS=%d OPENBLAS_NUM_THREADS=%d MKL_NUM_THREADS=%d ", threads, threads,
                           threads);
    shell_quote(cmd, o->python);
    g_string_append_c(cmd, ' ');
    shell_quote(cmd, BENCH_TORCH_SCRIPT);
    g_string_append(cmd, " --config ");
    shell_quote(cmd, cfg);
    if (b->torch_weights[0]) {
        g_string_append(cmd, " --weights ");
        shell_quote(cmd, b->torch_weights);
    }
    g_string_append(cmd, " --inputs ");
    shell_quote(cmd, b->dir);
    g_string_append(cmd, " --out ");
    shell_quote(cmd, b->dir);
    g_string_append_printf(cmd, " --sizes %s --threads %d --reps %d", sizes, threads, o->torch_reps);
    printf("torch: %s\n", cmd->str);
    fflush(stdout);
    FILE *p = popen(cmd->str, "r");
    g_string_free(cmd, TRUE);
    if (!p) {
        printf("torch: cannot start: %s\n", strerror(errno));
        return;
    }
    char line[1024];
    while (fgets(line, sizeof line, p)) {
        int size;
        double best, first;
        if (sscanf(line, "RESULT size=%d best=%lf first=%lf", &size, &best, &first) == 3) {
            for (int i = 0; i < o->nsizes; i++)
                if (o->sizes[i] == size) {
                    tr[i].ran = true;
                    tr[i].best = best;
                    tr[i].first = first;
                    printf("torch %dx%d batch %d: best %.3f s of %d (first %.3f s)\n", size, size, o->batch, best,
                           o->torch_reps, first);
                }
        } else {
            printf("torch: %s", line);
        }
        fflush(stdout);
    }
    int rc = pclose(p);
    if (rc) printf("torch: exited with status %d\n", rc);
}

/* max |a - b| / max |b| of two outputs in the temporary folder; <0 when either is absent. */
static double compare_outputs(const bench *b, const char *a, const char *ref, int size) {
    char pa[512], pb[512], na[64], nb[64], err[512];
    snprintf(na, sizeof na, "%s_out_%d.npy", a, size);
    snprintf(nb, sizeof nb, "%s_out_%d.npy", ref, size);
    path_join(pa, sizeof pa, b->dir, na);
    path_join(pb, sizeof pb, b->dir, nb);
    if (access(pa, R_OK) || access(pb, R_OK)) return -1;
    int64_t sa[NPY_MAX_DIMS], sb[NPY_MAX_DIMS];
    int da, db;
    float *x = npy_load_f32(pa, &da, sa, err, sizeof err), *y = npy_load_f32(pb, &db, sb, err, sizeof err);
    double rel = -1;
    if (x && y && da == db && !memcmp(sa, sb, sizeof(int64_t) * (size_t)da)) {
        int64_t n = 1;
        for (int i = 0; i < da; i++) n *= sa[i];
        double md = 0, mr = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = fabs((double)x[i] - y[i]);
            if (!(d <= md)) md = d;
            if (fabs(y[i]) > mr) mr = fabs(y[i]);
        }
        rel = md / (mr > 0 ? mr : 1);
    }
    free(x);
    free(y);
    return rel;
}

/* --- the temporary folder ------------------------------------------------------------------------ */

/* Every path the run may create, removed at the end or on SIGINT/SIGTERM
 * (unlink and rmdir are async-signal-safe). Folders last. */
#define MAX_TMP_PATHS (8 + 4 * MAX_SIZES)
static char tmp_paths[MAX_TMP_PATHS][600];
static int n_tmp_paths;

static void tmp_add(const char *dir, const char *name) {
    if (n_tmp_paths < MAX_TMP_PATHS) path_join(tmp_paths[n_tmp_paths++], sizeof tmp_paths[0], dir, name);
}

static void tmp_remove(void) {
    for (int i = 0; i < n_tmp_paths; i++)
        if (unlink(tmp_paths[i]) != 0) rmdir(tmp_paths[i]);
}

static void on_signal(int sig) {
    tmp_remove();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void tmp_register(const bench *b) {
    static const char *files[] = {"unet/diffusion_pytorch_model.safetensors", "unet/config.json", "ctx.npy", "t.npy"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) tmp_add(b->dir, files[i]);
    for (int i = 0; i < b->o.nsizes; i++) {
        static const char *pat[] = {"x_%d.npy", "cpu_out_%d.npy", "vulkan_out_%d.npy", "torch_out_%d.npy"};
        for (int k = 0; k < 4; k++) {
            char name[64];
            snprintf(name, sizeof name, pat[k], b->o.sizes[i]);
            tmp_add(b->dir, name);
        }
    }
    tmp_add(b->dir, "unet");
    tmp_add(b->dir, "");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
}

/* Everything after the temporary folder exists; returns the exit status. */
static int run(bench *bp, ie_backend *cpu) {
    bench b = *bp;
    opts *o = &b.o;
    const int threads = o->threads; /* the CPU backend's (set in main) */
    char unetdir[600], path[1024], err[2048];
    path_join(unetdir, sizeof unetdir, b.dir, "unet");
    mkdir(unetdir, 0700);

    const char *model_label = "SD 1.5 UNet configuration, random weights";
    if (o->model) {
        sd_weights *w = NULL;
        sd_model_config mc;
        ie_status s = sd_weights_open(o->model, &w, err, sizeof err);
        if (!s) s = sd_model_config_load(w, &mc, err, sizeof err);
        if (!s && !mc.has[SD_UNET]) s = IE_ERR_FORMAT, snprintf(err, sizeof err, "no UNet in %s", o->model);
        if (s) {
            fprintf(stderr, "bench-networks: %s\n", err);
            return 3;
        }
        b.cfg = mc.unet;
        snprintf(b.model_path, sizeof b.model_path, "%s", o->model);
        if (sd_weights_layout(w) == SD_LAYOUT_DIFFUSERS && sd_weights_file(w, SD_UNET))
            snprintf(b.torch_weights, sizeof b.torch_weights, "%s", sd_weights_file(w, SD_UNET));
        sd_weights_close(w);
        model_label = o->model;
    } else {
        sd_unet_config_default(&b.cfg);
        path_join(path, sizeof path, unetdir, "diffusion_pytorch_model.safetensors");
        double t0 = now();
        sd_model_config mc;
        memset(&mc, 0, sizeof mc);
        mc.unet = b.cfg;
        mc.has[SD_UNET] = true;
        if (!bench_write_random(path, &mc, SD_UNET, o->seed, &b.params)) {
            fprintf(stderr, "bench-networks: cannot write %s: %s\n", path, strerror(errno));
            return 1;
        }
        printf("random weights (seed %llu): %.1f M parameters written as F16 to %s in %.1f s\n",
               (unsigned long long)o->seed, b.params / 1e6, path, now() - t0);
        snprintf(b.model_path, sizeof b.model_path, "%s", b.dir);
        snprintf(b.torch_weights, sizeof b.torch_weights, "%s", path);
    }
    path_join(path, sizeof path, unetdir, "config.json");
    write_config_json(path, &b.cfg);

    /* inputs for PyTorch (the C side makes the same arrays in memory) */
    {
        int64_t cs[3] = {o->batch, CONTEXT_LEN, b.cfg.cross_attention_dim}, ts[1] = {o->batch};
        size_t nc = (size_t)(cs[0] * cs[1] * cs[2]);
        float *ctxh = malloc(nc * sizeof *ctxh), *t = malloc(sizeof(float) * (size_t)o->batch);
        uint64_t sd = o->seed * 1000 + 1;
        for (size_t i = 0; ctxh && i < nc; i++) ctxh[i] = bench_rng_normal(&sd);
        for (int i = 0; t && i < o->batch; i++) t[i] = 981.0f;
        path_join(path, sizeof path, b.dir, "ctx.npy");
        if (ctxh) npy_write_f32(path, ctxh, 3, cs, err, sizeof err);
        path_join(path, sizeof path, b.dir, "t.npy");
        if (t) npy_write_f32(path, t, 1, ts, err, sizeof err);
        free(ctxh);
        free(t);
        for (int i = 0; i < o->nsizes; i++) {
            int64_t xs[4];
            float *x = make_input(&b, o->sizes[i], xs);
            char name[64];
            snprintf(name, sizeof name, "x_%d.npy", o->sizes[i]);
            path_join(path, sizeof path, b.dir, name);
            if (x) npy_write_f32(path, x, 4, xs, err, sizeof err);
            free(x);
        }
    }

    /* the compute budget */
    flops fl[MAX_SIZES];
    printf("\nmodel: %s; batch %d, context %d x %d\n", model_label, o->batch, CONTEXT_LEN, b.cfg.cross_attention_dim);
    flops f512 = count_unet(&b.cfg, 1, 64, 64, CONTEXT_LEN);
    printf("FLOPs counted from the configuration: 512x512 batch 1 = %.1f GFLOP (conv %.1f, linear %.1f, "
           "attention %.1f; docs/engine.md: 803.3)\n",
           flops_total(&f512) * 1e-9, f512.conv * 1e-9, f512.linear * 1e-9, f512.attn * 1e-9);
    for (int i = 0; i < o->nsizes; i++) {
        int l = o->sizes[i] / 8;
        fl[i] = count_unet(&b.cfg, o->batch, l, l, CONTEXT_LEN);
        printf("  %4dx%-4d batch %d: %8.1f GFLOP (conv %.1f, linear %.1f, attention %.1f)\n", o->sizes[i], o->sizes[i],
               o->batch, flops_total(&fl[i]) * 1e-9, fl[i].conv * 1e-9, fl[i].linear * 1e-9, fl[i].attn * 1e-9);
    }
    printf("\n");
    fflush(stdout);

    backend_run runs[2];
    memset(runs, 0, sizeof runs);
    runs[0].label = "cpu";
    runs[1].label = "vulkan";
    bool have[2] = {false, false};
    if (o->cpu) {
        have[0] = run_backend(&b, cpu, &runs[0], o->reps);
        printf("\n");
    } else {
        for (int i = 0; i < o->nsizes; i++) snprintf(runs[0].r[i].skipped, sizeof runs[0].r[i].skipped, "--backends");
    }
    ie_backend_free(cpu);
    if (o->vulkan) {
        ie_backend *vk = ie_backend_vulkan_new(o->device, err, sizeof err);
        if (!vk) {
            printf("vulkan: unavailable (%s)\n", err);
            for (int i = 0; i < o->nsizes; i++)
                snprintf(runs[1].r[i].skipped, sizeof runs[1].r[i].skipped, "no Vulkan device");
        } else {
            /* the device used: --device, else the preferred one (a GPU when there is one) */
            ie_device_info devs[16];
            int nd = ie_vulkan_list_devices(devs, 16, err, sizeof err);
            if (nd > 16) nd = 16;
            int used = o->device >= 0 ? o->device : ie_vulkan_preferred_device(devs, nd, false);
            bool cpu_device = false;
            for (int i = 0; i < nd; i++)
                if (devs[i].index == used) cpu_device = devs[i].type == IE_DEVICE_CPU;
            /* lavapipe runs the shaders ~100x slower than the CPU backend: by default only the
             * smallest size, its one (warm-up) evaluation */
            if (cpu_device && !o->sizes_given)
                for (int i = 0; i < o->nsizes - 1; i++) /* all but the smallest */
                    snprintf(runs[1].r[i].skipped, sizeof runs[1].r[i].skipped,
                             "a CPU Vulkan device (lavapipe): only the smallest size, once, unless --sizes is given");
            have[1] = run_backend(&b, vk, &runs[1], cpu_device && !o->sizes_given ? 0 : o->reps);
            ie_backend_free(vk);
            printf("\n");
        }
    } else {
        for (int i = 0; i < o->nsizes; i++) snprintf(runs[1].r[i].skipped, sizeof runs[1].r[i].skipped, "--backends");
    }

    result tr[MAX_SIZES];
    memset(tr, 0, sizeof tr);
    if (o->torch) run_torch(&b, threads, tr);

    /* --- the table ----------------------------------------------------------------------------- */
    printf("\n=== SD 1.5 UNet, one evaluation, batch %d, context %d (best of %d; torch best of %d) ===\n", o->batch,
           CONTEXT_LEN, o->reps, o->torch_reps);
    printf("model: %s\n", model_label);
    if (have[0]) printf("cpu:    %s\n", runs[0].desc);
    if (have[1]) printf("vulkan: %s\n", runs[1].desc);
    if (o->torch) printf("torch:  PyTorch CPU, %d threads (tools/sdref UNet, fp32, no_grad)\n", threads);
    printf("\n%-9s %8s | %9s %7s | %9s %7s | %9s %7s | %9s\n", "size", "GFLOP", "cpu s", "GF/s", "vulkan s", "GF/s",
           "torch s", "GF/s", "cpu/torch");
    for (int i = 0; i < o->nsizes; i++) {
        double g = flops_total(&fl[i]);
        printf("%4dx%-4d %8.1f |", o->sizes[i], o->sizes[i], g * 1e-9);
        const result *rs[3] = {&runs[0].r[i], &runs[1].r[i], &tr[i]};
        for (int k = 0; k < 3; k++) {
            if (rs[k]->ran) printf(" %9.3f %7.1f |", rs[k]->best, g / rs[k]->best * 1e-9);
            else printf(" %9s %7s |", "-", "");
        }
        if (rs[0]->ran && rs[2]->ran) printf(" %9.2f", rs[0]->best / rs[2]->best);
        printf("\n");
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < o->nsizes; i++)
            if (!runs[k].r[i].ran && runs[k].r[i].skipped[0] && strcmp(runs[k].r[i].skipped, "--backends"))
                printf("  %s %dx%d not run: %s\n", runs[k].label, o->sizes[i], o->sizes[i], runs[k].r[i].skipped);
    if (o->torch)
        for (int i = 0; i < o->nsizes; i++)
            if (!tr[i].ran) printf("  torch %dx%d not run (see the torch: lines above)\n", o->sizes[i], o->sizes[i]);

    printf("\npeak device memory (ie_backend_memory) of the first evaluation at the largest size run:\n");
    for (int k = 0; k < 2; k++) {
        const backend_run *br = &runs[k];
        if (!have[k] || !br->mem_size) continue;
        double act = (double)br->peak_bytes - (double)br->weight_bytes - (double)br->io_bytes;
        printf("  %-6s %dx%d batch %d: weights %.0f MiB + activations %.0f MiB (of which slabs %.0f MiB) + "
               "inputs/outputs %.1f MiB = peak %.0f MiB\n",
               br->label, br->mem_size, br->mem_size, o->batch, br->weight_bytes / MIB, act / MIB, br->act_bytes / MIB,
               br->io_bytes / MIB, br->peak_bytes / MIB);
        if (br->rss_mib > 0)
            printf("         (process resident set after it: %.0f MiB%s)\n", br->rss_mib,
                   k == 0 ? "; includes the CPU backend's scratch, which ie_backend_memory does not count"
                          : "; lavapipe's device memory is host memory");
    }

    printf("\noutputs compared (max |a - b| / max |b|):\n");
    for (int i = 0; i < o->nsizes; i++) {
        double r1 = compare_outputs(&b, "cpu", "torch", o->sizes[i]);
        double r2 = compare_outputs(&b, "vulkan", "cpu", o->sizes[i]);
        if (r1 >= 0)
            printf("  %dx%d cpu vs torch:  %.2e%s\n", o->sizes[i], o->sizes[i], r1,
                   b.torch_weights[0] ? "" : " (torch has its own random weights: not comparable)");
        if (r2 >= 0) printf("  %dx%d vulkan vs cpu: %.2e\n", o->sizes[i], o->sizes[i], r2);
    }

    return 0;
}

/* --- main ------------------------------------------------------------------------------------------ */

static void usage(FILE *f) {
    fprintf(f, "usage: bench-networks [--sizes 256,512] [--batch 2] [--backends cpu,vulkan] [--device N]\n"
               "                      [--reps 2] [--threads N] [--model PATH] [--seed N] [--fp32]\n"
               "                      [--no-torch] [--torch-reps N] [--python PATH] [--profile] [--quick]\n\n"
               "Seconds per SD 1.5 UNet evaluation (random weights unless --model) per backend and image size,\n"
               "GFLOP/s against the FLOPs counted from the configuration, peak device memory, and PyTorch CPU\n"
               "(bench/torch_unet.py) on the same weights and inputs. See the top of bench/networks.c.\n\n"
               "  --sizes LIST     image sizes in pixels (latent = size/8), default 256,512\n"
               "  --batch N        UNet batch (CFG: 2)\n"
               "  --backends LIST  cpu, vulkan or both (default)\n"
               "  --device N       Vulkan device index (default: the preferred one)\n"
               "  --reps N         timed evaluations after the warm-up; the best is reported (default 2;\n"
               "                   0: report the warm-up evaluation itself, for slow devices)\n"
               "  --threads N      CPU backend and PyTorch threads (default: OpenBLAS's)\n"
               "  --model PATH     time this checkpoint instead of random weights\n"
               "  --seed N         weights and inputs (default 0)\n"
               "  --fp32           fp32 weights on Vulkan too (default fp16 there)\n"
               "  --no-torch       skip PyTorch\n"
               "  --torch-reps N   PyTorch timed evaluations (default: --reps)\n"
               "  --python PATH    the Python with torch (default /usr/bin/python3)\n"
               "  --profile        per-op times of one more CPU evaluation per size\n"
               "  --quick          256 only, 1 rep\n");
}

static bool parse_sizes(const char *s, opts *o) {
    o->nsizes = 0;
    char *end;
    while (*s) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 64 || v > 4096 || v % 64 || o->nsizes == MAX_SIZES) return false;
        o->sizes[o->nsizes++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return false;
    }
    return o->nsizes > 0;
}

int main(int argc, char **argv) {
    bench b;
    memset(&b, 0, sizeof b);
    opts *o = &b.o;
    o->sizes[0] = 256;
    o->sizes[1] = 512;
    o->nsizes = 2;
    o->batch = 2;
    o->reps = 2;
    o->torch_reps = -1;
    o->device = -1;
    o->cpu = o->vulkan = o->torch = true;
    o->python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quick")) quick = true;
        else if (!strcmp(a, "--no-torch")) o->torch = false;
        else if (!strcmp(a, "--profile")) o->profile = true;
        else if (!strcmp(a, "--fp32")) o->fp32 = true;
        else if (!v) ok = false;
        else if (!strcmp(a, "--sizes")) {
            ok = parse_sizes(argv[++i], o);
            o->sizes_given = true;
        } else if (!strcmp(a, "--batch")) ok = (o->batch = atoi(argv[++i])) >= 1;
        else if (!strcmp(a, "--reps")) ok = (o->reps = atoi(argv[++i])) >= 0;
        else if (!strcmp(a, "--torch-reps")) ok = (o->torch_reps = atoi(argv[++i])) >= 1;
        else if (!strcmp(a, "--threads")) ok = (o->threads = atoi(argv[++i])) >= 1;
        else if (!strcmp(a, "--device")) o->device = atoi(argv[++i]);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--model")) o->model = argv[++i];
        else if (!strcmp(a, "--python")) o->python = argv[++i];
        else if (!strcmp(a, "--backends")) {
            v = argv[++i];
            o->cpu = strstr(v, "cpu") != NULL;
            o->vulkan = strstr(v, "vulkan") != NULL;
            ok = o->cpu || o->vulkan;
        } else ok = false;
        if (!ok) {
            fprintf(stderr, "bench-networks: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (quick) {
        if (!o->sizes_given) o->sizes[0] = 256, o->nsizes = 1;
        o->reps = 1;
    }
    if (o->torch_reps < 0) o->torch_reps = o->reps;
    /* largest first: its first evaluation gives the clean memory peak */
    for (int i = 0; i < o->nsizes; i++)
        for (int j = i + 1; j < o->nsizes; j++)
            if (o->sizes[j] > o->sizes[i]) {
                int t = o->sizes[i];
                o->sizes[i] = o->sizes[j];
                o->sizes[j] = t;
            }

    /* the CPU backend first: its thread count is the one PyTorch gets */
    if (o->threads < 1) o->threads = openblas_get_num_threads(); /* before the backend makes OpenBLAS serial */
    ie_backend *cpu = ie_backend_cpu_new(o->threads);

    /* $TMPDIR, else /dev/shm when it has room (the 1.7 GB of weights stay in RAM), else /tmp */
    const char *tmp = getenv("TMPDIR");
    struct statvfs vfs;
    if (!tmp || !*tmp)
        tmp = statvfs("/dev/shm", &vfs) == 0 && (double)vfs.f_bavail * (double)vfs.f_frsize > 4e9 ? "/dev/shm" : "/tmp";
    snprintf(b.dir, sizeof b.dir, "%s/invedit-bench-XXXXXX", tmp);
    if (!mkdtemp(b.dir)) {
        fprintf(stderr, "bench-networks: cannot create a temporary folder: %s\n", strerror(errno));
        return 1;
    }
    tmp_register(&b);
    int rc = run(&b, cpu);
    tmp_remove();
    return rc;
}
