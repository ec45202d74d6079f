/* CLIP byte-level BPE tokenizer, as OpenAI CLIP's simple_tokenizer.py (which
 * transformers' CLIPTokenizer reproduces), for SD 1.x prompts.
 *
 * Files: vocab.json ({token: id}) and merges.txt (a first line that is
 * skipped, as the reference does, normally "#version: 0.2"; then one merge
 * "a b" per line in rank order; at most 48,894 merges are used, the
 * reference's limit). BOS/EOS are the ids of "<|startoftext|>" and
 * "<|endoftext|>" (49406/49407 in the real CLIP vocabulary; a smaller
 * vocabulary with the same layout works the same way).
 *
 * encode(text):
 *   1. clean, as CLIP's basic_clean + whitespace_clean + lower:
 *      a. ftfy.fix_text, partly (below);
 *      b. html.unescape twice (every HTML5 entity, numeric references with
 *         Python's replacement rules, legacy names without ';');
 *      c. strip, collapse every run of Python-whitespace to one space, strip;
 *      d. str.lower() (full lower-casing: U+0130 -> "i\u0307", final sigma).
 *   2. pre-tokenise with CLIP's pattern
 *        <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 *      (re.IGNORECASE: "'ſ" counts as "'s"), with GLib's Unicode classes;
 *   3. each piece: UTF-8 bytes -> GPT-2 byte-to-unicode symbols, "</w>" on the
 *      last one, greedy BPE by merge rank (all occurrences of the best pair,
 *      left to right, then again); a piece that is "<|startoftext|>" or
 *      "<|endoftext|>" is that special token; a symbol missing from the
 *      vocabulary becomes EOS (the unk token of transformers' CLIPTokenizer).
 *
 * Of ftfy.fix_text (default config) these steps are replicated, in ftfy's
 * order and repeated until nothing changes, per line: unescape_html (only
 * entities with ';', plus ftfy's upper-case names; skipped from the first
 * line containing '<' on), fix_c1_controls (U+0080..U+009F as Windows-1252),
 * fix_latin_ligatures, fix_character_width (full/half-width forms, U+3000),
 * uncurl_quotes, fix_line_breaks, remove_terminal_escapes,
 * remove_control_chars, NFC normalisation. NOT replicated: fix_encoding
 * (mojibake repair such as "cafÃ©" -> "café", restore_byte_a0,
 * replace_lossy_sequences, decode_inconsistent_utf8). Text that is valid
 * Unicode and not mojibake is unaffected by those. Invalid UTF-8 input is
 * decoded with U+FFFD replacements first (Python's errors="replace").
 * Unicode property tables are GLib's (Unicode 15) where the reference uses
 * Python's/regex's; they differ only for recently added characters.
 *
 * Differences from transformers' CLIPTokenizer, which users may compare with:
 * with ftfy installed it does not html.unescape (only ftfy's own unescape);
 * without ftfy it uses a BERT BasicTokenizer that splits CJK characters apart.
 * For ASCII prompts without entities all three agree.
 *
 * A loaded tokenizer is immutable: any number of threads may use it.
 */
#ifndef INVEDIT_TOKENIZER_H
#define INVEDIT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vkcompute/ops.h" /* ie_status */

#ifdef __cplusplus
extern "C" {
#endif

#define CLIP_CONTEXT_LENGTH 77 /* SD 1.x: BOS + 75 tokens + EOS */
#define CLIP_MAX_MERGES 48894  /* 49152 - 256 - 2, as the reference reads merges.txt */

typedef struct clip_tokenizer clip_tokenizer;

/* Loads vocab.json and merges.txt. IE_ERR_IO names a missing/unreadable
 * file; IE_ERR_FORMAT names the file and what is wrong in it. */
ie_status clip_tokenizer_load(const char *vocab_json, const char *merges_txt, clip_tokenizer **out, char *err,
                              size_t errlen);
/* dir/vocab.json + dir/merges.txt (a diffusers "tokenizer" folder). */
ie_status clip_tokenizer_load_dir(const char *dir, clip_tokenizer **out, char *err, size_t errlen);
/* The same from memory (`label` names them in messages). */
ie_status clip_tokenizer_load_memory(const char *vocab_json, size_t vocab_len, const char *merges, size_t merges_len,
                                     const char *label, clip_tokenizer **out, char *err, size_t errlen);
/* The standard CLIP ViT-L/14 vocabulary that ships with the library
 * (model/data/bpe_simple_vocab_16e6.txt.gz, OpenAI CLIP, MIT licence):
 * 49,408 ids derived from the BPE file as simple_tokenizer.py does (256
 * byte symbols, the same with "</w>", 48,894 merges, <|startoftext|>,
 * <|endoftext|>). Used when a model has no tokenizer/ folder. */
#define CLIP_BUILTIN_VOCAB_SIZE 49408
ie_status clip_tokenizer_load_builtin(clip_tokenizer **out, char *err, size_t errlen);
/* The same vocabulary as vocab.json text and merges.txt text (g_free both). */
ie_status clip_builtin_vocab_text(char **vocab_json, size_t *vocab_len, char **merges, size_t *merges_len, char *err,
                                  size_t errlen);
void clip_tokenizer_free(clip_tokenizer *tok);

int clip_tokenizer_vocab_size(const clip_tokenizer *tok); /* largest id + 1 */
int clip_tokenizer_merge_count(const clip_tokenizer *tok);
int32_t clip_tokenizer_bos(const clip_tokenizer *tok);
int32_t clip_tokenizer_eos(const clip_tokenizer *tok); /* also the pad and unk token */
/* The vocabulary string of an id ("cat</w>", byte-encoded), or NULL. */
const char *clip_tokenizer_token(const clip_tokenizer *tok, int32_t id);
/* The id of a vocabulary string, or -1. */
int32_t clip_tokenizer_lookup(const clip_tokenizer *tok, const char *token);

/* Step 1 alone: the cleaned, lower-cased text (g_free it). */
char *clip_text_clean(const char *text);

/* The BPE ids of text, without BOS/EOS. Writes the first min(n, cap) ids and
 * returns n, the full count. */
int clip_tokenize(const clip_tokenizer *tok, const char *text, int32_t *ids, int cap);

/* The SD conditioning sequence: ids[0..length) = BOS, the first length-2
 * tokens, EOS, then EOS padding (length 77 for SD 1.x; length >= 2).
 * Returns the number of tokens before truncation; *truncated (may be NULL)
 * is set when tokens were dropped. */
int clip_encode(const clip_tokenizer *tok, const char *text, int32_t *ids, int length, bool *truncated);

/* Text of ids: token strings concatenated, bytes decoded (invalid UTF-8 ->
 * U+FFFD as Python's errors="replace"), "</w>" -> " ", then stripped.
 * Special tokens are kept as text. g_free the result. (transformers'
 * decode additionally applies clean_up_tokenization_spaces to
 * multi-token strings; not done here.) */
char *clip_decode(const clip_tokenizer *tok, const int32_t *ids, int n);

/* Prompt-to-Prompt's get_word_inds: the positions in the encoded sequence
 * (BOS = position 0) of the tokens of word number `word` of text split on
 * single spaces. Token texts (decoded one by one, '#' stripped) are matched
 * to words by accumulated length (fragile with punctuation, as the
 * reference). Returns the count of positions; writes at most cap of them.
 * Positions are not limited to the 77-token window. */
int clip_word_positions(const clip_tokenizer *tok, const char *text, int word, int *pos, int cap);
/* The same for every word equal to `word_text`. */
int clip_word_positions_str(const clip_tokenizer *tok, const char *text, const char *word_text, int *pos, int cap);

#ifdef __cplusplus
}
#endif
#endif
