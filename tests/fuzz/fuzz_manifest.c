/* libFuzzer target: one line of a batch manifest (cli/manifest.c, JSON Lines
 * through json-glib, values through the parameter table) and the output
 * pattern of a parsed item. The input is the line itself. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const ie_param_desc *steps = ie_edit_param_find("steps");
    manifest_default defs[1] = {{steps, "10"}};
    manifest_item it;
    char err[512];
    (void)manifest_line_is_blank((const char *)data, size);
    if (manifest_parse_line((const char *)data, size, IE_METHOD_EF_DDPM, defs, 1, &it, err, sizeof err)) {
        char path[64];
        for (int i = 0; i < it.n_targets; i++) (void)output_pattern_expand(it.output, i + 1, path, sizeof path);
        (void)ie_edit_params_validate(&it.p, err, sizeof err);
        manifest_item_clear(&it);
    } else if (strlen(err) == 0) {
        __builtin_trap(); /* a rejected line always says why */
    }
    return 0;
}
