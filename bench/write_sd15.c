/* bench-write-sd15 DIR [SEED]: writes the random SD 1.5-shaped model that
 * bench-methods and bench-networks use (bench/random_model.h) to DIR and
 * keeps it, so a whole `invedit edit` can be measured on it, e.g.
 *   /usr/bin/time -v build/cli/invedit edit --model DIR ...
 * The tokenizer is the demo model's. */
#include "random_model.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef BENCH_SOURCE_ROOT
#define BENCH_SOURCE_ROOT "."
#endif

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench-write-sd15 DIR [SEED]\n");
        return 2;
    }
    uint64_t seed = argc == 3 ? strtoull(argv[2], NULL, 10) : 0;
    char err[1024] = "";
    char *tok = g_build_filename(BENCH_SOURCE_ROOT, "models", "demo", "tokenizer", NULL);
    bool ok = bench_write_random_sd15(argv[1], tok, seed, err, sizeof err);
    g_free(tok);
    if (!ok) {
        fprintf(stderr, "bench-write-sd15: %s\n", err);
        return 1;
    }
    return 0;
}
