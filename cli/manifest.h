/* Batch manifests and output patterns (for `invedit batch` and `invedit edit
 * --target A --target B -o out-%d.png`). Separate from the commands so the
 * line parser has a libFuzzer target (tests/fuzz/fuzz_manifest.c).
 *
 * A manifest is JSON Lines: one JSON object per line, e.g.
 *   {"image": "in/cat.png", "source": "a cat", "target": "a dog", "output": "out/dog.png"}
 *   {"image": "in/cat.png", "source": "a cat", "target": ["a fox", "a lion"],
 *    "output": "out/cat-%d.png", "method": "ef-ddpm", "steps": 50, "prompt-to-prompt": true}
 * Keys: "image" and "output" (required); "source"/"source-prompt",
 * "target"/"target-prompt" (a string or an array of strings), "negative"; and
 * any parameter of the parameter table by its name ("method", "steps",
 * "strength", "cfg-target", "seed", "blend-words", ...). Values may be
 * strings, numbers or booleans; they are checked as the CLI's options are.
 * Blank lines and lines starting with '#' are not items. */
#ifndef INVEDIT_MANIFEST_H
#define INVEDIT_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>

#include <invedit.h>

#define MANIFEST_MAX_TARGETS 64

/* One option given to the batch command for every item: a table parameter
 * and its text value. */
typedef struct manifest_default {
    const ie_param_desc *d;
    const char *value;
} manifest_default;

typedef struct manifest_item {
    ie_edit_params p; /* strings point into `owned` */
    const char *image;
    const char *output; /* a path, or a pattern (%d) with several targets */
    const char *model;  /* NULL unless the line names one */
    const char *targets[MANIFEST_MAX_TARGETS];
    int n_targets;
    void *owned; /* GPtrArray of the strings above */
} manifest_item;

/* True for a line that is not an item (blank, or a '#' comment). */
bool manifest_line_is_blank(const char *line, size_t len);

/* Parses one line (len bytes, need not be NUL-terminated). The item starts
 * from the defaults of its method (the line's "method", else default_method),
 * then the defaults given to the batch (ndef entries, in order), then the
 * line's own keys. Returns true, or false with a message in err (the item
 * is then cleared). Free a parsed item with manifest_item_clear. */
bool manifest_parse_line(const char *line, size_t len, ie_method default_method, const manifest_default *defs, int ndef,
                         manifest_item *item, char *err, size_t errlen);
void manifest_item_clear(manifest_item *item);

/* Output patterns: "%d" (or "%0Nd", N one digit) stands for the target's
 * number (1 = the first); "%%" is a '%'. Any other '%' is an error.
 * Returns the number of number fields (0 or 1; -1 when the pattern is bad,
 * with a message). */
int output_pattern_fields(const char *pattern, char *err, size_t errlen);
/* Writes pattern with index into out; false when it does not fit or the
 * pattern is bad. */
bool output_pattern_expand(const char *pattern, int index, char *out, size_t outlen);

#endif
