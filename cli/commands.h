/* The CLI's subcommands. */
#ifndef INVEDIT_COMMANDS_H
#define INVEDIT_COMMANDS_H

#include <stdbool.h>

#include "invedit.h"

int cmd_edit(int argc, char **argv, bool reconstruct);
int cmd_generate(int argc, char **argv);
int cmd_invert(int argc, char **argv);
int cmd_tensor(int argc, char **argv);
int cmd_info(int argc, char **argv); /* cmd_info.c */
int cli_exit_code(ie_status s);

#endif
