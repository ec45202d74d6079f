/* Token alignment (Prompt-to-Prompt seq_aligner, InfEdit get_mapper); see align.h. */
#include "edit/align.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define FAIL(code, ...)                                                                                                \
    do {                                                                                                               \
        if (err && errlen) snprintf(err, errlen, __VA_ARGS__);                                                         \
        return (code);                                                                                                 \
    } while (0)

enum { TB_LEFT = 1, TB_UP = 2, TB_DIAG = 3, TB_STOP = 4 };

ie_status ie_align_refine(const int32_t *x, int nx, const int32_t *y, int ny, ie_refine_map *out, char *err,
                          size_t errlen) {
    if (!x || !y || !out) FAIL(IE_ERR_ARG, "ie_align_refine: NULL argument");
    if (nx < 1 || nx > IE_MAX_TOKENS || ny < 1 || ny > IE_MAX_TOKENS)
        FAIL(IE_ERR_ARG, "ie_align_refine: token counts %d (source) and %d (target) must be in [1, %d]", nx, ny,
             IE_MAX_TOKENS);
    /* score and traceback matrices, (nx+1) x (ny+1); gap = 0 so borders are 0 */
    int F[IE_MAX_TOKENS + 1][IE_MAX_TOKENS + 1];
    unsigned char T[IE_MAX_TOKENS + 1][IE_MAX_TOKENS + 1];
    for (int i = 0; i <= nx; i++) {
        F[i][0] = 0;
        T[i][0] = TB_UP;
    }
    for (int j = 0; j <= ny; j++) {
        F[0][j] = 0;
        T[0][j] = TB_LEFT;
    }
    T[0][0] = TB_STOP;
    for (int i = 1; i <= nx; i++) {
        for (int j = 1; j <= ny; j++) {
            int left = F[i][j - 1] + 0;
            int up = F[i - 1][j] + 0;
            int diag = F[i - 1][j - 1] + (x[i - 1] == y[j - 1] ? 1 : -1);
            int m = left > up ? left : up;
            if (diag > m) m = diag;
            F[i][j] = m;
            T[i][j] = m == left ? TB_LEFT : m == up ? TB_UP : TB_DIAG;
        }
    }
    /* traceback; each target position gets exactly one entry */
    int mapper[IE_MAX_TOKENS];
    for (int j = 0; j < IE_MAX_TOKENS; j++) mapper[j] = -1;
    int i = nx, j = ny;
    while (i > 0 || j > 0) {
        int tb = T[i][j];
        if (tb == TB_DIAG) {
            i--;
            j--;
            mapper[j] = i;
        } else if (tb == TB_LEFT) {
            j--;
            mapper[j] = -1;
        } else if (tb == TB_UP) {
            i--;
        } else {
            break;
        }
    }
    out->n_src = nx;
    out->n_tgt = ny;
    for (int k = 0; k < IE_MAX_TOKENS; k++) {
        if (k < ny) {
            out->mapper[k] = mapper[k];
            out->alphas[k] = mapper[k] != -1 ? 1.0f : 0.0f;
        } else {
            out->mapper[k] = k; /* len(y) + arange(max_len - len(y)) */
            out->alphas[k] = 1.0f;
        }
    }
    return IE_OK;
}

/* --- words ---------------------------------------------------------------- */

/* length in code points (Python len of a str) of s[0..n) */
static int utf8_len(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

/* token text with leading/trailing '#' stripped: code-point length */
static int tok_len(const char *t) {
    if (!t) return 0;
    size_t a = 0, b = strlen(t);
    while (a < b && t[a] == '#') a++;
    while (b > a && t[b - 1] == '#') b--;
    return utf8_len(t + a, b - a);
}

typedef struct word_span {
    size_t start, len;
} word_span;

/* text.split(" "): returns the word count, fills up to max spans */
static int split_words(const char *text, word_span *w, int max) {
    int n = 0;
    size_t start = 0, i = 0;
    for (;; i++) {
        if (text[i] == ' ' || text[i] == 0) {
            if (n < max) {
                w[n].start = start;
                w[n].len = i - start;
            }
            n++;
            if (text[i] == 0) break;
            start = i + 1;
        }
    }
    return n;
}

int ie_word_count(const char *text) { return text ? split_words(text, NULL, 0) : 0; }

#define MAX_WORDS 256

int ie_word_inds(const char *text, const char *const *tok_text, int n_tok, int word_place, int *out, int max_out) {
    if (!text || (n_tok > 0 && !tok_text) || n_tok < 0 || (max_out > 0 && !out)) return -1;
    word_span w[MAX_WORDS];
    int nw = split_words(text, w, MAX_WORDS);
    if (nw > MAX_WORDS) nw = MAX_WORDS;
    int cnt = 0, cur = 0, ptr = 0;
    for (int i = 0; i < n_tok; i++) {
        if (ptr >= nw) break; /* Python would raise IndexError here */
        cur += tok_len(tok_text[i]);
        if (ptr == word_place && cnt < max_out) out[cnt++] = i + 1;
        if (cur >= utf8_len(text + w[ptr].start, w[ptr].len)) {
            ptr++;
            cur = 0;
        }
    }
    return cnt;
}

int ie_word_places(const char *text, const char *word, int *out, int max_out) {
    if (!text || !word) return 0;
    word_span w[MAX_WORDS];
    int nw = split_words(text, w, MAX_WORDS);
    if (nw > MAX_WORDS) nw = MAX_WORDS;
    size_t wl = strlen(word);
    int cnt = 0;
    for (int i = 0; i < nw; i++)
        if (w[i].len == wl && memcmp(text + w[i].start, word, wl) == 0 && cnt < max_out) out[cnt++] = i;
    return cnt;
}

ie_status ie_align_replace(const char *src_text, const char *const *src_tok, int n_src_tok, const char *tgt_text,
                           const char *const *tgt_tok, int n_tgt_tok, bool fix_tail, float *M, char *err,
                           size_t errlen) {
    if (!src_text || !tgt_text || !M) FAIL(IE_ERR_ARG, "ie_align_replace: NULL argument");
    word_span ws[MAX_WORDS], wt[MAX_WORDS];
    int nws = split_words(src_text, ws, MAX_WORDS), nwt = split_words(tgt_text, wt, MAX_WORDS);
    if (nws > MAX_WORDS || nwt > MAX_WORDS) FAIL(IE_ERR_ARG, "ie_align_replace: more than %d words", MAX_WORDS);
    if (nws != nwt)
        FAIL(IE_ERR_ARG,
             "attention replacement edit can only be applied on prompts with the same length but prompt A has "
             "%d words and prompt B has %d words",
             nws, nwt);
    const int L = IE_MAX_TOKENS;
    /* differing words and their token positions */
    /* each differing word needs >= 1 token, so there are at most 77 of them */
    int rep_src[IE_MAX_TOKENS][IE_MAX_TOKENS], rep_tgt[IE_MAX_TOKENS][IE_MAX_TOKENS];
    int rep_ns[IE_MAX_TOKENS], rep_nt[IE_MAX_TOKENS], nrep = 0;
    for (int k = 0; k < nwt; k++) {
        if (ws[k].len == wt[k].len && memcmp(src_text + ws[k].start, tgt_text + wt[k].start, ws[k].len) == 0) continue;
        if (nrep == IE_MAX_TOKENS) FAIL(IE_ERR_ARG, "ie_align_replace: more than %d differing words", IE_MAX_TOKENS);
        rep_ns[nrep] = ie_word_inds(src_text, src_tok, n_src_tok, k, rep_src[nrep], L);
        rep_nt[nrep] = ie_word_inds(tgt_text, tgt_tok, n_tgt_tok, k, rep_tgt[nrep], L);
        if (rep_ns[nrep] <= 0 || rep_nt[nrep] <= 0)
            FAIL(IE_ERR_ARG,
                 "ie_align_replace: word %d ('%.*s' -> '%.*s') has no tokens (the decoded token texts do not "
                 "add up to the words)",
                 k, (int)ws[k].len, src_text + ws[k].start, (int)wt[k].len, tgt_text + wt[k].start);
        nrep++;
    }
    memset(M, 0, (size_t)L * L * sizeof(float));
    int i = 0, j = 0, cur = 0;
    while (i < L && j < L) {
        if (cur < nrep && rep_src[cur][0] == i) {
            const int *s = rep_src[cur], *t = rep_tgt[cur];
            int ns = rep_ns[cur], nt = rep_nt[cur];
            if (ns == nt) {
                for (int k = 0; k < ns; k++) M[s[k] * L + t[k]] = 1.0f;
            } else {
                float ratio = (float)(1.0 / nt);
                for (int a = 0; a < ns; a++)
                    for (int b = 0; b < nt; b++) M[s[a] * L + t[b]] = ratio;
            }
            cur++;
            i += ns;
            j += nt;
        } else if (cur < nrep) {
            M[i * L + j] = 1.0f;
            i++;
            j++;
        } else {
            if (fix_tail) M[i * L + j] = 1.0f;
            else M[j * L + j] = 1.0f; /* the code's mapper[j, j] */
            i++;
            j++;
        }
    }
    return IE_OK;
}

/* --- InfEdit ----------------------------------------------------------------- */

static double cosine(const float *a, const float *b, int d) {
    double ab = 0, aa = 0, bb = 0;
    for (int k = 0; k < d; k++) {
        ab += (double)a[k] * b[k];
        aa += (double)a[k] * a[k];
        bb += (double)b[k] * b[k];
    }
    const double eps = 1e-8; /* torch.nn.functional.cosine_similarity */
    double na = sqrt(aa), nb = sqrt(bb);
    return ab / ((na > eps ? na : eps) * (nb > eps ? nb : eps));
}

ie_status ie_align_infedit(const ie_infedit_align_input *in, ie_infedit_align *out, char *err, size_t errlen) {
    if (!in || !out) FAIL(IE_ERR_ARG, "ie_align_infedit: NULL argument");
    const int32_t *x = in->src_ids, *y = in->tgt_ids, *e = in->local_ids, *m = in->mutual_ids;
    const int nx = in->n_src, ny = in->n_tgt, ne = in->n_local, nm = in->n_mutual;
    if (!e || !m || ne < 2 || nm < 2 || ne > IE_MAX_TOKENS || nm > IE_MAX_TOKENS)
        FAIL(IE_ERR_ARG,
             "ie_align_infedit: local and mutual ids must be given with BOS/EOS (>= 2 ids each; got %d and %d)", ne,
             nm);
    if (in->sim != IE_SIM_NONE && (!in->src_emb || !in->tgt_emb || in->emb_dim < 1))
        FAIL(IE_ERR_ARG, "ie_align_infedit: semantic re-matching needs src_emb, tgt_emb [77, dim] and emb_dim");
    ie_refine_map rm;
    ie_status st = ie_align_refine(x, nx, y, ny, &rm, err, errlen);
    if (st != IE_OK) return st;

    memset(out, 0, sizeof *out);
    memcpy(out->mapper, rm.mapper, sizeof out->mapper);
    memcpy(out->alphas, rm.alphas, sizeof out->alphas);
    memcpy(out->m, rm.alphas, sizeof out->m);
    int *mapper = out->mapper;
    float *alphas = out->alphas;

    /* 2. semantic re-matching of unaligned runs */
    if (in->sim != IE_SIM_NONE) {
        const int d = in->emb_dim;
        int i = 0;
        while (i < ny) {
            if (alphas[i] == 0.0f) {
                int start = i;
                while (alphas[i] == 0.0f) i++; /* alphas[ny..76] = 1 stops it */
                /* mapper[start - 1] with Python's negative indexing for start = 0 */
                int lo = (start >= 1 ? mapper[start - 1] : mapper[IE_MAX_TOKENS - 1]) + 1;
                int hi = mapper[i];
                double best = -INFINITY;
                int bs = -1, bt = -1;
                for (int it = start; it < i; it++) {
                    for (int is = lo; is < hi; is++) {
                        if (is < 0 || is >= IE_MAX_TOKENS) continue;
                        double sim = in->sim == IE_SIM_CROSSED
                                         ? cosine(in->src_emb + (size_t)it * d, in->tgt_emb + (size_t)is * d, d)
                                         : cosine(in->tgt_emb + (size_t)it * d, in->src_emb + (size_t)is * d, d);
                        if (sim > best) {
                            best = sim;
                            bs = is;
                            bt = it;
                        }
                    }
                }
                if (bs >= 0) {
                    mapper[bt] = bs;
                    alphas[bt] = 1.0f;
                    out->n_rematched++;
                    for (int k = 0; k < ne; k++)
                        if (bs < nx && x[bs] == e[k]) out->alpha_e[bt] = 1.0f;
                }
            }
            i++;
        }
    }

    /* 3. alpha_e: target-blend word tokens */
    {
        int i = 1, j = 1;
        while (i < ny - 1 && j < ne - 1) {
            bool found = true;
            while (e[j] != y[i]) {
                i++;
                if (i >= ny - 1) {
                    out->local_not_found = true; /* "blend word not found!" */
                    found = false;
                    break;
                }
            }
            if (found) out->alpha_e[i] = 1.0f;
            j++;
        }
    }
    /* 4. alpha_m: mutual word tokens, aligned to the same source token */
    {
        int i = 1, j = 1;
        while (i < ny - 1 && j < nm - 1) {
            while (i < ny && m[j] != y[i]) i++;
            if (i >= ny)
                FAIL(IE_ERR_ARG, "mutual prompt not found in target prompt (token %d of the mutual text, id %d)", j,
                     (int)m[j]);
            int s = mapper[i] >= 0 ? mapper[i] : nx - 1; /* x_seq[-1] in Python */
            if (s < nx && m[j] == x[s]) {
                out->alpha_m[i] = 1.0f;
                j++;
            } else {
                FAIL(IE_ERR_ARG,
                     "mutual prompt not found in target prompt (token id %d at target position %d is not aligned "
                     "to the same source token)",
                     (int)m[j], i);
            }
        }
    }
    for (int k = 0; k < IE_MAX_TOKENS; k++)
        out->alpha_me[k] = (out->alpha_e[k] != 0.0f && out->alpha_m[k] != 0.0f) ? 1.0f : 0.0f;
    out->len = ny;
    return IE_OK;
}
