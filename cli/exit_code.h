/* The command line's exit status for a library status. The codes are part of
 * the CLI's documented interface (README, "The command line"): 0 success,
 * 1 failure during the run, 2 usage, 3 a file (model, image) is wrong,
 * 4 no memory or device, 130 cancelled. Shared by invedit and the developer
 * tool invedit-tensor, so both answer alike. */
#ifndef INVEDIT_CLI_EXIT_CODE_H
#define INVEDIT_CLI_EXIT_CODE_H

#include <invedit_status.h>

static inline int cli_exit_code(ie_status s) {
    switch (s) {
        case IE_OK: return 0;
        case IE_ERR_ARG: return 2;
        case IE_ERR_IO:
        case IE_ERR_FORMAT:
        case IE_ERR_SHAPE:
        case IE_ERR_UNSUPPORTED: return 3;
        case IE_ERR_NOMEM:
        case IE_ERR_DEVICE:
        case IE_ERR_NODEVICE: return 4;
        case IE_ERR_CANCELLED: return 130;
        case IE_ERR_NONFINITE: return 1;
    }
    return 1;
}

#endif
