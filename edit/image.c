/* ie_image helpers: allocation and resampling.
 *
 * Resampling is separable with a Catmull-Rom (bicubic, a = -0.5) kernel whose
 * support widens by the scale factor when shrinking, so downscaling filters
 * out what it cannot represent (as PIL's BICUBIC does). Values are clamped to
 * [0, 1] afterwards. */
#include "edit/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ie_status ie_image_alloc(ie_image *img, int width, int height, int channels) {
    memset(img, 0, sizeof *img);
    if (width < 1 || height < 1 || channels < 1 || channels > 4) return IE_ERR_ARG;
    img->pixels = calloc((size_t)width * height * channels, sizeof(float));
    if (!img->pixels) return IE_ERR_NOMEM;
    img->width = width;
    img->height = height;
    img->channels = channels;
    return IE_OK;
}

void ie_image_free(ie_image *img) {
    if (!img) return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

static double cubic(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

/* Weights of one output sample: taps [first, first + n) of the input. */
typedef struct taps {
    int first, n;
    float *w;
} taps;

static taps *make_taps(int in, int out) {
    double scale = (double)in / out, support = scale > 1 ? 2 * scale : 2;
    double filter_scale = scale > 1 ? scale : 1;
    int maxn = (int)ceil(support) * 2 + 1;
    taps *t = calloc((size_t)out, sizeof *t);
    float *w = calloc((size_t)out * maxn, sizeof *w);
    if (!t || !w) {
        free(t);
        free(w);
        return NULL;
    }
    for (int o = 0; o < out; o++) {
        double center = (o + 0.5) * scale;
        int lo = (int)floor(center - support), hi = (int)ceil(center + support);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        t[o].first = lo;
        t[o].n = hi - lo;
        t[o].w = w + (size_t)o * maxn;
        double sum = 0;
        for (int i = lo; i < hi; i++) sum += cubic((i + 0.5 - center) / filter_scale);
        for (int i = lo; i < hi; i++)
            t[o].w[i - lo] = (float)(sum != 0 ? cubic((i + 0.5 - center) / filter_scale) / sum : 0);
    }
    return t;
}

static void free_taps(taps *t) {
    if (t) free(t[0].w);
    free(t);
}

ie_status ie_image_resize(const ie_image *in, int width, int height, ie_image *out) {
    ie_status s = ie_image_alloc(out, width, height, in->channels);
    if (s) return s;
    int C = in->channels;
    if (width == in->width && height == in->height) {
        memcpy(out->pixels, in->pixels, sizeof(float) * (size_t)width * height * C);
        return IE_OK;
    }
    taps *tx = make_taps(in->width, width), *ty = make_taps(in->height, height);
    float *tmp = malloc(sizeof(float) * (size_t)width * in->height * C); /* horizontal pass */
    if (!tx || !ty || !tmp) {
        free_taps(tx);
        free_taps(ty);
        free(tmp);
        ie_image_free(out);
        return IE_ERR_NOMEM;
    }
    for (int y = 0; y < in->height; y++) {
        const float *src = in->pixels + (size_t)y * in->width * C;
        float *dst = tmp + (size_t)y * width * C;
        for (int x = 0; x < width; x++)
            for (int c = 0; c < C; c++) {
                float acc = 0;
                for (int k = 0; k < tx[x].n; k++) acc += tx[x].w[k] * src[(tx[x].first + k) * C + c];
                dst[x * C + c] = acc;
            }
    }
    for (int y = 0; y < height; y++) {
        float *dst = out->pixels + (size_t)y * width * C;
        for (int x = 0; x < width * C; x++) {
            float acc = 0;
            for (int k = 0; k < ty[y].n; k++) acc += ty[y].w[k] * tmp[(size_t)(ty[y].first + k) * width * C + x];
            dst[x] = acc < 0 ? 0 : acc > 1 ? 1 : acc;
        }
    }
    free_taps(tx);
    free_taps(ty);
    free(tmp);
    return IE_OK;
}

void ie_working_size(int width, int height, int native, int multiple, int *w_out, int *h_out) {
    double scale = (double)native / (width > height ? width : height);
    int w = (int)lround(width * scale / multiple) * multiple;
    int h = (int)lround(height * scale / multiple) * multiple;
    *w_out = w < multiple ? multiple : w;
    *h_out = h < multiple ? multiple : h;
}
