/* CHECK for the plug-in's unit tests (they link neither GIMP nor the engine,
 * so tests/testutil.h, which includes the engine's ops.h, is not for them). */
#ifndef INVEDIT_TESTS_GIMP_CHECK_H
#define INVEDIT_TESTS_GIMP_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
        }                                                                                                              \
    } while (0)

#endif
