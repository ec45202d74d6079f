#!/usr/bin/env python3
"""Writes OpenAI CLIP's BPE file (bpe_simple_vocab_16e6.txt.gz) as a Hugging Face tokenizer
folder: vocab.json ({token: id}) and merges.txt ("#version: 0.2" + one merge per line).

    clip_vocab_to_hf.py BPE_GZ OUTDIR

The vocabulary is derived as simple_tokenizer.py derives it (written from its algorithm, not
copied): the 256 bytes_to_unicode symbols in that function's order, the same with "</w>", the
first 49152-256-2 merges joined, then <|startoftext|> and <|endoftext|>. Used by the tests to
check that the vocabulary built into the library gives the same ids as a tokenizer folder.
"""
import gzip
import json
import os
import sys


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def main():
    gz, outdir = sys.argv[1], sys.argv[2]
    lines = gzip.open(gz).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    vocab = bytes_to_unicode()
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408
    os.makedirs(outdir, exist_ok=True)
    for name, text in (("vocab.json", json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False)),
                       ("merges.txt", "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")):
        tmp = os.path.join(outdir, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, os.path.join(outdir, name))


if __name__ == "__main__":
    main()
