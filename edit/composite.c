/* Change-only compositing (composite.h has the method). */
#include "edit/composite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edit/image.h"

static const char *const mode_names[IE_COMPOSITE_COUNT] = {"keep-detail", "replace-region", "off"};

const char *ie_composite_mode_name(ie_composite_mode m) {
    return (unsigned)m < IE_COMPOSITE_COUNT ? mode_names[m] : "?";
}

bool ie_composite_mode_from_name(const char *s, ie_composite_mode *out) {
    if (!s || !*s) {
        *out = IE_COMPOSITE_KEEP_DETAIL;
        return true;
    }
    for (int i = 0; i < IE_COMPOSITE_COUNT; i++)
        if (!strcmp(s, mode_names[i])) {
            *out = (ie_composite_mode)i;
            return true;
        }
    return false;
}

/* --- working-size helpers -------------------------------------------------------- */

/* Separable Gaussian blur of a [H, W] map in place, kernel truncated at 3
 * sigma (so a value far from every nonzero stays an exact 0), borders clamped. */
static ie_status blur(float *m, int W, int H, double sigma) {
    if (sigma <= 0) return IE_OK;
    int r = (int)ceil(3 * sigma);
    float *k = malloc(sizeof(float) * (size_t)(2 * r + 1));
    float *tmp = malloc(sizeof(float) * (size_t)W * H);
    if (!k || !tmp) {
        free(k);
        free(tmp);
        return IE_ERR_NOMEM;
    }
    double sum = 0;
    for (int i = -r; i <= r; i++) sum += exp(-0.5 * i * i / (sigma * sigma));
    for (int i = -r; i <= r; i++) k[i + r] = (float)(exp(-0.5 * i * i / (sigma * sigma)) / sum);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float acc = 0;
            for (int i = -r; i <= r; i++) {
                int xx = x + i < 0 ? 0 : x + i >= W ? W - 1 : x + i;
                acc += k[i + r] * m[(size_t)y * W + xx];
            }
            tmp[(size_t)y * W + x] = acc;
        }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float acc = 0;
            for (int i = -r; i <= r; i++) {
                int yy = y + i < 0 ? 0 : y + i >= H ? H - 1 : y + i;
                acc += k[i + r] * tmp[(size_t)yy * W + x];
            }
            m[(size_t)y * W + x] = acc;
        }
    free(k);
    free(tmp);
    return IE_OK;
}

/* Max filter (dilation) with a square of radius r, in place. */
static ie_status grow(float *m, int W, int H, int r) {
    if (r <= 0) return IE_OK;
    float *tmp = malloc(sizeof(float) * (size_t)W * H);
    if (!tmp) return IE_ERR_NOMEM;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float v = 0;
            for (int xx = x - r < 0 ? 0 : x - r; xx <= x + r && xx < W; xx++)
                if (m[(size_t)y * W + xx] > v) v = m[(size_t)y * W + xx];
            tmp[(size_t)y * W + x] = v;
        }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float v = 0;
            for (int yy = y - r < 0 ? 0 : y - r; yy <= y + r && yy < H; yy++)
                if (tmp[(size_t)yy * W + x] > v) v = tmp[(size_t)yy * W + x];
            m[(size_t)y * W + x] = v;
        }
    free(tmp);
    return IE_OK;
}

/* Zeroes the 8-connected regions of nonzero values smaller than min_area. */
static ie_status drop_small_regions(float *m, int W, int H, long min_area) {
    size_t n = (size_t)W * H;
    int *label = calloc(n, sizeof *label);
    size_t *stack = malloc(n * sizeof *stack), *members = malloc(n * sizeof *members);
    if (!label || !stack || !members) {
        free(label);
        free(stack);
        free(members);
        return IE_ERR_NOMEM;
    }
    for (size_t start = 0; start < n; start++) {
        if (!(m[start] > 0) || label[start]) continue;
        size_t sp = 0, nm = 0;
        stack[sp++] = start;
        label[start] = 1;
        while (sp) {
            size_t p = stack[--sp];
            members[nm++] = p;
            int px = (int)(p % (size_t)W), py = (int)(p / (size_t)W);
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int qx = px + dx, qy = py + dy;
                    if ((!dx && !dy) || qx < 0 || qy < 0 || qx >= W || qy >= H) continue;
                    size_t q = (size_t)qy * W + qx;
                    if (m[q] > 0 && !label[q]) {
                        label[q] = 1;
                        stack[sp++] = q;
                    }
                }
        }
        if ((long)nm < min_area)
            for (size_t i = 0; i < nm; i++) m[members[i]] = 0;
    }
    free(label);
    free(stack);
    free(members);
    return IE_OK;
}

ie_status ie_change_mask(const ie_image *rec, const ie_image *edit, double threshold, int cell, float *mask) {
    int W = rec->width, H = rec->height;
    if (edit->width != W || edit->height != H || rec->channels < 3 || edit->channels < 3 || cell < 1 ||
        !(threshold > 0))
        return IE_ERR_ARG;
    size_t n = (size_t)W * H;
    for (size_t i = 0; i < n; i++) {
        float d = 0;
        for (int c = 0; c < 3; c++) {
            float v = fabsf(edit->pixels[i * edit->channels + c] - rec->pixels[i * rec->channels + c]);
            if (v > d) d = v;
        }
        mask[i] = d == d ? d : 1.0f; /* a NaN counts as changed */
    }
    ie_status st = blur(mask, W, H, cell / 2.0);
    double lo = 0.5 * threshold, hi = 1.5 * threshold;
    for (size_t i = 0; i < n && !st; i++) {
        double t = (mask[i] - lo) / (hi - lo);
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        mask[i] = (float)(t * t * (3 - 2 * t));
    }
    if (!st) st = drop_small_regions(mask, W, H, (long)cell * cell);
    if (!st) st = grow(mask, W, H, cell / 4);
    if (!st) st = blur(mask, W, H, cell / 4.0);
    for (size_t i = 0; i < n && !st; i++) {
        if (mask[i] < 1.0f / 1024) mask[i] = 0;
        else if (mask[i] > 1.0f - 1.0f / 1024) mask[i] = 1;
    }
    return st;
}

/* Box mean of radius r over a [H, W] map, in place (borders clamped). */
static ie_status box(float *m, int W, int H, int r) {
    float *tmp = malloc(sizeof(float) * (size_t)W * H);
    if (!tmp) return IE_ERR_NOMEM;
    float inv = 1.0f / (float)(2 * r + 1);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float acc = 0;
            for (int i = -r; i <= r; i++) acc += m[(size_t)y * W + (x + i < 0 ? 0 : x + i >= W ? W - 1 : x + i)];
            tmp[(size_t)y * W + x] = acc * inv;
        }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float acc = 0;
            for (int i = -r; i <= r; i++) acc += tmp[(size_t)(y + i < 0 ? 0 : y + i >= H ? H - 1 : y + i) * W + x];
            m[(size_t)y * W + x] = acc * inv;
        }
    free(tmp);
    return IE_OK;
}

ie_status ie_detail_gain(const ie_image *rec, const ie_image *edit, int cell, float *gain) {
    int W = rec->width, H = rec->height, r = cell / 2 > 0 ? cell / 2 : 1;
    size_t n = (size_t)W * H;
    if (edit->width != W || edit->height != H || rec->channels < 3 || edit->channels < 3) return IE_ERR_ARG;
    /* 21 moments: mean r (3), mean e (3), E[r_i r_j] (6, i <= j), E[e_i r_j] (9) */
    float *mo = malloc(sizeof(float) * n * 21);
    if (!mo) return IE_ERR_NOMEM;
    for (size_t p = 0; p < n; p++) {
        const float *R = rec->pixels + p * rec->channels, *E = edit->pixels + p * edit->channels;
        int k = 0;
        for (int i = 0; i < 3; i++) mo[k++ * n + p] = R[i];
        for (int i = 0; i < 3; i++) mo[k++ * n + p] = E[i];
        for (int i = 0; i < 3; i++)
            for (int j = i; j < 3; j++) mo[k++ * n + p] = R[i] * R[j];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) mo[k++ * n + p] = E[i] * R[j];
    }
    ie_status st = IE_OK;
    for (int k = 0; k < 21 && !st; k++) st = box(mo + (size_t)k * n, W, H, r);
    const double eps = 0.005;
    for (size_t p = 0; p < n && !st; p++) {
        double mr[3], me[3], S[3][3], X[3][3];
        int k = 0;
        for (int i = 0; i < 3; i++) mr[i] = mo[k++ * n + p];
        for (int i = 0; i < 3; i++) me[i] = mo[k++ * n + p];
        for (int i = 0; i < 3; i++)
            for (int j = i; j < 3; j++) S[i][j] = S[j][i] = mo[k++ * n + p] - mr[i] * mr[j] + (i == j ? eps : 0);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) X[i][j] = mo[k++ * n + p] - me[i] * mr[j] + (i == j ? eps : 0);
        /* A = X S^-1 (S symmetric positive definite) */
        double c00 = S[1][1] * S[2][2] - S[1][2] * S[2][1], c01 = S[1][2] * S[2][0] - S[1][0] * S[2][2],
               c02 = S[1][0] * S[2][1] - S[1][1] * S[2][0];
        double det = S[0][0] * c00 + S[0][1] * c01 + S[0][2] * c02;
        double inv[3][3] = {{c00, S[0][2] * S[2][1] - S[0][1] * S[2][2], S[0][1] * S[1][2] - S[0][2] * S[1][1]},
                            {c01, S[0][0] * S[2][2] - S[0][2] * S[2][0], S[0][2] * S[1][0] - S[0][0] * S[1][2]},
                            {c02, S[0][1] * S[2][0] - S[0][0] * S[2][1], S[0][0] * S[1][1] - S[0][1] * S[1][0]}};
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                double v = 0;
                for (int l = 0; l < 3; l++) v += X[i][l] * inv[l][j] / det;
                v = v == v ? (v < -4 ? -4 : v > 4 ? 4 : v) : 0;
                gain[(size_t)(i * 3 + j) * n + p] = (float)v;
            }
    }
    for (int k = 0; k < 9 && !st; k++) st = box(gain + (size_t)k * n, W, H, r);
    free(mo);
    return st;
}

/* --- full resolution --------------------------------------------------------------- */

/* Bilinear resampling of [h, w] maps to W x H (pixel centres aligned): per
 * output column / row the two source indices and the weight, computed once. */
typedef struct lerp_axis {
    int *i0, *i1;
    float *f;
} lerp_axis;

static bool lerp_axis_make(lerp_axis *a, int n_in, int n_out) {
    a->i0 = malloc(sizeof(int) * (size_t)n_out);
    a->i1 = malloc(sizeof(int) * (size_t)n_out);
    a->f = malloc(sizeof(float) * (size_t)n_out);
    if (!a->i0 || !a->i1 || !a->f) return false;
    for (int o = 0; o < n_out; o++) {
        double s = (o + 0.5) * n_in / n_out - 0.5;
        if (s < 0) s = 0;
        if (s > n_in - 1) s = n_in - 1;
        a->i0[o] = (int)s;
        a->i1[o] = a->i0[o] + 1 < n_in ? a->i0[o] + 1 : a->i0[o];
        a->f[o] = (float)(s - a->i0[o]);
    }
    return true;
}

static void lerp_axis_free(lerp_axis *a) {
    free(a->i0);
    free(a->i1);
    free(a->f);
}

static inline float sample(const float *m, int w, const lerp_axis *ax, const lerp_axis *ay, int X, int Y) {
    const float *r0 = m + (size_t)ay->i0[Y] * w, *r1 = m + (size_t)ay->i1[Y] * w;
    int x0 = ax->i0[X], x1 = ax->i1[X];
    float a = r0[x0], b = r0[x1], c = r1[x0], d = r1[x1], fx = ax->f[X], fy = ay->f[Y];
    if (a == 0 && b == 0 && c == 0 && d == 0) return 0;
    float top = a + fx * (b - a), bot = c + fx * (d - c);
    return top + fy * (bot - top);
}

static float clamp01(float v) { return v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; }

ie_status ie_composite(const ie_composite_args *a, ie_image *out, ie_image *mask_out, ie_image *unmasked) {
    const ie_image *in = a->input;
    int W = in->width, H = in->height, C = in->channels;
    int w = a->edit->width, h = a->edit->height;
    memset(out, 0, sizeof *out);
    if (mask_out) memset(mask_out, 0, sizeof *mask_out);
    if (unmasked) memset(unmasked, 0, sizeof *unmasked);
    if (C < 3 || (a->mode != IE_COMPOSITE_OFF && (!a->rec || !a->work || a->rec->width != w || a->rec->height != h ||
                                                  a->work->width != w || a->work->height != h)))
        return IE_ERR_ARG;
    ie_image up = {0}, low = {0};
    float *m = NULL, *wd = NULL;
    lerp_axis ax = {0}, ay = {0};
    ie_status st = lerp_axis_make(&ax, w, W) && lerp_axis_make(&ay, h, H) ? IE_OK : IE_ERR_NOMEM;
    if (!st) st = ie_image_resize(a->edit, W, H, &up);
    if (!st && a->mode == IE_COMPOSITE_KEEP_DETAIL) st = ie_image_resize(a->work, W, H, &low);
    if (!st && a->mode != IE_COMPOSITE_OFF) {
        m = malloc(sizeof(float) * (size_t)w * h);
        st = m ? ie_change_mask(a->rec, a->edit, a->threshold, a->cell, m) : IE_ERR_NOMEM;
    }
    if (!st && a->mode == IE_COMPOSITE_KEEP_DETAIL) {
        wd = malloc(sizeof(float) * (size_t)w * h * 9);
        st = wd ? ie_detail_gain(a->rec, a->edit, a->cell, wd) : IE_ERR_NOMEM;
    }
    if (!st) st = ie_image_alloc(out, W, H, C);
    if (!st && mask_out) st = ie_image_alloc(mask_out, W, H, 1);
    if (!st && unmasked) st = ie_image_alloc(unmasked, W, H, C);
    if (!st) {
        for (int Y = 0; Y < H; Y++)
            for (int X = 0; X < W; X++) {
                size_t i = (size_t)Y * W + X;
                const float *p = in->pixels + i * C;
                float *o = out->pixels + i * C;
                float mm = 1.0f;
                bool detail = false;
                if (a->mode != IE_COMPOSITE_OFF) {
                    mm = sample(m, w, &ax, &ay, X, Y);
                    if (a->region) { /* the selection's 0.5 contour is its edge: full edit inside it */
                        float r = a->region[i] > 0 ? 2 * a->region[i] : 0.0f;
                        mm *= r < 1 ? r : 1.0f;
                    }
                    if (mm < 1.0f / 1024) mm = 0;
                    detail = a->mode == IE_COMPOSITE_KEEP_DETAIL && (mm > 0 || unmasked);
                }
                float e[3], hf[3];
                for (int c = 0; c < 3; c++) e[c] = up.pixels[i * 3 + c];
                if (detail) {
                    for (int c = 0; c < 3; c++) hf[c] = p[c] - low.pixels[i * 3 + c];
                    for (int c = 0; c < 3; c++)
                        for (int k = 0; k < 3; k++)
                            e[c] += sample(wd + (size_t)(c * 3 + k) * w * h, w, &ax, &ay, X, Y) * hf[k];
                }
                for (int c = 0; c < 3; c++) e[c] = clamp01(e[c]);
                if (unmasked) {
                    for (int c = 0; c < 3; c++) unmasked->pixels[i * C + c] = e[c];
                    if (C == 4) unmasked->pixels[i * C + 3] = p[3];
                }
                if (mask_out) mask_out->pixels[i] = mm;
                if (mm == 0) {
                    memcpy(o, p, sizeof(float) * (size_t)C); /* unchanged: the input, bit for bit */
                    continue;
                }
                for (int c = 0; c < 3; c++) o[c] = mm >= 1.0f ? e[c] : clamp01(p[c] + mm * (e[c] - p[c]));
                if (C == 4) o[3] = p[3];
            }
    }
    free(m);
    free(wd);
    lerp_axis_free(&ax);
    lerp_axis_free(&ay);
    ie_image_free(&up);
    ie_image_free(&low);
    if (st) {
        ie_image_free(out);
        if (mask_out) ie_image_free(mask_out);
        if (unmasked) ie_image_free(unmasked);
    }
    return st;
}
