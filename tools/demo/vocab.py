"""Build a CLIP-format byte-level BPE vocabulary (vocab.json + merges.txt) from the demo corpus.

Layout exactly as CLIP's: 256 byte symbols, the same 256 + '</w>', then one entry per merge in rank
order, then '<|startoftext|>', '<|endoftext|>' (the last two ids = BOS, EOS). Merges are learned by
classic BPE (most frequent adjacent pair, ties broken lexicographically) until every corpus word is a
single token, so all dataset words are one token each while ANY text still tokenizes (byte fallback).

    python3 tools/demo/vocab.py OUTDIR
"""
import collections
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sdref.clip import base_vocab, bytes_to_unicode, clean_text, pretokenize  # noqa: E402

# a few generic words beyond the captions, useful for editing prompts
EXTRA_WORDS = ["photo", "of", "with", "and", "the", "big", "small", "image", "shape", "object", "picture"]


def learn_merges(words):
    be = bytes_to_unicode()
    freq = collections.Counter(words)
    seqs = {}
    for w in freq:
        u = "".join(be[b] for b in w.encode("utf-8"))
        seqs[w] = list(u[:-1]) + [u[-1] + "</w>"]
    merges = []
    while True:
        pairs = collections.Counter()
        for w, s in seqs.items():
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += freq[w]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w, s in seqs.items():
            i, new = 0, []
            while i < len(s):
                if i < len(s) - 1 and (s[i], s[i + 1]) == best:
                    new.append(s[i] + s[i + 1])
                    i += 2
                else:
                    new.append(s[i])
                    i += 1
            seqs[w] = new
    return merges


def build_vocab(outdir, captions):
    words = []
    for c in list(captions) + [" ".join(EXTRA_WORDS)]:
        words.extend(pretokenize(clean_text(c)))
    merges = learn_merges(words)
    vocab = base_vocab() + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(set(vocab)) == len(vocab), "duplicate vocab entries"
    os.makedirs(outdir, exist_ok=True)
    vp, mp = os.path.join(outdir, "vocab.json"), os.path.join(outdir, "merges.txt")
    with open(vp, "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(mp, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return vp, mp, len(vocab)


if __name__ == "__main__":
    from dataset import all_combos, caption
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/invedit-vocab"
    vp, mp, n = build_vocab(out, [caption(*c) for c in all_combos()])
    from sdref.clip import CLIPTokenizer
    tok = CLIPTokenizer(vp, mp)
    for t in ["a red circle on the left on a textured blue background", "A photo of a Cat!! 12 ünïcode", ""]:
        ids = tok(t)
        print(n, t, "->", ids[:16], "| decoded:", tok.decode([i for i in ids if i != tok.eos_token_id][1:]))
