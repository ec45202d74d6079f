/* Full-resolution edits keep the photo's own pixels (edit/composite.h).
 *
 * A 1024x1024 scene with fine texture (tests/fullres_scene.h: the demo
 * model's red disc on blue, with weave, thin strokes and grain) is edited
 * red -> yellow with the demo model on the CPU backend, by each method with
 * the default composite (keep-detail). Checked, per method:
 *   - every pixel of the far background (beyond r + 0.25 N from the disc's
 *     centre) is bit-identical to the input, and the change mask is 0 there;
 *   - the object's mean colour is nearest yellow (of red, yellow, blue);
 *   - detail is kept inside the object: the correlation of the high-pass
 *     detail (pixel - 9x9 box mean), input against output, is >= 0.6;
 *   - no seam: on the outer half of the mask's soft border (0 < mask < 0.5,
 *     where the edit blends into the kept input; the inner half is the
 *     edit itself, whose new edges may be stronger than the old), the output's
 *     gradient (largest |forward difference| over channels and directions)
 *     exceeds the input's own largest gradient in the 3x3 neighbourhood by
 *     at most 6/255. Why that bound: there the output is
 *     input + m (e - input), so the added gradient is grad(m) (e - input) +
 *     m grad(e - input). The mask ramp spans at least a latent cell scaled
 *     to full size (>= 16 px here, so |grad m| <= ~1/16), |e - input| in the
 *     background is the model's drift (< 0.25), and e - input is the
 *     upsampled smooth edit minus the input's low-pass (gradient < 0.03):
 *     about 0.016 + 0.03 < 0.05 at worst, while a visible seam is a step of
 *     several levels between two pixels. 6/255 = 0.024 is what we allow.
 * InfEdit at work-size 128 (twice what the demo model was trained at, so its
 * edit there is poor) takes effect and still keeps most of the far
 * background; work-size 5000 is refused.
 * And with InfEdit once each: composite off is today's plain resize (no far
 * pixel identical), replace-region keeps the far background but not the
 * object's detail (correlation < 0.6), so the detail check can fail.
 * Numbers per method are printed (bench/fullres.c adds the time overhead). */
#include "testutil.h"

#include "fullres_scene.h"
#include "edit/image.h"
#include "edit/pipeline.h"

static const char *model_path(void) {
    const char *p = getenv("INVEDIT_TEST_MODEL");
    static char buf[1024];
    if (p && *p) return p;
    const char *root = getenv("INVEDIT_SOURCE_ROOT");
    snprintf(buf, sizeof buf, "%s/models/demo", root ? root : ".");
    return buf;
}

static float grad_at(const ie_image *im, int x, int y) {
    int W = im->width, C = im->channels;
    const float *p = im->pixels + ((size_t)y * W + x) * C;
    float g = 0;
    for (int c = 0; c < 3; c++) {
        float gx = fabsf(p[C + c] - p[c]), gy = fabsf(p[(size_t)W * C + c] - p[c]);
        if (gx > g) g = gx;
        if (gy > g) g = gy;
    }
    return g;
}

/* Largest excess of the output's gradient over the input's local one on the soft border. */
static double seam_excess(const ie_image *in, const ie_image *out, const ie_image *mask, long *n_border) {
    int N = in->width;
    double worst = 0;
    *n_border = 0;
    for (int y = 1; y < N - 2; y++)
        for (int x = 1; x < N - 2; x++) {
            float m = mask->pixels[(size_t)y * N + x];
            if (!(m > 0 && m < 0.5f)) continue;
            (*n_border)++;
            float local = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    float g = grad_at(in, x + dx, y + dy);
                    if (g > local) local = g;
                }
            double e = grad_at(out, x, y) - local;
            if (e > worst) worst = e;
        }
    return worst;
}

static bool far_mask_zero(const ie_image *mask) {
    int N = mask->width;
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++)
            if (fr_dist(N, x, y) > (FR_R + 0.25) * N && mask->pixels[(size_t)y * N + x] != 0) return false;
    return true;
}

int main(void) {
    const int N = 1024;
    char err[1024] = "";
    ie_image in;
    TU_CHECK(fr_make_scene(&in, N) == IE_OK, "scene %dx%d", N, N);
    ie_session *s = NULL;
    ie_status st = ie_session_open(model_path(), "cpu", &s, err, sizeof err);
    TU_CHECK(st == IE_OK, "open %s: %s", model_path(), st ? err : "ok");
    if (st) return tu_finish("test_fullres");
    const ie_method methods[3] = {IE_METHOD_INFEDIT, IE_METHOD_EF_DDPM, IE_METHOD_BDIA};
    for (int k = 0; k < 3; k++) {
        ie_edit_params p;
        fr_params(&p, methods[k]);
        const char *name = ie_method_name(methods[k]);
        ie_image out = {0}, mask = {0};
        ie_edit_extras ex = {NULL, &mask, NULL};
        st = ie_edit_ex(s, &p, &in, &out, &ex, NULL, NULL, err, sizeof err);
        TU_CHECK(st == IE_OK, "%s: edit %dx%d: %s", name, N, N, st ? err : "ok");
        if (st) continue;
        fr_measures m;
        fr_measure(&in, &out, &m);
        long nb = 0;
        double seam = seam_excess(&in, &out, &mask, &nb);
        char ps[32];
        snprintf(ps, sizeof ps, isinf(m.far_psnr) ? "inf" : "%.2f", m.far_psnr);
        printf("info %-8s far PSNR %s dB, far identical %.2f %%, unchanged %.1f %%, detail corr %.3f, "
               "object (%.0f, %.0f, %.0f), border %ld px, seam excess %.4f\n",
               name, ps, 100 * m.far_identical, 100 * m.unchanged, m.detail_corr, 255 * m.object_mean[0],
               255 * m.object_mean[1], 255 * m.object_mean[2], nb, seam);
        TU_CHECK(m.far_identical == 1.0, "%s: far background bit-identical (%.4f %% of its pixels)", name,
                 100 * m.far_identical);
        TU_CHECK(far_mask_zero(&mask), "%s: change mask 0 on the far background", name);
        TU_CHECK(m.success, "%s: object colour nearest yellow: (%.0f, %.0f, %.0f)", name, 255 * m.object_mean[0],
                 255 * m.object_mean[1], 255 * m.object_mean[2]);
        TU_CHECK(m.detail_corr >= 0.6, "%s: detail correlation inside the object %.3f >= 0.6", name, m.detail_corr);
        TU_CHECK(nb > 0 && seam <= 6.0 / 255, "%s: seam: gradient excess on the mask border %.4f <= %.4f (%ld px)",
                 name, seam, 6.0 / 255, nb);
        ie_image_free(&out);
        ie_image_free(&mask);
    }
    /* the other modes, with InfEdit */
    const char *modes[2] = {"off", "replace-region"};
    for (int k = 0; k < 2; k++) {
        ie_edit_params p;
        fr_params(&p, IE_METHOD_INFEDIT);
        p.composite = modes[k];
        ie_image out = {0};
        st = ie_edit(s, &p, &in, &out, NULL, NULL, err, sizeof err);
        TU_CHECK(st == IE_OK, "infedit composite %s: %s", modes[k], st ? err : "ok");
        if (st) continue;
        fr_measures m;
        fr_measure(&in, &out, &m);
        printf("info infedit composite=%s: far PSNR %.2f dB, far identical %.2f %%, detail corr %.3f\n", modes[k],
               m.far_psnr, 100 * m.far_identical, m.detail_corr);
        if (k == 0)
            TU_CHECK(m.far_identical == 0 && m.far_psnr < 40,
                     "composite off: the plain resized render everywhere "
                     "(%.2f %% far pixels identical, %.2f dB)",
                     100 * m.far_identical, m.far_psnr);
        else
            TU_CHECK(m.far_identical == 1.0 && m.detail_corr < 0.6 && m.success,
                     "replace-region: far background kept, object replaced without the input's detail "
                     "(corr %.3f), edit landed",
                     m.detail_corr);
        ie_image_free(&out);
    }
    /* the working size: 128 instead of the demo model's native 64 (4x the latent pixels); the
     * far background is still the input's, and the result differs from the native one */
    {
        ie_edit_params p;
        fr_params(&p, IE_METHOD_INFEDIT);
        ie_image a = {0}, b = {0};
        st = ie_edit(s, &p, &in, &a, NULL, NULL, err, sizeof err);
        p.work_size = 128;
        if (!st) st = ie_edit(s, &p, &in, &b, NULL, NULL, err, sizeof err);
        TU_CHECK(st == IE_OK, "infedit at work-size 128: %s", st ? err : "ok");
        if (!st) {
            fr_measures m;
            fr_measure(&in, &b, &m);
            bool differ = memcmp(a.pixels, b.pixels, sizeof(float) * 3 * (size_t)N * N) != 0;
            printf("info infedit work-size 128: far identical %.2f %%, detail corr %.3f, object (%.0f, %.0f, %.0f)\n",
                   100 * m.far_identical, m.detail_corr, 255 * m.object_mean[0], 255 * m.object_mean[1],
                   255 * m.object_mean[2]);
            /* the demo model was trained at 64x64 only: at 128 its edit is poor (reported above),
             * so only that the option takes effect and the compositing still keeps pixels */
            TU_CHECK(differ && m.far_identical > 0.5,
                     "work-size 128 changes the result (%s) and keeps most of the far "
                     "background (%.1f %%)",
                     differ ? "yes" : "no", 100 * m.far_identical);
        }
        ie_image_free(&a);
        ie_image_free(&b);
        p.work_size = 5000;
        st = ie_edit(s, &p, &in, &a, NULL, NULL, err, sizeof err);
        TU_CHECK(st == IE_ERR_ARG && strstr(err, "work-size"), "work-size 5000 rejected: %s", err);
    }
    /* a bad mode is a clear error */
    {
        ie_edit_params p;
        fr_params(&p, IE_METHOD_INFEDIT);
        p.composite = "sharpen";
        ie_image out = {0};
        st = ie_edit(s, &p, &in, &out, NULL, NULL, err, sizeof err);
        TU_CHECK(st == IE_ERR_ARG && strstr(err, "composite"), "composite 'sharpen' rejected: %s", err);
    }
    ie_session_close(s);
    ie_image_free(&in);
    return tu_finish("test_fullres");
}
