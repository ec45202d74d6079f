/* The full-resolution test scene and its measures (header-only), shared by
 * tests/test_fullres.c and bench/fullres.c.
 *
 * The scene is the demo model's "a red circle on the left on a blue
 * background" (tools/demo/dataset.py: palette colours, centre (0.28, 0.5),
 * radius 0.19 of the side) at a photo's resolution, with what a 64-pixel
 * render cannot carry: a fine weave (period 6 px, +-0.03), twelve thin dark
 * strokes (1.5 px wide, -0.12) across object and background, and grain
 * (approximately Gaussian, sd 0.03 per channel), quantised to 8 bits. */
#ifndef INVEDIT_FULLRES_SCENE_H
#define INVEDIT_FULLRES_SCENE_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <invedit.h>

#define FR_CX 0.28
#define FR_CY 0.5
#define FR_R 0.19

static const float fr_blue[3] = {40 / 255.f, 70 / 255.f, 215 / 255.f};
static const float fr_red[3] = {215 / 255.f, 35 / 255.f, 35 / 255.f};
static const float fr_yellow[3] = {240 / 255.f, 215 / 255.f, 40 / 255.f};

static inline uint64_t fr_hash(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static inline float fr_unit(uint64_t k) { return (float)((fr_hash(k) >> 40) * (1.0 / 16777216.0)); }

/* Distance of pixel (x, y) from the disc centre, in pixels. */
static inline double fr_dist(int N, int x, int y) {
    double dx = x + 0.5 - FR_CX * N, dy = y + 0.5 - FR_CY * N;
    return sqrt(dx * dx + dy * dy);
}

static inline ie_status fr_make_scene(ie_image *img, int N) {
    ie_status st = ie_image_alloc(img, N, N, 3);
    if (st) return st;
    double sa[12], ca[12], off[12];
    for (int k = 0; k < 12; k++) {
        double a = fr_unit(1000 + k) * M_PI;
        sa[k] = sin(a), ca[k] = cos(a), off[k] = (fr_unit(2000 + k) - 0.5) * N;
    }
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++) {
            double cov = FR_R * N - fr_dist(N, x, y) + 0.5;
            cov = cov < 0 ? 0 : cov > 1 ? 1 : cov;
            double weave = 0.03 * sin(2 * M_PI * (x + 0.5) / 6) * sin(2 * M_PI * (y + 0.5) / 6);
            double stroke = 0;
            for (int k = 0; k < 12; k++) {
                double d = fabs((x + 0.5 - N / 2.0) * sa[k] - (y + 0.5 - N / 2.0) * ca[k] - off[k]);
                stroke -= 0.12 * (d < 1.5 ? 1.5 - d : 0) / 1.5;
            }
            for (int c = 0; c < 3; c++) {
                uint64_t key = ((uint64_t)y * N + x) * 3 + c;
                double g = 0;
                for (int j = 0; j < 4; j++) g += fr_unit(key * 4 + j) * 2 - 1;
                g *= 0.8660254 * 0.03;
                double v = fr_blue[c] * (1 - cov) + fr_red[c] * cov + weave + stroke + g;
                v = v < 0 ? 0 : v > 1 ? 1 : v;
                img->pixels[((size_t)y * N + x) * 3 + c] = (float)(lround(v * 255) / 255.0);
            }
        }
    return IE_OK;
}

/* High-pass detail: x - box mean over (2r+1)^2, channel c, into hp [N * N]. */
static inline void fr_highpass(const ie_image *im, int c, int r, float *hp) {
    int W = im->width, H = im->height, C = im->channels;
    double *ii = calloc((size_t)(W + 1) * (H + 1), sizeof *ii); /* integral image */
    if (!ii) return;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ii[(size_t)(y + 1) * (W + 1) + x + 1] = im->pixels[((size_t)y * W + x) * C + c] +
                                                    ii[(size_t)y * (W + 1) + x + 1] +
                                                    ii[(size_t)(y + 1) * (W + 1) + x] - ii[(size_t)y * (W + 1) + x];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int x0 = x - r < 0 ? 0 : x - r, x1 = x + r + 1 > W ? W : x + r + 1;
            int y0 = y - r < 0 ? 0 : y - r, y1 = y + r + 1 > H ? H : y + r + 1;
            double s = ii[(size_t)y1 * (W + 1) + x1] - ii[(size_t)y0 * (W + 1) + x1] - ii[(size_t)y1 * (W + 1) + x0] +
                       ii[(size_t)y0 * (W + 1) + x0];
            hp[(size_t)y * W + x] = im->pixels[((size_t)y * W + x) * C + c] - (float)(s / ((x1 - x0) * (y1 - y0)));
        }
    free(ii);
}

typedef struct fr_measures {
    double far_psnr;      /* PSNR of the far background (beyond r + 0.25 N) against the input */
    double far_identical; /* share of far-background pixels bit-identical to the input */
    double unchanged;     /* share of all pixels bit-identical to the input */
    double detail_corr;   /* correlation of high-pass detail (box 9x9), input vs output, inside the
                               object (r - 0.03 N), all channels pooled */
    float object_mean[3]; /* mean colour inside the object */
    bool success;         /* the object's mean is nearest to yellow of red, yellow, blue */
} fr_measures;

static inline void fr_measure(const ie_image *in, const ie_image *out, fr_measures *m) {
    int N = in->width, Ci = in->channels, Co = out->channels;
    double se = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, om[3] = {0, 0, 0};
    long nfar = 0, nfar_same = 0, nsame = 0, nobj = 0;
    float *hi = malloc(sizeof(float) * (size_t)N * N), *ho = malloc(sizeof(float) * (size_t)N * N);
    memset(m, 0, sizeof *m);
    if (!hi || !ho) {
        free(hi);
        free(ho);
        return;
    }
    for (int c = 0; c < 3; c++) {
        fr_highpass(in, c, 4, hi);
        fr_highpass(out, c, 4, ho);
        for (int y = 0; y < N; y++)
            for (int x = 0; x < N; x++) {
                size_t i = (size_t)y * N + x;
                double d = fr_dist(N, x, y);
                const float *p = in->pixels + i * Ci, *q = out->pixels + i * Co;
                if (d > (FR_R + 0.25) * N) {
                    se += (double)(p[c] - q[c]) * (p[c] - q[c]);
                    if (c == 0) {
                        nfar++;
                        nfar_same += memcmp(p, q, 3 * sizeof(float)) == 0;
                    }
                }
                if (c == 0) nsame += memcmp(p, q, 3 * sizeof(float)) == 0;
                if (d < (FR_R - 0.03) * N) {
                    double a = hi[i], b = ho[i];
                    sx += a, sy += b, sxx += a * a, syy += b * b, sxy += a * b;
                    om[c] += q[c];
                    if (c == 0) nobj++;
                }
            }
    }
    free(hi);
    free(ho);
    double mse = se / (3.0 * (double)nfar);
    m->far_psnr = mse > 0 ? 10 * log10(1 / mse) : INFINITY;
    m->far_identical = (double)nfar_same / (double)nfar;
    m->unchanged = (double)nsame / ((double)N * N);
    double n = 3.0 * (double)nobj, cov = sxy / n - sx / n * sy / n;
    double vx = sxx / n - sx / n * sx / n, vy = syy / n - sy / n * sy / n;
    m->detail_corr = vx > 0 && vy > 0 ? cov / sqrt(vx * vy) : 0;
    double best = INFINITY;
    int which = -1;
    const float *cand[3] = {fr_red, fr_yellow, fr_blue};
    for (int c = 0; c < 3; c++) m->object_mean[c] = (float)(om[c] / (double)nobj);
    for (int k = 0; k < 3; k++) {
        double d = 0;
        for (int c = 0; c < 3; c++) d += (m->object_mean[c] - cand[k][c]) * (m->object_mean[c] - cand[k][c]);
        if (d < best) best = d, which = k;
    }
    m->success = which == 1;
}

/* The demo prompts and the options the demo model edits best with
 * (tools/demo/eval_edits.py: EF-DDPM cfg-target 5, BDIA cfg 2 / 2, InfEdit's
 * blend word). */
static inline void fr_params(ie_edit_params *p, ie_method m) {
    ie_edit_params_init(p, m);
    p->source_prompt = "a red circle on the left on a blue background";
    p->target_prompt = "a yellow circle on the left on a blue background";
    p->device = "cpu";
    p->seed = 1;
    if (m == IE_METHOD_EF_DDPM) p->cfg_target = 5;
    if (m == IE_METHOD_BDIA) p->cfg_source = p->cfg_target = 2;
    if (m == IE_METHOD_INFEDIT) p->blend_words = "yellow";
}

#endif
