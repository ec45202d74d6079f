/* libFuzzer: the CLIP tokenizer on arbitrary bytes.
 *   first byte < 0xE0: the rest is prompt text, encoded with the test
 *                      vocabulary (tests/data/tok), decoded, word positions;
 *   0xE0..0xEF:        the rest is a merges.txt for a fixed small vocabulary;
 *   0xF0..0xFF:        the rest is a vocab.json with the test merges.
 * Invariants: ids are in the vocabulary, the 77-sequence starts with BOS and
 * ends with EOS, cleaned and decoded text is valid UTF-8. */
#include <assert.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static clip_tokenizer *tok;
static char *test_merges;
static size_t test_merges_len;

static const char *SMALL_VOCAB = "{\"a\":0,\"b\":1,\"c\":2,\"a</w>\":3,\"b</w>\":4,\"c</w>\":5,\"ab\":6,\"abc</w>\":7,"
                                 "\"<|startoftext|>\":8,\"<|endoftext|>\":9}";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char err[512];
    char *dir = g_build_filename(FUZZ_SOURCE_ROOT, "tests", "data", "tok", NULL);
    if (clip_tokenizer_load_dir(dir, &tok, err, sizeof err) != IE_OK) abort();
    char *m = g_build_filename(dir, "merges.txt", NULL);
    gsize n = 0;
    if (!g_file_get_contents(m, &test_merges, &n, NULL)) abort();
    test_merges_len = n;
    g_free(m);
    g_free(dir);
    return 0;
}

static void exercise(const clip_tokenizer *t, const char *text) {
    int32_t ids[CLIP_CONTEXT_LENGTH], all[512];
    bool trunc;
    int n = clip_encode(t, text, ids, CLIP_CONTEXT_LENGTH, &trunc);
    assert(n >= 0 && ids[0] == clip_tokenizer_bos(t) && ids[CLIP_CONTEXT_LENGTH - 1] == clip_tokenizer_eos(t));
    assert(trunc == (n > CLIP_CONTEXT_LENGTH - 2));
    int m = clip_tokenize(t, text, all, 512);
    assert(m == n);
    for (int i = 0; i < m && i < 512; i++) assert(all[i] >= 0 && all[i] < clip_tokenizer_vocab_size(t));
    char *d = clip_decode(t, all, m < 512 ? m : 512);
    assert(g_utf8_validate(d, -1, NULL));
    g_free(d);
    char *c = clip_text_clean(text);
    assert(g_utf8_validate(c, -1, NULL));
    g_free(c);
    int pos[64];
    clip_word_positions(t, text, 1, pos, 64);
    clip_word_positions_str(t, text, "a", pos, 64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    char *rest = g_strndup((const char *)data + 1, size - 1); /* stops at a NUL */
    char err[512];
    if (data[0] < 0xE0) {
        exercise(tok, rest);
    } else if (data[0] < 0xF0) {
        clip_tokenizer *t = NULL;
        if (clip_tokenizer_load_memory(SMALL_VOCAB, strlen(SMALL_VOCAB), (const char *)data + 1, size - 1, "fuzz", &t,
                                       err, sizeof err) == IE_OK) {
            exercise(t, "abc abcabc cab a b c aabbcc");
            clip_tokenizer_free(t);
        }
    } else {
        clip_tokenizer *t = NULL;
        if (clip_tokenizer_load_memory((const char *)data + 1, size - 1, test_merges, test_merges_len, "fuzz", &t, err,
                                       sizeof err) == IE_OK) {
            exercise(t, "a photo of a cat, 3 dogs; it's 日本語 🙂");
            clip_tokenizer_free(t);
        }
    }
    g_free(rest);
    return 0;
}
