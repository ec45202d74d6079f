/* CLIP tokenizer: hand-checked cases on a tiny vocabulary, ids from the
 * independent Python reference (tools/clip_tokenizer_ref.py) on a learned
 * test vocabulary (tests/data/tok/), missing/bad tokenizer files, and load
 * and encode speed at the real CLIP vocabulary size.
 *
 * Extra arguments: more case files written by
 *   tools/clip_tokenizer_ref.py random VOCAB MERGES OUT N
 * (differential testing against the reference on random text). */
#include "model/tokenizer.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "testutil.h"

static char *source_root(void) {
    const char *r = g_getenv("INVEDIT_SOURCE_ROOT");
    return g_strdup(r ? r : ".");
}

static bool ids_equal(const int32_t *a, int na, const int32_t *b, int nb) {
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static char *ids_str(const int32_t *ids, int n) {
    GString *g = g_string_new("[");
    for (int i = 0; i < n && i < 40; i++) g_string_append_printf(g, "%s%d", i ? ", " : "", ids[i]);
    if (n > 40) g_string_append(g, ", ...");
    g_string_append(g, "]");
    return g_string_free(g, FALSE);
}

static void check_tokens(const clip_tokenizer *t, const char *text, const int32_t *want, int nwant) {
    int32_t got[256];
    int n = clip_tokenize(t, text, got, 256);
    char *gs = ids_str(got, n < 256 ? n : 256), *ws = ids_str(want, nwant), *esc = g_strescape(text, NULL);
    TU_CHECK(ids_equal(got, n, want, nwant), "tokenize \"%s\" -> %s (want %s)", esc, gs, ws);
    g_free(esc);
    g_free(gs);
    g_free(ws);
}

#define TOKS(t, text, ...)                                                                                             \
    check_tokens(t, text, (int32_t[]){__VA_ARGS__}, (int)(sizeof((int32_t[]){__VA_ARGS__}) / sizeof(int32_t)))

/* Cases reasoned by hand on tests/data/tok/tiny (ids: see its vocab.json). */
static void test_tiny(const char *root) {
    char *dir = g_build_filename(root, "tests", "data", "tok", "tiny", NULL);
    char err[512] = "";
    clip_tokenizer *t = NULL;
    ie_status st = clip_tokenizer_load_dir(dir, &t, err, sizeof err);
    TU_CHECK(st == IE_OK, "load tiny vocabulary (%s)", err);
    g_free(dir);
    if (!t) return;
    TU_CHECK(clip_tokenizer_bos(t) == 29 && clip_tokenizer_eos(t) == 30 && clip_tokenizer_vocab_size(t) == 31 &&
                 clip_tokenizer_merge_count(t) == 10,
             "BOS 29, EOS 30 looked up from the vocabulary; 10 merges");
    TOKS(t, "low", 20);            /* l o w</w> -> lo w</w> -> low</w> */
    TOKS(t, "newer", 24);          /* e r</w> (rank 2) before n e (3), then ne w, new er</w> */
    TOKS(t, "hello", 28);          /* he, ll, hell, hello</w> */
    TOKS(t, "lower", 19, 2, 21);   /* lo w er</w>: (lo, w) is not a merge, (lo, w</w>) is */
    TOKS(t, "wow", 2, 1, 12);      /* no merge applies */
    TOKS(t, "lll", 26, 14);        /* left to right: ll l</w> */
    TOKS(t, "llll", 26, 0, 14);    /* ll l l</w>: occurrences do not overlap */
    TOKS(t, "Low!", 20, 18);       /* lower-cased; "!" is its own piece */
    TOKS(t, "it's", 9, 17, 8, 16); /* it + 's; i and t</w>, ' and s</w> */
    TOKS(t, "x", 30);              /* x</w> not in the vocabulary: unk = EOS */
    TOKS(t, "  NEWER   low\n\thello  ", 24, 20, 28);
    TOKS(t, "low<|endoftext|>low", 20, 30, 20);
    TU_CHECK(clip_tokenize(t, "", NULL, 0) == 0 && clip_tokenize(t, " \t\n ", NULL, 0) == 0,
             "empty and blank text -> no tokens");
    int32_t ids[77];
    bool trunc = true;
    int n = clip_encode(t, "low newer", ids, 77, &trunc);
    bool pad_ok = true;
    for (int i = 3; i < 77; i++) pad_ok &= ids[i] == 30;
    TU_CHECK(n == 2 && !trunc && ids[0] == 29 && ids[1] == 20 && ids[2] == 24 && pad_ok,
             "encode: BOS, tokens, EOS, EOS padding to 77");
    n = clip_encode(t, "", ids, 77, &trunc);
    pad_ok = ids[0] == 29;
    for (int i = 1; i < 77; i++) pad_ok &= ids[i] == 30;
    TU_CHECK(n == 0 && !trunc && pad_ok, "encode(\"\") = BOS + 76 x EOS (the unconditional prompt)");
    /* 80 words -> 80 tokens: 75 kept */
    GString *g = g_string_new(NULL);
    for (int i = 0; i < 80; i++) g_string_append(g, i % 2 ? "low " : "hello ");
    n = clip_encode(t, g->str, ids, 77, &trunc);
    TU_CHECK(n == 80 && trunc && ids[74] == 20 && ids[75] == 28 && ids[76] == 30,
             "truncation to 75 tokens flagged (%d tokens)", n);
    g_string_free(g, TRUE);
    int32_t small[4];
    n = clip_encode(t, "low newer hello", small, 4, &trunc);
    TU_CHECK(n == 3 && trunc && small[0] == 29 && small[1] == 20 && small[2] == 24 && small[3] == 30,
             "encode into a shorter context (length 4)");

    char *d = clip_decode(t, (int32_t[]){20, 24}, 2);
    TU_CHECK(strcmp(d, "low newer") == 0, "decode [low</w>, newer</w>] = \"%s\"", d);
    g_free(d);
    d = clip_decode(t, (int32_t[]){19, 2, 21}, 3);
    TU_CHECK(strcmp(d, "lower") == 0, "decode [lo, w, er</w>] = \"%s\"", d);
    g_free(d);
    d = clip_decode(t, (int32_t[]){29, 20, 30}, 3);
    TU_CHECK(strcmp(d, "<|startoftext|>low <|endoftext|>") == 0, "decode keeps special tokens: \"%s\"", d);
    g_free(d);
    TU_CHECK(strcmp(clip_tokenizer_token(t, 21), "er</w>") == 0 && clip_tokenizer_lookup(t, "hell") == 27 &&
                 clip_tokenizer_token(t, 99) == NULL && clip_tokenizer_lookup(t, "zz") == -1,
             "token <-> id lookups");

    int pos[16];
    n = clip_word_positions(t, "lower hello", 0, pos, 16);
    TU_CHECK(n == 3 && pos[0] == 1 && pos[1] == 2 && pos[2] == 3, "word 0 of \"lower hello\" -> positions 1, 2, 3");
    n = clip_word_positions(t, "lower hello", 1, pos, 16);
    TU_CHECK(n == 1 && pos[0] == 4, "word 1 of \"lower hello\" -> position 4");
    n = clip_word_positions_str(t, "low hello low", "low", pos, 16);
    TU_CHECK(n == 2 && pos[0] == 1 && pos[1] == 3, "word \"low\" of \"low hello low\" -> positions 1, 3");
    n = clip_word_positions(t, "low", 5, pos, 16);
    TU_CHECK(n == 0, "word index past the end -> no positions");
    clip_tokenizer_free(t);

    /* Round semantics: all occurrences of the best pair merge before the
     * pairs they create, even if those have a lower rank ("ab a" is rank 0). */
    const char *vocab = "{\"a\":0,\"b\":1,\"b</w>\":2,\"ab\":3,\"aba\":4,\"<|startoftext|>\":5,\"<|endoftext|>\":6}";
    const char *merges = "#version: 0.2\nab a\na b\n";
    st = clip_tokenizer_load_memory(vocab, strlen(vocab), merges, strlen(merges), "mem", &t, err, sizeof err);
    TU_CHECK(st == IE_OK, "load a vocabulary from memory (%s)", err);
    if (t) {
        TOKS(t, "ababab", 3, 4, 2); /* a b a b a b</w> -> ab ab a b</w> -> ab aba b</w> */
        clip_tokenizer_free(t);
    }
    /* a merges file without a header loses its first line, as in the reference */
    const char *m2 = "a b\nab a\n";
    st = clip_tokenizer_load_memory(vocab, strlen(vocab), m2, strlen(m2), "mem", &t, err, sizeof err);
    if (st == IE_OK) {
        TU_CHECK(clip_tokenizer_merge_count(t) == 1, "first line of merges.txt skipped (header)");
        TOKS(t, "ab", 0, 2);
        clip_tokenizer_free(t);
    }
}

static char *json_str(JsonObject *o, const char *k) {
    JsonNode *n = json_object_get_member(o, k);
    return n && JSON_NODE_HOLDS_VALUE(n) ? g_strdup(json_node_get_string(n)) : NULL;
}

static int32_t *json_ids(JsonObject *o, const char *k, int *n) {
    JsonArray *a = json_object_get_array_member(o, k);
    *n = (int)json_array_get_length(a);
    int32_t *ids = g_new(int32_t, *n + 1);
    for (int i = 0; i < *n; i++) ids[i] = (int32_t)json_array_get_int_element(a, (guint)i);
    return ids;
}

/* Cases from the Python reference: clean text, tokens, 77-encoding,
 * truncation flag, decoding, word positions. */
static void test_cases_file(const char *root, const char *file, bool verbose) {
    JsonParser *p = json_parser_new();
    GError *gerr = NULL;
    if (!json_parser_load_from_file(p, file, &gerr)) {
        TU_CHECK(false, "read %s: %s", file, gerr ? gerr->message : "?");
        g_object_unref(p);
        return;
    }
    JsonObject *o = json_node_get_object(json_parser_get_root(p));
    /* the vocabulary named in the file, relative to the source root */
    char *vocab = json_str(o, "vocab");
    char *vdir = g_path_get_dirname(vocab);
    char *dir = g_path_is_absolute(vdir) ? g_strdup(vdir) : g_build_filename(root, vdir, NULL);
    char err[512] = "";
    clip_tokenizer *t = NULL;
    ie_status st = clip_tokenizer_load_dir(dir, &t, err, sizeof err);
    TU_CHECK(st == IE_OK, "load %s (%s)", dir, err);
    g_free(vocab);
    g_free(vdir);
    g_free(dir);
    if (!t) {
        g_object_unref(p);
        return;
    }
    JsonArray *cases = json_object_get_array_member(o, "cases");
    int n_cases = (int)json_array_get_length(cases), bad = 0;
    for (int i = 0; i < n_cases; i++) {
        JsonObject *c = json_array_get_object_element(cases, (guint)i);
        char *text = json_str(c, "text");
        if (!text) { /* invalid UTF-8 input, given as hex */
            char *hex = json_str(c, "text_hex");
            size_t len = strlen(hex) / 2;
            text = g_malloc0(len + 1);
            for (size_t k = 0; k < len; k++) {
                unsigned v;
                sscanf(hex + 2 * k, "%2x", &v);
                text[k] = (char)v;
            }
            g_free(hex);
        }
        char *want_clean = json_str(c, "clean"), *want_dec = json_str(c, "decoded");
        int nt, ne;
        int32_t *want_t = json_ids(c, "tokens", &nt), *want_e = NULL;
        if (json_object_has_member(c, "encoded")) {
            want_e = json_ids(c, "encoded", &ne);
        } else { /* BOS + tokens[:75] + EOS + padding */
            ne = CLIP_CONTEXT_LENGTH;
            want_e = g_new(int32_t, ne);
            want_e[0] = clip_tokenizer_bos(t);
            int k = 0;
            for (; k < nt && k < ne - 2; k++) want_e[k + 1] = want_t[k];
            for (k = k + 1; k < ne; k++) want_e[k] = clip_tokenizer_eos(t);
        }
        bool want_trunc = json_object_get_boolean_member(c, "truncated");

        char *got_clean = clip_text_clean(text);
        int32_t *got_t = g_new(int32_t, nt + 64);
        int n = clip_tokenize(t, text, got_t, nt + 64);
        int32_t got_e[CLIP_CONTEXT_LENGTH];
        bool trunc = false;
        clip_encode(t, text, got_e, CLIP_CONTEXT_LENGTH, &trunc);
        char *got_dec = clip_decode(t, got_t, n < nt + 64 ? n : nt + 64);
        bool ok_clean = strcmp(got_clean, want_clean) == 0;
        bool ok_t = ids_equal(got_t, n, want_t, nt);
        bool ok_e =
            ne == CLIP_CONTEXT_LENGTH && ids_equal(got_e, CLIP_CONTEXT_LENGTH, want_e, ne) && trunc == want_trunc;
        bool ok_d = strcmp(got_dec, want_dec) == 0;
        bool ok = ok_clean && ok_t && ok_e && ok_d;
        if (!ok) bad++;
        if (verbose || !ok) {
            char *esc = g_strescape(text, NULL);
            TU_CHECK(ok, "case %d \"%.70s\": %d tokens%s%s%s%s", i, esc, n, ok_clean ? "" : " CLEAN differs",
                     ok_t ? "" : " TOKENS differ", ok_e ? "" : " ENCODING differs", ok_d ? "" : " DECODE differs");
            if (!ok_clean) {
                char *a = g_strescape(got_clean, NULL), *b = g_strescape(want_clean, NULL);
                printf("       clean got  \"%s\"\n       clean want \"%s\"\n", a, b);
                g_free(a);
                g_free(b);
            }
            if (!ok_t) {
                char *a = ids_str(got_t, n < nt + 64 ? n : nt + 64), *b = ids_str(want_t, nt);
                printf("       got  %s\n       want %s\n", a, b);
                g_free(a);
                g_free(b);
            }
            g_free(esc);
        }
        g_free(text);
        g_free(want_clean);
        g_free(want_dec);
        g_free(want_t);
        g_free(want_e);
        g_free(got_clean);
        g_free(got_t);
        g_free(got_dec);
    }
    if (!verbose) TU_CHECK(bad == 0, "%s: %d cases match the reference (%d differ)", file, n_cases - bad, bad);

    JsonArray *words = json_object_get_array_member(o, "words");
    for (guint i = 0; words && i < json_array_get_length(words); i++) {
        JsonObject *w = json_array_get_object_element(words, i);
        char *text = json_str(w, "text");
        JsonNode *wn = json_object_get_member(w, "word");
        int nw;
        int32_t *want = json_ids(w, "positions", &nw);
        int pos[128];
        int n;
        char what[64];
        if (json_node_get_value_type(wn) == G_TYPE_STRING) {
            n = clip_word_positions_str(t, text, json_node_get_string(wn), pos, 128);
            snprintf(what, sizeof what, "\"%s\"", json_node_get_string(wn));
        } else {
            n = clip_word_positions(t, text, (int)json_node_get_int(wn), pos, 128);
            snprintf(what, sizeof what, "%d", (int)json_node_get_int(wn));
        }
        int32_t got[128];
        for (int k = 0; k < n && k < 128; k++) got[k] = pos[k];
        char *gs = ids_str(got, n), *ws = ids_str(want, nw);
        TU_CHECK(ids_equal(got, n, want, nw), "word %s of \"%s\" -> %s (reference %s)", what, text, gs, ws);
        g_free(gs);
        g_free(ws);
        g_free(want);
        g_free(text);
    }
    clip_tokenizer_free(t);
    g_object_unref(p);
}

static void test_bad_files(void) {
    char *dir = g_dir_make_tmp("invedit-tok-XXXXXX", NULL);
    char *v = g_build_filename(dir, "vocab.json", NULL), *m = g_build_filename(dir, "merges.txt", NULL);
    char err[512] = "";
    clip_tokenizer *t = NULL;
    ie_status st = clip_tokenizer_load_dir(dir, &t, err, sizeof err);
    TU_CHECK(st == IE_ERR_IO && !t && strstr(err, "vocab.json") && strstr(err, "vocabulary"), "no vocab.json -> %s",
             err);
    g_file_set_contents(v, "{\"a\": 0, \"<|startoftext|>\": 1, \"<|endoftext|>\": 2}", -1, NULL);
    st = clip_tokenizer_load_dir(dir, &t, err, sizeof err);
    TU_CHECK(st == IE_ERR_IO && !t && strstr(err, "merges.txt") && strstr(err, "merge list"), "no merges.txt -> %s",
             err);
    g_file_set_contents(m, "#version: 0.2\n", -1, NULL);
    st = clip_tokenizer_load_dir(dir, &t, err, sizeof err);
    TU_CHECK(st == IE_OK && t, "vocab.json + empty merges.txt loads (%s)", err);
    clip_tokenizer_free(t);
    t = NULL;
    g_remove(v);
    st = clip_tokenizer_load_dir(dir, &t, err, sizeof err);
    TU_CHECK(st == IE_ERR_IO && strstr(err, "vocab.json"), "vocab.json removed again -> %s", err);
    struct {
        const char *json, *sub;
    } bad[] = {
        {"[1, 2]", "expected a JSON object"},
        {"{\"a\": 0,", "not valid JSON"},
        {"{\"a\": \"zero\"}", "token \"a\": expected an id"},
        {"{\"a\": -1}", "token \"a\": expected an id"},
        {"{\"a\": 0, \"b\": 0, \"<|startoftext|>\": 1, \"<|endoftext|>\": 2}", "id 0 is used by both"},
        {"{\"a\": 0, \"<|endoftext|>\": 2}", "no \"<|startoftext|>\" entry"},
        {"{\"a\": 0, \"<|startoftext|>\": 2}", "no \"<|endoftext|>\" entry"},
        {"{}", "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g_file_set_contents(v, bad[i].json, -1, NULL);
        t = NULL;
        st = clip_tokenizer_load_dir(dir, &t, err, sizeof err);
        TU_CHECK(st == IE_ERR_FORMAT && !t && strstr(err, bad[i].sub) && strstr(err, "vocab.json"),
                 "bad vocab.json %s -> %s", bad[i].json, err);
    }
    g_file_set_contents(v, "{\"a\": 0, \"<|startoftext|>\": 1, \"<|endoftext|>\": 2}", -1, NULL);
    g_file_set_contents(m, "#version\n\xff\xfe\n", -1, NULL);
    st = clip_tokenizer_load_dir(dir, &t, err, sizeof err);
    TU_CHECK(st == IE_ERR_FORMAT && strstr(err, "merges.txt") && strstr(err, "UTF-8"), "merges.txt not UTF-8 -> %s",
             err);
    g_remove(v);
    g_remove(m);
    g_rmdir(dir);
    g_free(v);
    g_free(m);
    g_free(dir);
}

/* A synthetic vocabulary of the real CLIP size (49408 = 512 + 48894 + 2). */
static void test_full_size(void) {
    GString *vocab = g_string_new("{"), *merges = g_string_new("#version: 0.2\n");
    char u[256][8];
    int id = 0;
    for (int b = 0; b < 256; b++) {
        /* the byte-level symbols, as tools/clip_tokenizer_ref.py bytes_to_unicode */
        int printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
        static int extra = 0;
        gunichar c = printable ? (gunichar)b : (gunichar)(256 + extra++);
        int n = g_unichar_to_utf8(c, u[b]);
        u[b][n] = 0;
    }
    for (int end = 0; end < 2; end++)
        for (int b = 0; b < 256; b++) {
            char *k = g_strescape(u[b], NULL);
            /* escape for JSON: g_strescape handles " and \ ; non-ASCII stays UTF-8 */
            g_string_append_printf(vocab, "%s\"%s%s\":%d", id ? "," : "", k, end ? "</w>" : "", id);
            id++;
            g_free(k);
        }
    int nm = 0;
    for (int a = 0; a < 256 && nm < CLIP_MAX_MERGES; a++)
        for (int b = 0; b < 256 && nm < CLIP_MAX_MERGES; b++) {
            if (u[a][0] == '\\' || u[b][0] == '\\' || u[a][0] == '"' || u[b][0] == '"') continue;
            g_string_append_printf(merges, "%s %s\n", u[a], u[b]);
            g_string_append_printf(vocab, ",\"%s%s\":%d", u[a], u[b], id++);
            nm++;
        }
    g_string_append_printf(vocab, ",\"<|startoftext|>\":%d,\"<|endoftext|>\":%d}", id, id + 1);
    id += 2;
    char err[512] = "";
    clip_tokenizer *t = NULL;
    gint64 t0 = g_get_monotonic_time();
    ie_status st =
        clip_tokenizer_load_memory(vocab->str, vocab->len, merges->str, merges->len, "synthetic", &t, err, sizeof err);
    double ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
    TU_CHECK(st == IE_OK && t && clip_tokenizer_vocab_size(t) == 49408 && clip_tokenizer_bos(t) == 49406 &&
                 clip_tokenizer_eos(t) == 49407 && clip_tokenizer_merge_count(t) == CLIP_MAX_MERGES,
             "49408-entry vocabulary, %d merges, BOS 49406, EOS 49407 (%s)", nm, err);
    TU_CHECK(ms < 3000, "loading it takes %.0f ms", ms);
    if (t) {
        /* a 200 kB single piece: BPE must not be quadratic */
        GString *g = g_string_new(NULL);
        for (int i = 0; i < 200000; i++) g_string_append_c(g, "abcdefghij"[(i * 7) % 10]);
        t0 = g_get_monotonic_time();
        int n = clip_tokenize(t, g->str, NULL, 0);
        ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
        TU_CHECK(n > 0 && ms < 5000, "a 200,000-letter word: %d tokens in %.0f ms", n, ms);
        g_string_free(g, TRUE);
        t0 = g_get_monotonic_time();
        int32_t ids[77];
        for (int i = 0; i < 100; i++) clip_encode(t, "a photograph of an astronaut riding a horse, 4k", ids, 77, NULL);
        ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
        TU_CHECK(ms < 2000, "100 prompt encodings in %.1f ms", ms);
        clip_tokenizer_free(t);
    }
    g_string_free(vocab, TRUE);
    g_string_free(merges, TRUE);
}

/* The demo model's tokenizer, once it exists. */
static void test_demo(const char *root) {
    char *dir = g_build_filename(root, "models", "demo", "tokenizer", NULL);
    char *v = g_build_filename(dir, "vocab.json", NULL);
    if (!g_file_test(v, G_FILE_TEST_EXISTS)) {
        printf("skip demo tokenizer (%s absent)\n", v);
    } else {
        char err[512] = "";
        clip_tokenizer *t = NULL;
        ie_status st = clip_tokenizer_load_dir(dir, &t, err, sizeof err);
        TU_CHECK(st == IE_OK, "load the demo tokenizer (%s)", err);
        if (t) {
            int32_t ids[77];
            int n = clip_encode(t, "a red circle on a blue background", ids, 77, NULL);
            TU_CHECK(n > 0 && clip_tokenizer_bos(t) == clip_tokenizer_vocab_size(t) - 2 &&
                         clip_tokenizer_eos(t) == clip_tokenizer_vocab_size(t) - 1,
                     "demo: %d tokens, BOS/EOS are the last two ids", n);
            clip_tokenizer_free(t);
        }
    }
    g_free(v);
    g_free(dir);
}

int main(int argc, char **argv) {
    char *root = source_root();
    test_tiny(root);
    char *cases = g_build_filename(root, "tests", "data", "tok", "cases.json", NULL);
    test_cases_file(root, cases, true);
    g_free(cases);
    cases = g_build_filename(root, "tests", "data", "tok", "random.json", NULL);
    test_cases_file(root, cases, false);
    g_free(cases);
    for (int i = 1; i < argc; i++) test_cases_file(root, argv[i], false);
    test_bad_files();
    test_full_size();
    test_demo(root);
    g_free(root);
    return tu_finish("test_tokenizer");
}
