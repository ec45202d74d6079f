/* invedit: the command-line front end.
 *
 *   invedit edit|reconstruct|generate   the editing harness (cmd_edit.c)
 *   invedit devices               list Vulkan devices and which one is used
 *   invedit selfcheck             run a convolution on every backend, compare
 *   invedit info                  what a model path holds (cmd_info.c)
 *
 * It uses only the public API (<invedit.h>). Running one network on .npy
 * arrays is the developer harness invedit-tensor (tools/tensor/).
 *
 * Global options: --device auto|cpu|vulkan|vulkan:N (or INVEDIT_DEVICE).
 */
#include <invedit.h>

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
    fprintf(f, "usage: invedit [--device DEV] COMMAND [ARGS]\n"
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
               "\n"
               "options:\n"
               "  --device DEV  auto (default), cpu, vulkan or vulkan:N; also INVEDIT_DEVICE\n"
               "  -h, --help    show this help\n"
               "  --version     show the version\n");
}

static int cmd_devices(void) {
    char *text = ie_devices_describe();
    if (!text) {
        fprintf(stderr, "invedit devices: out of memory\n");
        return EXIT_FAILURE_RUN;
    }
    fputs(text, stdout);
    ie_free(text);
    return 0;
}

static int cmd_selfcheck(void) {
    char *text = NULL;
    ie_status st = ie_selfcheck(&text);
    if (text) fputs(text, stdout);
    else fprintf(stderr, "invedit selfcheck: %s\n", ie_status_name(st));
    ie_free(text);
    return st ? EXIT_FAILURE_RUN : 0;
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
    if (ie_device_valid(value, err, sizeof err)) return 0;
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
            printf("invedit %s\n", ie_version_string());
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
    if (!strcmp(cmd, "info")) return cmd_info(argc - i, argv + i);
    if (!strcmp(cmd, "tensor")) { /* moved out of the shipped CLI */
        fprintf(stderr, "invedit: 'tensor' is the developer harness invedit-tensor now (built in the source "
                        "tree as tools/tensor/invedit-tensor, not installed)\n");
        return EXIT_USAGE;
    }
    fprintf(stderr, "invedit: unknown command '%s' (see --help)\n", cmd);
    return EXIT_USAGE;
}
