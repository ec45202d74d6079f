/* invedit: the command-line front end.
 *
 *   invedit edit|reconstruct|generate   the editing harness (cmd_edit.c)
 *   invedit devices               list Vulkan devices and which one is used
 *   invedit selfcheck             run a convolution on every backend, compare
 *   invedit tensor ...            one network on .npy arrays (cmd_tensor.c)
 *
 * Global options: --device auto|cpu|vulkan|vulkan:N (or INVEDIT_DEVICE).
 */
#include "vkcompute/ops.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/atomic_file.h"
#include "commands.h"

#define EXIT_USAGE 2
#define EXIT_FAILURE_RUN 1

static void usage(FILE *f) {
    fprintf(f,
            "usage: invedit [--device DEV] COMMAND [ARGS]\n"
            "\n"
            "Inverts images into a diffusion model's noise space and edits them from text.\n"
            "\n"
            "commands:\n"
            "  edit        invert an image and regenerate it from a target prompt\n"
            "  invert      invert an image; write the noise maps / latents as .npy\n"
            "  reconstruct invert and regenerate with the same prompt; print the PSNR\n"
            "  generate    text to image (DDIM / BDIA)\n"
            "  info        what a model path holds: tokenizer, networks, dtypes, EMA, VAE, LoRAs\n"
            "  batch       run the edits of a JSON Lines manifest with one model load (resumable, --shard K/N)\n"
            "  devices     list Vulkan devices, their limits, and which one 'auto' picks\n"
            "  selfcheck   run a convolution on the CPU and Vulkan backends and compare\n"
            "  tensor      run one network (tokenize, text-encode, unet, vae-encode, vae-decode)\n"
            "              on .npy arrays, to compare with another implementation\n"
            "\n"
            "options:\n"
            "  --device DEV  auto (default), cpu, vulkan or vulkan:N; also INVEDIT_DEVICE\n"
            "  -h, --help    show this help\n"
            "  --version     show the version\n");
}

static int cmd_devices(void) {
    ie_device_info devs[16];
    char err[512];
    int n = ie_vulkan_list_devices(devs, 16, err, sizeof err);
    if (n < 0) {
        printf("No Vulkan: %s\nThe CPU backend (OpenBLAS) will be used.\n", err);
        return 0;
    }
    if (n == 0) printf("The Vulkan loader found no devices. The CPU backend (OpenBLAS) will be used.\n");
    if (n > 16) n = 16;
    for (int i = 0; i < n; i++) {
        const ie_device_info *d = &devs[i];
        printf("vulkan:%d  %s  (%s, Vulkan %u.%u, %s)\n", d->index, d->name, ie_device_type_name(d->type),
               d->api_version >> 22, (d->api_version >> 12) & 0x3ff, d->driver);
        printf("          device-local memory %.1f GiB, max allocation %.0f MiB, "
               "max storage-buffer range %.0f MiB, shared memory %u KiB, subgroup %u, fp16 %s\n",
               (double)d->device_local_bytes / 1073741824.0, (double)d->max_allocation_size / 1048576.0,
               (double)d->max_storage_buffer_range / 1048576.0, d->max_shared_memory / 1024,
               d->subgroup_size, d->fp16 ? "yes" : "no");
        if (!d->usable) printf("          not usable: %s\n", d->why_unusable);
    }
    char note[512];
    ie_backend *be = ie_backend_open(NULL, note, sizeof note);
    printf("\nauto selects: %s\n", ie_backend_description(be));
    if (note[0]) printf("  (%s)\n", note);
    printf("Override with --device cpu|vulkan|vulkan:N or INVEDIT_DEVICE.\n");
    ie_backend_free(be);
    return 0;
}

/* A 3×3 convolution with random data on one backend; returns the output. */
static float *run_conv(ie_backend *be, const float *x, const float *w, const float *b, int N, int Cin,
                       int H, int W, int Cout, char *msg, size_t msglen) {
    ie_tensor *tx = ie_tensor_new4(be, IE_F32, N, Cin, H, W);
    ie_tensor *tw = ie_tensor_new4(be, IE_F32, Cout, Cin, 3, 3);
    int64_t bs[1] = {Cout};
    ie_tensor *tb = ie_tensor_new(be, IE_F32, 1, bs);
    ie_tensor *to = ie_tensor_new4(be, IE_F32, N, Cout, H, W);
    float *out = malloc(sizeof(float) * (size_t)N * Cout * H * W);
    ie_conv2d_params p = ie_conv2d_params_sym(1, 1);
    ie_status s = IE_ERR_NOMEM;
    if (tx && tw && tb && to && out) {
        s = ie_tensor_upload(tx, x);
        if (!s) s = ie_tensor_upload(tw, w);
        if (!s) s = ie_tensor_upload(tb, b);
        if (!s) s = ie_conv2d(be, to, tx, tw, tb, &p);
        if (!s) s = ie_tensor_download(to, out);
    }
    if (s) {
        snprintf(msg, msglen, "%s", ie_backend_errmsg(be));
        free(out);
        out = NULL;
    }
    ie_tensor_free(tx);
    ie_tensor_free(tw);
    ie_tensor_free(tb);
    ie_tensor_free(to);
    return out;
}

static int cmd_selfcheck(void) {
    const int N = 1, Cin = 64, H = 32, W = 32, Cout = 64;
    size_t nx = (size_t)N * Cin * H * W, nw = (size_t)Cout * Cin * 9;
    float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc(Cout * sizeof *b);
    if (!x || !w || !b) return EXIT_FAILURE_RUN;
    uint32_t r = 12345;
    for (size_t i = 0; i < nx; i++) x[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    for (size_t i = 0; i < nw; i++) w[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f * 0.1f - 0.05f;
    for (int i = 0; i < Cout; i++) b[i] = (float)i * 0.01f;

    char msg[512] = "";
    ie_backend *cpu = ie_backend_cpu_new(0);
    float *ref = run_conv(cpu, x, w, b, N, Cin, H, W, Cout, msg, sizeof msg);
    printf("conv2d 3x3 [%d,%d,%d,%d] -> %d channels\n", N, Cin, H, W, Cout);
    printf("  %-40s %s\n", ie_backend_description(cpu), ref ? "ok" : msg);
    int status = ref ? 0 : EXIT_FAILURE_RUN;

    ie_device_info devs[16];
    char err[512];
    int n = ie_vulkan_list_devices(devs, 16, err, sizeof err);
    if (n < 0) printf("  vulkan: not available (%s)\n", err);
    if (n == 0) printf("  vulkan: no devices\n");
    for (int i = 0; i < n && i < 16; i++) {
        ie_backend *vk = ie_backend_vulkan_new(devs[i].index, err, sizeof err);
        if (!vk) {
            printf("  vulkan:%d %s: unavailable (%s)\n", devs[i].index, devs[i].name, err);
            continue;
        }
        float *out = run_conv(vk, x, w, b, N, Cin, H, W, Cout, msg, sizeof msg);
        if (out && ref) {
            double maxdiff = 0, maxref = 0;
            for (size_t k = 0; k < (size_t)N * Cout * H * W; k++) {
                double d = fabs((double)out[k] - ref[k]);
                if (!(d <= maxdiff)) maxdiff = d;
                if (fabs(ref[k]) > maxref) maxref = fabs(ref[k]);
            }
            double rel = maxdiff / (maxref > 0 ? maxref : 1);
            printf("  %-40s max abs diff vs cpu %.3g (relative %.3g) %s\n", ie_backend_description(vk),
                   maxdiff, rel, rel <= 1e-4 ? "ok" : "MISMATCH");
            if (!(rel <= 1e-4)) status = EXIT_FAILURE_RUN;
        } else {
            printf("  %-40s failed: %s\n", ie_backend_description(vk), msg);
            status = EXIT_FAILURE_RUN;
        }
        free(out);
        ie_backend_free(vk);
    }
    free(ref);
    ie_backend_free(cpu);
    free(x);
    free(w);
    free(b);
    return status;
}

/* Ctrl-C or kill while a file is being written: the temporary file goes, the
 * previous file at the path stays, and the exit status is 130 (cancelled). */
static void on_cancel(int sig) {
    (void)sig;
    ie_afile_remove_pending();
    static const char msg[] = "\ninvedit: cancelled\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(130);
}

static void install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cancel;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN); /* over a file-size limit: a write error, reported, not a kill */
}

static int check_device(const char *value, const char *where) {
    char err[256];
    if (ie_device_request_valid(value, err, sizeof err)) return 0;
    fprintf(stderr, "invedit: %s: %s\n", where, err);
    return EXIT_USAGE;
}

int main(int argc, char **argv) {
    install_signal_handlers();
    const char *env_device = getenv("INVEDIT_DEVICE");
    if (env_device && *env_device && check_device(env_device, "INVEDIT_DEVICE")) return EXIT_USAGE;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("invedit 0.1.0\n");
            return 0;
        } else if (!strcmp(argv[i], "--device")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "invedit: --device needs a value (auto, cpu, vulkan, vulkan:N)\n");
                return EXIT_USAGE;
            }
            if (check_device(argv[i + 1], "--device")) return EXIT_USAGE;
            setenv("INVEDIT_DEVICE", argv[++i], 1);
        } else if (!strncmp(argv[i], "--device=", 9)) {
            if (check_device(argv[i] + 9, "--device")) return EXIT_USAGE;
            setenv("INVEDIT_DEVICE", argv[i] + 9, 1);
        } else {
            fprintf(stderr, "invedit: unknown option '%s' (see --help)\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i];
    if (!strcmp(cmd, "devices")) return cmd_devices();
    if (!strcmp(cmd, "selfcheck")) return cmd_selfcheck();
    if (!strcmp(cmd, "edit")) return cmd_edit(argc - i, argv + i, false);
    if (!strcmp(cmd, "reconstruct")) return cmd_edit(argc - i, argv + i, true);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - i, argv + i);
    if (!strcmp(cmd, "invert")) return cmd_invert(argc - i, argv + i);
    if (!strcmp(cmd, "batch")) return cmd_batch(argc - i, argv + i);
    if (!strcmp(cmd, "tensor")) return cmd_tensor(argc - i, argv + i);
    if (!strcmp(cmd, "info")) return cmd_info(argc - i, argv + i);
    fprintf(stderr, "invedit: unknown command '%s' (see --help)\n", cmd);
    return EXIT_USAGE;
}
