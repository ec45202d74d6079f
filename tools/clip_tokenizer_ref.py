#!/usr/bin/env python3
"""Reference CLIP BPE tokenizer in plain Python (no regex, no ftfy, no transformers), and the
generator of the tokenizer test data in tests/data/tok/.

Written from the algorithm of OpenAI CLIP's simple_tokenizer.py:

    encode(text):
        text = whitespace_clean(basic_clean(text)).lower()
            basic_clean:      ftfy.fix_text, html.unescape(html.unescape(.)), strip
            whitespace_clean: re.sub(r'\\s+', ' '), strip
        for piece in regex.findall(PAT, text, IGNORECASE):
            PAT = <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+
            symbols = byte_encoder[b] for b in piece.encode('utf-8'), '</w>' appended to the last
            repeatedly merge every occurrence of the lowest-ranked adjacent pair (left to right)
            ids += vocab[symbol] for the resulting symbols

The pattern is implemented as a scanner over unicodedata categories (\\p{L} = L*, \\p{N} = N*).
Under IGNORECASE, 'ſ' (U+017F) matches 's' and U+0345 matches no alternative (it case-folds to a
letter); both are reproduced. Of ftfy.fix_text the same subset as model/tokenizer.c is
implemented (unescape_html, fix_c1_controls, fix_latin_ligatures, fix_character_width,
uncurl_quotes, fix_line_breaks, remove_terminal_escapes, remove_control_chars, NFC; not the
mojibake repair fix_encoding); html.unescape, str.strip/lower and re's \\s are Python's own.

Commands:
    clip_tokenizer_ref.py learn OUTDIR [N_MERGES]   learn a small CLIP-format vocab from CORPUS
    clip_tokenizer_ref.py cases VOCAB MERGES OUT    dump expected ids for CASES to OUT (JSON)
    clip_tokenizer_ref.py random VOCAB MERGES OUT N [SEED]  random texts + expected ids
    clip_tokenizer_ref.py check-regex [N]           compare the scanner with the regex module
    clip_tokenizer_ref.py encode VOCAB MERGES TEXT  print the ids of TEXT
"""
import html
import html.entities
import json
import random
import re
import sys
import unicodedata

BOS_TOKEN, EOS_TOKEN = "<|startoftext|>", "<|endoftext|>"
MAX_MERGES = 49152 - 256 - 2


# --------------------------------------------------------------------------- bytes <-> unicode

def bytes_to_unicode():
    printable = [b for b in range(256) if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {v: k for k, v in BYTE_ENCODER.items()}


# --------------------------------------------------------------------------- ftfy subset

def _ftfy_entities():
    ents = {}
    for name, char in html.entities.html5.items():
        if name.endswith(";"):
            ents["&" + name] = char
            if name == name.lower():
                up = "&" + name.upper()
                if html.unescape(up) == up:
                    ents[up] = char.upper()
    return ents


FTFY_ENTITIES = _ftfy_entities()
FTFY_ENTITY_RE = re.compile(r"&#?[0-9A-Za-z]{1,24};")
LIGATURES = {
    "Ĳ": "IJ", "ĳ": "ij", "ŉ": "ʼn", "Ǳ": "DZ", "ǲ": "Dz", "ǳ": "dz", "Ǆ": "DŽ", "ǅ": "Dž", "ǆ": "dž",
    "Ǉ": "LJ", "ǈ": "Lj", "ǉ": "lj", "Ǌ": "NJ", "ǋ": "Nj", "ǌ": "nj", "ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl",
    "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "ſt", "ﬆ": "st",
}
WIDTH = {0x3000: " "}
for _i in range(0xFF01, 0xFFF0):
    _alt = unicodedata.normalize("NFKC", chr(_i))
    if _alt != chr(_i):
        WIDTH[_i] = _alt
CONTROL = set(list(range(0x00, 0x09)) + [0x0B] + list(range(0x0E, 0x20)) + [0x7F] + list(range(0x206A, 0x2070))
              + [0xFEFF] + list(range(0xFFF9, 0xFFFD)))
ANSI_RE = re.compile("\033\\[((?:\\d|;)*)([a-zA-Z])")


def _ftfy_unescape(text):
    def fix(m):
        t = m.group(0)
        if t in FTFY_ENTITIES:
            return FTFY_ENTITIES[t]
        if t.startswith("&#"):
            u = html.unescape(t)
            return t if ";" in u else u
        return t
    return FTFY_ENTITY_RE.sub(fix, text)


def _c1(text):
    return "".join(bytes([ord(c)]).decode("cp1252", errors="strict") if 0x80 <= ord(c) <= 0x9F
                   and ord(c) not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else c for c in text)


def _ftfy_segment(text, unescape):
    while True:
        orig = text
        if unescape:
            text = _ftfy_unescape(text)
        text = _c1(text)
        text = "".join(LIGATURES.get(c, c) for c in text)
        text = "".join(WIDTH.get(ord(c), c) for c in text)
        text = re.sub("[\u02bc\u2018-\u201b]", "'", re.sub("[\u201c-\u201f]", '"', text))
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n") \
                   .replace("\u2029", "\n").replace("\u0085", "\n")
        text = ANSI_RE.sub("", text)
        text = "".join(c for c in text if ord(c) not in CONTROL)
        text = unicodedata.normalize("NFC", text)
        if text == orig:
            return text


def ftfy_fix_text(text):
    out, pos, unescape = [], 0, True
    while pos < len(text):
        brk = text.find("\n", pos) + 1
        if brk == 0:
            brk = len(text)
        if brk - pos > 1000000:
            brk = pos + 1000000
        seg = text[pos:brk]
        if "<" in seg:
            unescape = False
        out.append(_ftfy_segment(seg, unescape))
        pos = brk
    return "".join(out)


def clean(text):
    text = ftfy_fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    text = re.sub(r"\s+", " ", text).strip()
    return text.lower()


# --------------------------------------------------------------------------- pre-tokenisation

def _is_l(c):
    return unicodedata.category(c)[0] == "L"


def _is_n(c):
    return unicodedata.category(c)[0] == "N"


def _ci(c, a):
    return c.lower() == a if ord(c) < 128 else (a == "s" and c == "\u017f") or (a == "k" and c == "\u212a")


def _lit(text, i, lit):
    if i + len(lit) > len(text):
        return 0
    return len(lit) if all(_ci(text[i + k], lit[k]) for k in range(len(lit))) else 0


def pretokenize(text):
    pieces, i = [], 0
    while i < len(text):
        c = text[i]
        n = _lit(text, i, BOS_TOKEN) or _lit(text, i, EOS_TOKEN)
        if not n and c == "'":
            for con in ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d"):
                n = _lit(text, i, con)
                if n:
                    break
        if not n:
            if _is_l(c):
                n = 1
                while i + n < len(text) and _is_l(text[i + n]):
                    n += 1
            elif _is_n(c):
                n = 1
            elif not c.isspace() and c != "\u0345":
                n = 1
                while i + n < len(text) and not (text[i + n].isspace() or text[i + n] == "\u0345"
                                                  or _is_l(text[i + n]) or _is_n(text[i + n])):
                    n += 1
        if n:
            pieces.append(text[i:i + n])
            i += n
        else:
            i += 1
    return pieces


# --------------------------------------------------------------------------- the tokenizer

class Tokenizer:
    def __init__(self, vocab_path, merges_path):
        with open(vocab_path, encoding="utf-8") as f:
            self.encoder = json.load(f)
        self.decoder = {v: k for k, v in self.encoder.items()}
        with open(merges_path, encoding="utf-8") as f:
            lines = f.read().strip().split("\n")[1:MAX_MERGES + 1]
        self.ranks = dict(zip([tuple(m.split()) for m in lines], range(len(lines))))
        self.bos, self.eos = self.encoder[BOS_TOKEN], self.encoder[EOS_TOKEN]

    def bpe(self, token):
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            new, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == best[0] and word[i + 1] == best[1]:
                    new.append(best[0] + best[1])
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
        return word

    def tokenize(self, text):
        ids = []
        for piece in pretokenize(clean(text)):
            # the reference's bpe cache holds exactly these two strings; a piece the special
            # alternative matched case-insensitively ("<|\u017ftartoftext|>") is BPE-encoded
            if piece == BOS_TOKEN:
                ids.append(self.bos)
                continue
            if piece == EOS_TOKEN:
                ids.append(self.eos)
                continue
            sym = "".join(BYTE_ENCODER[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder.get(s, self.eos) for s in self.bpe(sym))
        return ids

    def encode(self, text, length=77):
        toks = self.tokenize(text)
        keep = toks[:length - 2]
        out = [self.bos] + keep + [self.eos]
        return out + [self.eos] * (length - len(out)), len(toks) > len(keep)

    def decode(self, ids):
        text = "".join(self.decoder[i] for i in ids)
        b = b"".join(bytes([BYTE_DECODER[c]]) if c in BYTE_DECODER else c.encode("utf-8") for c in text)
        return b.decode("utf-8", errors="replace").replace("</w>", " ").strip()

    def word_inds(self, text, word_place):
        """Prompt-to-Prompt get_word_inds (word index or word string)."""
        split_text = text.split(" ")
        if isinstance(word_place, str):
            word_place = [i for i, w in enumerate(split_text) if word_place == w]
        else:
            word_place = [word_place]
        out = []
        if word_place:
            words_encode = [self.decode([t]).strip("#") for t in self.tokenize(text)]
            cur_len, ptr = 0, 0
            for i in range(len(words_encode)):
                if ptr >= len(split_text):
                    break
                cur_len += len(words_encode[i])
                if ptr in word_place:
                    out.append(i + 1)
                if cur_len >= len(split_text[ptr]):
                    ptr += 1
                    cur_len = 0
        return out


# --------------------------------------------------------------------------- learning a test vocab

CORPUS = """
A photo of a cat sitting on a red sofa. A painting of two dogs playing in the park.
The quick brown fox jumps over the lazy dog; it's a sunny day and we're happy.
A portrait of an old man with a beard, oil on canvas, highly detailed, 4k, trending.
Three cats and 25 dogs walked along the beach at sunset in 2024.
She said: "I'm going to the market, then we'll meet at the café." He'd agree.
A bowl of fresh fruit: apples, oranges, bananas and grapes on a wooden table.
A watercolor landscape with mountains, a lake and pine trees under a blue sky.
A close-up photograph of a flower with dew drops, macro lens, soft light.
A futuristic city at night with neon lights and flying cars, cinematic lighting.
The children were playing football in the street while their parents watched.
An astronaut riding a horse on the moon, digital art, concept art.
A cozy kitchen with a kettle, cups of tea and cookies on the counter.
They've been there since 1999, and they haven't changed a thing.
A naïve drawing of a house with a garden, a tree and a smiling sun.
A black and white photo of a train station in the rain, people with umbrellas.
A small boat on a calm sea, seagulls flying above, early morning fog.
Photo of a golden retriever puppy running through the snow in winter.
A vintage car parked in front of a diner, 1950s style, film grain.
A bird sitting on a branch, feathers in shades of yellow and green.
A plate of sushi and a bowl of ramen in a Japanese restaurant, 日本 料理.
The robot looked at the stars and wondered what it's like to dream.
A sketch of a woman reading a book by the window, pencil on paper.
""".strip()


def learn(outdir, n_merges=700):
    import collections
    import os
    words = collections.Counter()
    for line in CORPUS.split("\n"):
        for piece in pretokenize(clean(line)):
            words["".join(BYTE_ENCODER[b] for b in piece.encode("utf-8"))] += 1
    seqs = {w: tuple(w[:-1]) + (w[-1] + "</w>",) for w in words}
    merges = []
    while len(merges) < n_merges:
        pairs = collections.Counter()
        for w, s in seqs.items():
            for p in zip(s, s[1:]):
                pairs[p] += words[w]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w, s in seqs.items():
            new, i = [], 0
            while i < len(s):
                if i < len(s) - 1 and (s[i], s[i + 1]) == best:
                    new.append(s[i] + s[i + 1])
                    i += 2
                else:
                    new.append(s[i])
                    i += 1
            seqs[w] = tuple(new)
    base = [BYTE_ENCODER[b] for b in range(256)]
    vocab = base + [v + "</w>" for v in base] + ["".join(m) for m in merges] + [BOS_TOKEN, EOS_TOKEN]
    assert len(set(vocab)) == len(vocab)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(outdir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    print(f"{outdir}: {len(vocab)} tokens, {len(merges)} merges")


# --------------------------------------------------------------------------- test cases

LONG = ("a very long prompt describing a beautiful landscape with mountains, rivers, forests, "
        "clouds, birds, flowers, a small village, people walking, children playing, dogs running, "
        "cats sleeping, an old bridge, a windmill, boats on the lake, the sun setting behind the hills, "
        "golden light everywhere, highly detailed, masterpiece, best quality, 8k, photorealistic")

CASES = [
    "a photo of a cat",
    "A Photo Of A Cat!!",
    "3 cats, 25 dogs",
    "it's a dog's life, isn't it? we're here; they've gone; I'm ok; we'll see; he'd go",
    "'sam's 'hello' dogs' don't stop believin'",
    "café naïve Ünïcödé 日本語 emoji 🙂",
    "Fish &amp; chips &lt;b&gt; &quot;quoted&quot; &#39;single&#39; &#x41;&#66; &amp;amp; &copy; &eacute;t&eacute;",
    "&amp;amp;amp;amp; &AMP; &NTILDE; &notit; &notin; &amp &ampx &#0; &#128; &#x110000; &#55296; &#1;x",
    "a<b &amp;lt; c",
    "   extra    whitespace\t\tand\nnewlines   \u00a0\u2003nbsp ",
    "A VERY LOUD PROMPT!!! ??? ... --- ***",
    LONG,
    "",
    "   ",
    "<|startoftext|>hello<|endoftext|> world <|ENDOFTEXT|>",
    "\ufb01ne \ufb02owers \uff26\uff35\uff2c\uff2c\uff37\uff29\uff24\uff34\uff28 \u201ccurly\u201d \u2018quotes\u2019 it\u2019s",
    "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3 \u03a3 \u0391\u03a3. \u03a3\u0391",
    "\u0130stanbul DIYARBAKIR",
    "x\u00b2 \u00bd \u2167 \U0001d7d9\U0001d7da 42",
    "tab\x1fsep \x1b[31mred\x1b[0m ctrl\x07bell\x7f",
    "cafe\u0301 e\u0301te\u0301",
    "hello\u0345world \u0345",
    "2024-01-01 12:30pm $100.50 #hashtag @user 50%",
    "\u0080\u0085\u0093quoted\u0094 \u0081",
    "'\u017f <|\u017ftartoftext|>",
    "a photo of a cat and a dog",
    "a cat sitting on the sofa",
    "painting of a woman, oil on canvas",
]

WORD_QUERIES = [
    ("a photo of a cat", [0, 1, 2, 4, "cat", "a"]),
    ("a photo of a cat and a dog", [4, 7, "dog"]),
    ("3 cats, 25 dogs", [0, 1, 2, 3]),
    ("it's a dog's life", [0, 2, 3]),
    ("café naïve Ünïcödé 日本語", [0, 1, 2, 3]),
    ("a  double space", [0, 1, 2, 3]),
    ("painting of a woman, oil on canvas", ["woman,", 5, 6]),
]


def case_record(tok, text, raw=None):
    toks = tok.tokenize(text)
    enc, trunc = tok.encode(text)
    rec = {"text": text, "clean": clean(text), "tokens": toks, "encoded": enc, "truncated": trunc,
           "decoded": tok.decode(toks)}
    if raw is not None:
        rec["text_hex"] = raw.hex()
        del rec["text"]
    return rec


def dump_cases(vocab, merges, out):
    tok = Tokenizer(vocab, merges)
    recs = [case_record(tok, t) for t in CASES]
    # invalid UTF-8 input: decoded with replacement characters
    for raw in (b"abc \xff\xfe def", b"\xe6\x97 truncated \xf0\x9f\x99", b"\xed\xa0\x80 surrogate \xc0\xaf"):
        recs.append(case_record(tok, raw.decode("utf-8", errors="replace"), raw))
    words = []
    for text, queries in WORD_QUERIES:
        for q in queries:
            words.append({"text": text, "word": q, "positions": tok.word_inds(text, q)})
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"vocab": vocab, "cases": recs, "words": words}, f, ensure_ascii=True, indent=1)
    print(f"{out}: {len(recs)} cases, {len(words)} word queries")


def random_text(rng):
    pools = [
        "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " " * 6, "  \t\n\r",
        ".,;:!?'\"-()[]{}<>/\\|@#$%^&*_+=~`", "éèêëàâäöüïçñßøåÆŒ", "αβγδΣΑΟΔΥ", "日本語中文한국어",
        "🙂🐱🌈👍🏽", "\u0301\u0308\u0345\u200b\u200d\ufeff", "\x01\x1b\x1f\x7f\x85\x93",
        "\ufb01\ufb02\uff21\uff41\u3000\u2018\u2019\u201c\u201d", "²½Ⅷ٣", "ſİı",
    ]
    frags = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x41;", "&amp;amp;", "&copy", "&eacute;",
             "'s", "'re", "'ll", "<|endoftext|>", "<|startoftext|>", "\x1b[1m", "&#0;", "&NTILDE;"]
    out = []
    for _ in range(rng.randint(0, 40)):
        if rng.random() < 0.1:
            out.append(rng.choice(frags))
        else:
            out.append(rng.choice(rng.choice(pools)))
    return "".join(out)


def dump_random(vocab, merges, out, n, seed=1234):
    tok = Tokenizer(vocab, merges)
    rng = random.Random(seed)
    recs = []
    for _ in range(n):
        rec = case_record(tok, random_text(rng))
        del rec["encoded"]  # derivable from the tokens; keeps the file small
        recs.append(rec)
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"vocab": vocab, "cases": recs, "words": []}, f, ensure_ascii=True)
    print(f"{out}: {n} random cases")


def check_regex(n):
    """Compare the scanner with the regex module on random text (dev-time check)."""
    import regex
    pat = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                        regex.IGNORECASE)
    rng = random.Random(7)
    bad = 0
    for _ in range(n):
        t = clean(random_text(rng))
        a, b = pretokenize(t), pat.findall(t)
        if a != b:
            bad += 1
            if bad < 10:
                print("MISMATCH", repr(t), a, b)
    print(f"check-regex: {n} texts, {bad} mismatches")
    return bad == 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "learn":
        learn(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 700)
    elif cmd == "cases":
        dump_cases(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "random":
        dump_random(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
                    int(sys.argv[6]) if len(sys.argv) > 6 else 1234)
    elif cmd == "check-regex":
        sys.exit(0 if check_regex(int(sys.argv[2]) if len(sys.argv) > 2 else 20000) else 1)
    elif cmd == "encode":
        t = Tokenizer(sys.argv[2], sys.argv[3])
        print(t.tokenize(sys.argv[4]))
    else:
        print(__doc__)
        sys.exit(2)
