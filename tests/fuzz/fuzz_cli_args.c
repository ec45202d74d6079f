/* libFuzzer target: the editing commands' option parser (cli/args.c) and,
 * through it, the parameter table's value parsing (edit/params.c).
 * The input is split on NUL bytes into argv[1..]. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum { MAX_ARGS = 64 };
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "edit";
    for (size_t i = 0; i <= size && argc < MAX_ARGS;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    cli_opts o;
    memset(&o, 0, sizeof o);
    if (cli_parse(argc, argv, &o, "edit") == 0) {
        char err[256];
        (void)ie_edit_params_validate(&o.p, err, sizeof err);
    }
    free(buf);
    return 0;
}
/* Run with -close_fd_mask=2 to keep the parser's messages out of the output. */
