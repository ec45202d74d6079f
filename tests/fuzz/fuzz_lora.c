/* libFuzzer: the LoRA key parser and the FILE[:SCALE] parser (model/lora.h)
 * on arbitrary bytes. The input is split at newlines; every line is parsed
 * as a LoRA tensor name, and as a --lora value.
 * Invariants: a parsed key has a known naming and part, a non-empty module
 * that fits its buffer and is a substring-derived name without NUL; a
 * parsed spec has a non-empty path no longer than the input and a finite
 * scale. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/lora.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *line = text;
    while (line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        sd_lora_key k;
        if (sd_lora_key_parse(line, &k)) {
            size_t ml = strlen(k.module);
            assert(ml > 0 && ml < sizeof k.module);
            assert(k.target[0]);
            assert(k.naming == SD_LORA_KOHYA || k.naming == SD_LORA_DIFFUSERS);
            assert(k.part <= SD_LORA_OTHER);
            assert(k.part != SD_LORA_OTHER || k.other);
        }
        char path[64];
        double scale = 0;
        if (sd_lora_spec_parse(line, path, sizeof path, &scale)) {
            assert(path[0] && strlen(path) <= strlen(line));
            assert(isfinite(scale));
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return 0;
}
