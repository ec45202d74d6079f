/* The closing numbers of full-resolution compositing (edit/composite.h), per
 * method, on the 1024x1024 textured scene of tests/test_fullres.c: far-
 * background PSNR, share of unchanged pixels, detail correlation inside the
 * object, edit success, and the seconds per edit with composite keep-detail
 * against off (the minimum of --reps runs each; the difference is the extra
 * VAE decode plus the compositing). Demo model, CPU backend.
 *
 * Then the overhead alone, timed in isolation (whole edits vary by seconds on a
 * busy machine): the extra decode and the compositing against the resize back.
 *
 *   bench-fullres [--size 1024] [--reps 3] [--model models/demo] [--edits 0|1] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/fullres_scene.h"
#include "edit/composite.h"
#include "edit/image.h"
#include "edit/pipeline.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int N = 1024, reps = 3, edits = 1;
    const char *model = BENCH_SOURCE_ROOT "/models/demo";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size")) N = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--edits")) edits = atoi(argv[i + 1]);
    }
    if (N < 64 || reps < 1) {
        fprintf(stderr, "usage: bench-fullres [--size N>=64] [--reps N>=1] [--model PATH]\n");
        return 2;
    }
    char err[1024];
    ie_image in;
    ie_session *s = NULL;
    if (fr_make_scene(&in, N) || ie_session_open(model, "cpu", &s, err, sizeof err)) {
        fprintf(stderr, "bench-fullres: %s\n", s ? "out of memory" : err);
        return 1;
    }
    printf("%dx%d scene, %s, %d reps (minimum); a shared machine: times are noisy\n", N, N, ie_session_device(s), reps);
    printf(
        "| method | far PSNR (dB) | unchanged pixels | detail corr | edit ok | s keep-detail | s off | overhead |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    const ie_method methods[3] = {IE_METHOD_INFEDIT, IE_METHOD_EF_DDPM, IE_METHOD_BDIA};
    for (int k = 0; k < 3 && edits; k++) {
        double best[2] = {1e30, 1e30};
        fr_measures m[2];
        for (int mode = 0; mode < 2; mode++)
            for (int r = 0; r < reps; r++) {
                ie_edit_params p;
                fr_params(&p, methods[k]);
                p.composite = mode == 0 ? "keep-detail" : "off";
                ie_image out = {0};
                double t0 = now();
                ie_status st = ie_edit(s, &p, &in, &out, NULL, NULL, err, sizeof err);
                double t = now() - t0;
                if (st) {
                    fprintf(stderr, "bench-fullres: %s: %s\n", ie_method_name(methods[k]), err);
                    return 1;
                }
                if (t < best[mode]) best[mode] = t;
                if (r == 0) fr_measure(&in, &out, &m[mode]);
                ie_image_free(&out);
            }
        char ps[2][32];
        for (int i = 0; i < 2; i++) snprintf(ps[i], sizeof ps[i], m[i].far_psnr > 1e9 ? "inf" : "%.2f", m[i].far_psnr);
        printf("| %s | %s (off %s) | %.1f %% (off %.1f %%) | %.3f (off %.3f) | %s (off %s) | %.2f | %.2f | %+.2f s "
               "(%+.0f %%) |\n",
               ie_method_name(methods[k]), ps[0], ps[1], 100 * m[0].unchanged, 100 * m[1].unchanged, m[0].detail_corr,
               m[1].detail_corr, m[0].success ? "yes" : "no", m[1].success ? "yes" : "no", best[0], best[1],
               best[0] - best[1], 100 * (best[0] - best[1]) / best[1]);
        fflush(stdout);
    }
    /* The overhead alone, timed in isolation (whole edits are too noisy on a shared machine):
     * the extra VAE decode of x0 and the compositing, against composite off's plain resize. */
    {
        int W, H, mult = ie_session_size_multiple(s), f = ie_session_vae_factor(s);
        ie_working_size(N, N, ie_session_native_size(s), mult, &W, &H);
        int h = H / f, w = W / f, C = ie_session_latent_channels(s);
        float *x0 = malloc(sizeof(float) * (size_t)C * h * w), *x = malloc(sizeof(float) * (size_t)C * h * w);
        ie_image work = {0}, rec = {0}, dec = {0}, out = {0}, back = {0};
        ie_edit_params p;
        fr_params(&p, IE_METHOD_INFEDIT);
        ie_status st = x0 && x ? ie_image_resize(&in, W, H, &work) : IE_ERR_NOMEM;
        if (!st) st = ie_session_encode(s, &work, true, 1, x0, err, sizeof err);
        if (!st) st = ie_edit_latent(s, &p, x0, h, w, x, NULL, NULL, NULL, err, sizeof err);
        if (!st) st = ie_session_decode(s, x, h, w, &dec, err, sizeof err);
        double t_dec = 1e30, t_comp[2] = {1e30, 1e30}, t_off = 1e30;
        for (int r = 0; r < 5 * reps && !st; r++) {
            double t0 = now();
            ie_image_free(&rec);
            st = ie_session_decode(s, x0, h, w, &rec, err, sizeof err);
            double t1 = now();
            if (t1 - t0 < t_dec) t_dec = t1 - t0;
            for (int mode = 0; mode < 2 && !st; mode++) {
                ie_composite_args ca = {
                    &in, &work, &rec, &dec, mode ? IE_COMPOSITE_REPLACE_REGION : IE_COMPOSITE_KEEP_DETAIL,
                    0.1, f,     NULL};
                t0 = now();
                st = ie_composite(&ca, &out, NULL, NULL);
                t1 = now();
                ie_image_free(&out);
                if (t1 - t0 < t_comp[mode]) t_comp[mode] = t1 - t0;
            }
            ie_composite_args off = {&in, &work, &rec, &dec, IE_COMPOSITE_OFF, 0.1, f, NULL};
            t0 = now();
            if (!st) st = ie_composite(&off, &back, NULL, NULL);
            t1 = now();
            ie_image_free(&back);
            if (t1 - t0 < t_off) t_off = t1 - t0;
        }
        if (st) fprintf(stderr, "bench-fullres: overhead: %s\n", err[0] ? err : ie_status_name(st));
        else
            printf("\noverhead in isolation (minimum of %d): extra VAE decode at %dx%d %.4f s; compositing at %dx%d: "
                   "keep-detail %.3f s, replace-region %.3f s, off (plain resize back) %.3f s; keep-detail costs "
                   "%+.3f s over off\n",
                   5 * reps, W, H, t_dec, N, N, t_comp[0], t_comp[1], t_off, t_dec + t_comp[0] - t_off);
        free(x0);
        free(x);
        ie_image_free(&work);
        ie_image_free(&rec);
        ie_image_free(&dec);
    }
    ie_session_close(s);
    ie_image_free(&in);
    return 0;
}
