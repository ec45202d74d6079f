/* Small helpers shared by invedit's C tests (header-only).
 *
 * Error measure used throughout: max relative error
 *     rel = max_i |got_i - want_i| / max(max_i |want_i|, 1e-30)
 * i.e. the worst absolute error scaled by the reference's largest magnitude
 * (element-wise relative errors are meaningless near zero).
 */
#ifndef INVEDIT_TESTUTIL_H
#define INVEDIT_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vkcompute/ops.h"

static int tu_failures = 0;
static int tu_checks = 0;

/* Deterministic random numbers (xorshift64*), independent of libc. */
typedef struct tu_rng {
    uint64_t s;
} tu_rng;
static inline tu_rng tu_rng_new(uint64_t seed) {
    tu_rng r = {seed * 0x9E3779B97F4A7C15ull + 1};
    return r;
}
static inline uint64_t tu_next(tu_rng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}
/* Uniform in [lo, hi). */
static inline float tu_uniform(tu_rng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)((tu_next(r) >> 40) * (1.0 / 16777216.0));
}
static inline void tu_fill(tu_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = tu_uniform(r, lo, hi);
}
/* Approximately N(0, 1) (sum of 4 uniforms, scaled). */
static inline void tu_fill_normal(tu_rng *r, float *x, size_t n, float std) {
    for (size_t i = 0; i < n; i++) {
        float s = 0;
        for (int k = 0; k < 4; k++) s += tu_uniform(r, -1.f, 1.f);
        x[i] = s * 0.8660254f * std;
    }
}
static inline float *tu_alloc(size_t n) {
    float *p = (float *)calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static inline double tu_max_rel_err(const float *got, const float *want, size_t n) {
    double maxdiff = 0, maxref = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= maxdiff)) maxdiff = d; /* also catches NaN */
        double a = fabs((double)want[i]);
        if (a > maxref) maxref = a;
    }
    return maxdiff / (maxref > 1e-30 ? maxref : 1e-30);
}

/* Prints "ok  name  rel=..." or "FAIL ..." and counts. Returns 1 when ok. */
static inline int tu_check_close(const char *name, const float *got, const float *want, size_t n, double tol) {
    double rel = tu_max_rel_err(got, want, n);
    int ok = rel <= tol; /* false for NaN */
    tu_checks++;
    if (!ok) tu_failures++;
    printf("%s %-48s max_rel_err=%.3e (tol %.0e, n=%zu)\n", ok ? "ok  " : "FAIL", name, rel, tol, n);
    fflush(stdout);
    return ok;
}

static inline int tu_check(int cond, const char *fmt, const char *what) {
    tu_checks++;
    if (!cond) tu_failures++;
    printf("%s %s%s\n", cond ? "ok  " : "FAIL", fmt, what ? what : "");
    fflush(stdout);
    return cond;
}

#define TU_CHECK(cond, ...)                                                                                            \
    do {                                                                                                               \
        tu_checks++;                                                                                                   \
        if (cond) {                                                                                                    \
            printf("ok   ");                                                                                           \
        } else {                                                                                                       \
            tu_failures++;                                                                                             \
            printf("FAIL ");                                                                                           \
        }                                                                                                              \
        printf(__VA_ARGS__);                                                                                           \
        printf("\n");                                                                                                  \
        fflush(stdout);                                                                                                \
    } while (0)

/* Monotonic seconds (for printing how long a check took; tests never
 * assert on time). */
static inline double tu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 1 when st is IE_OK; otherwise counts a failure naming what and the
 * backend's message. */
static inline int tu_ok(ie_status st, ie_backend *be, const char *what) {
    if (st == IE_OK) return 1;
    tu_checks++;
    tu_failures++;
    printf("FAIL %s: %s: %s\n", what, ie_status_name(st), ie_backend_errmsg(be));
    fflush(stdout);
    return 0;
}

/* Exit status for meson: 0 pass, 1 fail, 77 skip. */
static inline int tu_finish(const char *suite) {
    printf("%s: %d checks, %d failed\n", suite, tu_checks, tu_failures);
    return tu_failures ? 1 : 0;
}

#endif
