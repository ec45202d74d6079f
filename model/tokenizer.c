/* CLIP byte-level BPE tokenizer. See tokenizer.h for what is replicated.
 *
 * Text is handled as arrays of code points (ustr) through the cleaning steps;
 * pieces are turned back into UTF-8 bytes for the byte-level BPE. */
#include "model/tokenizer.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer_tables.h"

#include "model/errmsg.h"

/* --- code point strings -------------------------------------------------- */

typedef struct ustr {
    uint32_t *v;
    size_t n, cap;
} ustr;

static void us_push(ustr *s, uint32_t c) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = g_realloc_n(s->v, s->cap, sizeof *s->v);
    }
    s->v[s->n++] = c;
}

static void us_free(ustr *s) {
    g_free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static bool us_equal(const ustr *a, const ustr *b) {
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

/* Decodes UTF-8 as Python's bytes.decode("utf-8", errors="replace"): each
 * maximal ill-formed subsequence becomes one U+FFFD. */
static void us_from_utf8(ustr *s, const char *text, size_t len) {
    const uint8_t *p = (const uint8_t *)text;
    size_t i = 0;
    while (i < len) {
        uint8_t b = p[i];
        if (b < 0x80) {
            us_push(s, b);
            i++;
            continue;
        }
        int need;
        uint32_t cp;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
            cp = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            cp = b & 0x0F;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F; /* no surrogates */
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            cp = b & 0x07;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        } else {
            us_push(s, 0xFFFD);
            i++;
            continue;
        }
        size_t k = 1;
        bool ok = true;
        for (; k <= (size_t)need; k++) {
            if (i + k >= len) {
                ok = false;
                break;
            }
            uint8_t c = p[i + k];
            uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
            if (c < l || c > h) {
                ok = false;
                break;
            }
            cp = (cp << 6) | (c & 0x3F);
        }
        if (ok) {
            us_push(s, cp);
            i += (size_t)need + 1;
        } else {
            us_push(s, 0xFFFD);
            i += k; /* the lead byte and the valid continuation bytes seen */
        }
    }
}

static void us_append_utf8(ustr *s, const char *text) { us_from_utf8(s, text, strlen(text)); }

/* Code points -> UTF-8 (NUL code points are dropped; there are none after
 * cleaning). g_free the result. */
static char *us_to_utf8(const ustr *s, size_t from, size_t to, size_t *out_len) {
    GString *g = g_string_sized_new(to - from + 16);
    for (size_t i = from; i < to; i++)
        if (s->v[i]) g_string_append_unichar(g, s->v[i]);
    if (out_len) *out_len = g->len;
    return g_string_free(g, FALSE);
}

static bool py_isspace(uint32_t c) {
    if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
    for (size_t i = 0; i < G_N_ELEMENTS(TOK_PY_SPACES); i++)
        if (TOK_PY_SPACES[i] == c) return true;
    return false;
}

static const char *cpmap_find(const tok_cpmap *m, size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m[mid].cp == c) return m[mid].value;
        if (m[mid].cp < c) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static const char *entity_find(const tok_entity *t, size_t n, const char *name) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(t[mid].name, name);
        if (c == 0) return t[mid].value;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* --- html.unescape (Python's html module) -------------------------------- */

static bool is_ascii_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static bool is_ascii_hex(uint32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static bool is_ascii_alnum(uint32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* The text of numeric character reference `num` (saturated at 0x110000). */
static void charref_text(ustr *out, uint32_t num) {
    const char *r = cpmap_find(TOK_INVALID_CHARREFS, G_N_ELEMENTS(TOK_INVALID_CHARREFS), num);
    if (r) {
        us_append_utf8(out, r);
        return;
    }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
        us_push(out, 0xFFFD);
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(TOK_INVALID_CODEPOINTS); i++)
        if (num >= TOK_INVALID_CODEPOINTS[i][0] && num <= TOK_INVALID_CODEPOINTS[i][1]) return;
    us_push(out, num);
}

/* Tries a character reference at s[i] == '&'. On a match appends its text to
 * out and returns the length consumed; else 0.
 *   _charref = re.compile(r'&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)') */
static size_t html_charref(const ustr *s, size_t i, ustr *out) {
    const uint32_t *v = s->v;
    size_t n = s->n, j = i + 1;
    if (j < n && v[j] == '#') {
        size_t k = j + 1;
        int base = 10;
        if (k < n && (v[k] == 'x' || v[k] == 'X') && k + 1 < n && is_ascii_hex(v[k + 1])) {
            base = 16;
            k++;
        } else if (!(k < n && is_ascii_digit(v[k]))) {
            return 0;
        }
        uint32_t num = 0;
        while (k < n && (base == 16 ? is_ascii_hex(v[k]) : is_ascii_digit(v[k]))) {
            uint32_t d = v[k] <= '9' ? v[k] - '0' : (v[k] | 0x20) - 'a' + 10;
            num = num > 0x10FFFF ? 0x110000 : num * (uint32_t)base + d;
            k++;
        }
        if (k < n && v[k] == ';') k++;
        charref_text(out, num > 0x10FFFF ? 0x110000 : num);
        return k - i;
    }
    /* named: up to 32 characters outside "\t\n\f <&#;", then an optional ';' */
    size_t k = j;
    while (k < n && k - j < 32) {
        uint32_t c = v[k];
        if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';') break;
        k++;
    }
    if (k == j) return 0;
    size_t end = k;
    if (end < n && v[end] == ';') end++;
    size_t nlen = 0;
    char *name = us_to_utf8(s, j, end, &nlen);
    const char *val = entity_find(TOK_HTML5, G_N_ELEMENTS(TOK_HTML5), name);
    if (val) {
        us_append_utf8(out, val);
        g_free(name);
        return end - i;
    }
    /* the longest prefix (at least 2 characters) that is a name, then the rest */
    size_t m = end - j; /* characters in the name */
    for (size_t x = m - 1; x >= 2 && x < m; x--) {
        char *pre = us_to_utf8(s, j, j + x, NULL);
        val = entity_find(TOK_HTML5, G_N_ELEMENTS(TOK_HTML5), pre);
        g_free(pre);
        if (val) {
            us_append_utf8(out, val);
            for (size_t q = j + x; q < end; q++) us_push(out, v[q]);
            g_free(name);
            return end - i;
        }
    }
    g_free(name);
    /* no entity: the match is kept as it is */
    for (size_t q = i; q < end; q++) us_push(out, v[q]);
    return end - i;
}

static void html_unescape(const ustr *s, ustr *out) {
    for (size_t i = 0; i < s->n;) {
        if (s->v[i] == '&') {
            size_t used = html_charref(s, i, out);
            if (used) {
                i += used;
                continue;
            }
        }
        us_push(out, s->v[i++]);
    }
}

/* --- the part of ftfy.fix_text that is replicated --------------------------- */

/* ftfy.fixes.unescape_html: HTML_ENTITY_RE = r"&#?[0-9A-Za-z]{1,24};" */
static void ftfy_unescape_html(const ustr *s, ustr *out) {
    for (size_t i = 0; i < s->n;) {
        if (s->v[i] == '&') {
            size_t k = i + 1;
            if (k < s->n && s->v[k] == '#') k++;
            size_t a = k;
            while (k < s->n && is_ascii_alnum(s->v[k]) && k - a < 25) k++;
            if (k > a && k - a <= 24 && k < s->n && s->v[k] == ';') {
                size_t end = k + 1;
                char *ent = us_to_utf8(s, i + 1, end, NULL); /* without '&' */
                const char *val = entity_find(TOK_HTML5, G_N_ELEMENTS(TOK_HTML5), ent);
                if (!val) val = entity_find(TOK_FTFY_UPPER, G_N_ELEMENTS(TOK_FTFY_UPPER), ent);
                g_free(ent);
                if (val) {
                    us_append_utf8(out, val);
                    i = end;
                    continue;
                }
                if (s->v[i + 1] == '#') {
                    /* html.unescape of the match, unless it leaves the ';' */
                    ustr m = {0}, r = {0};
                    for (size_t q = i; q < end; q++) us_push(&m, s->v[q]);
                    html_unescape(&m, &r);
                    bool semicolon = false;
                    for (size_t q = 0; q < r.n; q++) semicolon |= r.v[q] == ';';
                    if (!semicolon) {
                        for (size_t q = 0; q < r.n; q++) us_push(out, r.v[q]);
                        us_free(&m);
                        us_free(&r);
                        i = end;
                        continue;
                    }
                    us_free(&m);
                    us_free(&r);
                }
                for (size_t q = i; q < end; q++) us_push(out, s->v[q]);
                i = end;
                continue;
            }
        }
        us_push(out, s->v[i++]);
    }
}

static bool ftfy_control_char(uint32_t c) {
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
           c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

/* One pass of fix_and_explain's steps, in ftfy's order. */
static void ftfy_pass(ustr *s, bool unescape) {
    ustr a = {0}, b = {0};
    if (unescape) {
        ftfy_unescape_html(s, &a);
        us_free(s);
        *s = a;
        a = (ustr){0};
    }
    /* fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes */
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->v[i];
        const char *r = NULL;
        if (c >= 0x80 && c <= 0x9F) r = cpmap_find(TOK_INVALID_CHARREFS, G_N_ELEMENTS(TOK_INVALID_CHARREFS), c);
        if (r) {
            us_append_utf8(&a, r);
            continue;
        }
        us_push(&a, c);
    }
    for (size_t i = 0; i < a.n; i++) {
        const char *r = cpmap_find(TOK_LIGATURES, G_N_ELEMENTS(TOK_LIGATURES), a.v[i]);
        if (r) us_append_utf8(&b, r);
        else us_push(&b, a.v[i]);
    }
    a.n = 0;
    for (size_t i = 0; i < b.n; i++) {
        const char *r = cpmap_find(TOK_WIDTH_MAP, G_N_ELEMENTS(TOK_WIDTH_MAP), b.v[i]);
        if (r) us_append_utf8(&a, r);
        else us_push(&a, b.v[i]);
    }
    b.n = 0;
    for (size_t i = 0; i < a.n; i++) {
        uint32_t c = a.v[i];
        if (c >= 0x201C && c <= 0x201F) c = '"';
        else if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = '\'';
        us_push(&b, c);
    }
    /* fix_line_breaks */
    a.n = 0;
    for (size_t i = 0; i < b.n; i++) {
        uint32_t c = b.v[i];
        if (c == '\r' && i + 1 < b.n && b.v[i + 1] == '\n') continue; /* \r\n -> \n */
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) c = '\n';
        us_push(&a, c);
    }
    /* remove_terminal_escapes: "\033\[((?:\d|;)*)([a-zA-Z])" */
    b.n = 0;
    for (size_t i = 0; i < a.n; i++) {
        if (a.v[i] == 0x1B && i + 1 < a.n && a.v[i + 1] == '[') {
            size_t k = i + 2;
            while (k < a.n && (a.v[k] == ';' || g_unichar_isdigit(a.v[k]))) k++;
            if (k < a.n && a.v[k] < 0x80 && g_ascii_isalpha((char)a.v[k])) {
                i = k;
                continue;
            }
        }
        us_push(&b, a.v[i]);
    }
    /* remove_control_chars */
    a.n = 0;
    for (size_t i = 0; i < b.n; i++)
        if (!ftfy_control_char(b.v[i])) us_push(&a, b.v[i]);
    /* NFC */
    char *u = us_to_utf8(&a, 0, a.n, NULL);
    char *nfc = g_utf8_normalize(u, -1, G_NORMALIZE_NFC);
    s->n = 0;
    if (nfc) us_append_utf8(s, nfc);
    else
        for (size_t i = 0; i < a.n; i++) us_push(s, a.v[i]);
    g_free(nfc);
    g_free(u);
    us_free(&a);
    us_free(&b);
}

/* ftfy.fix_text: line segments (at most 1e6 code points), each fixed until it
 * no longer changes; HTML unescaping stops for good at the first segment
 * that contains '<'. */
static void ftfy_fix_text(const ustr *in, ustr *out) {
    bool unescape = true;
    size_t pos = 0;
    while (pos < in->n) {
        size_t end = pos;
        while (end < in->n && in->v[end] != '\n') end++;
        end = end < in->n ? end + 1 : end;
        if (end - pos > 1000000) end = pos + 1000000;
        ustr seg = {0};
        for (size_t i = pos; i < end; i++) us_push(&seg, in->v[i]);
        for (size_t i = 0; i < seg.n && unescape; i++)
            if (seg.v[i] == '<') unescape = false;
        /* until nothing changes, as ftfy. After the first passes only HTML
         * unescaping can still change the text ("&amp;amp;" takes two), and
         * it always shortens it, so "changed and shorter" bounds the loop. */
        for (int round = 0;; round++) {
            ustr before = {0};
            for (size_t i = 0; i < seg.n; i++) us_push(&before, seg.v[i]);
            ftfy_pass(&seg, unescape);
            bool same = us_equal(&before, &seg), shorter = seg.n < before.n;
            us_free(&before);
            if (same || (round >= 8 && !shorter)) break;
        }
        for (size_t i = 0; i < seg.n; i++) us_push(out, seg.v[i]);
        us_free(&seg);
        pos = end;
    }
}

/* --- str.lower() ---------------------------------------------------------- */

static bool is_cased(uint32_t c) {
    GUnicodeType t = g_unichar_type(c);
    return t == G_UNICODE_UPPERCASE_LETTER || t == G_UNICODE_LOWERCASE_LETTER || t == G_UNICODE_TITLECASE_LETTER ||
           g_unichar_toupper(c) != c || cpmap_find(TOK_LOWER, G_N_ELEMENTS(TOK_LOWER), c) != NULL;
}

static bool is_case_ignorable(uint32_t c) {
    switch (g_unichar_type(c)) {
        case G_UNICODE_NON_SPACING_MARK:
        case G_UNICODE_ENCLOSING_MARK:
        case G_UNICODE_FORMAT:
        case G_UNICODE_MODIFIER_LETTER:
        case G_UNICODE_MODIFIER_SYMBOL: return true;
        default: break;
    }
    /* Word_Break MidLetter / MidNumLet / Single_Quote */
    return c == '\'' || c == '.' || c == ':' || c == 0xB7 || c == 0x387 || c == 0x5F4 || c == 0x2018 || c == 0x2019 ||
           c == 0x2024 || c == 0x2027 || c == 0xFE13 || c == 0xFE52 || c == 0xFE55 || c == 0xFF07 || c == 0xFF0E ||
           c == 0xFF1A;
}

/* Python's str.lower(): its per-character table (TOK_LOWER, which has
 * U+0130 -> "i\u0307"), and Greek capital sigma -> final sigma after a cased
 * letter not followed by one (skipping case-ignorable characters both ways). */
static void py_lower(const ustr *s, ustr *out) {
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->v[i];
        if (c == 0x3A3) {
            size_t j = i;
            bool final = false;
            while (j > 0 && is_case_ignorable(s->v[j - 1])) j--;
            if (j > 0 && is_cased(s->v[j - 1])) {
                size_t k = i + 1;
                while (k < s->n && is_case_ignorable(s->v[k])) k++;
                final = k == s->n || !is_cased(s->v[k]);
            }
            us_push(out, final ? 0x3C2 : 0x3C3);
        } else if (c < 0x80) {
            us_push(out, (uint32_t)g_ascii_tolower((char)c));
        } else {
            const char *l = cpmap_find(TOK_LOWER, G_N_ELEMENTS(TOK_LOWER), c);
            if (l) us_append_utf8(out, l);
            else us_push(out, c);
        }
    }
}

/* --- cleaning -------------------------------------------------------------- */

static void clean_text(const char *text, ustr *out) {
    ustr a = {0}, b = {0};
    us_from_utf8(&a, text, strlen(text));
    /* basic_clean: ftfy.fix_text, html.unescape(html.unescape(.)), strip */
    ftfy_fix_text(&a, &b);
    a.n = 0;
    html_unescape(&b, &a);
    b.n = 0;
    html_unescape(&a, &b);
    /* strip + whitespace_clean (re.sub(r'\s+', ' '), strip) */
    a.n = 0;
    size_t lo = 0, hi = b.n;
    while (lo < hi && py_isspace(b.v[lo])) lo++;
    while (hi > lo && py_isspace(b.v[hi - 1])) hi--;
    for (size_t i = lo; i < hi; i++) {
        if (py_isspace(b.v[i])) {
            if (a.n && a.v[a.n - 1] == ' ') continue;
            us_push(&a, ' ');
        } else {
            us_push(&a, b.v[i]);
        }
    }
    /* .lower() */
    py_lower(&a, out);
    us_free(&a);
    us_free(&b);
}

char *clip_text_clean(const char *text) {
    ustr s = {0};
    clean_text(text ? text : "", &s);
    char *r = us_to_utf8(&s, 0, s.n, NULL);
    us_free(&s);
    return r;
}

/* --- pre-tokenisation ------------------------------------------------------ */

static bool is_letter(uint32_t c) {
    switch (g_unichar_type(c)) {
        case G_UNICODE_LOWERCASE_LETTER:
        case G_UNICODE_UPPERCASE_LETTER:
        case G_UNICODE_TITLECASE_LETTER:
        case G_UNICODE_MODIFIER_LETTER:
        case G_UNICODE_OTHER_LETTER: return true;
        default: return false;
    }
}

static bool is_number(uint32_t c) {
    switch (g_unichar_type(c)) {
        case G_UNICODE_DECIMAL_NUMBER:
        case G_UNICODE_LETTER_NUMBER:
        case G_UNICODE_OTHER_NUMBER: return true;
        default: return false;
    }
}

/* Case-insensitive match of one character against ASCII (re.IGNORECASE of
 * the regex module: 'ſ' U+017F folds to 's', the Kelvin sign to 'k'). */
static bool ci_eq(uint32_t c, char a) {
    if (c < 0x80) return g_ascii_tolower((char)c) == a;
    return (a == 's' && c == 0x17F) || (a == 'k' && c == 0x212A);
}

static size_t match_ci(const ustr *s, size_t i, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (i + k >= s->n || !ci_eq(s->v[i + k], lit[k])) return 0;
    return k;
}

typedef struct piece {
    size_t at, len;
    int special; /* 0 none, 1 <|startoftext|>, 2 <|endoftext|> */
} piece;

/* Splits like re.findall(CLIP's pattern, text). U+0345 (combining
 * ypogegrammeni) matches no alternative under IGNORECASE (it case-folds to a
 * letter, so it is not in [^\s\p{L}\p{N}]), like whitespace. */
static GArray *pretokenize(const ustr *s) {
    static const char *const CONTRACTIONS[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    GArray *out = g_array_new(FALSE, FALSE, sizeof(piece));
    size_t i = 0;
    while (i < s->n) {
        uint32_t c = s->v[i];
        piece p = {i, 0, 0};
        if ((p.len = match_ci(s, i, "<|startoftext|>"))) {
            p.special = 1;
        } else if ((p.len = match_ci(s, i, "<|endoftext|>"))) {
            p.special = 2;
        } else {
            if (c == '\'')
                for (size_t k = 0; k < G_N_ELEMENTS(CONTRACTIONS) && !p.len; k++)
                    p.len = match_ci(s, i, CONTRACTIONS[k]);
            if (!p.len) {
                if (is_letter(c)) {
                    size_t k = i;
                    while (k < s->n && is_letter(s->v[k])) k++;
                    p.len = k - i;
                } else if (is_number(c)) {
                    p.len = 1;
                } else if (!py_isspace(c) && c != 0x345) {
                    size_t k = i;
                    while (k < s->n && !py_isspace(s->v[k]) && s->v[k] != 0x345 && !is_letter(s->v[k]) &&
                           !is_number(s->v[k]))
                        k++;
                    p.len = k - i;
                }
            }
        }
        if (p.len) {
            g_array_append_val(out, p);
            i += p.len;
        } else {
            i++;
        }
    }
    return out;
}

/* --- the tokenizer --------------------------------------------------------- */

/* merge table: open addressing, key = (left symbol << 32) | right symbol */
typedef struct merge_slot {
    uint64_t key; /* UINT64_MAX = empty */
    int32_t rank;
    int32_t merged; /* symbol id of left+right */
} merge_slot;

struct clip_tokenizer {
    GHashTable *vocab;  /* token string -> id + 1 (GINT_TO_POINTER) */
    char **id_to_token; /* [vocab_size], NULL for unused ids */
    int vocab_size;
    int32_t bos, eos;
    GHashTable *symbols; /* symbol string -> id + 1 */
    GPtrArray *sym_str;  /* id -> string */
    GArray *sym_vocab;   /* id -> vocab id or -1 */
    merge_slot *merges;
    size_t merge_cap; /* power of two */
    int n_merges;
    GArray *rank_pair;                            /* rank -> (left, right), for validating heap entries */
    int32_t byte_sym[256], byte_sym_end[256];     /* symbol of u(b), u(b)</w>, or -1 */
    int32_t byte_vocab[256], byte_vocab_end[256]; /* their vocab ids (or EOS) */
    int16_t byte_decoder[0x200];                  /* code point -> byte, -1 */
};

/* GPT-2 / CLIP bytes_to_unicode(): printable Latin-1 bytes map to
 * themselves, the other 68 to U+0100.. in byte order. */
static uint32_t byte_to_unicode(int b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return (uint32_t)b;
    int n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) n++;
    return 256u + (uint32_t)n;
}

void clip_tokenizer_free(clip_tokenizer *t) {
    if (!t) return;
    if (t->vocab) g_hash_table_destroy(t->vocab);
    if (t->id_to_token) {
        for (int i = 0; i < t->vocab_size; i++) g_free(t->id_to_token[i]);
        g_free(t->id_to_token);
    }
    if (t->symbols) g_hash_table_destroy(t->symbols);
    if (t->sym_str) g_ptr_array_free(t->sym_str, TRUE);
    if (t->sym_vocab) g_array_free(t->sym_vocab, TRUE);
    if (t->rank_pair) g_array_free(t->rank_pair, TRUE);
    g_free(t->merges);
    g_free(t);
}

int32_t clip_tokenizer_lookup(const clip_tokenizer *t, const char *token) {
    gpointer v = token ? g_hash_table_lookup(t->vocab, token) : NULL;
    return v ? GPOINTER_TO_INT(v) - 1 : -1;
}

static int32_t intern(clip_tokenizer *t, const char *s) {
    gpointer v = g_hash_table_lookup(t->symbols, s);
    if (v) return GPOINTER_TO_INT(v) - 1;
    char *copy = g_strdup(s);
    int32_t id = (int32_t)t->sym_str->len;
    g_ptr_array_add(t->sym_str, copy);
    g_hash_table_insert(t->symbols, copy, GINT_TO_POINTER(id + 1));
    return id;
}

static int32_t symbol_id(const clip_tokenizer *t, const char *s) {
    gpointer v = g_hash_table_lookup(t->symbols, s);
    return v ? GPOINTER_TO_INT(v) - 1 : -1;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static merge_slot *merge_slot_for(const clip_tokenizer *t, uint64_t key) {
    size_t mask = t->merge_cap - 1, h = (size_t)mix64(key) & mask;
    while (t->merges[h].key != UINT64_MAX && t->merges[h].key != key) h = (h + 1) & mask;
    return &t->merges[h];
}

/* rank of the pair (a, b), or -1; *merged receives the result symbol */
static int32_t pair_rank(const clip_tokenizer *t, int32_t a, int32_t b, int32_t *merged) {
    if (a < 0 || b < 0 || !t->merge_cap) return -1;
    const merge_slot *m = merge_slot_for(t, ((uint64_t)(uint32_t)a << 32) | (uint32_t)b);
    if (m->key == UINT64_MAX) return -1;
    if (merged) *merged = m->merged;
    return m->rank;
}

static ie_status load_vocab(clip_tokenizer *t, const char *json, size_t len, const char *label, char *err,
                            size_t errlen) {
    if (!g_utf8_validate(json, (gssize)len, NULL)) {
        ie_set_err(err, errlen, "%s: not valid UTF-8 JSON", label);
        return IE_ERR_FORMAT;
    }
    JsonParser *parser = json_parser_new();
    GError *gerr = NULL;
    ie_status st = IE_ERR_FORMAT;
    if (!json_parser_load_from_data(parser, json, (gssize)len, &gerr)) {
        ie_set_err(err, errlen, "%s: not valid JSON: %s", label, gerr ? gerr->message : "error");
        goto done;
    }
    JsonNode *root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        ie_set_err(err, errlen, "%s: expected a JSON object {token: id}", label);
        goto done;
    }
    JsonObject *o = json_node_get_object(root);
    JsonObjectIter it;
    const char *k;
    JsonNode *v;
    int max_id = -1;
    json_object_iter_init(&it, o);
    while (json_object_iter_next(&it, &k, &v)) {
        if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_INT64 || json_node_get_int(v) < 0 ||
            json_node_get_int(v) >= (1 << 24)) {
            ie_set_err(err, errlen, "%s: token \"%.64s\": expected an id in [0, %d)", label, k, 1 << 24);
            goto done;
        }
        if ((int)json_node_get_int(v) > max_id) max_id = (int)json_node_get_int(v);
    }
    if (max_id < 0) {
        ie_set_err(err, errlen, "%s: the vocabulary is empty", label);
        goto done;
    }
    t->vocab_size = max_id + 1;
    t->id_to_token = g_new0(char *, t->vocab_size);
    json_object_iter_init(&it, o);
    while (json_object_iter_next(&it, &k, &v)) {
        int id = (int)json_node_get_int(v);
        if (t->id_to_token[id]) {
            ie_set_err(err, errlen, "%s: id %d is used by both \"%.64s\" and \"%.64s\"", label, id, t->id_to_token[id],
                       k);
            goto done;
        }
        t->id_to_token[id] = g_strdup(k);
        g_hash_table_insert(t->vocab, t->id_to_token[id], GINT_TO_POINTER(id + 1));
    }
    t->bos = clip_tokenizer_lookup(t, "<|startoftext|>");
    t->eos = clip_tokenizer_lookup(t, "<|endoftext|>");
    if (t->bos < 0 || t->eos < 0) {
        ie_set_err(err, errlen,
                   "%s: no \"%s\" entry (a CLIP vocabulary has <|startoftext|> and "
                   "<|endoftext|>)",
                   label, t->bos < 0 ? "<|startoftext|>" : "<|endoftext|>");
        goto done;
    }
    st = IE_OK;
done:
    if (gerr) g_error_free(gerr);
    g_object_unref(parser);
    return st;
}

/* merges.txt as the reference reads it: text.strip().split('\n')[1:48895],
 * each line split on whitespace; only two-part lines can ever match a pair;
 * a repeated pair keeps its last rank. */
static ie_status load_merges(clip_tokenizer *t, const char *text, size_t len, const char *label, char *err,
                             size_t errlen) {
    if (!g_utf8_validate(text, (gssize)len, NULL)) {
        ie_set_err(err, errlen, "%s: not valid UTF-8 text", label);
        return IE_ERR_FORMAT;
    }
    ustr all = {0};
    us_from_utf8(&all, text, len);
    size_t lo = 0, hi = all.n;
    while (lo < hi && py_isspace(all.v[lo])) lo++;
    while (hi > lo && py_isspace(all.v[hi - 1])) hi--;
    /* count lines to size the table */
    size_t lines = 1;
    for (size_t i = lo; i < hi; i++) lines += all.v[i] == '\n';
    size_t n_use = lines > 1 ? lines - 1 : 0;
    if (n_use > CLIP_MAX_MERGES) n_use = CLIP_MAX_MERGES;
    t->merge_cap = 16;
    while (t->merge_cap < 2 * n_use + 16) t->merge_cap *= 2;
    t->merges = g_new(merge_slot, t->merge_cap);
    for (size_t i = 0; i < t->merge_cap; i++) t->merges[i] = (merge_slot){UINT64_MAX, -1, -1};
    t->rank_pair = g_array_new(FALSE, FALSE, sizeof(int32_t) * 2);
    size_t pos = lo;
    int line = 0;
    while (pos <= hi && t->n_merges < CLIP_MAX_MERGES) {
        size_t end = pos;
        while (end < hi && all.v[end] != '\n') end++;
        if (line++ > 0) {
            /* split on whitespace */
            size_t parts[3][2];
            int np = 0;
            for (size_t i = pos; i < end;) {
                while (i < end && py_isspace(all.v[i])) i++;
                if (i >= end) break;
                size_t a = i;
                while (i < end && !py_isspace(all.v[i])) i++;
                if (np < 3) {
                    parts[np][0] = a;
                    parts[np][1] = i;
                }
                np++;
            }
            int32_t pair[2] = {-1, -1};
            if (np == 2) {
                char *a = us_to_utf8(&all, parts[0][0], parts[0][1], NULL);
                char *b = us_to_utf8(&all, parts[1][0], parts[1][1], NULL);
                char *ab = g_strconcat(a, b, NULL);
                int32_t ia = intern(t, a), ib = intern(t, b), iab = intern(t, ab);
                merge_slot *m = merge_slot_for(t, ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib);
                m->key = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
                m->rank = t->n_merges; /* a repeated pair: the later rank wins */
                m->merged = iab;
                pair[0] = ia;
                pair[1] = ib;
                g_free(a);
                g_free(b);
                g_free(ab);
            }
            g_array_append_val(t->rank_pair, pair);
            t->n_merges++;
        }
        if (end >= hi) break;
        pos = end + 1;
    }
    us_free(&all);
    return IE_OK;
}

static void finish_tables(clip_tokenizer *t) {
    t->sym_vocab = g_array_sized_new(FALSE, FALSE, sizeof(int32_t), t->sym_str->len);
    for (guint i = 0; i < t->sym_str->len; i++) {
        int32_t v = clip_tokenizer_lookup(t, g_ptr_array_index(t->sym_str, i));
        g_array_append_val(t->sym_vocab, v);
    }
    for (int i = 0; i < 0x200; i++) t->byte_decoder[i] = -1;
    for (int b = 0; b < 256; b++) {
        uint32_t u = byte_to_unicode(b);
        t->byte_decoder[u] = (int16_t)b;
        char s[16];
        int n = g_unichar_to_utf8(u, s);
        s[n] = 0;
        t->byte_sym[b] = symbol_id(t, s);
        int32_t v = clip_tokenizer_lookup(t, s);
        t->byte_vocab[b] = v >= 0 ? v : t->eos;
        g_strlcat(s, "</w>", sizeof s);
        t->byte_sym_end[b] = symbol_id(t, s);
        v = clip_tokenizer_lookup(t, s);
        t->byte_vocab_end[b] = v >= 0 ? v : t->eos;
    }
}

ie_status clip_tokenizer_load_memory(const char *vocab_json, size_t vocab_len, const char *merges, size_t merges_len,
                                     const char *label, clip_tokenizer **out, char *err, size_t errlen) {
    *out = NULL;
    clip_tokenizer *t = g_new0(clip_tokenizer, 1);
    t->vocab = g_hash_table_new(g_str_hash, g_str_equal);
    t->symbols = g_hash_table_new(g_str_hash, g_str_equal);
    t->sym_str = g_ptr_array_new_with_free_func(g_free);
    char *vl = g_strdup_printf("%s/vocab.json", label ? label : "<memory>");
    char *ml = g_strdup_printf("%s/merges.txt", label ? label : "<memory>");
    ie_status st = load_vocab(t, vocab_json, vocab_len, vl, err, errlen);
    if (st == IE_OK) st = load_merges(t, merges, merges_len, ml, err, errlen);
    g_free(vl);
    g_free(ml);
    if (st != IE_OK) {
        clip_tokenizer_free(t);
        return st;
    }
    finish_tables(t);
    *out = t;
    return IE_OK;
}

static ie_status read_file(const char *path, const char *what, char **text, size_t *len, char *err, size_t errlen) {
    GError *gerr = NULL;
    gsize n = 0;
    if (!g_file_get_contents(path, text, &n, &gerr)) {
        ie_set_err(err, errlen, "%s: cannot read the tokenizer's %s: %s", path, what, gerr ? gerr->message : "error");
        if (gerr) g_error_free(gerr);
        return IE_ERR_IO;
    }
    *len = n;
    return IE_OK;
}

ie_status clip_tokenizer_load(const char *vocab_json, const char *merges_txt, clip_tokenizer **out, char *err,
                              size_t errlen) {
    *out = NULL;
    char *v = NULL, *m = NULL;
    size_t vn = 0, mn = 0;
    ie_status st = read_file(vocab_json, "vocabulary", &v, &vn, err, errlen);
    if (st == IE_OK) st = read_file(merges_txt, "merge list", &m, &mn, err, errlen);
    if (st == IE_OK) {
        clip_tokenizer *t = g_new0(clip_tokenizer, 1);
        t->vocab = g_hash_table_new(g_str_hash, g_str_equal);
        t->symbols = g_hash_table_new(g_str_hash, g_str_equal);
        t->sym_str = g_ptr_array_new_with_free_func(g_free);
        st = load_vocab(t, v, vn, vocab_json, err, errlen);
        if (st == IE_OK) st = load_merges(t, m, mn, merges_txt, err, errlen);
        if (st == IE_OK) {
            finish_tables(t);
            *out = t;
        } else {
            clip_tokenizer_free(t);
        }
    }
    g_free(v);
    g_free(m);
    return st;
}

ie_status clip_tokenizer_load_dir(const char *dir, clip_tokenizer **out, char *err, size_t errlen) {
    char *v = g_build_filename(dir, "vocab.json", NULL);
    char *m = g_build_filename(dir, "merges.txt", NULL);
    ie_status st = clip_tokenizer_load(v, m, out, err, errlen);
    g_free(v);
    g_free(m);
    return st;
}

int clip_tokenizer_vocab_size(const clip_tokenizer *t) { return t->vocab_size; }
int clip_tokenizer_merge_count(const clip_tokenizer *t) { return t->n_merges; }
int32_t clip_tokenizer_bos(const clip_tokenizer *t) { return t->bos; }
int32_t clip_tokenizer_eos(const clip_tokenizer *t) { return t->eos; }

const char *clip_tokenizer_token(const clip_tokenizer *t, int32_t id) {
    return (id >= 0 && id < t->vocab_size) ? t->id_to_token[id] : NULL;
}

/* --- BPE ----------------------------------------------------------------- */

/* heap of (rank << 32 | position), smallest first */
typedef struct heap {
    uint64_t *v;
    size_t n, cap;
} heap;

static void heap_push(heap *h, uint64_t x) {
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 64;
        h->v = g_realloc_n(h->v, h->cap, sizeof *h->v);
    }
    size_t i = h->n++;
    while (i > 0 && h->v[(i - 1) / 2] > x) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = x;
}

static uint64_t heap_pop(heap *h) {
    uint64_t top = h->v[0], x = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->v[c + 1] < h->v[c]) c++;
        if (h->v[c] >= x) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = x;
    return top;
}

/* BPE of one piece (UTF-8 bytes), appending vocab ids to out.
 *
 * Equivalent to the reference loop "merge every occurrence of the
 * lowest-ranked adjacent pair, left to right; repeat", in O(n log n): a heap
 * orders (rank, position); all entries of one rank (= one pair) are handled
 * before the pairs they create are added, so a newly created pair never
 * jumps ahead of the remaining occurrences of the current one. */
static void bpe_piece(const clip_tokenizer *t, const uint8_t *p, size_t m, GArray *out) {
    int32_t *sym = g_new(int32_t, m), *fb = g_new(int32_t, m);
    int32_t *next = g_new(int32_t, m), *prev = g_new(int32_t, m);
    for (size_t k = 0; k < m; k++) {
        bool last = k == m - 1;
        sym[k] = last ? t->byte_sym_end[p[k]] : t->byte_sym[p[k]];
        fb[k] = last ? t->byte_vocab_end[p[k]] : t->byte_vocab[p[k]];
        next[k] = last ? -1 : (int32_t)k + 1;
        prev[k] = (int32_t)k - 1;
    }
    heap h = {0}, pending = {0};
    for (size_t k = 0; k + 1 < m; k++) {
        int32_t r = pair_rank(t, sym[k], sym[k + 1], NULL);
        if (r >= 0) heap_push(&h, ((uint64_t)(uint32_t)r << 32) | k);
    }
    while (h.n) {
        uint32_t rank = (uint32_t)(h.v[0] >> 32);
        const int32_t *pair = &g_array_index(t->rank_pair, int32_t, 2 * rank);
        pending.n = 0;
        while (h.n && (uint32_t)(h.v[0] >> 32) == rank) {
            int32_t k = (int32_t)(heap_pop(&h) & 0xffffffffu);
            int32_t q = next[k];
            if (sym[k] < 0 || q < 0 || sym[k] != pair[0] || sym[q] != pair[1])
                continue; /* stale: merged away or changed */
            int32_t merged = -1;
            pair_rank(t, sym[k], sym[q], &merged);
            sym[k] = merged;
            fb[k] = -1;
            next[k] = next[q];
            if (next[q] >= 0) prev[next[q]] = k;
            sym[q] = -2; /* dead */
            int32_t r;
            if (prev[k] >= 0 && (r = pair_rank(t, sym[prev[k]], sym[k], NULL)) >= 0)
                heap_push(&pending, ((uint64_t)(uint32_t)r << 32) | (uint32_t)prev[k]);
            if (next[k] >= 0 && (r = pair_rank(t, sym[k], sym[next[k]], NULL)) >= 0)
                heap_push(&pending, ((uint64_t)(uint32_t)r << 32) | (uint32_t)k);
        }
        for (size_t i = 0; i < pending.n; i++) heap_push(&h, pending.v[i]);
    }
    for (int32_t k = 0; k >= 0; k = next[k]) {
        int32_t id = fb[k];
        if (id < 0) {
            id = g_array_index(t->sym_vocab, int32_t, sym[k]);
            if (id < 0) id = t->eos; /* not in the vocabulary: unk */
        }
        g_array_append_val(out, id);
    }
    g_free(h.v);
    g_free(pending.v);
    g_free(sym);
    g_free(fb);
    g_free(next);
    g_free(prev);
}

/* The reference's bpe() cache holds exactly "<|startoftext|>" and
 * "<|endoftext|>"; a piece the special alternative matched only
 * case-insensitively ("<|\u017ftartoftext|>") goes through BPE. */
static bool is_exact(const ustr *s, size_t at, const char *lit) {
    for (size_t k = 0; lit[k]; k++)
        if (at + k >= s->n || s->v[at + k] != (uint32_t)(unsigned char)lit[k]) return false;
    return true;
}

static GArray *tokenize_all(const clip_tokenizer *t, const char *text) {
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
    ustr s = {0};
    clean_text(text ? text : "", &s);
    GArray *pieces = pretokenize(&s);
    for (guint i = 0; i < pieces->len; i++) {
        const piece *p = &g_array_index(pieces, piece, i);
        if (p->special && is_exact(&s, p->at, p->special == 1 ? "<|startoftext|>" : "<|endoftext|>")) {
            int32_t id = p->special == 1 ? t->bos : t->eos;
            g_array_append_val(ids, id);
            continue;
        }
        size_t len = 0;
        char *bytes = us_to_utf8(&s, p->at, p->at + p->len, &len);
        if (len) bpe_piece(t, (const uint8_t *)bytes, len, ids);
        g_free(bytes);
    }
    g_array_free(pieces, TRUE);
    us_free(&s);
    return ids;
}

int clip_tokenize(const clip_tokenizer *t, const char *text, int32_t *ids, int cap) {
    GArray *a = tokenize_all(t, text);
    int n = (int)a->len;
    for (int i = 0; i < n && i < cap; i++) ids[i] = g_array_index(a, int32_t, i);
    g_array_free(a, TRUE);
    return n;
}

int clip_encode(const clip_tokenizer *t, const char *text, int32_t *ids, int length, bool *truncated) {
    GArray *a = tokenize_all(t, text);
    int n = (int)a->len, keep = length - 2;
    if (keep < 0) keep = 0;
    if (keep > n) keep = n;
    int at = 0;
    if (length > 0) ids[at++] = t->bos;
    for (int i = 0; i < keep; i++) ids[at++] = g_array_index(a, int32_t, i);
    while (at < length) ids[at++] = t->eos;
    if (truncated) *truncated = n > keep;
    g_array_free(a, TRUE);
    return n;
}

/* --- decoding ------------------------------------------------------------- */

char *clip_decode(const clip_tokenizer *t, const int32_t *ids, int n) {
    GByteArray *bytes = g_byte_array_new();
    for (int i = 0; i < n; i++) {
        const char *s = clip_tokenizer_token(t, ids[i]);
        if (!s) continue;
        for (const char *p = s; *p; p = g_utf8_next_char(p)) {
            gunichar c = g_utf8_get_char(p);
            if (c < 0x200 && t->byte_decoder[c] >= 0) {
                uint8_t b = (uint8_t)t->byte_decoder[c];
                g_byte_array_append(bytes, &b, 1);
            } else {
                g_byte_array_append(bytes, (const guint8 *)p, (guint)(g_utf8_next_char(p) - p));
            }
        }
    }
    ustr u = {0};
    us_from_utf8(&u, (const char *)bytes->data, bytes->len);
    g_byte_array_free(bytes, TRUE);
    /* "</w>" -> " ", then strip */
    ustr r = {0};
    for (size_t i = 0; i < u.n; i++) {
        if (u.v[i] == '<' && i + 3 < u.n && u.v[i + 1] == '/' && u.v[i + 2] == 'w' && u.v[i + 3] == '>') {
            us_push(&r, ' ');
            i += 3;
        } else {
            us_push(&r, u.v[i]);
        }
    }
    size_t lo = 0, hi = r.n;
    while (lo < hi && py_isspace(r.v[lo])) lo++;
    while (hi > lo && py_isspace(r.v[hi - 1])) hi--;
    char *s = us_to_utf8(&r, lo, hi, NULL);
    us_free(&u);
    us_free(&r);
    return s;
}

/* Code points of decode([id]).strip("#"). */
static size_t token_text_length(const clip_tokenizer *t, int32_t id) {
    char *s = clip_decode(t, &id, 1);
    ustr u = {0};
    us_append_utf8(&u, s);
    size_t lo = 0, hi = u.n;
    while (lo < hi && u.v[lo] == '#') lo++;
    while (hi > lo && u.v[hi - 1] == '#') hi--;
    g_free(s);
    us_free(&u);
    return hi - lo;
}

/* get_word_inds for a set of word indices (bitmap over words). */
static int word_positions(const clip_tokenizer *t, const char *text, const bool *want, const size_t *word_len,
                          size_t n_words, int *pos, int cap) {
    GArray *ids = tokenize_all(t, text);
    int count = 0;
    size_t cur = 0, ptr = 0;
    for (guint i = 0; i < ids->len && ptr < n_words; i++) {
        cur += token_text_length(t, g_array_index(ids, int32_t, i));
        if (want[ptr]) {
            if (count < cap) pos[count] = (int)i + 1;
            count++;
        }
        if (cur >= word_len[ptr]) {
            ptr++;
            cur = 0;
        }
    }
    g_array_free(ids, TRUE);
    return count;
}

/* text.split(" ") (code point lengths and the words themselves) */
static size_t split_words(const char *text, ustr *u, size_t **starts, size_t **lens) {
    us_from_utf8(u, text, strlen(text));
    size_t n = 1;
    for (size_t i = 0; i < u->n; i++) n += u->v[i] == ' ';
    *starts = g_new(size_t, n);
    *lens = g_new(size_t, n);
    size_t w = 0, a = 0;
    for (size_t i = 0; i <= u->n; i++)
        if (i == u->n || u->v[i] == ' ') {
            (*starts)[w] = a;
            (*lens)[w] = i - a;
            w++;
            a = i + 1;
        }
    return n;
}

int clip_word_positions(const clip_tokenizer *t, const char *text, int word, int *pos, int cap) {
    if (!text) return 0;
    ustr u = {0};
    size_t *starts, *lens;
    size_t n = split_words(text, &u, &starts, &lens);
    bool *want = g_new0(bool, n);
    if (word >= 0 && (size_t)word < n) want[word] = true;
    int r = word >= 0 && (size_t)word < n ? word_positions(t, text, want, lens, n, pos, cap) : 0;
    g_free(want);
    g_free(starts);
    g_free(lens);
    us_free(&u);
    return r;
}

int clip_word_positions_str(const clip_tokenizer *t, const char *text, const char *word_text, int *pos, int cap) {
    if (!text || !word_text) return 0;
    ustr u = {0}, w = {0};
    us_append_utf8(&w, word_text);
    size_t *starts, *lens;
    size_t n = split_words(text, &u, &starts, &lens);
    bool *want = g_new0(bool, n), any = false;
    for (size_t i = 0; i < n; i++)
        if (lens[i] == w.n && (w.n == 0 || memcmp(u.v + starts[i], w.v, w.n * sizeof *w.v) == 0)) want[i] = any = true;
    int r = any ? word_positions(t, text, want, lens, n, pos, cap) : 0;
    g_free(want);
    g_free(starts);
    g_free(lens);
    us_free(&u);
    us_free(&w);
    return r;
}
