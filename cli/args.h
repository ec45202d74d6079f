/* Command-line options of edit / reconstruct / generate: the library's
 * parameter table plus the harness's own options. A separate file so the
 * parser has a libFuzzer target (tests/fuzz/fuzz_cli_args.c). */
#ifndef INVEDIT_ARGS_H
#define INVEDIT_ARGS_H

#include <stdbool.h>

#include <invedit.h>

#define CLI_MAX_TARGETS 64

typedef struct cli_opts {
    ie_edit_params p;
    const char *model, *image, *output, *prompt, *prompts_file;
    const char *save_input, *save_reconstruction;
    const char *save_mask; /* edit: the change mask as a grey PNG/JPEG */
    const char *mask;      /* edit: a selection (grey image, white = edit) */
    int width, height;
    bool quiet;
    char lora_list[8192];                 /* the --lora options joined with ';' (repeatable) */
    const char *targets[CLI_MAX_TARGETS]; /* every --target in order (edit: one inversion, several outputs) */
    int n_targets;
} cli_opts;

/* Parses argv (argv[0] is the command name) into o, starting from the
 * chosen method's defaults. Returns 0, or 2 after printing why to stderr.
 * Strings in o point into argv. */
int cli_parse(int argc, char **argv, cli_opts *o, const char *cmd);

#endif
