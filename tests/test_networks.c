/* The SD networks (model/clip, unet, vae) against PyTorch.
 *
 * tests/data/ref holds small random models in the diffusers layout and, per
 * case, the inputs and the expected output of every block, dumped by
 * tools/refdump/make_refs.py from tools/sdref. Each model is loaded through
 * the real loader (sd_weights_open, sd_model_config_load), run on the CPU
 * backend and on Vulkan when a device is there, and every tapped block is
 * compared with its dump: max relative error (testutil.h) <= 1e-3.
 *
 * INVEDIT_TEST_BACKENDS=cpu (or vulkan) restricts the backends.
 */
#include "refcheck.h"
#include "model/sd.h"

#include <glib.h>

/* --- UNet ---------------------------------------------------------------------------- */

/* The attention-control hook of the "hook" case (see make_refs.py): up-block
 * self-attention takes row 1's k/v from row 0; cross-attention probabilities
 * of row 1 are replaced by row 0's. Also checks the call metadata. */
typedef struct hook_state {
    int calls, probs_calls, next_index, bad;
} hook_state;

static ie_status copy_row(ie_backend *be, ie_tensor *t, int from, int to) {
    ie_tensor a = nn_row(t, from), b = nn_row(t, to);
    return ie_copy(be, &b, &a);
}

static ie_status edit_hook(void *user, unet_hook_stage stage, unet_attn_call *c) {
    hook_state *h = user;
    if (stage == UNET_HOOK_QKV) {
        h->calls++;
        if (c->index != h->next_index++) h->bad++;
        if (c->q->shape[1] != (int64_t)c->height * c->width || c->q->shape[2] != c->channels ||
            c->k->shape[1] != (c->cross ? 77 : c->q->shape[1]) || c->heads < 1)
            h->bad++;
        if (!c->cross && c->place == UNET_UP) {
            ie_status s = copy_row(c->be, c->k, 0, 1);
            if (!s) s = copy_row(c->be, c->v, 0, 1);
            return s;
        }
        c->want_probs = c->cross;
        return IE_OK;
    }
    h->probs_calls++;
    if (!c->probs || c->probs->shape[1] != c->heads || c->probs->shape[3] != 77) h->bad++;
    return copy_row(c->be, c->probs, 0, 1);
}

static void run_unet_case(ie_backend *be, unet *u, const char *model, const char *cs) {
    char dir[1200], label[128];
    snprintf(dir, sizeof dir, "%s/%s/ref/%s", REF, model, cs);
    snprintf(label, sizeof label, "%s/%s", model, cs);
    ie_tensor *x = upload_npy(be, dir, "x");
    ie_tensor *ctx = upload_npy(be, dir, "ctx");
    float *t = load_npy(dir, "t", NULL, NULL);
    char wpath[1300];
    snprintf(wpath, sizeof wpath, "%s/w.npy", dir);
    float *w = file_exists(wpath) ? load_npy(dir, "w", NULL, NULL) : NULL;
    ie_tensor *out = new_tensor(be, x->shape[0], u->config.out_channels, x->shape[2], x->shape[3]);
    ref_tap r = {label, dir, 0};
    u->tap = (sd_tap){tap_compare, &r};
    hook_state hs = {0};
    if (!strcmp(cs, "hook")) {
        u->hook = edit_hook;
        u->hook_user = &hs;
    }
    double t0 = now();
    ie_status s = unet_forward(u, out, x, t, ctx, w);
    if (s == IE_OK) s = ie_backend_sync(be);
    double dt = now() - t0;
    TU_CHECK(s == IE_OK, "%s %s: unet_forward %s %s (%.2f s)", BE_NAME, label, ie_status_name(s), u->err, dt);
    static const char *inputs[] = {"x", "ctx", "t", "w", NULL};
    expect_all_matched(label, &r, inputs, 0);
    if (u->hook) {
        TU_CHECK(hs.calls == 2 * u->n_attn_layers && hs.bad == 0 && hs.probs_calls == u->n_attn_layers,
                 "%s %s: hook called %d times (want %d), %d with probabilities (want %d), %d bad calls", BE_NAME, label,
                 hs.calls, 2 * u->n_attn_layers, hs.probs_calls, u->n_attn_layers, hs.bad);
        u->hook = NULL;
    }
    u->tap = (sd_tap){0};
    ie_tensor_free(x);
    ie_tensor_free(ctx);
    ie_tensor_free(out);
    free(t);
    free(w);
}

static void test_unet(ie_backend *be, sd_wtype wt, const char *model, const char *const *cases) {
    sd_model_config cfg;
    sd_weights *w = open_model(model, &cfg);
    char err[2048];
    unet *u = NULL;
    ie_status s = unet_load(be, w, &cfg.unet, wt, &u, err, sizeof err);
    TU_CHECK(s == IE_OK, "%s %s: unet_load (%s) %s", BE_NAME, model, sd_wtype_name(wt), s ? err : "");
    if (!s) {
        for (int i = 0; cases[i]; i++) run_unet_case(be, u, model, cases[i]);
        /* the first case again: reused buffers give the same result */
        run_unet_case(be, u, model, cases[0]);
        printf("     %s: weights %.2f MB, activations %.2f MB\n", model, unet_weight_bytes(u) / 1e6,
               unet_activation_bytes(u) / 1e6);
    }
    unet_free(u);
    sd_weights_close(w);
}

/* Loading with a wrong configuration names the misshapen tensors. */
static void test_unet_errors(ie_backend *be) {
    sd_model_config cfg;
    sd_weights *w = open_model("unet_a", &cfg);
    char err[2048] = "";
    unet *u = NULL;
    sd_unet_config bad = cfg.unet;
    bad.cross_attention_dim = 40;
    bad.time_cond_proj_dim = 8;
    ie_status s = unet_load(be, w, &bad, SD_WTYPE_F32, &u, err, sizeof err);
    TU_CHECK(s == IE_ERR_FORMAT && strstr(err, "attn2.to_k.weight: expected [32, 40], found [32, 32]") &&
                 strstr(err, "unet.time_embedding.cond_proj.weight: missing (expected [32, 8])"),
             "%s unet_load with a wrong config reports tensors by name:\n%s", BE_NAME, err);
    unet_free(u);

    /* forward argument checks */
    s = unet_load(be, w, &cfg.unet, SD_WTYPE_F32, &u, err, sizeof err);
    if (!s) {
        ie_tensor *x = new_tensor(be, 1, 4, 5, 8), *out = new_tensor(be, 1, 4, 5, 8);
        int64_t cs[3] = {1, 77, 32};
        ie_tensor *ctx = ie_tensor_new(be, IE_F32, 3, cs);
        float t = 10;
        s = unet_forward(u, out, x, &t, ctx, NULL);
        TU_CHECK(s == IE_ERR_SHAPE && strstr(u->err, "divisible"), "%s unet_forward rejects a 5x8 latent: %s", BE_NAME,
                 u->err);
        ie_tensor_free(x);
        ie_tensor_free(out);
        ie_tensor_free(ctx);
    }
    unet_free(u);
    sd_weights_close(w);
}

/* --- CLIP ------------------------------------------------------------------------------ */

static void test_clip(ie_backend *be, sd_wtype wt) {
    sd_model_config cfg;
    sd_weights *w = open_model("clip", &cfg);
    char err[2048];
    clip_text_model *m = NULL;
    ie_status s = clip_text_model_load(be, w, &cfg.text, wt, &m, err, sizeof err);
    TU_CHECK(s == IE_OK, "%s clip: clip_text_model_load %s", BE_NAME, s ? err : "");
    static const char *cases[] = {"full", "skip2"};
    for (int i = 0; !s && i < 2; i++) {
        char dir[1200], label[64], path[1300];
        snprintf(dir, sizeof dir, "%s/clip/ref/%s", REF, cases[i]);
        snprintf(label, sizeof label, "clip/%s", cases[i]);
        snprintf(path, sizeof path, "%s/ids.npy", dir);
        npy_array a;
        if (npy_read(path, &a, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            exit(2);
        }
        int32_t *ids = npy_to_i32(&a);
        int B = (int)a.shape[0], L = (int)a.shape[1];
        npy_free(&a);
        ie_tensor *out = ie_tensor_new(be, IE_F32, 3, (int64_t[]){B, L, cfg.text.hidden_size});
        ref_tap r = {label, dir, 0};
        m->tap = (sd_tap){tap_compare, &r};
        s = clip_text_model_forward(m, out, ids, B, L, i == 0 ? 1 : 2);
        TU_CHECK(s == IE_OK, "%s %s: clip_text_model_forward %s", BE_NAME, label, m->err);
        static const char *inputs[] = {"ids", NULL};
        /* clip_skip 2 runs one layer less: its last layer's dump is not produced */
        expect_all_matched(label, &r, inputs, 0);
        m->tap = (sd_tap){0};
        ie_tensor_free(out);
        free(ids);
        s = IE_OK;
    }
    clip_text_model_free(m);
    sd_weights_close(w);
}

/* --- VAE ------------------------------------------------------------------------------- */

static void test_vae(ie_backend *be, sd_wtype wt) {
    sd_model_config cfg;
    sd_weights *w = open_model("vae", &cfg);
    char err[2048], dir[1200];
    vae *v = NULL;
    ie_status s = vae_load(be, w, &cfg.vae, VAE_ENCODER | VAE_DECODER, wt, &v, err, sizeof err);
    TU_CHECK(s == IE_OK, "%s vae: vae_load %s", BE_NAME, s ? err : "");
    if (s) {
        sd_weights_close(w);
        return;
    }
    /* encode: moments (tapped), mean and logvar, the latent, the sampled latent */
    snprintf(dir, sizeof dir, "%s/vae/ref/encode", REF);
    ie_tensor *img = upload_npy(be, dir, "image");
    int f = vae_factor(v);
    int64_t B = img->shape[0], h = img->shape[2] / f, wd = img->shape[3] / f;
    ie_tensor *mean = new_tensor(be, B, 4, h, wd), *logvar = new_tensor(be, B, 4, h, wd);
    ie_tensor *lat = new_tensor(be, B, 4, h, wd);
    ref_tap r = {"vae/encode", dir, 0};
    v->tap = (sd_tap){tap_compare, &r};
    s = vae_encode_moments(v, mean, logvar, img);
    TU_CHECK(s == IE_OK, "%s vae/encode: vae_encode_moments %s", BE_NAME, v->err);
    v->tap = (sd_tap){0};
    static const char *enc_inputs[] = {"image", "noise", NULL};
    expect_all_matched("vae/encode", &r, enc_inputs, 4); /* mean, logvar, latent, latent_sampled: below */
    check_tensor("vae/encode", dir, "mean", mean);
    check_tensor("vae/encode", dir, "logvar", logvar);
    s = vae_encode(v, lat, img, NULL);
    TU_CHECK(s == IE_OK, "%s vae/encode: vae_encode %s", BE_NAME, v->err);
    check_tensor("vae/encode", dir, "latent", lat);
    float *noise = load_npy(dir, "noise", NULL, NULL);
    s = vae_encode(v, lat, img, noise);
    TU_CHECK(s == IE_OK, "%s vae/encode: vae_encode with noise %s", BE_NAME, v->err);
    check_tensor("vae/encode", dir, "latent_sampled", lat);
    free(noise);
    ie_tensor_free(img);
    ie_tensor_free(mean);
    ie_tensor_free(logvar);
    ie_tensor_free(lat);

    /* decode */
    snprintf(dir, sizeof dir, "%s/vae/ref/decode", REF);
    lat = upload_npy(be, dir, "latent");
    img = new_tensor(be, lat->shape[0], 3, lat->shape[2] * f, lat->shape[3] * f);
    ref_tap rd = {"vae/decode", dir, 0};
    v->tap = (sd_tap){tap_compare, &rd};
    s = vae_decode(v, img, lat);
    TU_CHECK(s == IE_OK, "%s vae/decode: vae_decode %s", BE_NAME, v->err);
    static const char *dec_inputs[] = {"latent", NULL};
    expect_all_matched("vae/decode", &rd, dec_inputs, 0);
    v->tap = (sd_tap){0};
    ie_tensor_free(img);
    ie_tensor_free(lat);
    vae_free(v);
    sd_weights_close(w);
}

/* --- the whole model (sd.h) ---------------------------------------------------------------- */

static void test_sd_model(ie_backend *be) {
    char path[1200], err[2048] = "";
    snprintf(path, sizeof path, "%s/unet_a", REF);
    sd_model *m = NULL;
    sd_load_options opt = {.wtype = SD_WTYPE_F32, .parts = SD_PART_UNET};
    ie_status s = sd_model_load(be, path, &opt, &m, err, sizeof err);
    TU_CHECK(s == IE_OK && m->unet && !m->text && !m->vae && !m->weights, "%s sd_model_load(unet only) %s", BE_NAME,
             err);
    if (m) {
        /* the check's expected tensors and the loader's bound tensors come from one walk (tensors.h) */
        sd_tensor_spec *spec = NULL;
        int n = sd_expected_tensors(&m->config, SD_UNET, &spec);
        TU_CHECK(n > 0 && n == m->unet->mem.n, "%s unet: %d expected tensors, %d bound", BE_NAME, n, m->unet->mem.n);
        g_free(spec);
    }
    sd_model_free(m);
    opt.keep_weights = true;
    s = sd_model_load(be, path, &opt, &m, err, sizeof err);
    unet *again = NULL;
    if (!s && !m->weights) snprintf(err, sizeof err, "no weights kept");
    if (!s && m->weights) s = unet_load(be, m->weights, &m->config.unet, SD_WTYPE_F32, &again, err, sizeof err);
    TU_CHECK(s == IE_OK && again, "%s keep_weights: the UNet loads again from the kept weights %s", BE_NAME, err);
    unet_free(again);
    sd_model_free(m);
    opt.keep_weights = false;
    s = sd_model_load(be, "", &opt, &m, err, sizeof err);
    TU_CHECK(s == IE_ERR_ARG && !m && strstr(err, "no model given"), "%s sd_model_load(\"\"): %s", BE_NAME, err);
    opt.parts = SD_PART_ALL;
    s = sd_model_load(be, path, &opt, &m, err, sizeof err);
    TU_CHECK(s != IE_OK && !m && strstr(err, "text_encoder"), "%s sd_model_load(all) names what is absent: %s", BE_NAME,
             err);
}

/* --- main -------------------------------------------------------------------------------- */

static void test_backend(ie_backend *be, const char *name) {
    static char label[64];
    printf("== %s: %s\n", name, ie_backend_description(be));
    double t0 = now();
    static const char *cases_a[] = {"cfg", "b1", "hook", NULL};
    static const char *cases_b[] = {"cfg", NULL};
    static const char *cases_lcm[] = {"lcm", NULL};
    BE_NAME = name;
    test_unet(be, SD_WTYPE_F32, "unet_a", cases_a);
    test_unet(be, SD_WTYPE_F32, "unet_b", cases_b);
    test_unet(be, SD_WTYPE_F32, "unet_lcm", cases_lcm);
    test_unet_errors(be);
    test_sd_model(be);
    test_clip(be, SD_WTYPE_F32);
    test_vae(be, SD_WTYPE_F32);
    /* fp16 weights (Vulkan's default): the models whose files store fp16 convert
     * losslessly, so the same tolerance applies (the ops accumulate in fp32). */
    snprintf(label, sizeof label, "%s/f16", name);
    BE_NAME = label;
    test_unet(be, SD_WTYPE_F16, "unet_a", cases_b);
    test_unet(be, SD_WTYPE_F16, "unet_b", cases_b);
    test_unet(be, SD_WTYPE_F16, "unet_lcm", cases_lcm); /* issue 10: fp16 is the CPU default too */
    test_clip(be, SD_WTYPE_F16);
    test_vae(be, SD_WTYPE_F16);
    printf("== %s: %.1f s\n", name, now() - t0);
}

int main(void) {
    const char *root = getenv("INVEDIT_SOURCE_ROOT");
    snprintf(REF, sizeof REF, "%s/tests/data/ref", root ? root : ".");
    const char *only = getenv("INVEDIT_TEST_BACKENDS");

    if (!only || strstr(only, "cpu")) {
        ie_backend *cpu = ie_backend_cpu_new(0);
        test_backend(cpu, "cpu");
        ie_backend_free(cpu);
    }
    if (!only || strstr(only, "vulkan")) {
        char err[512];
        ie_backend *vk = ie_backend_vulkan_new(-1, err, sizeof err);
        if (vk) {
            test_backend(vk, "vulkan");
            ie_backend_free(vk);
        } else {
            printf("skip vulkan: %s\n", err);
        }
    }
    return tu_finish("test_networks");
}
