/* Token alignment against hand-worked examples (word indices, refinement and
 * replacement mappers, InfEdit's mapper; edit/align.h).
 *
 * Token ids come from a made-up vocabulary (one id per word piece, BOS 49406,
 * EOS 49407); the alignment only compares ids, so the real CLIP ids would give
 * the same mappers for these prompts. The Needleman-Wunsch tables behind the
 * expected mappers are worked out in the comments. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "edit/align.h"
#include "testutil.h"

enum {
    BOS = 49406,
    EOS = 49407,
    A = 320,
    RED = 736,
    BLUE = 1746,
    CIRCLE = 7117,
    ON = 525,
    THE = 518,
    LEFT = 1823,
    CAT = 2368,
    BLACK = 1449,
    SITTING = 4919,
    TAB = 6649,
    BY = 638,
    BIG = 1205,
    SMALL = 2442,
    DOG = 1929,
};

static int map_is(const ie_refine_map *m, const int *want, const float *alpha, int n) {
    for (int j = 0; j < n; j++)
        if (m->mapper[j] != want[j] || m->alphas[j] != alpha[j]) return 0;
    for (int j = n; j < IE_MAX_TOKENS; j++)
        if (m->mapper[j] != j || m->alphas[j] != 1.0f) return 0;
    return 1;
}

static void print_map(const char *what, const int *mapper, const float *alphas, int n) {
    printf("     %s mapper:", what);
    for (int j = 0; j < n; j++) printf(" %d", mapper[j]);
    printf("  alphas:");
    for (int j = 0; j < n; j++) printf(" %g", alphas[j]);
    printf("\n");
}

static void test_refine(void) {
    printf("== refinement mapper (Needleman-Wunsch, gap 0, match +1, mismatch -1) ==\n");
    char err[256] = "";
    ie_refine_map m;
    /* substitution: at (3,3) red/blue: left = F[3][2] = 2, up = F[2][3] = 2, diag = F[2][2] - 1 = 1
     * -> left (target 'blue' unmatched); at (3,2): left 1, up 2 -> up ('red' dropped); rest diagonal. */
    {
        const int32_t x[] = {BOS, A, RED, CIRCLE, ON, THE, LEFT, EOS};
        const int32_t y[] = {BOS, A, BLUE, CIRCLE, ON, THE, LEFT, EOS};
        const int want[] = {0, 1, -1, 3, 4, 5, 6, 7};
        const float al[] = {1, 1, 0, 1, 1, 1, 1, 1};
        ie_status st = ie_align_refine(x, 8, y, 8, &m, err, sizeof err);
        print_map("red->blue", m.mapper, m.alphas, 8);
        TU_CHECK(st == IE_OK && map_is(&m, want, al, 8), "\"a red circle on the left\" -> \"a blue circle on the "
                                                         "left\": blue unmatched, rest diagonal, padding identity");
    }
    /* insertion: at (2,3) a/black: left = F[2][2] = 2 beats up 1 and diag 0 -> 'black' unmatched */
    {
        const int32_t x[] = {BOS, A, CAT, EOS};
        const int32_t y[] = {BOS, A, BLACK, CAT, EOS};
        const int want[] = {0, 1, -1, 2, 3};
        const float al[] = {1, 1, 0, 1, 1};
        ie_status st = ie_align_refine(x, 4, y, 5, &m, err, sizeof err);
        print_map("insert", m.mapper, m.alphas, 5);
        TU_CHECK(st == IE_OK && map_is(&m, want, al, 5), "insertion \"a cat\" -> \"a black cat\": [0 1 -1 2 3]");
    }
    /* deletion: at (3,2) black/a: up = F[2][2] = 2 beats left 1 -> 'black' dropped */
    {
        const int32_t x[] = {BOS, A, BLACK, CAT, EOS};
        const int32_t y[] = {BOS, A, CAT, EOS};
        const int want[] = {0, 1, 3, 4};
        const float al[] = {1, 1, 1, 1};
        ie_status st = ie_align_refine(x, 5, y, 4, &m, err, sizeof err);
        print_map("delete", m.mapper, m.alphas, 4);
        TU_CHECK(st == IE_OK && map_is(&m, want, al, 4), "deletion \"a black cat\" -> \"a cat\": [0 1 3 4]");
    }
    /* two substitutions in a row: both target tokens unmatched (left, left, then up, up) */
    {
        const int32_t x[] = {BOS, A, BIG, RED, DOG, EOS};
        const int32_t y[] = {BOS, A, SMALL, BLUE, DOG, EOS};
        const int want[] = {0, 1, -1, -1, 4, 5};
        const float al[] = {1, 1, 0, 0, 1, 1};
        ie_status st = ie_align_refine(x, 6, y, 6, &m, err, sizeof err);
        print_map("2 subs", m.mapper, m.alphas, 6);
        TU_CHECK(st == IE_OK && map_is(&m, want, al, 6), "\"a big red dog\" -> \"a small blue dog\": [0 1 -1 -1 4 5]");
    }
    {
        const int32_t x[] = {BOS, A, CAT, EOS};
        ie_status st = ie_align_refine(x, 4, x, 4, &m, err, sizeof err);
        const int want[] = {0, 1, 2, 3};
        const float al[] = {1, 1, 1, 1};
        TU_CHECK(st == IE_OK && map_is(&m, want, al, 4), "identical prompts: identity");
        st = ie_align_refine(x, 0, x, 4, &m, err, sizeof err);
        TU_CHECK(st == IE_ERR_ARG && strstr(err, "token counts"), "empty source refused: \"%s\"", err);
    }
}

static void test_words(void) {
    printf("\n== get_word_inds ==\n");
    int out[16];
    const char *tabby[] = {"a", "tab", "by", "sitting"};
    int n = ie_word_inds("a tabby sitting", tabby, 4, 1, out, 16);
    TU_CHECK(n == 2 && out[0] == 2 && out[1] == 3, "\"a tabby sitting\" word 1 -> positions 2 3");
    n = ie_word_inds("a tabby sitting", tabby, 4, 2, out, 16);
    TU_CHECK(n == 1 && out[0] == 4, "word 2 -> position 4");
    const char *hashed[] = {"a", "tab", "##by", "sitting"};
    n = ie_word_inds("a tabby sitting", hashed, 4, 2, out, 16);
    TU_CHECK(n == 1 && out[0] == 4, "'#' stripped from decoded tokens");
    const char *cafe[] = {"un", "caf", "\xc3\xa9", "noir"};
    n = ie_word_inds("un caf\xc3\xa9 noir", cafe, 4, 2, out, 16);
    TU_CHECK(n == 1 && out[0] == 4, "lengths in code points (UTF-8 'caf\xc3\xa9' = 4): word 2 -> 4");
    n = ie_word_places("a cat and a dog", "a", out, 16);
    TU_CHECK(n == 2 && out[0] == 0 && out[1] == 3, "word_places(\"a\") -> 0 3");
    TU_CHECK(ie_word_count("a  cat") == 3 && ie_word_count("a cat") == 2,
             "split on single spaces: \"a  cat\" has 3 words");
}

static void test_replace(void) {
    printf("\n== replacement mapper ==\n");
    static float M[77 * 77];
    char err[256] = "";
    /* same token counts: pure diagonal */
    const char *s1[] = {"a", "red", "circle"}, *t1[] = {"a", "blue", "circle"};
    ie_status st = ie_align_replace("a red circle", s1, 3, "a blue circle", t1, 3, false, M, err, sizeof err);
    int ok = st == IE_OK;
    for (int i = 0; i < 77 && ok; i++)
        for (int j = 0; j < 77 && ok; j++) ok = M[i * 77 + j] == (i == j ? 1.0f : 0.0f);
    TU_CHECK(ok, "\"a red circle\" -> \"a blue circle\": identity 77x77");

    /* equal word counts, different token counts: "cat" (1 token) -> "tabby" (2 tokens).
     * i=0,1 diagonal; word 1: M[2][2] = M[2][3] = 1/2, i=3, j=4; then the code writes M[j][j]. */
    const char *s2[] = {"a", "cat", "sitting"}, *t2[] = {"a", "tab", "by", "sitting"};
    st = ie_align_replace("a cat sitting", s2, 3, "a tabby sitting", t2, 4, false, M, err, sizeof err);
    ok = st == IE_OK && M[0] == 1 && M[1 * 77 + 1] == 1 && M[2 * 77 + 2] == 0.5f && M[2 * 77 + 3] == 0.5f;
    float row3 = 0;
    for (int j = 0; j < 77; j++) row3 += M[3 * 77 + j];
    ok &= row3 == 0 && M[4 * 77 + 4] == 1 && M[76 * 77 + 76] == 1;
    TU_CHECK(ok, "\"a cat sitting\" -> \"a tabby sitting\" (literal): cat -> tab,by at 1/2; tail M[j][j] (source "
                 "'sitting' row empty: the code's quirk)");
    st = ie_align_replace("a cat sitting", s2, 3, "a tabby sitting", t2, 4, true, M, err, sizeof err);
    ok = st == IE_OK && M[3 * 77 + 4] == 1 && M[4 * 77 + 5] == 1 && M[75 * 77 + 76] == 1 && M[4 * 77 + 4] == 0;
    TU_CHECK(ok, "  fix_tail: source 'sitting' (3) -> target 4, M[i][i+1] after the word");

    const char *t3[] = {"a", "black", "cat"};
    st = ie_align_replace("a cat", s2, 2, "a black cat", t3, 3, false, M, err, sizeof err);
    TU_CHECK(st == IE_ERR_ARG && strstr(err, "same length"), "different word counts refused: \"%.70s...\"", err);
}

static void test_infedit(void) {
    printf("\n== InfEdit get_mapper ==\n");
    char err[256] = "";
    ie_infedit_align a;
    const int32_t e_empty[] = {BOS, EOS};
    /* "a big red dog" -> "a small blue dog": unaligned run [2, 4), source candidates 2 (big), 3 (red).
     * Embeddings (dim 3): src[2] = tgt[3] = e1, src[3] = e2, tgt[2] = e3.
     *   crossed cos(src[t], tgt[s]): max at (t=2, s=3) = cos(src[2], tgt[3]) = 1 -> small <- red
     *   fixed   cos(tgt[t], src[s]): max at (t=3, s=2) = cos(tgt[3], src[2]) = 1 -> blue  <- big */
    static float se[77 * 3], te[77 * 3];
    for (int i = 0; i < 77 * 3; i++) se[i] = te[i] = 0.01f * (float)(i % 5);
    const float e1[3] = {1, 0, 0}, e2[3] = {0, 1, 0}, e3[3] = {0, 0, 1};
    memcpy(se + 2 * 3, e1, sizeof e1);
    memcpy(te + 3 * 3, e1, sizeof e1);
    memcpy(se + 3 * 3, e2, sizeof e2);
    memcpy(te + 2 * 3, e3, sizeof e3);
    const int32_t x[] = {BOS, A, BIG, RED, DOG, EOS};
    const int32_t y[] = {BOS, A, SMALL, BLUE, DOG, EOS};
    const int32_t loc_red[] = {BOS, RED, EOS};
    ie_infedit_align_input in = {x, 6, y, 6, loc_red, 3, e_empty, 2, se, te, 3, IE_SIM_CROSSED};
    ie_status st = ie_align_infedit(&in, &a, err, sizeof err);
    print_map("crossed", a.mapper, a.alphas, 6);
    TU_CHECK(st == IE_OK && a.mapper[2] == 3 && a.alphas[2] == 1 && a.mapper[3] == -1 && a.alphas[3] == 0 &&
                 a.n_rematched == 1 && a.m[2] == 0,
             "crossed similarity (the code): one pair per run, target 2 'small' <- source 3 'red'");
    TU_CHECK(
        a.alpha_e[2] == 1 && a.local_not_found,
        "  local 'red' not in the target ('blend word not found!') but alpha_e[2] = 1 via the re-matched source token");
    in.sim = IE_SIM_FIXED;
    st = ie_align_infedit(&in, &a, err, sizeof err);
    print_map("fixed", a.mapper, a.alphas, 6);
    TU_CHECK(st == IE_OK && a.mapper[3] == 2 && a.alphas[3] == 1 && a.mapper[2] == -1 && a.alpha_e[2] == 0,
             "fixed similarity: target 3 'blue' <- source 2 'big'");
    in.sim = IE_SIM_NONE;
    st = ie_align_infedit(&in, &a, err, sizeof err);
    TU_CHECK(st == IE_OK && a.mapper[2] == -1 && a.mapper[3] == -1 && a.n_rematched == 0,
             "no re-matching: plain P2P refinement");

    /* blend words on "a red circle on the left" -> "a blue circle on the left" */
    const int32_t xs[] = {BOS, A, RED, CIRCLE, ON, THE, LEFT, EOS};
    const int32_t ys[] = {BOS, A, BLUE, CIRCLE, ON, THE, LEFT, EOS};
    const int32_t loc_blue[] = {BOS, BLUE, EOS}, mut_circle[] = {BOS, CIRCLE, EOS}, mut_left[] = {BOS, THE, LEFT, EOS};
    ie_infedit_align_input in2 = {xs, 8, ys, 8, loc_blue, 3, mut_circle, 3, se, te, 3, IE_SIM_CROSSED};
    st = ie_align_infedit(&in2, &a, err, sizeof err);
    print_map("red->blue", a.mapper, a.alphas, 8);
    TU_CHECK(st == IE_OK && a.mapper[2] == 2 && a.alphas[2] == 1 && a.alpha_e[2] == 1 && a.alpha_m[3] == 1 &&
                 a.alpha_me[2] == 0 && a.alpha_me[3] == 0 && a.len == 8 && !a.local_not_found,
             "local 'blue' -> alpha_e[2], mutual 'circle' -> alpha_m[3], single candidate 'red' re-matched, len 8");
    in2.mutual_ids = mut_left;
    in2.n_mutual = 4;
    st = ie_align_infedit(&in2, &a, err, sizeof err);
    TU_CHECK(st == IE_OK && a.alpha_m[5] == 1 && a.alpha_m[6] == 1, "mutual 'the left' -> alpha_m[5], alpha_m[6]");
    in2.local_ids = mut_circle;
    in2.mutual_ids = mut_circle;
    in2.n_mutual = 3;
    st = ie_align_infedit(&in2, &a, err, sizeof err);
    TU_CHECK(st == IE_OK && a.alpha_me[3] == 1 && a.alpha_e[3] == 1 && a.alpha_m[3] == 1,
             "local = mutual = 'circle' -> alpha_me[3]");
    const int32_t mut_red[] = {BOS, RED, EOS}, mut_blue[] = {BOS, BLUE, EOS};
    in2.mutual_ids = mut_red;
    st = ie_align_infedit(&in2, &a, err, sizeof err);
    TU_CHECK(st == IE_ERR_ARG && strstr(err, "mutual prompt not found"),
             "mutual 'red' (absent from target): \"%.60s...\"", err);
    in2.mutual_ids = mut_blue;
    st = ie_align_infedit(&in2, &a, err, sizeof err);
    TU_CHECK(st == IE_ERR_ARG && strstr(err, "not aligned"), "mutual 'blue' (aligned to 'red'): \"%.70s...\"", err);
    in2.mutual_ids = e_empty;
    in2.n_mutual = 2;
    in2.local_ids = e_empty;
    in2.n_local = 2;
    st = ie_align_infedit(&in2, &a, err, sizeof err);
    float s = 0;
    for (int k = 0; k < 77; k++) s += a.alpha_e[k] + a.alpha_m[k] + a.alpha_me[k];
    TU_CHECK(st == IE_OK && s == 0 && !a.local_not_found, "no blend words: all word vectors zero");
}

int main(void) {
    test_refine();
    test_words();
    test_replace();
    test_infedit();
    return tu_finish("test_align");
}
