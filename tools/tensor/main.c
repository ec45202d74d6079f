/* invedit-tensor: run one network on NumPy arrays, for comparing a checkpoint
 * with another implementation (diffusers, ComfyUI, ...) by hand. A developer
 * harness on the library's internals (the networks, the .npy reader): built
 * with the tree, not installed; the shipped CLI uses only the public API.
 *
 *   invedit-tensor tokenize    --model M --text T [-o ids.npy]          ids [1, 77] i32 (printed too)
 *   invedit-tensor text-encode --model M (--ids ids.npy | --text T) -o h.npy      [B, L, D]
 *   invedit-tensor unet        --model M --sample x.npy (--timestep t.npy | --t 981)
 *                              --context ctx.npy [--timestep-cond w.npy] -o eps.npy
 *   invedit-tensor vae-encode  --model M --image img.npy [--sample [--seed N] | --noise n.npy] -o z.npy
 *   invedit-tensor vae-decode  --model M --latent z.npy -o img.npy
 *
 * Arrays are NCHW / [B, L, C] float32 as diffusers holds them (inputs may be
 * any float or integer .npy; they are converted). Latents are in UNet space
 * (scaled by the VAE's scaling_factor), images in [-1, 1]. Only the asked
 * network is loaded. Every command takes --device and --fp32 and exits with
 * the CLI's exit codes (0 ok, 2 usage, 3 bad input or model, 4 device).
 */
#include <invedit.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "model/npy.h"
#include "inversion/rng.h"
#include "model/sd.h"
#include "cli/exit_code.h"

/* --- the commands and their options ----------------------------------------------- */

enum {
    TC_TOKENIZE = 1 << 0,
    TC_TEXT = 1 << 1,
    TC_UNET = 1 << 2,
    TC_VAE_ENC = 1 << 3,
    TC_VAE_DEC = 1 << 4,
    TC_NETS = TC_TEXT | TC_UNET | TC_VAE_ENC | TC_VAE_DEC,
    TC_ALL = TC_TOKENIZE | TC_NETS,
};

typedef struct tensor_cmd {
    const char *name;
    unsigned bit;
    const char *summary, *synopsis, *what;
} tensor_cmd;

static const tensor_cmd commands[] = {
    {"tokenize", TC_TOKENIZE, "prompt -> CLIP token ids [1, 77] (int32)", "--model PATH --text TEXT [-o ids.npy]",
     "CLIP ids of TEXT for the model's tokenizer: BOS, tokens, EOS, EOS padding to 77\n"
     "(int32 [1, 77]); printed on stdout and written to -o when given."},
    {"text-encode", TC_TEXT, "ids or a prompt -> the text encoder's last hidden state",
     "--model PATH (--ids ids.npy | --text TEXT) [--clip-skip N] -o hidden.npy",
     "The text encoder's last hidden state (after final_layer_norm): ids [B, L] (or [L])\n"
     "-> [B, L, hidden_size]."},
    {"unet", TC_UNET, "x_t, timesteps, context (+ LCM w) -> the UNet's output (eps)",
     "--model PATH --sample x.npy (--timestep t.npy | --t T) --context ctx.npy\n"
     "                          [--timestep-cond w.npy] -o eps.npy",
     "One UNet evaluation: sample [B, in_channels, h, w], timesteps [B] (or one value for every\n"
     "row), context [B, Lc, cross_attention_dim] (a batch of 1 is repeated) -> [B, out_channels, h, w].\n"
     "LCM UNets: --timestep-cond holds w [B] (diffusers' LCM pipeline: w = (guidance_scale - 1) * 1000);\n"
     "the guidance embedding (timestep_cond) is computed from it inside, as unet_forward does."},
    {"vae-encode", TC_VAE_ENC, "image in [-1, 1] -> latent (scaled), mean or sampled",
     "--model PATH --image img.npy [--sample [--seed N] | --noise n.npy] -o latent.npy",
     "VAE encoder: image [B, 3, H, W] in [-1, 1] -> latent [B, 4, H/8, W/8] = mean * scaling_factor;\n"
     "with --sample, (mean + exp(logvar/2) * noise) * scaling_factor, the noise N(0, 1) from --seed\n"
     "(invedit's portable generator, not torch.randn) or read from --noise."},
    {"vae-decode", TC_VAE_DEC, "latent (scaled) -> image", "--model PATH --latent latent.npy -o image.npy",
     "VAE decoder: latent [B, 4, h, w] in UNet space (scaled) -> image [B, 3, 8h, 8w], ~[-1, 1], unclamped."},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

typedef enum opt_id {
    O_MODEL,
    O_DEVICE,
    O_FP32,
    O_OUTPUT,
    O_QUIET,
    O_TEXT,
    O_IDS,
    O_CLIP_SKIP,
    O_SAMPLE_NPY,
    O_TIMESTEP,
    O_T,
    O_CONTEXT,
    O_TCOND,
    O_IMAGE,
    O_SAMPLE,
    O_SEED,
    O_NOISE,
    O_LATENT,
    O_VAE,
    O_LORA,
    O_EMA,
    O_COUNT
} opt_id;

typedef struct tensor_opt {
    const char *name; /* the long form, without "--" */
    const char *alt;  /* a short form, or NULL */
    const char *arg;  /* the value's name; NULL = a flag */
    unsigned cmds;    /* the commands that take it */
    const char *help;
} tensor_opt;

/* --sample is a file for unet and a flag for vae-encode: two entries, told apart by cmds. */
static const tensor_opt options[O_COUNT] = {
    [O_MODEL] = {"model", NULL, "PATH", TC_ALL, "diffusers folder or SD 1.x .safetensors (or INVEDIT_MODEL)"},
    [O_DEVICE] = {"device", NULL, "DEV", TC_NETS, "auto, cpu, vulkan or vulkan:N (default: INVEDIT_DEVICE, else auto)"},
    [O_FP32] = {"fp32", NULL, NULL, TC_NETS, "fp32 weights (default: fp16 on Vulkan, fp32 on the CPU backend)"},
    [O_OUTPUT] = {"output", "-o", "FILE", TC_ALL, "the output .npy"},
    [O_QUIET] = {"quiet", "-q", NULL, TC_ALL, "no timing line on stderr"},
    [O_TEXT] = {"text", NULL, "TEXT", TC_TOKENIZE | TC_TEXT, "a prompt (tokenized with the model's tokenizer/)"},
    [O_IDS] = {"ids", NULL, "FILE", TC_TEXT, "token ids [B, L] or [L] (.npy, any integer dtype)"},
    [O_CLIP_SKIP] = {"clip-skip", NULL, "N", TC_TEXT,
                     "1 = last layer (default); N = hidden state -N, then final_layer_norm"},
    [O_SAMPLE_NPY] = {"sample", NULL, "FILE", TC_UNET, "the noisy latent x_t [B, C, h, w]"},
    [O_TIMESTEP] = {"timestep", NULL, "FILE", TC_UNET, "timesteps [B], [1] or a scalar (.npy)"},
    [O_T] = {"t", NULL, "T", TC_UNET, "one timestep for every row"},
    [O_CONTEXT] = {"context", NULL, "FILE", TC_UNET, "encoder_hidden_states [B, Lc, D] (or [Lc, D])"},
    [O_TCOND] = {"timestep-cond", NULL, "FILE", TC_UNET, "LCM guidance inputs w [B] (or a scalar)"},
    [O_IMAGE] = {"image", NULL, "FILE", TC_VAE_ENC, "image [B, 3, H, W] (or [3, H, W]) in [-1, 1]"},
    [O_VAE] = {"vae", NULL, "PATH", TC_VAE_ENC | TC_VAE_DEC, "a separate VAE (.safetensors or diffusers vae folder)"},
    [O_LORA] = {"lora", NULL, "FILE[:SCALE]", TC_TEXT | TC_UNET, "LoRAs merged at load (several: separated by ';')"},
    [O_EMA] = {"ema", NULL, "MODE", TC_UNET, "a checkpoint's EMA copy: auto (default), yes or no"},
    [O_SAMPLE] = {"sample", NULL, NULL, TC_VAE_ENC, "sample the posterior instead of taking its mean"},
    [O_SEED] = {"seed", NULL, "N", TC_VAE_ENC, "noise seed for --sample (default 0)"},
    [O_NOISE] = {"noise", NULL, "FILE", TC_VAE_ENC, "the posterior noise [B, 4, h, w] (implies --sample)"},
    [O_LATENT] = {"latent", NULL, "FILE", TC_VAE_DEC, "latent [B, 4, h, w] (or [4, h, w]) in UNet space"},
};

static const char *exit_help = "exit status: 0 ok, 1 failed while running, 2 bad usage, 3 bad input file or model,\n"
                               "             4 device or memory error\n";

static void cmd_usage(FILE *f, const tensor_cmd *c) {
    fprintf(f, "usage: invedit-tensor %s %s\n\n%s\n\noptions:\n", c->name, c->synopsis, c->what);
    for (int i = 0; i < O_COUNT; i++) {
        const tensor_opt *o = &options[i];
        if (!(o->cmds & c->bit)) continue;
        char lhs[48];
        int n = snprintf(lhs, sizeof lhs, "%s%s--%s", o->alt ? o->alt : "", o->alt ? ", " : "", o->name);
        if (o->arg) snprintf(lhs + n, sizeof lhs - (size_t)n, " %s", o->arg);
        fprintf(f, "  %-24s %s\n", lhs, o->help);
    }
    fprintf(f, "  %-24s %s\n\n%s", "-h, --help", "this help", exit_help);
}

static void tensor_usage(FILE *f) {
    fprintf(f, "usage: invedit-tensor COMMAND --model PATH [options]\n\n"
               "Runs one network of a model on NumPy .npy arrays, for comparing a checkpoint with another\n"
               "implementation (diffusers, ...). Arrays are float32, NCHW / [B, L, C] as diffusers holds them.\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'invedit-tensor COMMAND --help' lists a command's options.\n\n%s", exit_help);
}

typedef struct tensor_args {
    const tensor_cmd *cmd;
    const char *val[O_COUNT]; /* value, or "1" for a given flag; NULL = absent */
} tensor_args;

/* 0, or the exit code after printing why. */
static int parse_args(int argc, char **argv, tensor_args *a) {
    const char *cn = a->cmd->name;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const tensor_opt *hit = NULL;
        int id = -1;
        for (int k = 0; k < O_COUNT && !hit; k++) {
            const tensor_opt *o = &options[k];
            if (!(o->cmds & a->cmd->bit)) continue;
            if ((s[0] == '-' && s[1] == '-' && !strcmp(s + 2, o->name)) || (o->alt && !strcmp(s, o->alt))) {
                hit = o;
                id = k;
            }
        }
        if (!hit) {
            fprintf(stderr, "invedit-tensor %s: %s '%s' (see --help)\n", cn,
                    s[0] == '-' ? "unknown option" : "unexpected argument", s);
            return 2;
        }
        if (!hit->arg) {
            a->val[id] = "1";
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "invedit-tensor %s: %s needs a value (%s)\n", cn, s, hit->arg);
            return 2;
        }
        a->val[id] = argv[++i];
    }
    if (!a->val[O_MODEL]) a->val[O_MODEL] = getenv("INVEDIT_MODEL");
    if (!a->val[O_MODEL]) {
        fprintf(stderr,
                "invedit-tensor %s: --model PATH is required (a diffusers folder or an SD 1.x "
                ".safetensors; or set INVEDIT_MODEL)\n",
                cn);
        return 2;
    }
    return 0;
}

/* Parses a whole decimal integer into *v; false when s is not one. */
static bool parse_long(const char *s, long long lo, long long hi, long long *v) {
    char *end;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || x < lo || x > hi) return false;
    *v = x;
    return true;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* --- arrays ------------------------------------------------------------------------------ */

/* One input array as floats, with its shape. Errors print and return the exit code. */
typedef struct host_array {
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    int64_t numel;
    float *data;
} host_array;

static int read_array(const char *cn, const char *what, const char *path, host_array *h) {
    char err[1024];
    npy_array a;
    ie_status s = npy_read(path, &a, err, sizeof err);
    if (s) {
        fprintf(stderr, "invedit-tensor %s: %s: %s\n", cn, what, err);
        return cli_exit_code(s);
    }
    h->ndim = a.ndim;
    memcpy(h->shape, a.shape, sizeof h->shape);
    h->numel = a.numel;
    h->data = npy_to_f32(&a);
    npy_free(&a);
    if (!h->data && h->numel > 0) {
        fprintf(stderr, "invedit-tensor %s: out of memory reading %s\n", cn, path);
        return cli_exit_code(IE_ERR_NOMEM);
    }
    return 0;
}

static void shape_str(const host_array *h, char *buf, size_t n) {
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < h->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? ", " : "", (long long)h->shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
}

/* Adds a leading batch dimension of 1 when h has want_ndim - 1 dims; then
 * checks the rank. 0 or exit code 3. */
static int want_rank(const char *cn, const char *what, const char *path, host_array *h, int want_ndim) {
    if (h->ndim == want_ndim - 1) {
        memmove(h->shape + 1, h->shape, sizeof(int64_t) * (size_t)h->ndim);
        h->shape[0] = 1;
        h->ndim++;
    }
    if (h->ndim != want_ndim || h->numel == 0) {
        char b[128];
        shape_str(h, b, sizeof b);
        fprintf(stderr, "invedit-tensor %s: %s %s has shape %s; expected %d dimensions%s\n", cn, what, path, b,
                want_ndim, h->numel == 0 ? " and some elements" : "");
        return cli_exit_code(IE_ERR_SHAPE);
    }
    return 0;
}

/* Per-row values (timesteps, w): a scalar or [1] is repeated to B rows; [B] as is. */
static int per_row(const char *cn, const char *what, const char *path, const host_array *h, int64_t B, float **out) {
    if (h->numel != 1 && (h->ndim != 1 || h->numel != B)) {
        char b[128];
        shape_str(h, b, sizeof b);
        fprintf(stderr, "invedit-tensor %s: %s %s has shape %s; expected [%lld], [1] or a scalar\n", cn, what, path, b,
                (long long)B);
        return cli_exit_code(IE_ERR_SHAPE);
    }
    *out = malloc(sizeof(float) * (size_t)B);
    if (!*out) return cli_exit_code(IE_ERR_NOMEM);
    for (int64_t i = 0; i < B; i++) (*out)[i] = h->data[h->numel == 1 ? 0 : i];
    return 0;
}

static ie_tensor *upload(ie_backend *be, int ndim, const int64_t *shape, const float *data, ie_status *st) {
    ie_tensor *t = ie_tensor_new(be, IE_F32, ndim, shape);
    if (!t) {
        *st = IE_ERR_NOMEM;
        return NULL;
    }
    *st = data ? ie_tensor_upload_f32(t, data) : IE_OK;
    if (*st) {
        ie_tensor_free(t);
        return NULL;
    }
    return t;
}

/* Downloads t and writes it to path. 0 or an exit code. */
static int write_output(const char *cn, ie_backend *be, ie_tensor *t, const char *path) {
    char err[1024];
    size_t n = (size_t)ie_tensor_numel(t);
    float *h = malloc(n * sizeof *h);
    ie_status s = h ? ie_tensor_download_f32(t, h) : IE_ERR_NOMEM;
    if (s) {
        fprintf(stderr, "invedit-tensor %s: %s\n", cn, s == IE_ERR_NOMEM ? "out of memory" : ie_backend_errmsg(be));
        free(h);
        return cli_exit_code(s);
    }
    s = npy_write_f32(path, h, t->ndim, t->shape, err, sizeof err);
    free(h);
    if (s) {
        fprintf(stderr, "invedit-tensor %s: %s\n", cn, err);
        return cli_exit_code(s);
    }
    return 0;
}

/* --- tokenize ------------------------------------------------------------------------------ */

/* The tokenizer for --model: PATH/tokenizer, PATH itself when it holds
 * vocab.json, else what the weights' loader finds (a tokenizer/ folder next
 * to a single file). 0 or an exit code. */
static int load_tokenizer(const char *cn, const char *model, clip_tokenizer **tok) {
    char err[1024] = "", dir[4096];
    snprintf(dir, sizeof dir, "%s/tokenizer", model);
    ie_status s;
    if (is_dir(dir)) {
        s = clip_tokenizer_load_dir(dir, tok, err, sizeof err);
    } else {
        snprintf(dir, sizeof dir, "%s/vocab.json", model);
        struct stat st;
        if (stat(dir, &st) == 0) {
            s = clip_tokenizer_load_dir(model, tok, err, sizeof err);
        } else {
            sd_weights *w = NULL;
            sd_model_config cfg;
            s = sd_weights_open(model, &w, err, sizeof err);
            if (!s) s = sd_model_config_load(w, &cfg, err, sizeof err);
            if (!s) s = sd_tokenizer_open(w, &cfg, tok, NULL, 0, err, sizeof err); /* folder or built-in */
            sd_weights_close(w);
        }
    }
    if (s) {
        fprintf(stderr, "invedit-tensor %s: %s\n", cn, err);
        return cli_exit_code(s);
    }
    return 0;
}

static int run_tokenize(tensor_args *a) {
    const char *cn = a->cmd->name, *text = a->val[O_TEXT];
    if (!text) {
        fprintf(stderr, "invedit-tensor tokenize: --text is required\n");
        return 2;
    }
    clip_tokenizer *tok = NULL;
    int code = load_tokenizer(cn, a->val[O_MODEL], &tok);
    if (code) return code;
    int32_t ids[CLIP_CONTEXT_LENGTH];
    bool truncated = false;
    int n = clip_encode(tok, text, ids, CLIP_CONTEXT_LENGTH, &truncated);
    clip_tokenizer_free(tok);
    for (int i = 0; i < CLIP_CONTEXT_LENGTH; i++) printf("%s%d", i ? " " : "", (int)ids[i]);
    printf("\n");
    if (truncated && !a->val[O_QUIET])
        fprintf(stderr, "note: %d tokens; truncated to %d (BOS + %d + EOS)\n", n, CLIP_CONTEXT_LENGTH,
                CLIP_CONTEXT_LENGTH - 2);
    if (a->val[O_OUTPUT]) {
        char err[1024];
        int64_t shape[2] = {1, CLIP_CONTEXT_LENGTH};
        ie_status s = npy_write_i32(a->val[O_OUTPUT], ids, 2, shape, err, sizeof err);
        if (s) {
            fprintf(stderr, "invedit-tensor tokenize: %s\n", err);
            return cli_exit_code(s);
        }
    }
    return 0;
}

/* --- the networks ----------------------------------------------------------------------------- */

typedef struct net_run {
    tensor_args *a;
    const char *cn;
    ie_backend *be;
    sd_model *m;
    double t_load;
} net_run;

/* Opens the backend and loads the asked parts. 0 or an exit code. */
static int open_model(net_run *r, int parts) {
    tensor_args *a = r->a;
    char note[512] = "", err[2048] = "";
    double t0 = now();
    if (a->val[O_DEVICE] && !ie_device_request_valid(a->val[O_DEVICE], err, sizeof err)) {
        fprintf(stderr, "invedit-tensor %s: --device: %s\n", r->cn, err);
        return 2;
    }
    r->be = ie_backend_open(a->val[O_DEVICE], note, sizeof note);
    if (!r->be) {
        fprintf(stderr, "invedit-tensor %s: no backend\n", r->cn);
        return cli_exit_code(IE_ERR_NODEVICE);
    }
    const char *req = a->val[O_DEVICE] ? a->val[O_DEVICE] : getenv("INVEDIT_DEVICE");
    if (req && *req && strcmp(req, "auto") && note[0]) {
        /* an explicit request that could not be honoured: no silent fallback here */
        fprintf(stderr, "invedit-tensor %s: device %s: %s\n", r->cn, req, note);
        return cli_exit_code(IE_ERR_NODEVICE);
    }
    sd_load_options opt = {.wtype = a->val[O_FP32] ? SD_WTYPE_F32 : SD_WTYPE_AUTO,
                           .parts = parts,
                           .vae = a->val[O_VAE],
                           .lora = a->val[O_LORA]};
    if (a->val[O_EMA] && !sd_ema_mode_from_name(a->val[O_EMA], &opt.ema)) {
        fprintf(stderr, "invedit-tensor %s: --ema: auto, yes or no\n", r->cn);
        return 2;
    }
    ie_status s = sd_model_load(r->be, a->val[O_MODEL], &opt, &r->m, err, sizeof err);
    if (s) {
        fprintf(stderr, "invedit-tensor %s: cannot load %s: %s\n", r->cn, a->val[O_MODEL], err);
        return cli_exit_code(s);
    }
    r->t_load = now() - t0;
    if (!a->val[O_QUIET] && note[0]) fprintf(stderr, "note: %s\n", note);
    return 0;
}

static void report(const net_run *r, double secs) {
    if (r->a->val[O_QUIET]) return;
    fprintf(stderr, "%s: %.3f s on %s, %s weights (load %.2f s)\n", r->cn, secs, ie_backend_description(r->be),
            r->a->val[O_FP32] ? "f32" : (ie_backend_kind_of(r->be) == IE_BACKEND_CPU ? "f32" : "f16"), r->t_load);
}

static int net_status(const net_run *r, ie_status s, const char *where) {
    if (!s) s = ie_backend_sync(r->be);
    if (!s) return 0;
    fprintf(stderr, "invedit-tensor %s: %s\n", r->cn, where && where[0] ? where : ie_backend_errmsg(r->be));
    return cli_exit_code(s);
}

static int run_text_encode(net_run *r) {
    tensor_args *a = r->a;
    const char *cn = r->cn;
    if (!!a->val[O_IDS] == !!a->val[O_TEXT]) {
        fprintf(stderr, "invedit-tensor %s: give one of --ids FILE or --text TEXT\n", cn);
        return 2;
    }
    long long skip = 1;
    if (a->val[O_CLIP_SKIP] && !parse_long(a->val[O_CLIP_SKIP], 1, 64, &skip)) {
        fprintf(stderr, "invedit-tensor %s: --clip-skip must be an integer in [1, 64]\n", cn);
        return 2;
    }
    if (!a->val[O_OUTPUT]) {
        fprintf(stderr, "invedit-tensor %s: -o FILE is required\n", cn);
        return 2;
    }
    int32_t *ids = NULL;
    int B = 1, L = CLIP_CONTEXT_LENGTH;
    if (a->val[O_IDS]) {
        char err[1024];
        npy_array arr;
        ie_status s = npy_read(a->val[O_IDS], &arr, err, sizeof err);
        if (s) {
            fprintf(stderr, "invedit-tensor %s: --ids: %s\n", cn, err);
            return cli_exit_code(s);
        }
        if ((arr.ndim != 1 && arr.ndim != 2) || arr.numel == 0) {
            char b[128];
            fprintf(stderr, "invedit-tensor %s: --ids %s has shape %s; expected [B, L] or [L]\n", cn, a->val[O_IDS],
                    npy_shape_str(&arr, b, sizeof b));
            npy_free(&arr);
            return cli_exit_code(IE_ERR_SHAPE);
        }
        B = arr.ndim == 2 ? (int)arr.shape[0] : 1;
        L = (int)arr.shape[arr.ndim - 1];
        ids = npy_to_i32(&arr);
        npy_free(&arr);
        if (!ids) return cli_exit_code(IE_ERR_NOMEM);
    }
    int code = open_model(r, SD_PART_TEXT | (a->val[O_TEXT] ? SD_PART_TOKENIZER : 0));
    if (!code && a->val[O_TEXT]) {
        ids = malloc(sizeof(int32_t) * CLIP_CONTEXT_LENGTH);
        if (!ids) code = cli_exit_code(IE_ERR_NOMEM);
        else clip_encode(r->m->tokenizer, a->val[O_TEXT], ids, CLIP_CONTEXT_LENGTH, NULL);
    }
    if (!code) {
        clip_text_model *te = r->m->text;
        int64_t shape[3] = {B, L, te->config.hidden_size};
        ie_status s;
        ie_tensor *out = upload(r->be, 3, shape, NULL, &s);
        double t0 = now();
        if (!s) s = clip_text_model_forward(te, out, ids, B, L, (int)skip);
        code = net_status(r, s, s && s != IE_ERR_NOMEM ? te->err : NULL);
        double dt = now() - t0;
        if (!code) code = write_output(cn, r->be, out, a->val[O_OUTPUT]);
        if (!code) report(r, dt);
        ie_tensor_free(out);
    }
    free(ids);
    return code;
}

static int run_unet(net_run *r) {
    tensor_args *a = r->a;
    const char *cn = r->cn;
    if (!a->val[O_SAMPLE_NPY] || !a->val[O_CONTEXT] || !a->val[O_OUTPUT]) {
        fprintf(stderr, "invedit-tensor unet: --sample, --context and -o are required (see --help)\n");
        return 2;
    }
    if (!!a->val[O_TIMESTEP] == !!a->val[O_T]) {
        fprintf(stderr, "invedit-tensor unet: give one of --timestep FILE or --t T\n");
        return 2;
    }
    double tval = 0;
    if (a->val[O_T]) {
        char *end;
        tval = strtod(a->val[O_T], &end);
        if (!*a->val[O_T] || *end) {
            fprintf(stderr, "invedit-tensor unet: --t '%s' is not a number\n", a->val[O_T]);
            return 2;
        }
    }
    host_array x = {0}, ctx = {0}, th = {0}, wh = {0};
    float *t = NULL, *w = NULL, *ctxb = NULL;
    ie_tensor *tx = NULL, *tc = NULL, *out = NULL;
    int code = read_array(cn, "--sample", a->val[O_SAMPLE_NPY], &x);
    if (!code) code = want_rank(cn, "--sample", a->val[O_SAMPLE_NPY], &x, 4);
    if (!code) code = read_array(cn, "--context", a->val[O_CONTEXT], &ctx);
    if (!code) code = want_rank(cn, "--context", a->val[O_CONTEXT], &ctx, 3);
    const int64_t B = x.shape[0];
    if (!code && ctx.shape[0] != B && ctx.shape[0] != 1) {
        fprintf(stderr, "invedit-tensor unet: --context has batch %lld, --sample %lld\n", (long long)ctx.shape[0],
                (long long)B);
        code = cli_exit_code(IE_ERR_SHAPE);
    }
    if (!code && a->val[O_TIMESTEP]) {
        code = read_array(cn, "--timestep", a->val[O_TIMESTEP], &th);
        if (!code) code = per_row(cn, "--timestep", a->val[O_TIMESTEP], &th, B, &t);
    } else if (!code) {
        t = malloc(sizeof(float) * (size_t)B);
        if (!t) code = cli_exit_code(IE_ERR_NOMEM);
        for (int64_t i = 0; !code && i < B; i++) t[i] = (float)tval;
    }
    if (!code && a->val[O_TCOND]) {
        code = read_array(cn, "--timestep-cond", a->val[O_TCOND], &wh);
        if (!code) code = per_row(cn, "--timestep-cond", a->val[O_TCOND], &wh, B, &w);
    }
    if (!code) code = open_model(r, SD_PART_UNET);
    if (!code && w && !r->m->config.lcm && !a->val[O_QUIET])
        fprintf(stderr, "note: the UNet has no time_embedding.cond_proj: --timestep-cond is ignored\n");
    if (!code && !w && r->m->config.lcm && !a->val[O_QUIET])
        fprintf(stderr, "note: LCM UNet without --timestep-cond: evaluated without the guidance embedding\n");
    if (!code) {
        unet *u = r->m->unet;
        ie_status s;
        /* a context of batch 1 is repeated for every row */
        int64_t cshape[3] = {B, ctx.shape[1], ctx.shape[2]};
        const float *cdata = ctx.data;
        if (ctx.shape[0] != B) {
            size_t row = (size_t)(ctx.shape[1] * ctx.shape[2]);
            ctxb = malloc(sizeof(float) * row * (size_t)B);
            for (int64_t i = 0; ctxb && i < B; i++) memcpy(ctxb + (size_t)i * row, ctx.data, row * sizeof(float));
            cdata = ctxb;
        }
        int64_t oshape[4] = {B, u->config.out_channels, x.shape[2], x.shape[3]};
        s = cdata ? IE_OK : IE_ERR_NOMEM;
        if (!s) tx = upload(r->be, 4, x.shape, x.data, &s);
        if (!s) tc = upload(r->be, 3, cshape, cdata, &s);
        if (!s) out = upload(r->be, 4, oshape, NULL, &s);
        double t0 = now();
        if (!s) s = unet_forward(u, out, tx, t, tc, w);
        code = net_status(r, s, s && s != IE_ERR_NOMEM && u->err[0] ? u->err : NULL);
        double dt = now() - t0;
        if (!code) code = write_output(cn, r->be, out, a->val[O_OUTPUT]);
        if (!code) report(r, dt);
    }
    ie_tensor_free(tx);
    ie_tensor_free(tc);
    ie_tensor_free(out);
    free(x.data);
    free(ctx.data);
    free(ctxb);
    free(th.data);
    free(wh.data);
    free(t);
    free(w);
    return code;
}

static int run_vae_encode(net_run *r) {
    tensor_args *a = r->a;
    const char *cn = r->cn;
    if (!a->val[O_IMAGE] || !a->val[O_OUTPUT]) {
        fprintf(stderr, "invedit-tensor vae-encode: --image and -o are required (see --help)\n");
        return 2;
    }
    long long seed = 0;
    if (a->val[O_SEED] && !parse_long(a->val[O_SEED], 0, INT64_MAX, &seed)) {
        fprintf(stderr, "invedit-tensor vae-encode: --seed must be a non-negative integer\n");
        return 2;
    }
    if (a->val[O_SEED] && !a->val[O_SAMPLE]) {
        fprintf(stderr, "invedit-tensor vae-encode: --seed needs --sample\n");
        return 2;
    }
    if (a->val[O_NOISE] && a->val[O_SEED]) {
        fprintf(stderr, "invedit-tensor vae-encode: give --seed or --noise, not both\n");
        return 2;
    }
    host_array img = {0}, nz = {0};
    ie_tensor *ti = NULL, *out = NULL;
    float *noise = NULL;
    int code = read_array(cn, "--image", a->val[O_IMAGE], &img);
    if (!code) code = want_rank(cn, "--image", a->val[O_IMAGE], &img, 4);
    if (!code && a->val[O_NOISE]) code = read_array(cn, "--noise", a->val[O_NOISE], &nz);
    if (!code) code = open_model(r, SD_PART_VAE_ENCODER);
    if (!code) {
        vae *v = r->m->vae;
        const int64_t B = img.shape[0], f = vae_factor(v), Cl = v->config.latent_channels;
        if (img.shape[1] != v->config.in_channels || img.shape[2] % f || img.shape[3] % f) {
            char b[128];
            shape_str(&img, b, sizeof b);
            fprintf(stderr,
                    "invedit-tensor vae-encode: --image has shape %s; expected [B, %d, H, W] with H and W "
                    "divisible by %lld\n",
                    b, v->config.in_channels, (long long)f);
            code = cli_exit_code(IE_ERR_SHAPE);
        }
        int64_t lshape[4] = {B, Cl, img.shape[2] / f, img.shape[3] / f};
        const int64_t nl = B * Cl * lshape[2] * lshape[3];
        if (!code && a->val[O_NOISE]) {
            if (nz.numel != nl) {
                char b[128];
                shape_str(&nz, b, sizeof b);
                fprintf(stderr, "invedit-tensor vae-encode: --noise has shape %s; expected [%lld, %lld, %lld, %lld]\n",
                        b, (long long)B, (long long)Cl, (long long)lshape[2], (long long)lshape[3]);
                code = cli_exit_code(IE_ERR_SHAPE);
            }
            noise = nz.data;
            nz.data = NULL;
        } else if (!code && a->val[O_SAMPLE]) {
            noise = malloc(sizeof(float) * (size_t)nl);
            if (!noise) code = cli_exit_code(IE_ERR_NOMEM);
            ie_rng rng;
            ie_rng_seed(&rng, (uint64_t)seed);
            if (noise) ie_rng_normal_fill(&rng, noise, (size_t)nl);
        }
        ie_status s = IE_OK;
        if (!code) ti = upload(r->be, 4, img.shape, img.data, &s);
        if (!code && !s) out = upload(r->be, 4, lshape, NULL, &s);
        if (!code) {
            double t0 = now();
            if (!s) s = vae_encode(v, out, ti, noise);
            code = net_status(r, s, s && s != IE_ERR_NOMEM && v->err[0] ? v->err : NULL);
            double dt = now() - t0;
            if (!code) code = write_output(cn, r->be, out, a->val[O_OUTPUT]);
            if (!code) report(r, dt);
        }
    }
    ie_tensor_free(ti);
    ie_tensor_free(out);
    free(img.data);
    free(nz.data);
    free(noise);
    return code;
}

static int run_vae_decode(net_run *r) {
    tensor_args *a = r->a;
    const char *cn = r->cn;
    if (!a->val[O_LATENT] || !a->val[O_OUTPUT]) {
        fprintf(stderr, "invedit-tensor vae-decode: --latent and -o are required (see --help)\n");
        return 2;
    }
    host_array z = {0};
    ie_tensor *tz = NULL, *out = NULL;
    int code = read_array(cn, "--latent", a->val[O_LATENT], &z);
    if (!code) code = want_rank(cn, "--latent", a->val[O_LATENT], &z, 4);
    if (!code) code = open_model(r, SD_PART_VAE_DECODER);
    if (!code) {
        vae *v = r->m->vae;
        const int64_t f = vae_factor(v);
        if (z.shape[1] != v->config.latent_channels) {
            char b[128];
            shape_str(&z, b, sizeof b);
            fprintf(stderr, "invedit-tensor vae-decode: --latent has shape %s; expected [B, %d, h, w]\n", b,
                    v->config.latent_channels);
            code = cli_exit_code(IE_ERR_SHAPE);
        }
        int64_t ishape[4] = {z.shape[0], v->config.out_channels, z.shape[2] * f, z.shape[3] * f};
        ie_status s = IE_OK;
        if (!code) tz = upload(r->be, 4, z.shape, z.data, &s);
        if (!code && !s) out = upload(r->be, 4, ishape, NULL, &s);
        if (!code) {
            double t0 = now();
            if (!s) s = vae_decode(v, out, tz);
            code = net_status(r, s, s && s != IE_ERR_NOMEM && v->err[0] ? v->err : NULL);
            double dt = now() - t0;
            if (!code) code = write_output(cn, r->be, out, a->val[O_OUTPUT]);
            if (!code) report(r, dt);
        }
    }
    ie_tensor_free(tz);
    ie_tensor_free(out);
    free(z.data);
    return code;
}

int main(int argc, char **argv) {
    const char *env_device = getenv("INVEDIT_DEVICE");
    char derr[256];
    if (env_device && *env_device && !ie_device_request_valid(env_device, derr, sizeof derr)) {
        fprintf(stderr, "invedit-tensor: INVEDIT_DEVICE: %s\n", derr);
        return 2;
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        tensor_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    tensor_args a;
    memset(&a, 0, sizeof a);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) a.cmd = &commands[i];
    if (!a.cmd) {
        fprintf(stderr,
                "invedit-tensor: unknown command '%s' (tokenize, text-encode, unet, vae-encode, "
                "vae-decode; see --help)\n",
                argv[1]);
        return 2;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cmd_usage(stdout, a.cmd);
            return 0;
        }
    int code = parse_args(argc - 1, argv + 1, &a);
    if (code) return code;
    if (a.cmd->bit == TC_TOKENIZE) return run_tokenize(&a);

    net_run r = {&a, a.cmd->name, NULL, NULL, 0};
    switch (a.cmd->bit) {
        case TC_TEXT: code = run_text_encode(&r); break;
        case TC_UNET: code = run_unet(&r); break;
        case TC_VAE_ENC: code = run_vae_encode(&r); break;
        default: code = run_vae_decode(&r); break;
    }
    sd_model_free(r.m);
    ie_backend_free(r.be);
    return code;
}
