/* Unit tests of the plug-ins' host-independent core (plugin/core.c), with
 * the fake library (tests/gimp/fake_edit.c: out = 1 - in): region planning,
 * compositing through a mask (bit-identical where the mask is 0, alpha kept,
 * gray), cancel, settings and the last-used-values key file. No GIMP needed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "plugin/core.h"

#include "tests/gimp/check.h"

static void test_region(void) {
    ivp_rect ctx, w;
    /* a layer within twice the working size: the whole layer (whole-image prompts apply) */
    ivp_region_plan((ivp_rect){50, 30, 40, 20}, 200, 100, 128, &ctx, &w);
    CHECK(ctx.x == 0 && ctx.y == 0 && ctx.width == 200 && ctx.height == 100, "ctx %d,%d %dx%d", ctx.x, ctx.y, ctx.width,
          ctx.height);
    CHECK(w.x == 50 && w.y == 30 && w.width == 40 && w.height == 20, "write %d,%d %dx%d", w.x, w.y, w.width, w.height);
    /* a large layer, a selection spanning a quarter of it: still the whole layer */
    ivp_region_plan((ivp_rect){100, 100, 1000, 300}, 4000, 3000, 512, &ctx, &w);
    CHECK(ctx.width == 4000 && ctx.height == 3000, "quarter: ctx %dx%d", ctx.width, ctx.height);
    /* a small selection in a large layer: a square of side max(600 + 450, 512) around it */
    ivp_region_plan((ivp_rect){2000, 1000, 600, 300}, 4000, 3000, 512, &ctx, &w);
    CHECK(ctx.width == 1050 && ctx.height == 1050 && ctx.x == 2300 - 525 && ctx.y == 1150 - 525,
          "square ctx %d,%d %dx%d", ctx.x, ctx.y, ctx.width, ctx.height);
    CHECK(w.x == 2000 - ctx.x && w.y == 1000 - ctx.y && w.width == 600, "square write %d,%d", w.x, w.y);
    /* ... at least the working size, moved inside the layer at its edges */
    ivp_region_plan((ivp_rect){0, 2950, 50, 50}, 4000, 3000, 512, &ctx, &w);
    CHECK(ctx.x == 0 && ctx.y == 3000 - 512 && ctx.width == 512 && ctx.height == 512, "edge ctx %d,%d %dx%d", ctx.x,
          ctx.y, ctx.width, ctx.height);
    CHECK(w.x == 0 && w.y == 2950 - ctx.y, "edge write %d,%d", w.x, w.y);
}

static bool count_steps(void *user, double f, const char *text) {
    (void)f, (void)text;
    return ++*(int *)user < 3; /* cancel at the third step */
}

static void test_edit_region(void) {
    ie_session *s = NULL;
    char err[256];
    CHECK(ie_session_open(".", "auto", &s, err, sizeof err) == IE_OK, "open: %s", err);
    ie_edit_params p;
    ie_edit_params_init(&p, IE_METHOD_INFEDIT);
    p.steps = 4;

    enum { W = 8, H = 6 };
    float px[W * H * 4], out[4 * 3 * 4], mask[4 * 3];
    for (int i = 0; i < W * H * 4; i++) px[i] = (float)((i * 37) % 101) / 100.0f;
    for (int i = 0; i < 12; i++) mask[i] = i == 0 ? 0.0f : i == 1 ? 0.5f : 1.0f;
    ivp_region_job job = {px, W, H, 4, {2, 1, 4, 3}, mask, NULL};
    CHECK(ivp_edit_region(s, &p, &job, out, NULL, NULL, err, sizeof err) == IE_OK, "edit: %s", err);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++) {
            const float *in = px + ((1 + y) * W + 2 + x) * 4, *o = out + (y * 4 + x) * 4;
            float m = mask[y * 4 + x];
            if (m == 0.0f) CHECK(!memcmp(in, o, 16), "mask 0 must copy the input bit for bit");
            m = m > 0.5f ? 1.0f : 2 * m; /* the selection's 0.5 contour is its edge: full edit inside */
            for (int c = 0; c < 3 && m > 0; c++) {
                float want = in[c] + m * ((1 - in[c]) - in[c]);
                CHECK(fabsf(o[c] - want) < 1e-6f, "pixel %d,%d c%d: %f want %f", x, y, c, o[c], want);
            }
            CHECK(o[3] == in[3], "alpha must be kept");
        }

    /* output new-layer-mask: out is the unmasked edit, the layer mask = change mask x selection
     * (the fake's change mask is 1 everywhere) */
    float cm[4 * 3];
    ivp_region_job mjob = {px, W, H, 4, {2, 1, 4, 3}, mask, cm};
    CHECK(ivp_edit_region(s, &p, &mjob, out, NULL, NULL, err, sizeof err) == IE_OK, "edit with change mask: %s", err);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++) {
            const float *in = px + ((1 + y) * W + 2 + x) * 4, *o = out + (y * 4 + x) * 4;
            float want = mask[y * 4 + x] > 0.5f ? 1.0f : 2 * mask[y * 4 + x];
            CHECK(cm[y * 4 + x] == want, "layer mask = change mask x min(1, 2 selection) at %d,%d", x, y);
            for (int c = 0; c < 3; c++) CHECK(fabsf(o[c] - (1 - in[c])) < 1e-6f, "unmasked edit at %d,%d c%d", x, y, c);
            CHECK(o[3] == in[3], "alpha must be kept");
        }

    /* gray + alpha, no mask (the host's merge applies the selection) */
    float gy[W * H * 2], gout[W * H * 2];
    for (int i = 0; i < W * H; i++) gy[2 * i] = (float)i / (W * H), gy[2 * i + 1] = 0.5f;
    ivp_region_job gjob = {gy, W, H, 2, {0, 0, W, H}, NULL, NULL};
    CHECK(ivp_edit_region(s, &p, &gjob, gout, NULL, NULL, err, sizeof err) == IE_OK, "gray: %s", err);
    for (int i = 0; i < W * H; i++) {
        CHECK(fabsf(gout[2 * i] - (1.0f - gy[2 * i])) < 2e-4f, "gray %d: %f want %f", i, gout[2 * i], 1 - gy[2 * i]);
        CHECK(gout[2 * i + 1] == 0.5f, "gray alpha kept");
    }

    /* cancel: IE_ERR_CANCELLED and out untouched */
    float before[4 * 3 * 4];
    memcpy(before, out, sizeof out);
    int steps = 0;
    CHECK(ivp_edit_region(s, &p, &job, out, count_steps, &steps, err, sizeof err) == IE_ERR_CANCELLED, "cancel");
    CHECK(!memcmp(before, out, sizeof out), "a cancelled edit must not write");

    /* a bad region is refused */
    ivp_region_job bad = {px, W, H, 4, {6, 0, 4, 3}, NULL, NULL};
    CHECK(ivp_edit_region(s, &p, &bad, out, NULL, NULL, err, sizeof err) == IE_ERR_ARG, "bad region");
    ie_session_close(s);
}

static void test_settings(void) {
    ivp_settings a, b;
    ivp_settings_init(&a);
    ivp_settings_init(&b);
    const ie_param_desc *target = ie_edit_param_find("target-prompt");
    const ie_param_desc *steps = ie_edit_param_find("steps");
    const ie_param_desc *strength = ie_edit_param_find("strength");
    const ie_param_desc *method = ie_edit_param_find("method");
    CHECK(target && steps && strength && method, "table entries");

    ivp_settings_set_string(&a, target, "a \"quoted\" prompt; with = signs\nand a newline");
    ivp_param_set_number(&a.params, strength, 0.37);
    ivp_param_set_number(&a.params, steps, 9);
    ivp_param_set_number(&a.params, method, IE_METHOD_BDIA);
    ivp_settings_set_model_path(&a, "/models/sd 1.5");
    a.output = IVP_OUTPUT_IN_PLACE;

    char dir[] = "/tmp/invedit-core-XXXXXX", err[256];
    CHECK(g_mkdtemp(dir) != NULL, "mkdtemp");
    char *path = g_build_filename(dir, "sub", "invedit.ini", NULL);
    CHECK(ivp_settings_save(&a, path, err, sizeof err), "save: %s", err);
    CHECK(ivp_settings_load(&b, path, err, sizeof err), "load: %s", err);
    char *da = ivp_settings_describe(&a), *db = ivp_settings_describe(&b);
    CHECK(!strcmp(da, db), "round trip:\n  %s\n  %s", da, db);
    g_free(da);
    g_free(db);

    /* an old or damaged file: bad values are skipped, the rest is read */
    g_file_set_contents(path, "[invedit]\nsteps=abc\nstrength=5\nseed=12\nmethod=nope\n", -1, NULL);
    ivp_settings c;
    ivp_settings_init(&c);
    CHECK(ivp_settings_load(&c, path, err, sizeof err), "load damaged: %s", err);
    CHECK(c.params.steps == 15 && c.params.strength == 1.0 && c.params.seed == 12 &&
              c.params.method == IE_METHOD_INFEDIT,
          "damaged file: steps %d strength %g seed %lld", c.params.steps, c.params.strength, (long long)c.params.seed);
    g_unlink(path);
    CHECK(!ivp_settings_load(&c, path, err, sizeof err), "a missing file is reported");

    /* method defaults follow the method unless changed */
    ivp_settings d;
    ivp_settings_init(&d);
    CHECK(ivp_settings_has_method_defaults(&d, IE_METHOD_INFEDIT), "fresh settings have InfEdit's defaults");
    ivp_settings_apply_method_defaults(&d, IE_METHOD_BDIA);
    CHECK(d.params.method == IE_METHOD_BDIA && d.params.steps == 50, "BDIA defaults: steps %d", d.params.steps);
    CHECK(ivp_settings_has_method_defaults(&d, IE_METHOD_BDIA), "has BDIA defaults");
    d.params.steps = 33;
    CHECK(!ivp_settings_has_method_defaults(&d, IE_METHOD_BDIA), "a changed value is noticed");

    CHECK(!ivp_param_check_number(strength, 2.0, err, sizeof err) && strstr(err, "strength"), "range: %s", err);
    CHECK(!ivp_param_check_number(steps, 2.5, err, sizeof err), "whole numbers");
    CHECK(ivp_param_check_number(steps, 20, err, sizeof err), "steps 20");

    /* the model path: the argument, else $INVEDIT_MODEL, else a message */
    ivp_settings e;
    ivp_settings_init(&e);
    g_unsetenv(IVP_MODEL_ENV);
    CHECK(ivp_settings_model_path(&e, err, sizeof err) == NULL && strstr(err, "No model set"), "no model: %s", err);
    g_setenv(IVP_MODEL_ENV, "/env/model", TRUE);
    CHECK(!g_strcmp0(ivp_settings_model_path(&e, err, sizeof err), "/env/model"), "model from the environment");
    ivp_settings_set_model_path(&e, "/arg/model");
    CHECK(!g_strcmp0(ivp_settings_model_path(&e, err, sizeof err), "/arg/model"), "model from the argument");

    /* before the edit: the model path and the parameters are checked */
    const char *model = NULL;
    char *why = NULL;
    CHECK(ivp_settings_check(&e, &model, &why) == IE_OK && !g_strcmp0(model, "/arg/model") && !why, "check: %s",
          why ? why : "");
    e.params.strength = 5.0;
    CHECK(ivp_settings_check(&e, &model, &why) == IE_ERR_ARG && why && strstr(why, "strength") && !model,
          "a bad parameter is the caller's error: %s", why ? why : "(no message)");
    g_free(why);
    why = NULL;
    e.params.strength = 1.0;
    ivp_settings_set_model_path(&e, "");
    g_unsetenv(IVP_MODEL_ENV);
    CHECK(ivp_settings_check(&e, &model, &why) == IE_ERR_IO && why && strstr(why, "No model set"), "no model: %s",
          why ? why : "(no message)");
    g_free(why);

    /* a method change in a dialog: the new method's defaults while the
     * values are the old method's, the user's values otherwise */
    ivp_settings f;
    ivp_settings_init(&f);
    ie_edit_params ef;
    ie_edit_params_init(&ef, IE_METHOD_EF_DDPM);
    CHECK(ivp_settings_switch_method(&f, IE_METHOD_INFEDIT, IE_METHOD_EF_DDPM) &&
              f.params.method == IE_METHOD_EF_DDPM && f.params.steps == ef.steps && f.params.eta == ef.eta,
          "switch to EF-DDPM: steps %d (want %d)", f.params.steps, ef.steps);
    f.params.steps = 33;
    CHECK(!ivp_settings_switch_method(&f, IE_METHOD_EF_DDPM, IE_METHOD_BDIA) && f.params.method == IE_METHOD_BDIA &&
              f.params.steps == 33,
          "a changed value stays: steps %d, method %d", f.params.steps, (int)f.params.method);

    ivp_settings_set_string(&f, ie_edit_param_find("target-prompt"), "a dog");
    char *lname = ivp_result_layer_name(&f);
    CHECK(!strcmp(lname, "Diffusion edit: a dog"), "layer name '%s'", lname);
    g_free(lname);
    ivp_settings_clear(&f);

    char *msg = ivp_error_message(IE_ERR_NOMEM, "invedit", "no memory for 4096x4096.");
    CHECK(strstr(msg, "Out of memory") && !strstr(msg, ".."), "message: %s", msg);
    g_free(msg);

    ivp_settings_clear(&a);
    ivp_settings_clear(&b);
    ivp_settings_clear(&c);
    ivp_settings_clear(&d);
    ivp_settings_clear(&e);
    g_free(path);
    char *sub = g_build_filename(dir, "sub", NULL);
    g_rmdir(sub);
    g_rmdir(dir);
    g_free(sub);
}

int main(void) {
    test_region();
    test_edit_region();
    test_settings();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("plugin core: all checks passed\n");
    return 0;
}
