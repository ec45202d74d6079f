/* The public API's whole-image operations (edit/api.c) through libinvedit.so
 * and <invedit.h> alone, as a program using the library sees them: version,
 * device strings, the model description, generate, reconstruct, the VAE round
 * trip and invert on models/demo (CPU backend, a few steps). */
#include <invedit.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures = 0, checks = 0;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (cond) {                                                                                                    \
            printf("ok   ");                                                                                           \
        } else {                                                                                                       \
            printf("FAIL ");                                                                                           \
            failures++;                                                                                                \
        }                                                                                                              \
        printf(__VA_ARGS__);                                                                                           \
        printf("\n");                                                                                                  \
    } while (0)

/* A 64x64 red disc on the left on a blue background. */
static void disc(ie_image *img) {
    ie_image_alloc(img, 64, 64, 3);
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++) {
            float *p = img->pixels + ((size_t)y * 64 + x) * 3;
            int in = (x - 20) * (x - 20) + (y - 32) * (y - 32) <= 144;
            p[0] = in ? 0.86f : 0.12f, p[1] = in ? 0.12f : 0.24f, p[2] = in ? 0.12f : 0.78f;
        }
}

static double mean_abs_diff(const ie_image *a, const ie_image *b) {
    double s = 0;
    size_t n = (size_t)a->width * a->height * 3;
    for (size_t i = 0; i < n; i++)
        s += a->pixels[i] > b->pixels[i] ? a->pixels[i] - b->pixels[i] : b->pixels[i] - a->pixels[i];
    return s / (double)n;
}

int main(void) {
    char err[1024] = "", want[32];
    snprintf(want, sizeof want, "%d.%d.%d", IE_VERSION_MAJOR, IE_VERSION_MINOR, IE_VERSION_PATCH);
    CHECK(!strcmp(ie_version_string(), want), "version %s (header %s)", ie_version_string(), want);
    CHECK(ie_version_number() == IE_VERSION_NUMBER, "version number %d", ie_version_number());
    CHECK(ie_device_valid("vulkan:1", err, sizeof err) && ie_device_valid("cpu", err, sizeof err),
          "device strings cpu, vulkan:1 valid");
    CHECK(!ie_device_valid("gpu", err, sizeof err) && err[0], "device 'gpu' refused: %s", err);

    const char *root = getenv("INVEDIT_SOURCE_ROOT");
    char model[4096], missing[4096];
    snprintf(model, sizeof model, "%s/models/demo", root ? root : ".");
    snprintf(missing, sizeof missing, "%s/models/no-such-model", root ? root : ".");

    char *text = NULL;
    err[0] = 0;
    ie_status st = ie_model_describe(missing, NULL, &text, err, sizeof err);
    CHECK(st != IE_OK && !text && err[0], "describe a missing model: %s, %s", ie_status_name(st), err);
    st = ie_model_describe(model, NULL, &text, err, sizeof err);
    CHECK(st == IE_OK && text && strstr(text, "check: all ") && strstr(text, "tokenizer: "), "describe models/demo: %s",
          ie_status_name(st));
    ie_free(text);
    ie_session_options bad = {NULL, NULL, NULL, "sometimes"};
    st = ie_model_describe(model, &bad, &text, err, sizeof err);
    CHECK(st == IE_ERR_ARG && !text, "describe with ema 'sometimes': %s", err);

    ie_session *s = NULL;
    st = ie_session_open(model, "cpu", &s, err, sizeof err);
    CHECK(st == IE_OK, "open models/demo on the CPU: %s", st ? err : ie_session_device(s));
    if (st) return 1;

    /* generate: sizes rounded to the size multiple, the same seed gives the same image */
    ie_edit_params g;
    ie_generate_params_init(&g);
    CHECK(g.steps == 50 && g.cfg_target == 5.0 && g.gamma == 0.0, "generate defaults: 50 steps, cfg 5, gamma 0");
    g.target_prompt = "a green square on the right on a white background";
    g.steps = 6;
    int m = ie_session_size_multiple(s);
    ie_image a = {0}, b = {0};
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    st = ie_generate(s, &g, m + m / 2 + 1, 0, &a, NULL, NULL, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    const double wall = (double)(w1.tv_sec - w0.tv_sec) + 1e-9 * (double)(w1.tv_nsec - w0.tv_nsec);
    CHECK(!st && a.width == 2 * m && a.height == ie_session_native_size(s) && a.channels == 3,
          "generate (%d+%d+1) x native -> %dx%d", m, m / 2, a.width, a.height);
    int64_t calls = 0, evals = 0;
    ie_session_last_run(s, &calls, &evals);
    /* at least one pass a step (BDIA's sampler may add one), each a CFG batch of two */
    CHECK(calls >= 6 && calls <= 8 && evals == 2 * calls,
          "generate's last run: %lld UNet passes, %lld evaluations (6 steps, CFG)", (long long)calls, (long long)evals);
    /* the time inside the UNet calls: some, and not more than the whole call took */
    const double unet_s = ie_session_last_unet_seconds(s);
    CHECK(unet_s > 0 && unet_s <= wall, "generate's last run: %.4f s in the UNet of %.4f s", unet_s, wall);
    st = ie_generate(s, &g, m + m / 2 + 1, 0, &b, NULL, NULL, err, sizeof err);
    CHECK(!st && b.width == a.width && mean_abs_diff(&a, &b) == 0, "generate twice with one seed: the same pixels");
    ie_image_free(&b);
    g.seed++;
    st = ie_generate(s, &g, m + m / 2 + 1, 0, &b, NULL, NULL, err, sizeof err);
    CHECK(!st && mean_abs_diff(&a, &b) > 0, "another seed: another image");
    ie_image_free(&a);
    ie_image_free(&b);
    st = ie_generate(s, &g, -1, 64, &a, NULL, NULL, err, sizeof err);
    CHECK(st == IE_ERR_ARG, "generate with a negative width refused: %s", err);

    /* reconstruct: BDIA's exact inversion gives the input back (the composite keeps unchanged pixels) */
    ie_image in = {0}, rec = {0}, vae = {0};
    disc(&in);
    ie_edit_params p;
    ie_edit_params_init(&p, IE_METHOD_BDIA);
    p.source_prompt = "a red circle on the left on a blue background";
    p.target_prompt = "a yellow circle on the left on a blue background";
    p.steps = 10;
    p.no_cache = true;
    ie_edit_params r = p;
    ie_reconstruct_params(&r);
    CHECK(r.target_prompt == p.source_prompt && r.cfg_target == p.cfg_source && !r.prompt_to_prompt,
          "reconstruct parameters: the source prompt and guidance on both sides");
    st = ie_reconstruct(s, &p, &in, &rec, NULL, NULL, err, sizeof err);
    double d = st ? 1 : mean_abs_diff(&in, &rec);
    CHECK(!st && rec.width == 64 && d < 0.01, "reconstruct with bdia: mean |difference| %.5f", d);
    st = ie_vae_roundtrip(s, &in, 0, &vae, err, sizeof err);
    d = st ? 1 : mean_abs_diff(&in, &vae);
    CHECK(!st && vae.width == 64 && vae.channels == 3 && d > 0 && d < 0.1, "VAE round trip: mean |difference| %.4f", d);

    /* invert: EF-DDPM gives x_N and one noise map per step; InfEdit inverts nothing */
    ie_latents lat = {0};
    ie_edit_params e;
    ie_edit_params_init(&e, IE_METHOD_EF_DDPM);
    e.source_prompt = p.source_prompt;
    e.steps = 8;
    st = ie_invert(s, &e, &in, &lat, err, sizeof err);
    CHECK(!st && lat.data && lat.n == 9 && lat.channels > 0 && lat.height > 0 && lat.width == lat.height,
          "invert with ef-ddpm, 8 steps: [%d, %d, %d, %d]", lat.n, lat.channels, lat.height, lat.width);
    ie_latents_free(&lat);
    CHECK(!lat.data, "ie_latents_free clears the struct");
    e.method = IE_METHOD_INFEDIT;
    st = ie_invert(s, &e, &in, &lat, err, sizeof err);
    CHECK(st == IE_ERR_ARG && !lat.data, "invert with infedit refused: %s", err);
    CHECK(ie_latents_save_npy(&lat, "/nonexistent/x.npy", err, sizeof err) == IE_ERR_ARG, "no latents to save: %s",
          err);

    ie_image_free(&in);
    ie_image_free(&rec);
    ie_image_free(&vae);
    ie_session_close(s);
    printf("test_api: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
