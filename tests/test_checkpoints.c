/* Checkpoints as users have them (driven by tests/test_checkpoints.sh, which
 * generates the data with tools/):
 *
 *   test_checkpoints tok HF_DIR CASES.json
 *       the CLIP vocabulary built into the library against a Hugging Face
 *       tokenizer folder made from the same BPE file by
 *       tools/clip_vocab_to_hf.py: every id's string, the merges, and the ids
 *       of the test prompts, which must also equal the independent Python
 *       reference (tools/clip_tokenizer_ref.py cases).
 *   test_checkpoints lora MODEL LORA_DIR MERGED.safetensors
 *       the LoRA key parser on hand-written keys; the merge of
 *       kohya.safetensors:0.8 + peft.safetensors (tools/checkpoint/lora_ref.py
 *       make) against PyTorch's float64 merge (lora_ref.py merge), every
 *       adapted tensor within 1e-5 relative; the bad files' messages.
 *   test_checkpoints names
 *       key parser and FILE[:SCALE] cases only (no data needed).
 */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "model/config.h"
#include "model/lora.h"
#include "model/names.h"
#include "testutil.h"
#include "model/tokenizer.h"

/* --- the built-in vocabulary ------------------------------------------------------- */

static int32_t *ids_of(JsonObject *o, const char *k, int *n) {
    JsonArray *a = json_object_get_array_member(o, k);
    *n = a ? (int)json_array_get_length(a) : 0;
    int32_t *ids = g_new0(int32_t, *n + 1);
    for (int i = 0; i < *n; i++) ids[i] = (int32_t)json_array_get_int_element(a, (guint)i);
    return ids;
}

static bool same_ids(const int32_t *a, int na, const int32_t *b, int nb) {
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static void test_tok(const char *hf, const char *cases) {
    char err[1024] = "";
    clip_tokenizer *bi = NULL, *fo = NULL;
    double t0 = tu_now();
    ie_status st = clip_tokenizer_load_builtin(&bi, err, sizeof err);
    double t1 = tu_now();
    TU_CHECK(st == IE_OK, "built-in vocabulary loads (%.0f ms): %s", 1e3 * (t1 - t0), st ? err : "ok");
    st = clip_tokenizer_load_dir(hf, &fo, err, sizeof err);
    TU_CHECK(st == IE_OK, "folder %s loads: %s", hf, st ? err : "ok");
    if (!bi || !fo) return;
    TU_CHECK(clip_tokenizer_vocab_size(bi) == 49408 && clip_tokenizer_vocab_size(fo) == 49408,
             "49408 ids (built-in %d, folder %d)", clip_tokenizer_vocab_size(bi), clip_tokenizer_vocab_size(fo));
    TU_CHECK(clip_tokenizer_merge_count(bi) == 48894 && clip_tokenizer_merge_count(fo) == 48894,
             "48894 merges (built-in %d, folder %d)", clip_tokenizer_merge_count(bi), clip_tokenizer_merge_count(fo));
    TU_CHECK(clip_tokenizer_bos(bi) == 49406 && clip_tokenizer_eos(bi) == 49407, "BOS 49406, EOS 49407");
    int diff = 0, first = -1;
    for (int32_t id = 0; id < 49408; id++) {
        const char *a = clip_tokenizer_token(bi, id), *b = clip_tokenizer_token(fo, id);
        if (!a || !b || strcmp(a, b)) {
            diff++;
            if (first < 0) first = id;
        }
    }
    TU_CHECK(diff == 0, "every id has the same string in both (%d differ, first %d)", diff, first);

    JsonParser *p = json_parser_new();
    GError *ge = NULL;
    if (!json_parser_load_from_file(p, cases, &ge)) {
        TU_CHECK(false, "read %s: %s", cases, ge ? ge->message : "?");
        g_clear_error(&ge);
        g_object_unref(p);
        return;
    }
    JsonArray *arr = json_object_get_array_member(json_node_get_object(json_parser_get_root(p)), "cases");
    int n_cases = (int)json_array_get_length(arr), bad_ref = 0, bad_folder = 0;
    for (int i = 0; i < n_cases; i++) {
        JsonObject *o = json_array_get_object_element(arr, (guint)i);
        char *text = NULL;
        if (json_object_has_member(o, "text")) {
            text = g_strdup(json_object_get_string_member(o, "text"));
        } else { /* invalid UTF-8, as hex */
            const char *hex = json_object_get_string_member(o, "text_hex");
            size_t l = strlen(hex) / 2;
            text = g_malloc0(l + 1);
            for (size_t k = 0; k < l; k++)
                text[k] = (char)g_ascii_strtoull((char[]){hex[2 * k], hex[2 * k + 1], 0}, NULL, 16);
        }
        int nt, ne;
        int32_t *want_t = ids_of(o, "tokens", &nt), *want_e = ids_of(o, "encoded", &ne);
        int32_t got_b[512], got_f[512], enc_b[77], enc_f[77];
        int nb = clip_tokenize(bi, text, got_b, 512), nf = clip_tokenize(fo, text, got_f, 512);
        clip_encode(bi, text, enc_b, 77, NULL);
        clip_encode(fo, text, enc_f, 77, NULL);
        if (!same_ids(got_b, nb < 512 ? nb : 512, want_t, nt) || !same_ids(enc_b, 77, want_e, ne)) {
            bad_ref++;
            printf("     differs from the reference: %s\n", text);
        }
        if (!same_ids(got_b, nb, got_f, nf) || !same_ids(enc_b, 77, enc_f, 77)) bad_folder++;
        g_free(want_t);
        g_free(want_e);
        g_free(text);
    }
    TU_CHECK(n_cases > 20 && bad_ref == 0, "built-in ids = Python reference for %d prompts (%d differ)", n_cases,
             bad_ref);
    TU_CHECK(bad_folder == 0, "built-in ids = tokenizer folder ids for %d prompts (%d differ)", n_cases, bad_folder);
    g_object_unref(p);
    /* the demo model's captions, and prompts users write */
    static const char *const PROMPTS[] = {
        "a red circle on the left on a blue background",
        "an orange triangle at the top on a textured purple background",
        "a white square in the center on a black gradient background",
        "masterpiece, best quality, 1girl, (smiling:1.2), <lora:foo:0.8>, 8k uhd",
        "A photo of an astronaut riding a horse on Mars, trending on ArtStation",
        "café crème brûlée — naïve façade, 東京タワー, emoji 🐱",
    };
    int bad = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(PROMPTS); i++) {
        int32_t a[77], b[77];
        clip_encode(bi, PROMPTS[i], a, 77, NULL);
        clip_encode(fo, PROMPTS[i], b, 77, NULL);
        bad += !same_ids(a, 77, b, 77);
    }
    TU_CHECK(bad == 0, "built-in = folder for %zu more prompts (%d differ)", G_N_ELEMENTS(PROMPTS), bad);
    clip_tokenizer_free(bi);
    clip_tokenizer_free(fo);
}

/* --- LoRA --------------------------------------------------------------------------- */

static void test_names(void) {
    static const struct {
        const char *key;
        bool ok;
        sd_lora_naming naming;
        const char *target, *module;
        sd_lora_part part;
    } K[] = {
        {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight", true, SD_LORA_KOHYA,
         "unet", "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", SD_LORA_DOWN},
        {"lora_te_text_model_encoder_layers_11_mlp_fc1.lora_up.weight", true, SD_LORA_KOHYA, "text_encoder",
         "text_model_encoder_layers_11_mlp_fc1", SD_LORA_UP},
        {"lora_unet_mid_block_attentions_0_proj_in.alpha", true, SD_LORA_KOHYA, "unet",
         "mid_block_attentions_0_proj_in", SD_LORA_ALPHA},
        {"lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", true, SD_LORA_KOHYA, "te1",
         "text_model_encoder_layers_0_self_attn_q_proj", SD_LORA_DOWN},
        {"lora_unet_up_blocks_1_resnets_0_conv1.hada_w1_a", true, SD_LORA_KOHYA, "unet", "up_blocks_1_resnets_0_conv1",
         SD_LORA_OTHER},
        {"unet.up_blocks.1.attentions.2.transformer_blocks.0.ff.net.2.lora_A.weight", true, SD_LORA_DIFFUSERS, "unet",
         "up_blocks.1.attentions.2.transformer_blocks.0.ff.net.2", SD_LORA_DOWN},
        {"base_model.model.down_blocks.0.attentions.0.proj_out.lora_B.weight", true, SD_LORA_DIFFUSERS, "unet",
         "down_blocks.0.attentions.0.proj_out", SD_LORA_UP},
        {"text_encoder.text_model.encoder.layers.3.self_attn.k_proj.lora_linear_layer.down.weight", true,
         SD_LORA_DIFFUSERS, "text_encoder", "text_model.encoder.layers.3.self_attn.k_proj", SD_LORA_DOWN},
        {"unet.mid_block.attentions.0.transformer_blocks.0.attn2.processor.to_out_lora.up.weight", true,
         SD_LORA_DIFFUSERS, "unet", "mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0", SD_LORA_UP},
        {"down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight", true,
         SD_LORA_DIFFUSERS, "unet", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", SD_LORA_DOWN},
        {"text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight", true, SD_LORA_DIFFUSERS,
         "text_encoder_2", "text_model.encoder.layers.0.self_attn.q_proj", SD_LORA_DOWN},
        {"unet.down_blocks.0.attentions.0.alpha", true, SD_LORA_DIFFUSERS, "unet", "down_blocks.0.attentions.0",
         SD_LORA_ALPHA},
        {"model.diffusion_model.input_blocks.1.1.proj_in.weight", false, 0, "", "", 0},
        {"lora_unet_.lora_down.weight", false, 0, "", "", 0},
        {"lora_unet_no_dot", false, 0, "", "", 0},
        {"unet.lora_A.weight", false, 0, "", "", 0},
        {"unet.down_blocks.0.processor.bogus_lora.down.weight", false, 0, "", "", 0},
        {"", false, 0, "", "", 0},
    };
    int bad = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(K); i++) {
        sd_lora_key k;
        bool ok = sd_lora_key_parse(K[i].key, &k);
        bool good = ok == K[i].ok;
        if (good && ok)
            good = k.naming == K[i].naming && !strcmp(k.target, K[i].target) && !strcmp(k.module, K[i].module) &&
                   k.part == K[i].part;
        if (!good) {
            bad++;
            printf("     key %s -> %d %s|%s part %d\n", K[i].key, ok, ok ? k.target : "", ok ? k.module : "",
                   ok ? (int)k.part : -1);
        }
    }
    TU_CHECK(bad == 0,
             "LoRA key parser: %zu keys (kohya, PEFT, old processors, alpha, SDXL markers, LoHa, bad) (%d wrong)",
             G_N_ELEMENTS(K), bad);
    static const struct {
        const char *spec, *path;
        double scale;
        bool ok;
    } S[] = {
        {"a.safetensors", "a.safetensors", 1.0, true},
        {"a.safetensors:0.75", "a.safetensors", 0.75, true},
        {"/x/y:z/a.safetensors:-1", "/x/y:z/a.safetensors", -1.0, true},
        {"C:\\loras\\a.safetensors", "C:\\loras\\a.safetensors", 1.0, true},
        {"a.safetensors:", "a.safetensors:", 1.0, true},
        {":0.5", "", 0.5, false},
        {"a:nan", "", 0, false},
        {"", "", 1.0, false},
    };
    bad = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(S); i++) {
        char path[256] = "";
        double sc = 0;
        bool ok = sd_lora_spec_parse(S[i].spec, path, sizeof path, &sc);
        if (ok != S[i].ok || (ok && (strcmp(path, S[i].path) || sc != S[i].scale))) {
            bad++;
            printf("     spec '%s' -> %d '%s' %g\n", S[i].spec, ok, path, sc);
        }
    }
    TU_CHECK(bad == 0, "FILE[:SCALE] parsing: %zu cases (%d wrong)", G_N_ELEMENTS(S), bad);
}

static void expect_bad(const sd_weights *w, const char *dir, const char *file, ie_status want, const char *sub) {
    char path[1024], err[1024] = "";
    snprintf(path, sizeof path, "%s/%s", dir, file);
    sd_lora_set *s = sd_lora_set_new();
    ie_status st = sd_lora_set_add(s, w, path, 1.0, err, sizeof err);
    TU_CHECK(st == want && strstr(err, sub) && sd_lora_set_target_count(s) == 0, "%s refused (%s): %s", file,
             ie_status_name(st), err);
    sd_lora_set_free(s);
}

static void test_lora(const char *model, const char *dir, const char *merged) {
    char err[2048] = "", list[2048];
    sd_weights *w = NULL;
    ie_status st = sd_weights_open(model, &w, err, sizeof err);
    TU_CHECK(st == IE_OK, "open %s: %s", model, st ? err : "ok");
    if (st) return;
    sd_lora_set *set = sd_lora_set_new();
    snprintf(list, sizeof list, "%s/kohya.safetensors:0.8;%s/peft.safetensors", dir, dir);
    st = sd_lora_set_add_list(set, w, list, err, sizeof err);
    TU_CHECK(st == IE_OK && sd_lora_set_file_count(set) == 2, "kohya + PEFT LoRAs load: %s",
             st ? err : sd_lora_set_summary(set));
    TU_CHECK(strstr(sd_lora_set_summary(set), "2 keys match no layer (lora_unet_not_a_layer_to_q") != NULL,
             "keys that match no layer are reported");
    st_file *ref = NULL;
    ie_status rs = st_open(merged, &ref, err, sizeof err);
    TU_CHECK(rs == IE_OK, "reference merge %s: %s", merged, rs ? err : "ok");
    if (!rs && !st) {
        int n = 0, over = 0;
        double worst = 0;
        for (int i = 0; i < st_count(ref); i++) {
            const st_tensor *r = st_at(ref, i);
            const sd_weight *x = sd_weights_get(w, r->name);
            if (!x || x->t->numel != r->numel || !sd_lora_set_has(set, r->name)) {
                over++;
                printf("     %s: not adapted here\n", r->name);
                continue;
            }
            float *got = tu_alloc((size_t)r->numel), *want = tu_alloc((size_t)r->numel);
            st_read_f32(x->t, got, err, sizeof err);
            ie_status as = sd_lora_set_apply(set, r->name, got, r->numel, err, sizeof err);
            st_read_f32(r, want, err, sizeof err);
            double e = tu_max_rel_err(got, want, (size_t)r->numel);
            if (as || !(e <= 1e-5)) {
                over++;
                printf("     %s: rel %.3e %s\n", r->name, e, as ? err : "");
            }
            if (e > worst) worst = e;
            n++;
            free(got);
            free(want);
        }
        TU_CHECK(n > 0 && over == 0 && n == sd_lora_set_target_count(set),
                 "merged weights = PyTorch float64 merge for %d tensors (linear, 1x1 and 3x3 conv): worst %.3e <= 1e-5 "
                 "(%d adapted here)",
                 n, worst, sd_lora_set_target_count(set));
        st_close(ref);
    }
    float probe[4] = {1, 2, 3, 4};
    TU_CHECK(sd_lora_set_apply(set, "unet.conv_in.bias", probe, 4, err, sizeof err) == IE_OK && probe[3] == 4,
             "a weight no LoRA adapts is left alone");
    sd_lora_set_free(set);
    expect_bad(w, dir, "bad_truncated.safetensors", IE_ERR_FORMAT, "truncated");
    expect_bad(w, dir, "bad_rank.safetensors", IE_ERR_FORMAT, "mismatched ranks");
    expect_bad(w, dir, "bad_sdxl.safetensors", IE_ERR_UNSUPPORTED, "SDXL");
    expect_bad(w, dir, "bad_context.safetensors", IE_ERR_FORMAT, "SDXL");
    expect_bad(w, dir, "bad_loha.safetensors", IE_ERR_UNSUPPORTED, "LoHa");
    expect_bad(w, dir, "bad_nomatch.safetensors", IE_ERR_FORMAT, "names a layer");
    expect_bad(w, dir, "missing.safetensors", IE_ERR_IO, "missing.safetensors");
    sd_weights_close(w);
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "tok")) test_tok(argv[2], argv[3]);
    else if (argc >= 5 && !strcmp(argv[1], "lora")) {
        test_names();
        test_lora(argv[2], argv[3], argv[4]);
    } else if (argc >= 2 && !strcmp(argv[1], "names")) test_names();
    else {
        fprintf(stderr, "usage: test_checkpoints tok HF_DIR CASES.json | lora MODEL LORA_DIR MERGED | names\n");
        return 2;
    }
    return tu_finish("test_checkpoints");
}
