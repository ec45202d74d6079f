/* libFuzzer: the config.json parsers on arbitrary bytes. The first byte picks
 * the parser (UNet, VAE, CLIP text); an accepted UNet/VAE/CLIP config must
 * give a consistent list of expected tensors. */
#include <assert.h>
#include <glib.h>
#include <string.h>

#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const char *json = (const char *)data + 1;
    size_t len = size - 1;
    char err[1024];
    sd_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    sd_unet_config_default(&cfg.unet);
    sd_vae_config_default(&cfg.vae);
    sd_clip_text_config_default(&cfg.text);
    sd_component comp = (sd_component)(data[0] % 3);
    ie_status st;
    if (comp == SD_UNET) st = sd_unet_config_parse(json, len, "unet/config.json", &cfg.unet, err, sizeof err);
    else if (comp == SD_VAE) st = sd_vae_config_parse(json, len, "vae/config.json", &cfg.vae, err, sizeof err);
    else st = sd_clip_text_config_parse(json, len, "text_encoder/config.json", &cfg.text, err, sizeof err);
    if (st != IE_OK) {
        assert(err[0] != 0);
        return 0;
    }
    cfg.has[comp] = true;
    sd_tensor_spec *spec = NULL;
    int n = sd_expected_tensors(&cfg, comp, &spec);
    assert(n > 0);
    for (int i = 0; i < n; i++) {
        assert(spec[i].ndim >= 1 && spec[i].ndim <= 4);
        for (int d = 0; d < spec[i].ndim; d++) assert(spec[i].shape[d] >= 1);
    }
    g_free(spec);
    char desc[512];
    sd_model_config_describe(&cfg, desc, sizeof desc);
    return 0;
}
