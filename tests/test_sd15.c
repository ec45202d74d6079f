/* The exact SD 1.5 configuration against PyTorch (slow; meson -Dslow_tests=true).
 *
 * The reference folder comes from tools/refdump/make_sd15_ref.py: the SD 1.5
 * UNet, CLIP-L and the SD VAE with random fp32 weights (4.2 GB) and per-block
 * dumps of a CFG-style batch-2 UNet call on an 8x8 latent, CLIP-L on two
 * prompts, VAE encode (64x64) and decode (8x8). Each network is loaded through
 * the real loader, run, and every block compared: max relative error <= 1e-3.
 *
 * INVEDIT_SD15_REF: the folder (default ~/.cache/invedit/sd15-ref; the test
 * is skipped when it is absent). INVEDIT_TEST_BACKENDS: "cpu" (default),
 * "vulkan" or "cpu,vulkan".
 */
#include "model/clip.h"
#include "refcheck.h"
#include "model/unet.h"
#include "model/vae.h"

static void run_unet(ie_backend *be, const sd_model_config *cfg, sd_weights *w) {
    char err[4096], dir[1300];
    double t0 = now();
    unet *u = NULL;
    ie_status s = unet_load(be, w, &cfg->unet, SD_WTYPE_F32, &u, err, sizeof err);
    TU_CHECK(s == IE_OK, "%s unet_load %s (%.1f s, %.0f MB)", BE_NAME, s ? err : "", now() - t0,
             s ? 0.0 : unet_weight_bytes(u) / 1e6);
    if (s) return;
    snprintf(dir, sizeof dir, "%s/ref/unet", REF);
    ie_tensor *x = upload_npy(be, dir, "x"), *ctx = upload_npy(be, dir, "ctx");
    float *t = load_npy(dir, "t", NULL, NULL);
    ie_tensor *out = new_tensor(be, x->shape[0], 4, x->shape[2], x->shape[3]);
    /* untimed warm-up (plans the activations), then the timed, checked call */
    s = unet_forward(u, out, x, t, ctx, NULL);
    if (!s) s = ie_backend_sync(be);
    ref_tap r = {"sd15/unet", dir, 0};
    u->tap = (sd_tap){tap_compare, &r};
    t0 = now();
    if (!s) s = unet_forward(u, out, x, t, ctx, NULL);
    if (!s) s = ie_backend_sync(be);
    TU_CHECK(s == IE_OK, "%s sd15/unet: unet_forward %s (%.2f s with block downloads)", BE_NAME, u->err, now() - t0);
    u->tap = (sd_tap){0};
    static const char *inputs[] = {"x", "ctx", "t", NULL};
    expect_all_matched("sd15/unet", &r, inputs, 0);
    t0 = now();
    s = unet_forward(u, out, x, t, ctx, NULL);
    if (!s) s = ie_backend_sync(be);
    printf("     sd15 unet: batch 2, 8x8 latent: %.2f s per call; activations %.1f MB\n", now() - t0,
           unet_activation_bytes(u) / 1e6);
    ie_tensor_free(x);
    ie_tensor_free(ctx);
    ie_tensor_free(out);
    free(t);
    unet_free(u);
}

static void run_clip(ie_backend *be, const sd_model_config *cfg, sd_weights *w) {
    char err[4096], dir[1300], path[1400];
    clip_text_model *m = NULL;
    ie_status s = clip_text_model_load(be, w, &cfg->text, SD_WTYPE_F32, &m, err, sizeof err);
    TU_CHECK(s == IE_OK, "%s clip_text_model_load %s", BE_NAME, s ? err : "");
    if (s) return;
    snprintf(dir, sizeof dir, "%s/ref/clip", REF);
    snprintf(path, sizeof path, "%s/ids.npy", dir);
    npy_array a;
    if (npy_read(path, &a, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    int32_t *ids = npy_to_i32(&a);
    int B = (int)a.shape[0], L = (int)a.shape[1];
    npy_free(&a);
    ie_tensor *out = ie_tensor_new(be, IE_F32, 3, (int64_t[]){B, L, cfg->text.hidden_size});
    ref_tap r = {"sd15/clip", dir, 0};
    m->tap = (sd_tap){tap_compare, &r};
    double t0 = now();
    s = clip_text_model_forward(m, out, ids, B, L, 1);
    TU_CHECK(s == IE_OK, "%s sd15/clip: clip_text_model_forward %s (%.2f s)", BE_NAME, m->err, now() - t0);
    static const char *inputs[] = {"ids", NULL};
    expect_all_matched("sd15/clip", &r, inputs, 0);
    ie_tensor_free(out);
    free(ids);
    clip_text_model_free(m);
}

static void run_vae(ie_backend *be, const sd_model_config *cfg, sd_weights *w) {
    char err[4096], dir[1300];
    vae *v = NULL;
    ie_status s = vae_load(be, w, &cfg->vae, VAE_ENCODER | VAE_DECODER, SD_WTYPE_F32, &v, err, sizeof err);
    TU_CHECK(s == IE_OK, "%s vae_load %s", BE_NAME, s ? err : "");
    if (s) return;
    snprintf(dir, sizeof dir, "%s/ref/vae_encode", REF);
    ie_tensor *img = upload_npy(be, dir, "image");
    int f = vae_factor(v);
    ie_tensor *mean = new_tensor(be, img->shape[0], 4, img->shape[2] / f, img->shape[3] / f);
    ie_tensor *logvar = new_tensor(be, img->shape[0], 4, img->shape[2] / f, img->shape[3] / f);
    ref_tap r = {"sd15/vae_encode", dir, 0};
    v->tap = (sd_tap){tap_compare, &r};
    double t0 = now();
    s = vae_encode_moments(v, mean, logvar, img);
    TU_CHECK(s == IE_OK, "%s sd15/vae_encode %s (%.2f s)", BE_NAME, v->err, now() - t0);
    check_tensor("sd15/vae_encode", dir, "mean", mean);
    check_tensor("sd15/vae_encode", dir, "logvar", logvar);
    static const char *enc_inputs[] = {"image", NULL};
    expect_all_matched("sd15/vae_encode", &r, enc_inputs, 2);
    ie_tensor_free(img);
    ie_tensor_free(mean);
    ie_tensor_free(logvar);

    snprintf(dir, sizeof dir, "%s/ref/vae_decode", REF);
    ie_tensor *lat = upload_npy(be, dir, "latent");
    img = new_tensor(be, lat->shape[0], 3, lat->shape[2] * f, lat->shape[3] * f);
    ref_tap rd = {"sd15/vae_decode", dir, 0};
    v->tap = (sd_tap){tap_compare, &rd};
    t0 = now();
    s = vae_decode(v, img, lat);
    TU_CHECK(s == IE_OK, "%s sd15/vae_decode %s (%.2f s)", BE_NAME, v->err, now() - t0);
    static const char *dec_inputs[] = {"latent", NULL};
    expect_all_matched("sd15/vae_decode", &rd, dec_inputs, 0);
    ie_tensor_free(img);
    ie_tensor_free(lat);
    vae_free(v);
}

static void run_backend(ie_backend *be, const char *name) {
    BE_NAME = name;
    printf("== %s: %s\n", name, ie_backend_description(be));
    sd_model_config cfg;
    double t0 = now();
    sd_weights *w = open_model(".", &cfg);
    char desc[512];
    printf("     %s\n", sd_model_config_describe(&cfg, desc, sizeof desc));
    run_clip(be, &cfg, w);
    run_vae(be, &cfg, w);
    run_unet(be, &cfg, w);
    sd_weights_close(w);
    printf("== %s: %.1f s\n", name, now() - t0);
}

int main(void) {
    const char *dir = getenv("INVEDIT_SD15_REF");
    const char *home = getenv("HOME");
    if (dir && *dir) snprintf(REF, sizeof REF, "%s", dir);
    else snprintf(REF, sizeof REF, "%s/.cache/invedit/sd15-ref", home ? home : ".");
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/ref/unet/out.npy", REF);
    if (!file_exists(probe)) {
        printf("skip: no SD 1.5 reference at %s; make it with\n"
               "  nice /usr/bin/python3 tools/refdump/make_sd15_ref.py --out %s\n",
               REF, REF);
        return 77;
    }
    const char *only = getenv("INVEDIT_TEST_BACKENDS");
    if (!only) only = "cpu";
    if (strstr(only, "cpu")) {
        ie_backend *cpu = ie_backend_cpu_new(0);
        run_backend(cpu, "cpu");
        ie_backend_free(cpu);
    }
    if (strstr(only, "vulkan")) {
        char err[512];
        ie_backend *vk = ie_backend_vulkan_new(-1, err, sizeof err);
        if (vk) {
            run_backend(vk, "vulkan");
            ie_backend_free(vk);
        } else {
            printf("skip vulkan: %s\n", err);
        }
    }
    return tu_finish("test_sd15");
}
