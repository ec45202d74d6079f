/* Token alignment between a source and a target prompt (docs/methods.md,
 * "Attention control"): Prompt-to-Prompt's seq_aligner as used by
 * DDPM_inversion's p2pinv and by InfEdit, replicated from the code.
 *
 * Inputs are plain arrays so this file does not depend on the tokenizer:
 *   - token ids of a prompt *including* BOS (49406) and EOS (49407), unpadded
 *     (what tokenizer.encode(text) returns; at most 77);
 *   - for word lookups, the decoded text of each token *without* BOS/EOS
 *     (tokenizer.decode([id]) per token; '#' is stripped here as in the code).
 *
 * Positions are indices into the 77-token vector (BOS is position 0).
 */
#ifndef INVEDIT_ALIGN_H
#define INVEDIT_ALIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vkcompute/ops.h" /* ie_status */

#ifdef __cplusplus
extern "C" {
#endif

#define IE_MAX_TOKENS 77

/* --- refinement mapper (get_refinement_mapper / get_mapper) ---------------
 * Needleman-Wunsch global alignment of the two id sequences with gap 0,
 * match +1, mismatch -1; F[i][0] = F[0][j] = 0; traceback from (|x|, |y|)
 * with the code's tie-break: left, then up, then diag (first equal wins);
 * row 0 always goes left, column 0 up.
 *   diag -> mapper[j-1] = i-1;  left -> mapper[j-1] = -1;  up -> source dropped.
 * alphas[j] = 1 if matched else 0 for j < |y|; for j >= |y|: mapper[j] = j,
 * alphas[j] = 1 (identity over padding).
 * mapper[j] = -1 is kept as in the code (there alphas[j] = 0; PyTorch's
 * attn[..., mapper] reads column 76 for it, times 0). */
typedef struct ie_refine_map {
    int mapper[IE_MAX_TOKENS]; /* target position -> source position, -1 = unmatched */
    float alphas[IE_MAX_TOKENS];
    int n_src, n_tgt; /* token counts incl. BOS/EOS */
} ie_refine_map;

ie_status ie_align_refine(const int32_t *src_ids, int n_src, const int32_t *tgt_ids, int n_tgt, ie_refine_map *out,
                          char *err, size_t errlen);

/* --- get_word_inds ------------------------------------------------------
 * text is split on single spaces (consecutive spaces give empty words, as
 * Python's str.split(" ")); tokens are walked accumulating the length (in
 * characters, i.e. UTF-8 code points) of their decoded text; token i (1-based
 * position, BOS = 0) belongs to word ptr, which advances when the accumulated
 * length reaches the word's length. Returns the number of positions written
 * to out (at most max_out) for the tokens of word number `word_place`
 * (0-based), or -1 on a bad argument. Where Python would index past the last
 * word the walk stops. */
int ie_word_inds(const char *text, const char *const *tok_text, int n_tok, int word_place, int *out, int max_out);
/* Word numbers of `text` equal to `word` (get_word_inds with a string);
 * returns the count written to out. */
int ie_word_places(const char *text, const char *word, int *out, int max_out);
/* Number of words of text split on single spaces. */
int ie_word_count(const char *text);

/* --- replacement mapper (get_replacement_mapper_) -------------------------
 * For prompts with the same number of space-separated words: M is
 * 77 x 77 (row = source position, column = target position). Words that
 * differ at the same word index are mapped token k -> token k (1.0) when both
 * have the same token count, else every source token of the word to every
 * target token with 1/(#target tokens). Other tokens map diagonally.
 * Code quirk, kept unless fix_tail: after the last differing word the
 * "diagonal" is written as M[j][j] (target index for both), not M[i][j], so
 * when a replaced word changed the token count, the tokens after it are
 * mapped with the wrong offset. fix_tail = true writes M[i][j].
 * Replaced target attention = sum_w A_src[h, p, w] M[w][n]. */
ie_status ie_align_replace(const char *src_text, const char *const *src_tok, int n_src_tok, const char *tgt_text,
                           const char *const *tgt_tok, int n_tgt_tok, bool fix_tail, float *M, char *err,
                           size_t errlen);

/* --- InfEdit's get_mapper ----------------------------------------------- */

typedef enum ie_sim_mode {
    IE_SIM_CROSSED = 0, /* the code: cos(src_emb[target pos], tgt_emb[source pos]) */
    IE_SIM_FIXED = 1,   /* the intent: cos(tgt_emb[target pos], src_emb[source pos]) */
    IE_SIM_NONE = 2,    /* no semantic re-matching (P2P's plain refinement) */
} ie_sim_mode;

typedef struct ie_infedit_align_input {
    const int32_t *src_ids;
    int n_src; /* incl. BOS/EOS */
    const int32_t *tgt_ids;
    int n_tgt;
    const int32_t *local_ids;
    int n_local; /* target-blend text, encode() incl. BOS/EOS ("" -> 2 ids) */
    const int32_t *mutual_ids;
    int n_mutual; /* source-blend ("mutual") text, incl. BOS/EOS */
    /* text-encoder last hidden states of the padded prompts, [77, dim] each
     * (the conditioning embeddings); may be NULL with IE_SIM_NONE */
    const float *src_emb, *tgt_emb;
    int emb_dim;
    ie_sim_mode sim;
} ie_infedit_align_input;

typedef struct ie_infedit_align {
    int mapper[IE_MAX_TOKENS];     /* after semantic re-matching */
    float alphas[IE_MAX_TOKENS];   /* after semantic re-matching */
    float m[IE_MAX_TOKENS];        /* alphas before re-matching (the code's `ms`, unused downstream) */
    float alpha_e[IE_MAX_TOKENS];  /* target-blend word mask over target positions */
    float alpha_m[IE_MAX_TOKENS];  /* source-blend (mutual) word mask over target positions */
    float alpha_me[IE_MAX_TOKENS]; /* alpha_e AND alpha_m */
    int len;                       /* target token count incl. BOS/EOS (the blend uses 1..len-2) */
    int n_rematched;               /* runs that got a semantic match */
    bool local_not_found;          /* the code prints "blend word not found!" and goes on */
} ie_infedit_align;

/* Steps (replicating seq_aligner.get_mapper):
 *  1. refinement alignment (ie_align_refine);
 *  2. for every maximal run [start, end) of unmatched target positions, the
 *     single (target, source) pair with the highest cosine similarity among
 *     target positions of the run and source positions strictly between the
 *     aligned neighbours (mapper[start-1]+1 .. mapper[end]-1) is matched
 *     (strict '>', scanning targets then sources in increasing order); if that
 *     source token id appears in the local ids (BOS/EOS included, as in the
 *     code), alpha_e[target] = 1;
 *  3. alpha_e: each local word token (without BOS/EOS) is searched forward in
 *     the target from the current position (which does not advance on a
 *     match); the first match is marked; not found -> local_not_found, stop;
 *  4. alpha_m: each mutual token must occur in the target (searching forward)
 *     and be aligned to the same source token id, else IE_ERR_ARG (the code
 *     raises "mutual prompt not found in target prompt" or crashes);
 *  5. alpha_me = alpha_e AND alpha_m; len = n_tgt. */
ie_status ie_align_infedit(const ie_infedit_align_input *in, ie_infedit_align *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
