/* Helpers of the network reference tests (test_networks.c, test_sd15.c):
 * .npy inputs onto a backend, and a tap that compares every tapped block
 * with its PyTorch dump (max relative error, testutil.h). Header-only. */
#ifndef INVEDIT_REFCHECK_H
#define INVEDIT_REFCHECK_H

#include "model/config.h"
#include "model/names.h"
#include "model/nn.h"
#include "model/npy.h"
#include "testutil.h"

#include <dirent.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

#ifndef TOL
#define TOL 1e-3
#endif

static char REF[1024];      /* the folder holding the reference models */
static const char *BE_NAME; /* "cpu" / "vulkan" for messages */

/* --- helpers ---------------------------------------------------------------------- */

static inline bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static inline double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline float *load_npy(const char *dir, const char *name, int *ndim, int64_t *shape) {
    char path[1500], err[512];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    float *d = npy_load_f32(path, ndim, shape, err, sizeof err);
    if (!d) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    return d;
}

static inline ie_tensor *upload_npy(ie_backend *be, const char *dir, const char *name) {
    int nd;
    int64_t sh[NPY_MAX_DIMS];
    float *d = load_npy(dir, name, &nd, sh);
    ie_tensor *t = ie_tensor_new(be, IE_F32, nd, sh);
    if (!t || ie_tensor_upload(t, d)) {
        fprintf(stderr, "upload %s: %s\n", name, ie_backend_errmsg(be));
        exit(2);
    }
    free(d);
    return t;
}

static inline ie_tensor *new_tensor(ie_backend *be, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    ie_tensor *t = ie_tensor_new4(be, IE_F32, d0, d1, d2, d3);
    if (!t) {
        fprintf(stderr, "tensor_new: %s\n", ie_backend_errmsg(be));
        exit(2);
    }
    return t;
}

/* Compares a device tensor with <dir>/<name>.npy. */
static inline void check_tensor(const char *label, const char *dir, const char *name, ie_tensor *t) {
    char what[256];
    snprintf(what, sizeof what, "%s %s %s", BE_NAME, label, name);
    int nd;
    int64_t sh[NPY_MAX_DIMS];
    float *want = load_npy(dir, name, &nd, sh);
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= sh[i];
    if (n != ie_tensor_numel(t)) {
        char b[96];
        TU_CHECK(0, "%s: %lld elements, reference has %lld (%s)", what, (long long)ie_tensor_numel(t), (long long)n,
                 ie_tensor_shape_str(t, b, sizeof b));
        free(want);
        return;
    }
    float *got = tu_alloc((size_t)n);
    if (ie_tensor_download(t, got)) TU_CHECK(0, "%s: download: %s", what, ie_backend_errmsg(t->be));
    else tu_check_close(what, got, want, (size_t)n, TOL);
    free(got);
    free(want);
}

/* The tap: compares every tapped tensor that has a dump. */
typedef struct ref_tap {
    const char *label;
    const char *dir;
    int matched;
} ref_tap;

static inline void tap_compare(void *user, const char *name, const ie_tensor *t) {
    ref_tap *r = user;
    char path[1500];
    snprintf(path, sizeof path, "%s/%s.npy", r->dir, name);
    if (!file_exists(path)) return;
    check_tensor(r->label, r->dir, name, (ie_tensor *)t);
    r->matched++;
}

/* How many .npy files of dir are not inputs (= what the taps must match). */
static inline int count_expected(const char *dir, const char *const *inputs) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".npy")) continue;
        bool input = false;
        for (int i = 0; inputs[i]; i++)
            input |= strlen(inputs[i]) == len - 4 && !strncmp(e->d_name, inputs[i], len - 4);
        n += !input;
    }
    closedir(d);
    return n;
}

static inline void expect_all_matched(const char *label, ref_tap *r, const char *const *inputs, int extra) {
    int want = count_expected(r->dir, inputs) - extra;
    TU_CHECK(r->matched == want, "%s %s: %d of %d reference tensors compared", BE_NAME, label, r->matched, want);
}

static inline sd_weights *open_model(const char *name, sd_model_config *cfg) {
    char path[1200], err[1024];
    snprintf(path, sizeof path, "%s/%s", REF, name);
    sd_weights *w = NULL;
    ie_status s = sd_weights_open(path, &w, err, sizeof err);
    if (!s) s = sd_model_config_load(w, cfg, err, sizeof err);
    if (s) {
        fprintf(stderr, "%s: %s\n", path, err);
        exit(2);
    }
    return w;
}

#endif
