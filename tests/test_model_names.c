/* Model files: the LDM <-> diffusers name table, expected tensors (counts and
 * parameter totals of SD 1.5), config.json parsing, detection from shapes,
 * diffusers folders vs single-file checkpoints (the same weights must come
 * out under the same canonical names), and bad folders / wrong shapes.
 * All model files are generated into a temporary folder; the SD 1.5-sized
 * checkpoint is a sparse file (no data written). */
#include "model/config.h"
#include "model/names.h"
#include "model/safetensors.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "st_writer.h"
#include "testutil.h"

static char *tmpdir;

/* --- the name table ------------------------------------------------------ */

static void test_table(void) {
    static const struct {
        const char *ldm, *canon;
        bool squeeze;
    } M[] = {
        {"model.diffusion_model.input_blocks.0.0.weight", "unet.conv_in.weight", 0},
        {"model.diffusion_model.time_embed.0.weight", "unet.time_embedding.linear_1.weight", 0},
        {"model.diffusion_model.time_embed.2.bias", "unet.time_embedding.linear_2.bias", 0},
        {"model.diffusion_model.input_blocks.1.0.in_layers.0.weight", "unet.down_blocks.0.resnets.0.norm1.weight", 0},
        {"model.diffusion_model.input_blocks.2.0.emb_layers.1.bias", "unet.down_blocks.0.resnets.1.time_emb_proj.bias",
         0},
        {"model.diffusion_model.input_blocks.3.0.op.weight", "unet.down_blocks.0.downsamplers.0.conv.weight", 0},
        {"model.diffusion_model.input_blocks.4.0.in_layers.2.weight", "unet.down_blocks.1.resnets.0.conv1.weight", 0},
        {"model.diffusion_model.input_blocks.4.0.skip_connection.weight",
         "unet.down_blocks.1.resnets.0.conv_shortcut.weight", 0},
        {"model.diffusion_model.input_blocks.4.1.proj_in.weight", "unet.down_blocks.1.attentions.0.proj_in.weight", 0},
        {"model.diffusion_model.input_blocks.8.1.transformer_blocks.0.attn2.to_k.weight",
         "unet.down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight", 0},
        {"model.diffusion_model.input_blocks.9.0.op.bias", "unet.down_blocks.2.downsamplers.0.conv.bias", 0},
        {"model.diffusion_model.input_blocks.11.0.out_layers.3.bias", "unet.down_blocks.3.resnets.1.conv2.bias", 0},
        {"model.diffusion_model.middle_block.0.out_layers.0.weight", "unet.mid_block.resnets.0.norm2.weight", 0},
        {"model.diffusion_model.middle_block.1.transformer_blocks.0.ff.net.0.proj.weight",
         "unet.mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.weight", 0},
        {"model.diffusion_model.middle_block.2.emb_layers.1.weight", "unet.mid_block.resnets.1.time_emb_proj.weight",
         0},
        {"model.diffusion_model.output_blocks.0.0.skip_connection.bias",
         "unet.up_blocks.0.resnets.0.conv_shortcut.bias", 0},
        {"model.diffusion_model.output_blocks.2.1.conv.weight", "unet.up_blocks.0.upsamplers.0.conv.weight", 0},
        {"model.diffusion_model.output_blocks.3.1.norm.bias", "unet.up_blocks.1.attentions.0.norm.bias", 0},
        {"model.diffusion_model.output_blocks.5.2.conv.bias", "unet.up_blocks.1.upsamplers.0.conv.bias", 0},
        {"model.diffusion_model.output_blocks.8.2.conv.weight", "unet.up_blocks.2.upsamplers.0.conv.weight", 0},
        {"model.diffusion_model.output_blocks.11.1.proj_out.weight", "unet.up_blocks.3.attentions.2.proj_out.weight",
         0},
        {"model.diffusion_model.output_blocks.11.0.in_layers.2.weight", "unet.up_blocks.3.resnets.2.conv1.weight", 0},
        {"model.diffusion_model.out.0.weight", "unet.conv_norm_out.weight", 0},
        {"model.diffusion_model.out.2.bias", "unet.conv_out.bias", 0},
        {"first_stage_model.encoder.conv_in.weight", "vae.encoder.conv_in.weight", 0},
        {"first_stage_model.encoder.down.0.block.1.conv2.weight", "vae.encoder.down_blocks.0.resnets.1.conv2.weight",
         0},
        {"first_stage_model.encoder.down.1.block.0.nin_shortcut.weight",
         "vae.encoder.down_blocks.1.resnets.0.conv_shortcut.weight", 0},
        {"first_stage_model.encoder.down.2.downsample.conv.weight",
         "vae.encoder.down_blocks.2.downsamplers.0.conv.weight", 0},
        {"first_stage_model.encoder.mid.block_1.norm1.weight", "vae.encoder.mid_block.resnets.0.norm1.weight", 0},
        {"first_stage_model.encoder.mid.attn_1.norm.bias", "vae.encoder.mid_block.attentions.0.group_norm.bias", 0},
        {"first_stage_model.encoder.mid.attn_1.q.weight", "vae.encoder.mid_block.attentions.0.to_q.weight", 1},
        {"first_stage_model.encoder.norm_out.weight", "vae.encoder.conv_norm_out.weight", 0},
        {"first_stage_model.quant_conv.weight", "vae.quant_conv.weight", 0},
        {"first_stage_model.post_quant_conv.bias", "vae.post_quant_conv.bias", 0},
        {"first_stage_model.decoder.up.3.block.0.conv1.weight", "vae.decoder.up_blocks.0.resnets.0.conv1.weight", 0},
        {"first_stage_model.decoder.up.1.block.0.nin_shortcut.weight",
         "vae.decoder.up_blocks.2.resnets.0.conv_shortcut.weight", 0},
        {"first_stage_model.decoder.up.0.block.2.norm2.bias", "vae.decoder.up_blocks.3.resnets.2.norm2.bias", 0},
        {"first_stage_model.decoder.up.1.upsample.conv.weight", "vae.decoder.up_blocks.2.upsamplers.0.conv.weight", 0},
        {"first_stage_model.decoder.mid.block_2.conv1.bias", "vae.decoder.mid_block.resnets.1.conv1.bias", 0},
        {"first_stage_model.decoder.mid.attn_1.proj_out.weight", "vae.decoder.mid_block.attentions.0.to_out.0.weight",
         1},
        {"first_stage_model.decoder.mid.attn_1.proj_out.bias", "vae.decoder.mid_block.attentions.0.to_out.0.bias", 0},
        {"first_stage_model.decoder.mid.attn_1.v.weight", "vae.decoder.mid_block.attentions.0.to_v.weight", 1},
        {"first_stage_model.decoder.norm_out.bias", "vae.decoder.conv_norm_out.bias", 0},
        {"cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc1.weight",
         "text_encoder.text_model.encoder.layers.11.mlp.fc1.weight", 0},
        {"cond_stage_model.transformer.text_model.final_layer_norm.bias",
         "text_encoder.text_model.final_layer_norm.bias", 0},
        {"cond_stage_model.transformer.embeddings.token_embedding.weight",
         "text_encoder.text_model.embeddings.token_embedding.weight", 0},
    };
    sd_ldm_layout lay = sd_ldm_layout_default();
    int bad = 0;
    for (size_t i = 0; i < sizeof M / sizeof M[0]; i++) {
        char out[256];
        bool sq = !M[i].squeeze;
        sd_name_kind k = sd_name_from_ldm(M[i].ldm, &lay, out, sizeof out, &sq);
        if (k != SD_NAME_WEIGHT || strcmp(out, M[i].canon) != 0 || sq != M[i].squeeze) {
            bad++;
            printf("     %s -> %s (want %s)\n", M[i].ldm, out, M[i].canon);
        }
    }
    TU_CHECK(bad == 0, "%zu LDM -> canonical names (block formulas, field renames, decoder reversal)",
             sizeof M / sizeof M[0]);
    static const char *const IGN[] = {"cond_stage_model.transformer.text_model.embeddings.position_ids",
                                      "model_ema.decay",
                                      "model_ema.num_updates",
                                      "model_ema.diffusion_modelinput_blocks00weight",
                                      "alphas_cumprod",
                                      "alphas_cumprod_prev",
                                      "betas",
                                      "sqrt_one_minus_alphas_cumprod",
                                      "posterior_mean_coef1",
                                      "log_one_minus_alphas_cumprod",
                                      NULL};
    int nig = 0;
    for (int i = 0; IGN[i]; i++) nig += sd_name_from_ldm(IGN[i], &lay, NULL, 0, NULL) == SD_NAME_IGNORED;
    TU_CHECK(nig == 10, "non-weight tensors (position_ids, model_ema.*, schedule buffers) are ignored");
    char out[128];
    TU_CHECK(sd_name_from_ldm("cond_stage_model.model.ln_final.weight", &lay, out, sizeof out, NULL) ==
                     SD_NAME_UNKNOWN &&
                 strcmp(out, "cond_stage_model.model.ln_final.weight") == 0 &&
                 sd_name_from_ldm("foo", &lay, out, sizeof out, NULL) == SD_NAME_UNKNOWN,
             "OpenCLIP / unknown names are not mapped");
    TU_CHECK(sd_name_from_diffusers(SD_VAE, "decoder.mid_block.attentions.0.query.weight", out, sizeof out) ==
                     SD_NAME_WEIGHT &&
                 strcmp(out, "vae.decoder.mid_block.attentions.0.to_q.weight") == 0,
             "old diffusers VAE attention name query -> to_q");
    sd_name_from_diffusers(SD_VAE, "encoder.mid_block.attentions.0.proj_attn.bias", out, sizeof out);
    TU_CHECK(strcmp(out, "vae.encoder.mid_block.attentions.0.to_out.0.bias") == 0, "proj_attn -> to_out.0 (%s)", out);
    TU_CHECK(sd_name_from_diffusers(SD_TEXT_ENCODER, "text_model.embeddings.position_ids", out, sizeof out) ==
                 SD_NAME_IGNORED,
             "diffusers text encoder position_ids ignored");
    /* leading zeros or a downsampler slot used as a resnet are not mapped */
    sd_name_from_ldm("model.diffusion_model.input_blocks.03.0.op.weight", &lay, out, sizeof out, NULL);
    TU_CHECK(strcmp(out, "unet.input_blocks.03.0.op.weight") == 0, "index with a leading zero left alone");

    /* round trip over every SD 1.5 (and LCM) tensor, both ways */
    sd_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    sd_unet_config_default(&cfg.unet);
    sd_vae_config_default(&cfg.vae);
    sd_clip_text_config_default(&cfg.text);
    cfg.unet.time_cond_proj_dim = 256;
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    int n_total = 0, n_bad = 0, n_dup = 0;
    for (int c = 0; c < SD_COMPONENT_COUNT; c++) {
        sd_tensor_spec *spec;
        int n = sd_expected_tensors(&cfg, c, &spec);
        for (int i = 0; i < n; i++) {
            char ldm[256], back[256];
            bool ok = sd_name_to_ldm(spec[i].name, &lay, ldm, sizeof ldm);
            ok = ok && sd_name_from_ldm(ldm, &lay, back, sizeof back, NULL) == SD_NAME_WEIGHT &&
                 strcmp(back, spec[i].name) == 0;
            if (!ok && n_bad++ < 5) printf("     %s -> %s -> %s\n", spec[i].name, ldm, back);
            if (g_hash_table_contains(seen, ldm)) n_dup++;
            g_hash_table_add(seen, g_strdup(ldm));
            n_total++;
        }
        g_free(spec);
    }
    TU_CHECK(n_bad == 0 && n_dup == 0,
             "canonical -> LDM -> canonical for all %d SD 1.5 + LCM tensors (%d bad, %d LDM names shared)", n_total,
             n_bad, n_dup);
    char l[200];
    sd_name_to_ldm("unet.up_blocks.0.upsamplers.0.conv.weight", &lay, l, sizeof l);
    TU_CHECK(strcmp(l, "model.diffusion_model.output_blocks.2.1.conv.weight") == 0, "up level 0 upsampler at .1: %s",
             l);
    sd_name_to_ldm("unet.up_blocks.2.upsamplers.0.conv.weight", &lay, l, sizeof l);
    TU_CHECK(strcmp(l, "model.diffusion_model.output_blocks.8.2.conv.weight") == 0, "up level 2 upsampler at .2: %s",
             l);
    g_hash_table_destroy(seen);
}

/* --- expected tensors: SD 1.5 counts and parameters ---------------------- */

static int64_t params(const sd_tensor_spec *s, int n) {
    int64_t p = 0;
    for (int i = 0; i < n; i++) {
        int64_t e = 1;
        for (int d = 0; d < s[i].ndim; d++) e *= s[i].shape[d];
        p += e;
    }
    return p;
}

static const sd_tensor_spec *find_spec(const sd_tensor_spec *s, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0) return &s[i];
    return NULL;
}

static void test_expected(void) {
    sd_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    sd_unet_config_default(&cfg.unet);
    sd_vae_config_default(&cfg.vae);
    sd_clip_text_config_default(&cfg.text);
    sd_tensor_spec *u, *v, *c;
    int nu = sd_expected_tensors(&cfg, SD_UNET, &u);
    int nv = sd_expected_tensors(&cfg, SD_VAE, &v);
    int nc = sd_expected_tensors(&cfg, SD_TEXT_ENCODER, &c);
    /* SD 1.5's published tensor and parameter counts */
    TU_CHECK(nu == 686 && params(u, nu) == 859520964,
             "UNet: %d tensors, %" G_GINT64_FORMAT " parameters (686, 859,520,964)", nu, params(u, nu));
    TU_CHECK(nv == 248 && params(v, nv) == 83653863,
             "VAE: %d tensors, %" G_GINT64_FORMAT " parameters (248, 83,653,863)", nv, params(v, nv));
    TU_CHECK(nc == 196 && params(c, nc) == 123060480,
             "CLIP: %d tensors, %" G_GINT64_FORMAT " parameters (196, 123,060,480)", nc, params(c, nc));
    const sd_tensor_spec *s = find_spec(u, nu, "unet.up_blocks.0.resnets.0.conv1.weight");
    TU_CHECK(s && s->ndim == 4 && s->shape[0] == 1280 && s->shape[1] == 2560,
             "up_blocks.0.resnets.0.conv1 [1280, 2560, 3, 3]");
    s = find_spec(u, nu, "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight");
    TU_CHECK(s && s->ndim == 2 && s->shape[0] == 640 && s->shape[1] == 768, "attn2.to_k [640, 768]");
    s = find_spec(u, nu, "unet.down_blocks.0.attentions.0.proj_in.weight");
    TU_CHECK(s && s->ndim == 4 && s->shape[2] == 1, "proj_in is a 1x1 conv [320, 320, 1, 1]");
    s = find_spec(v, nv, "vae.decoder.mid_block.attentions.0.to_q.weight");
    TU_CHECK(s && s->ndim == 2 && s->shape[0] == 512, "VAE attention to_q is Linear [512, 512]");
    TU_CHECK(!find_spec(u, nu, "unet.time_embedding.cond_proj.weight"), "no cond_proj without LCM");
    g_free(u);
    cfg.unet.time_cond_proj_dim = 256;
    nu = sd_expected_tensors(&cfg, SD_UNET, &u);
    s = find_spec(u, nu, "unet.time_embedding.cond_proj.weight");
    TU_CHECK(nu == 687 && s && s->shape[0] == 320 && s->shape[1] == 256, "LCM: + cond_proj [320, 256]");
    g_free(u);
    g_free(v);
    g_free(c);
}

/* --- config.json ---------------------------------------------------------- */

static const char *UNET_SD15 =
    "{\"_class_name\": \"UNet2DConditionModel\", \"_diffusers_version\": \"0.6.0\", \"act_fn\": \"silu\","
    " \"attention_head_dim\": 8, \"block_out_channels\": [320, 640, 1280, 1280], \"center_input_sample\": false,"
    " \"cross_attention_dim\": 768, \"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\","
    " \"CrossAttnDownBlock2D\", \"DownBlock2D\"], \"downsample_padding\": 1, \"flip_sin_to_cos\": true,"
    " \"freq_shift\": 0, \"in_channels\": 4, \"layers_per_block\": 2, \"mid_block_scale_factor\": 1,"
    " \"norm_eps\": 1e-05, \"norm_num_groups\": 32, \"out_channels\": 4, \"sample_size\": 64,"
    " \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\"]}";

static const char *UNET_LCM =
    "{\"_class_name\": \"UNet2DConditionModel\", \"act_fn\": \"silu\", \"addition_embed_type\": null,"
    " \"attention_head_dim\": 8, \"block_out_channels\": [320, 640, 1280, 1280], \"class_embed_type\": null,"
    " \"cross_attention_dim\": 768, \"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\","
    " \"CrossAttnDownBlock2D\", \"DownBlock2D\"], \"in_channels\": 4, \"layers_per_block\": 2,"
    " \"mid_block_type\": \"UNetMidBlock2DCrossAttn\", \"norm_eps\": 1e-05, \"norm_num_groups\": 32,"
    " \"num_attention_heads\": null, \"resnet_time_scale_shift\": \"default\", \"sample_size\": 96,"
    " \"time_cond_proj_dim\": 256, \"time_embedding_type\": \"positional\", \"transformer_layers_per_block\": 1,"
    " \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\"],"
    " \"upcast_attention\": false, \"use_linear_projection\": false}";

static void test_config_parse(void) {
    char err[512] = "";
    sd_unet_config u, d;
    sd_unet_config_default(&d);
    ie_status st = sd_unet_config_parse(UNET_SD15, strlen(UNET_SD15), "unet/config.json", &u, err, sizeof err);
    TU_CHECK(st == IE_OK && memcmp(&u, &d, sizeof u) == 0, "SD 1.5 unet/config.json = the defaults (%s)", err);
    st = sd_unet_config_parse(UNET_LCM, strlen(UNET_LCM), "unet/config.json", &u, err, sizeof err);
    TU_CHECK(st == IE_OK && u.time_cond_proj_dim == 256 && u.sample_size == 96 && u.heads[3] == 8,
             "LCM_Dreamshaper_v7 unet/config.json: time_cond_proj_dim 256, sample_size 96 (%s)", err);
    const char *list = "{\"attention_head_dim\": [5, 10, 20, 20], \"use_linear_projection\": true}";
    st = sd_unet_config_parse(list, strlen(list), "x", &u, err, sizeof err);
    TU_CHECK(st == IE_OK && u.heads[0] == 5 && u.heads[3] == 20 && u.use_linear_projection,
             "attention_head_dim as a list");
    const char *small = "{\"block_out_channels\": [32, 64], \"attention_head_dim\": 2, \"norm_num_groups\": 8,"
                        " \"layers_per_block\": 1, \"cross_attention_dim\": 32}";
    st = sd_unet_config_parse(small, strlen(small), "x", &u, err, sizeof err);
    TU_CHECK(st == IE_OK && u.n_levels == 2 && u.down_cross_attn[0] && !u.down_cross_attn[1] && !u.up_cross_attn[0] &&
                 u.up_cross_attn[1],
             "2 levels: default block types follow the level count (%s)", err);

    struct {
        const char *json;
        ie_status st;
        const char *sub;
    } bad[] = {
        {"[1]", IE_ERR_FORMAT, "expected a JSON object"},
        {"{\"in_channels\": 4,", IE_ERR_FORMAT, "not valid JSON"},
        {"{\"block_out_channels\": \"320\"}", IE_ERR_FORMAT,
         "block_out_channels: expected a list of integers, found a string"},
        {"{\"block_out_channels\": [320, -640, 1280, 1280]}", IE_ERR_FORMAT,
         "block_out_channels[1]: expected an integer in [1, 65536], found -640"},
        {"{\"block_out_channels\": [320, 640.5, 1280, 1280]}", IE_ERR_FORMAT,
         "block_out_channels[1]: expected an integer"},
        {"{\"block_out_channels\": []}", IE_ERR_UNSUPPORTED, "0 entries"},
        {"{\"layers_per_block\": true}", IE_ERR_FORMAT,
         "layers_per_block: expected an integer in [1, 16], found a boolean"},
        {"{\"down_block_types\": [\"CrossAttnDownBlock2D\", \"SimpleCrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", "
         "\"DownBlock2D\"]}",
         IE_ERR_UNSUPPORTED, "down_block_types[1]: unsupported block type \"SimpleCrossAttnDownBlock2D\""},
        {"{\"up_block_types\": [\"UpBlock2D\"]}", IE_ERR_FORMAT,
         "up_block_types: 1 entries, but block_out_channels has 4"},
        {"{\"attention_head_dim\": [8, 8]}", IE_ERR_FORMAT, "attention_head_dim: 2 entries"},
        {"{\"attention_head_dim\": 7}", IE_ERR_FORMAT, "does not divide block_out_channels[0] = 320"},
        {"{\"norm_num_groups\": 30}", IE_ERR_FORMAT, "norm_num_groups 30 does not divide"},
        {"{\"norm_eps\": \"small\"}", IE_ERR_FORMAT, "norm_eps: expected a number, found a string"},
        {"{\"mid_block_type\": \"UNetMidBlock2DSimpleCrossAttn\"}", IE_ERR_UNSUPPORTED, "mid_block_type"},
        {"{\"addition_embed_type\": \"text_time\"}", IE_ERR_UNSUPPORTED, "addition_embed_type is set"},
        {"{\"transformer_layers_per_block\": [1, 2, 10, 10]}", IE_ERR_UNSUPPORTED, "different values per level"},
        {"{\"resnet_time_scale_shift\": \"scale_shift\"}", IE_ERR_UNSUPPORTED, "resnet_time_scale_shift"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        st = sd_unet_config_parse(bad[i].json, strlen(bad[i].json), "unet/config.json", &u, err, sizeof err);
        TU_CHECK(st == bad[i].st && strstr(err, bad[i].sub) && strstr(err, "unet/config.json"), "bad unet config -> %s",
                 err);
    }

    err[0] = 0;
    sd_vae_config v, vd;
    sd_vae_config_default(&vd);
    const char *vae =
        "{\"_class_name\": \"AutoencoderKL\", \"act_fn\": \"silu\", \"block_out_channels\": [128, 256, 512, 512],"
        " \"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\", "
        "\"DownEncoderBlock2D\"],"
        " \"in_channels\": 3, \"latent_channels\": 4, \"layers_per_block\": 2, \"norm_num_groups\": 32,"
        " \"out_channels\": 3, \"sample_size\": 512, \"scaling_factor\": 0.18215,"
        " \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\", "
        "\"UpDecoderBlock2D\"]}";
    st = sd_vae_config_parse(vae, strlen(vae), "vae/config.json", &v, err, sizeof err);
    TU_CHECK(st == IE_OK && memcmp(&v, &vd, sizeof v) == 0, "SD 1.5 vae/config.json = the defaults (%s)", err);
    const char *vbad = "{\"scaling_factor\": \"0.18\"}";
    st = sd_vae_config_parse(vbad, strlen(vbad), "vae/config.json", &v, err, sizeof err);
    TU_CHECK(st == IE_ERR_FORMAT && strstr(err, "scaling_factor"), "bad vae config -> %s", err);
    vbad = "{\"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"AttnUpDecoderBlock2D\", "
           "\"UpDecoderBlock2D\"]}";
    st = sd_vae_config_parse(vbad, strlen(vbad), "vae/config.json", &v, err, sizeof err);
    TU_CHECK(st == IE_ERR_UNSUPPORTED && strstr(err, "AttnUpDecoderBlock2D"), "unsupported vae block -> %s", err);

    err[0] = 0;
    sd_clip_text_config c, cd;
    sd_clip_text_config_default(&cd);
    const char *clip =
        "{\"architectures\": [\"CLIPTextModel\"], \"bos_token_id\": 0, \"eos_token_id\": 2,"
        " \"hidden_act\": \"quick_gelu\", \"hidden_size\": 768, \"intermediate_size\": 3072,"
        " \"layer_norm_eps\": 1e-05, \"max_position_embeddings\": 77, \"num_attention_heads\": 12,"
        " \"num_hidden_layers\": 12, \"pad_token_id\": 1, \"projection_dim\": 768, \"vocab_size\": 49408}";
    st = sd_clip_text_config_parse(clip, strlen(clip), "text_encoder/config.json", &c, err, sizeof err);
    TU_CHECK(st == IE_OK && memcmp(&c, &cd, sizeof c) == 0, "SD 1.5 text_encoder/config.json = the defaults (%s)", err);
    const char *cbad = "{\"hidden_act\": \"relu\"}";
    st = sd_clip_text_config_parse(cbad, strlen(cbad), "text_encoder/config.json", &c, err, sizeof err);
    TU_CHECK(st == IE_ERR_UNSUPPORTED && strstr(err, "hidden_act: \"relu\""), "bad clip config -> %s", err);
    cbad = "{\"num_attention_heads\": 7}";
    st = sd_clip_text_config_parse(cbad, strlen(cbad), "text_encoder/config.json", &c, err, sizeof err);
    TU_CHECK(st == IE_ERR_FORMAT && strstr(err, "does not divide hidden_size 768"), "heads not dividing -> %s", err);
}

/* --- model folders and files ---------------------------------------------- */

/* A small SD-1.x-shaped model: 3 UNet levels, 2 layers per block. */
static void tiny_config(sd_model_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    sd_unet_config *u = &cfg->unet;
    sd_unet_config_default(u);
    u->n_levels = 3;
    int boc[3] = {32, 64, 64};
    bool down[3] = {true, true, false}, up[3] = {false, true, true};
    for (int i = 0; i < 3; i++) {
        u->block_out_channels[i] = boc[i];
        u->heads[i] = 2;
        u->down_cross_attn[i] = down[i];
        u->up_cross_attn[i] = up[i];
    }
    u->down_cross_attn[3] = u->up_cross_attn[3] = false;
    u->cross_attention_dim = 32;
    u->norm_num_groups = 8;
    sd_vae_config *v = &cfg->vae;
    sd_vae_config_default(v);
    v->n_levels = 3;
    v->block_out_channels[0] = 16;
    v->block_out_channels[1] = v->block_out_channels[2] = 32;
    v->block_out_channels[3] = 0;
    v->layers_per_block = 1;
    v->norm_num_groups = 8;
    sd_clip_text_config *c = &cfg->text;
    sd_clip_text_config_default(c);
    c->hidden_size = 32;
    c->intermediate_size = 64;
    c->num_attention_heads = 2;
    c->num_hidden_layers = 2;
    c->vocab_size = 1021;
    for (int k = 0; k < SD_COMPONENT_COUNT; k++) cfg->has[k] = true;
}

static const char *TINY_UNET_JSON =
    "{\"_class_name\": \"UNet2DConditionModel\", \"block_out_channels\": [32, 64, 64], \"attention_head_dim\": 2,"
    " \"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", \"DownBlock2D\"],"
    " \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\"],"
    " \"cross_attention_dim\": 32, \"norm_num_groups\": 8, \"layers_per_block\": 2}";
static const char *TINY_VAE_JSON =
    "{\"_class_name\": \"AutoencoderKL\", \"block_out_channels\": [16, 32, 32], \"layers_per_block\": 1,"
    " \"norm_num_groups\": 8, \"latent_channels\": 4,"
    " \"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"],"
    " \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]}";
static const char *TINY_CLIP_JSON =
    "{\"hidden_size\": 32, \"intermediate_size\": 64, \"num_attention_heads\": 2, \"num_hidden_layers\": 2,"
    " \"vocab_size\": 1021, \"max_position_embeddings\": 77, \"hidden_act\": \"quick_gelu\"}";

/* deterministic contents from the canonical name */
static void *fill(const char *canon, int64_t numel, bool f16) {
    tu_rng r = tu_rng_new(g_str_hash(canon));
    void *p = g_malloc((size_t)numel * (f16 ? 2 : 4));
    for (int64_t i = 0; i < numel; i++) {
        float x = tu_uniform(&r, -1, 1);
        if (f16) ((uint16_t *)p)[i] = st_float_to_half(x);
        else ((float *)p)[i] = x;
    }
    return p;
}

typedef struct gen_opts {
    bool ldm; /* single-file LDM names, VAE attention as 1x1 convs */
    bool f16;
    bool sparse;       /* no data (SD 1.5 size) */
    const char *wrong; /* canonical name to give a wrong shape (dim 1 + 1) */
    const char *skip;  /* canonical name to leave out */
    sd_ldm_layout lay;
} gen_opts;

static void add_component(stw *w, const sd_model_config *cfg, sd_component comp, const gen_opts *o) {
    sd_tensor_spec *spec;
    int n = sd_expected_tensors(cfg, comp, &spec);
    for (int i = 0; i < n; i++) {
        sd_tensor_spec s = spec[i];
        if (o->skip && strcmp(s.name, o->skip) == 0) continue;
        if (o->wrong && strcmp(s.name, o->wrong) == 0) s.shape[1] += 1;
        char name[256];
        const char *prefix = sd_component_name(comp);
        if (o->ldm) {
            sd_name_to_ldm(s.name, &o->lay, name, sizeof name);
            if (comp == SD_VAE && s.ndim == 2 && strstr(s.name, "mid_block.attentions.0.to_")) {
                s.ndim = 4; /* LDM stores the VAE attention as 1x1 convs */
                s.shape[2] = s.shape[3] = 1;
            }
        } else {
            g_strlcpy(name, s.name + strlen(prefix) + 1, sizeof name); /* drop "unet." */
        }
        int64_t numel = 1;
        for (int d = 0; d < s.ndim; d++) numel *= s.shape[d];
        void *data = o->sparse ? NULL : fill(spec[i].name, numel, o->f16);
        stw_add(w, name, o->f16 ? "F16" : "F32", s.ndim, s.shape, data);
        g_free(data);
    }
    g_free(spec);
}

static char *make_dir(const char *name) {
    char *p = g_build_filename(tmpdir, name, NULL);
    g_mkdir_with_parents(p, 0755);
    return p;
}

static void write_text(const char *dir, const char *sub, const char *file, const char *text) {
    char *d = g_build_filename(dir, sub, NULL);
    g_mkdir_with_parents(d, 0755);
    char *p = g_build_filename(d, file, NULL);
    g_file_set_contents(p, text, -1, NULL);
    g_free(p);
    g_free(d);
}

/* A diffusers folder of the tiny model. */
static char *make_folder(const char *name, const sd_model_config *cfg, bool configs, const char *unet_file,
                         const gen_opts *o) {
    char *dir = make_dir(name);
    write_text(dir, ".", "model_index.json", "{\"_class_name\": \"StableDiffusionPipeline\"}");
    static const char *const SUB[3] = {"unet", "vae", "text_encoder"};
    const char *files[3] = {unet_file ? unet_file : "diffusion_pytorch_model.safetensors",
                            "diffusion_pytorch_model.safetensors", "model.safetensors"};
    const char *json[3] = {TINY_UNET_JSON, TINY_VAE_JSON, TINY_CLIP_JSON};
    for (int c = 0; c < 3; c++) {
        stw *w = stw_new();
        add_component(w, cfg, c, o);
        if (c == SD_TEXT_ENCODER) stw_add(w, "text_model.embeddings.position_ids", "I64", 2, (int64_t[]){1, 77}, NULL);
        char *d = g_build_filename(dir, SUB[c], NULL);
        g_mkdir_with_parents(d, 0755);
        char *p = g_build_filename(d, files[c], NULL);
        stw_write(w, p, false);
        g_free(p);
        g_free(d);
        stw_free(w);
        if (configs) write_text(dir, SUB[c], "config.json", json[c]);
    }
    return dir;
}

static char *make_single(const char *name, const sd_model_config *cfg, const gen_opts *o) {
    char *p = g_build_filename(tmpdir, name, NULL);
    stw *w = stw_new();
    for (int c = 0; c < 3; c++) add_component(w, cfg, c, o);
    stw_add(w, "cond_stage_model.transformer.text_model.embeddings.position_ids", "I64", 2, (int64_t[]){1, 77}, NULL);
    stw_add(w, "alphas_cumprod", "F32", 1, (int64_t[]){1000}, NULL);
    stw_add(w, "betas", "F32", 1, (int64_t[]){1000}, NULL);
    stw_add(w, "model_ema.decay", "F32", 0, NULL, NULL);
    stw_add(w, "model_ema.num_updates", "I32", 0, NULL, NULL);
    stw_add(w, "cond_stage_model.model.logit_scale", "F32", 0, NULL, NULL); /* not SD 1.x: unused */
    stw_write(w, p, o->sparse);
    stw_free(w);
    return p;
}

static void print_report(const sd_check_report *r) {
    for (int i = 0; i < r->n_problems && i < 6; i++) printf("       problem: %s\n", r->problems[i]);
    for (int i = 0; i < r->n_unused_names && i < 4; i++) printf("       unused:  %s\n", r->unused[i]);
}

static void test_sources(void) {
    sd_model_config tiny;
    tiny_config(&tiny);
    gen_opts fo = {.f16 = false};
    char *folder = make_folder("tiny-diffusers", &tiny, true, NULL, &fo);
    char err[1024] = "";
    sd_weights *wf = NULL;
    ie_status st = sd_weights_open(folder, &wf, err, sizeof err);
    TU_CHECK(st == IE_OK && wf && sd_weights_layout(wf) == SD_LAYOUT_DIFFUSERS, "open a diffusers folder (%s)", err);
    if (!wf) return;
    TU_CHECK(sd_weights_has(wf, SD_UNET) && sd_weights_has(wf, SD_VAE) && sd_weights_has(wf, SD_TEXT_ENCODER) &&
                 sd_weights_config_path(wf, SD_UNET) && sd_weights_ignored_count(wf) == 1,
             "all three components, config.json found, position_ids ignored");
    sd_model_config cfg;
    st = sd_model_config_load(wf, &cfg, err, sizeof err);
    TU_CHECK(st == IE_OK && !cfg.detected[SD_UNET] && cfg.unet.n_levels == 3 && cfg.unet.heads[0] == 2 &&
                 cfg.vae.layers_per_block == 1 && cfg.text.num_hidden_layers == 2 && cfg.variant == SD_VARIANT_SD1,
             "configs read from config.json (%s)", err);
    char desc[512];
    printf("     %s\n", sd_model_config_describe(&cfg, desc, sizeof desc));
    sd_check_report rep;
    st = sd_weights_check(wf, &cfg, &rep, err, sizeof err);
    TU_CHECK(st == IE_OK && rep.n_problems == 0 && rep.n_unused == 0 && rep.n_expected == sd_weights_count(wf),
             "check: all %d expected tensors present with their shapes (%s)", rep.n_expected, err);
    print_report(&rep);
    sd_check_report_free(&rep);
    const sd_weight *x = sd_weights_get(wf, "unet.down_blocks.1.resnets.0.conv1.weight");
    TU_CHECK(x && x->ndim == 4 && x->shape[0] == 64 && x->shape[1] == 32 && !x->reshaped &&
                 strcmp(x->t->name, "down_blocks.1.resnets.0.conv1.weight") == 0,
             "canonical lookup in the unet file");

    /* the same weights as one LDM checkpoint (fp32) */
    gen_opts so = {.ldm = true, .f16 = false, .lay = sd_ldm_layout_default()};
    so.lay.vae_levels = 3;
    so.lay.unet_up_has_attn[0] = false;
    so.lay.unet_up_has_attn[1] = so.lay.unet_up_has_attn[2] = true;
    so.lay.unet_up_has_attn[3] = false;
    char *single = make_single("tiny-ldm.safetensors", &tiny, &so);
    sd_weights *ws = NULL;
    st = sd_weights_open(single, &ws, err, sizeof err);
    TU_CHECK(st == IE_OK && ws && sd_weights_layout(ws) == SD_LAYOUT_SINGLE_FILE, "open a single-file checkpoint (%s)",
             err);
    if (ws) {
        sd_ldm_layout l = sd_weights_ldm_layout(ws);
        TU_CHECK(l.unet_layers_per_block == 2 && l.vae_levels == 3 && !l.unet_up_has_attn[0] && l.unet_up_has_attn[1],
                 "LDM layout detected from names: 2 layers per block, 3 VAE levels");
        TU_CHECK(sd_weights_count(ws) == sd_weights_count(wf) && sd_weights_ignored_count(ws) == 5 &&
                     sd_weights_unmapped_count(ws) == 1,
                 "same %d weights as the folder; 5 ignored, 1 unknown", sd_weights_count(ws));
        int diff = 0, reshaped = 0;
        for (int i = 0; i < sd_weights_count(wf); i++) {
            const sd_weight *a = sd_weights_at(wf, i), *b = sd_weights_get(ws, a->name);
            if (!b || b->ndim != a->ndim || memcmp(b->shape, a->shape, sizeof a->shape) != 0 ||
                b->t->nbytes != a->t->nbytes || memcmp(b->t->data, a->t->data, a->t->nbytes) != 0) {
                if (diff++ < 3) printf("     differs: %s\n", a->name);
            }
            reshaped += b && b->reshaped;
        }
        TU_CHECK(diff == 0, "every canonical tensor has the same shape and bytes in both layouts (%d differ)", diff);
        TU_CHECK(reshaped == 8, "8 VAE attention weights reshaped [C, C, 1, 1] -> [C, C] (%d)", reshaped);
        x = sd_weights_get(ws, "vae.decoder.mid_block.attentions.0.to_q.weight");
        TU_CHECK(x && x->reshaped && x->ndim == 2 && x->t->ndim == 4 &&
                     strcmp(x->t->name, "first_stage_model.decoder.mid.attn_1.q.weight") == 0,
                 "to_q comes from first_stage_model.decoder.mid.attn_1.q.weight");
        sd_model_config dc;
        st = sd_model_config_load(ws, &dc, err, sizeof err);
        TU_CHECK(st == IE_OK && dc.detected[SD_UNET] && dc.detected[SD_VAE] && dc.detected[SD_TEXT_ENCODER],
                 "single file: configs detected from shapes (%s)", err);
        const sd_unet_config *a = &dc.unet, *b = &tiny.unet;
        bool same = a->n_levels == b->n_levels && a->layers_per_block == b->layers_per_block &&
                    a->in_channels == b->in_channels && a->out_channels == b->out_channels &&
                    a->cross_attention_dim == b->cross_attention_dim && a->time_cond_proj_dim == 0 &&
                    a->transformer_layers_per_block == 1 && !a->use_linear_projection;
        for (int i = 0; i < 3; i++)
            same &= a->block_out_channels[i] == b->block_out_channels[i] &&
                    a->down_cross_attn[i] == b->down_cross_attn[i] && a->up_cross_attn[i] == b->up_cross_attn[i];
        TU_CHECK(same, "detected UNet: levels [32, 64, 64], 2 layers, block types, context 32");
        TU_CHECK(dc.vae.n_levels == 3 && dc.vae.block_out_channels[0] == 16 && dc.vae.block_out_channels[2] == 32 &&
                     dc.vae.layers_per_block == 1 && dc.vae.latent_channels == 4 && dc.vae.mid_block_add_attention,
                 "detected VAE: [16, 32, 32], 1 layer, 4 latent channels");
        TU_CHECK(dc.text.hidden_size == 32 && dc.text.num_hidden_layers == 2 && dc.text.intermediate_size == 64 &&
                     dc.text.vocab_size == 1021 && dc.text.max_position_embeddings == 77,
                 "detected CLIP: 2 layers x 32, vocab 1021");
        st = sd_weights_check(ws, &dc, &rep, err, sizeof err);
        TU_CHECK(st == IE_OK && rep.n_problems == 0 && rep.n_unused == 1 &&
                     strstr(rep.unused[0], "cond_stage_model.model.logit_scale"),
                 "single file passes the check; the unknown tensor is listed as unused");
        print_report(&rep);
        sd_check_report_free(&rep);
        sd_weights_close(ws);
    }
    sd_weights_close(wf);
    g_free(single);
    g_free(folder);

    /* fp16 variant file name, no config.json: detection from shapes */
    gen_opts ho = {.f16 = true};
    folder = make_folder("tiny-fp16-noconfig", &tiny, false, "diffusion_pytorch_model.fp16.safetensors", &ho);
    st = sd_weights_open(folder, &wf, err, sizeof err);
    TU_CHECK(st == IE_OK && strstr(sd_weights_file(wf, SD_UNET), "fp16.safetensors"),
             "diffusion_pytorch_model.fp16.safetensors accepted (%s)", err);
    if (wf) {
        st = sd_model_config_load(wf, &cfg, err, sizeof err);
        TU_CHECK(st == IE_OK && cfg.detected[SD_UNET] && strstr(cfg.notes, "unet/config.json is absent"),
                 "folder without unet/config.json: detected from shapes, noted: %s", cfg.notes);
        st = sd_weights_check(wf, &cfg, &rep, err, sizeof err);
        TU_CHECK(st == IE_OK, "and passes the check (%s)", err);
        sd_check_report_free(&rep);
        sd_weights_close(wf);
    }
    g_free(folder);

    /* a wrong shape and a missing tensor, reported by name */
    gen_opts wo = {.wrong = "unet.down_blocks.1.resnets.0.conv1.weight", .skip = "vae.decoder.conv_out.bias"};
    folder = make_folder("tiny-wrong", &tiny, true, NULL, &wo);
    st = sd_weights_open(folder, &wf, err, sizeof err);
    if (wf) {
        sd_model_config_load(wf, &cfg, err, sizeof err);
        st = sd_weights_check(wf, &cfg, &rep, err, sizeof err);
        bool found_shape = false, found_missing = false;
        for (int i = 0; i < rep.n_problems; i++) {
            found_shape |=
                strcmp(rep.problems[i],
                       "unet.down_blocks.1.resnets.0.conv1.weight: expected [64, 32, 3, 3], found [64, 33, 3, 3]") == 0;
            found_missing |= strcmp(rep.problems[i], "vae.decoder.conv_out.bias: missing") == 0;
        }
        TU_CHECK(st == IE_ERR_FORMAT && rep.n_mismatched == 1 && rep.n_missing == 1 && found_shape && found_missing,
                 "wrong shape and missing tensor reported: %s", err);
        sd_check_report_free(&rep);
        sd_weights_close(wf);
    }
    g_free(folder);

    /* bad folders */
    char *empty = make_dir("empty-folder");
    st = sd_weights_open(empty, &wf, err, sizeof err);
    TU_CHECK(st == IE_ERR_FORMAT && !wf && strstr(err, "not a diffusers model folder"), "empty folder -> %s", err);
    write_text(empty, ".", "model_index.json", "{}");
    st = sd_weights_open(empty, &wf, err, sizeof err);
    TU_CHECK(st == IE_ERR_FORMAT && strstr(err, "without weights") &&
                 strstr(err, "unet/diffusion_pytorch_model.safetensors"),
             "model_index.json only -> %s", err);
    write_text(empty, "unet", "diffusion_pytorch_model.bin", "pickle");
    write_text(empty, "vae", "diffusion_pytorch_model.safetensors", "garbage");
    st = sd_weights_open(empty, &wf, err, sizeof err);
    TU_CHECK(st == IE_ERR_FORMAT && strstr(err, "vae/diffusion_pytorch_model.safetensors") && strstr(err, "truncated"),
             "a malformed component file fails the open -> %s", err);
    char *vf = g_build_filename(empty, "vae", "diffusion_pytorch_model.safetensors", NULL);
    g_remove(vf);
    g_free(vf);
    folder = make_folder("tiny-for-parts", &tiny, true, NULL, &fo);
    char *src = g_build_filename(folder, "text_encoder", "model.safetensors", NULL);
    char *dst_dir = g_build_filename(empty, "text_encoder", NULL);
    g_mkdir_with_parents(dst_dir, 0755);
    char *dst = g_build_filename(dst_dir, "model.safetensors", NULL);
    g_rename(src, dst);
    st = sd_weights_open(empty, &wf, err, sizeof err);
    TU_CHECK(st == IE_OK && wf && !sd_weights_has(wf, SD_UNET) && sd_weights_has(wf, SD_TEXT_ENCODER) &&
                 strstr(sd_weights_missing_reason(wf, SD_UNET), ".bin"),
             "text encoder only: opens; unet missing because %s", wf ? sd_weights_missing_reason(wf, SD_UNET) : err);
    if (wf) {
        sd_model_config_load(wf, &cfg, err, sizeof err);
        st = sd_weights_check(wf, &cfg, &rep, err, sizeof err);
        TU_CHECK(st == IE_ERR_FORMAT && rep.n_problems == 2 && rep.n_absent == 2 && rep.n_missing == 0 &&
                     strstr(rep.problems[0], "unet: absent") && strstr(rep.problems[1], "vae: absent"),
                 "check names the absent components: %s", err);
        sd_check_report_free(&rep);
        sd_weights_close(wf);
    }
    g_free(src);
    g_free(dst);
    g_free(dst_dir);
    /* bad config.json */
    write_text(folder, "unet", "config.json", "{\"block_out_channels\": [32, 64, 64], \"layers_per_block\": 2,");
    st = sd_weights_open(folder, &wf, err, sizeof err);
    if (wf) {
        st = sd_model_config_load(wf, &cfg, err, sizeof err);
        TU_CHECK(st == IE_ERR_FORMAT && strstr(err, "unet/config.json") && strstr(err, "not valid JSON"),
                 "broken unet/config.json -> %s", err);
        sd_weights_close(wf);
    }
    /* a component file given instead of the folder */
    char *comp = g_build_filename(folder, "unet", "diffusion_pytorch_model.safetensors", NULL);
    st = sd_weights_open(comp, &wf, err, sizeof err);
    TU_CHECK(st == IE_ERR_FORMAT && strstr(err, "open the folder instead"), "unet file alone -> %s", err);
    g_free(comp);
    g_free(folder);
    g_free(empty);
    char *none = g_build_filename(tmpdir, "does-not-exist", NULL);
    st = sd_weights_open(none, &wf, err, sizeof err);
    TU_CHECK(st == IE_ERR_IO && strstr(err, "does-not-exist") && strstr(err, "no such file"), "missing path -> %s",
             err);
    g_free(none);
}

/* SD 1.5 shapes in a single fp16 checkpoint (sparse: 2 GB of holes). */
static void test_sd15_single(void) {
    sd_model_config sd;
    memset(&sd, 0, sizeof sd);
    sd_unet_config_default(&sd.unet);
    sd_vae_config_default(&sd.vae);
    sd_clip_text_config_default(&sd.text);
    gen_opts o = {.ldm = true, .f16 = true, .sparse = true, .lay = sd_ldm_layout_default()};
    char *path = make_single("sd15-sparse.safetensors", &sd, &o);
    char err[1024] = "";
    sd_weights *w = NULL;
    gint64 t0 = g_get_monotonic_time();
    ie_status st = sd_weights_open(path, &w, err, sizeof err);
    double ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
    TU_CHECK(st == IE_OK && w && sd_weights_count(w) == 686 + 248 + 196,
             "SD 1.5 single file: %d weights mapped in %.0f ms (%s)", w ? sd_weights_count(w) : 0, ms, err);
    if (w) {
        sd_model_config cfg;
        st = sd_model_config_load(w, &cfg, err, sizeof err);
        sd_unet_config du;
        sd_unet_config_default(&du);
        sd_vae_config dv;
        sd_vae_config_default(&dv);
        sd_clip_text_config dc;
        sd_clip_text_config_default(&dc);
        TU_CHECK(st == IE_OK && memcmp(&cfg.unet, &du, sizeof du) == 0 && memcmp(&cfg.vae, &dv, sizeof dv) == 0 &&
                     memcmp(&cfg.text, &dc, sizeof dc) == 0 && cfg.variant == SD_VARIANT_SD1 && !cfg.lcm,
                 "detected configs equal SD 1.5's exactly (%s)", err);
        sd_check_report rep;
        st = sd_weights_check(w, &cfg, &rep, err, sizeof err);
        TU_CHECK(st == IE_OK && rep.n_expected == 1130 && rep.n_unused == 1, "check passes: 1130 tensors (%s)", err);
        print_report(&rep);
        sd_check_report_free(&rep);
        sd_weights_close(w);
    }
    g_remove(path);
    g_free(path);

    /* the brief's example: one wrong shape in an LDM file */
    o.wrong = "unet.down_blocks.1.resnets.0.conv1.weight";
    o.skip = "unet.up_blocks.2.upsamplers.0.conv.weight";
    path = make_single("sd15-wrong.safetensors", &sd, &o);
    st = sd_weights_open(path, &w, err, sizeof err);
    if (w) {
        sd_model_config cfg;
        sd_model_config_load(w, &cfg, err, sizeof err);
        sd_check_report rep;
        st = sd_weights_check(w, &cfg, &rep, err, sizeof err);
        bool a = false, b = false;
        for (int i = 0; i < rep.n_problems; i++) {
            a |= strcmp(rep.problems[i],
                        "unet.down_blocks.1.resnets.0.conv1.weight: expected [640, 320, 3, 3], found [640, 321, 3, 3]"
                        " (in file: model.diffusion_model.input_blocks.4.0.in_layers.2.weight)") == 0;
            b |= strcmp(rep.problems[i], "unet.up_blocks.2.upsamplers.0.conv.weight: missing"
                                         " (in file: model.diffusion_model.output_blocks.8.2.conv.weight)") == 0;
        }
        TU_CHECK(st == IE_ERR_FORMAT && a && b, "LDM file: wrong shape and missing tensor named in both namings");
        print_report(&rep);
        sd_check_report_free(&rep);
        sd_weights_close(w);
    }
    g_remove(path);
    g_free(path);
}

static void rm_rf(const char *p) {
    if (g_file_test(p, G_FILE_TEST_IS_DIR)) {
        GDir *d = g_dir_open(p, 0, NULL);
        const char *n;
        while (d && (n = g_dir_read_name(d))) {
            char *c = g_build_filename(p, n, NULL);
            rm_rf(c);
            g_free(c);
        }
        if (d) g_dir_close(d);
        g_rmdir(p);
    } else {
        g_remove(p);
    }
}

int main(void) {
    tmpdir = g_dir_make_tmp("invedit-model-XXXXXX", NULL);
    test_table();
    test_expected();
    test_config_parse();
    test_sources();
    test_sd15_single();
    rm_rf(tmpdir);
    g_free(tmpdir);
    return tu_finish("test_model_names");
}
