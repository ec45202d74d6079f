/* The CLI's subcommands. */
#ifndef INVEDIT_COMMANDS_H
#define INVEDIT_COMMANDS_H

#include <stdbool.h>

#include <invedit.h>

#include "exit_code.h"

int cmd_edit(int argc, char **argv, bool reconstruct);
int cmd_generate(int argc, char **argv);
int cmd_invert(int argc, char **argv);
int cmd_info(int argc, char **argv); /* cmd_info.c */

/* invedit batch (cmd_batch.c), and the loop it shares with a several-targets edit. */
int cmd_batch(int argc, char **argv);

/* Progress of a run of edits: this edit's, and all of them with an ETA. */
typedef struct cli_progress {
    bool tty, quiet;
    bool clean_stale; /* remove temporaries a killed run left next to an output */
    double started;   /* the run */
    int done, total;  /* edits finished or skipped / all edits of the run */
    int timed;        /* edits that ran (the ETA's rate) */
    double timed_s;
    const char *label; /* prefix of the lines, e.g. "[item 3, m.jsonl:4] cat.png -> " */
} cli_progress;
void cli_progress_init(cli_progress *rp, bool quiet, int total);

/* Edits `in` once per target (the session's cache makes them share one
 * inversion), writing output (a pattern with %d when n_targets > 1: 1 = the
 * first target). Outputs that exist are skipped unless force. Counts failed
 * edits into *failed; returns 0 or the exit code of the last failure. */
int cli_edit_targets(ie_session *s, const ie_edit_params *p, const ie_image *in, const char *const *targets,
                     int n_targets, const char *output, bool force, cli_progress *rp, int *failed);

#endif
