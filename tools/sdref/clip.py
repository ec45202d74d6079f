"""CLIP text encoder (transformers CLIPTextModel names) and CLIP BPE tokenizer, pure PyTorch/Python.

CLIPTextModel(config)(input_ids [B,77] long) -> last_hidden_state [B,77,D] (after final_layer_norm).
CLIPTokenizer(vocab_json_path, merges_txt_path)(text) -> list of 77 ids: [BOS] + bpe[:75] + [EOS] + EOS pad.
"""
import html
import json
import math
import unicodedata
from functools import lru_cache

import torch
import torch.nn as nn
import torch.nn.functional as F

CLIP_DEFAULTS = dict(
    architectures=["CLIPTextModel"], model_type="clip_text_model",
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
    max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768,
    attention_dropout=0.0, dropout=0.0, initializer_range=0.02, initializer_factor=1.0,
    bos_token_id=0, eos_token_id=2, pad_token_id=1, torch_dtype="float32",
)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


class CLIPAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.q_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x, mask):
        B, N, D = x.shape
        sh = lambda t: t.view(B, N, self.heads, self.head_dim).transpose(1, 2)
        q, k, v = sh(self.q_proj(x)), sh(self.k_proj(x)), sh(self.v_proj(x))
        s = torch.matmul(q, k.transpose(-1, -2)) * (self.head_dim ** -0.5) + mask
        o = torch.matmul(s.softmax(dim=-1), v).transpose(1, 2).reshape(B, N, D)
        return self.out_proj(o)


class CLIPMLP(nn.Module):
    def __init__(self, d, inter, act):
        super().__init__()
        assert act in ("quick_gelu", "gelu")
        self.act = quick_gelu if act == "quick_gelu" else F.gelu
        self.fc1 = nn.Linear(d, inter)
        self.fc2 = nn.Linear(inter, d)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class CLIPEncoderLayer(nn.Module):
    """pre-LN: x += self_attn(layer_norm1(x)); x += mlp(layer_norm2(x))"""

    def __init__(self, cfg):
        super().__init__()
        d, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.self_attn = CLIPAttention(d, cfg["num_attention_heads"])
        self.layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.mlp = CLIPMLP(d, cfg["intermediate_size"], cfg["hidden_act"])
        self.layer_norm2 = nn.LayerNorm(d, eps=eps)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        x = x + self.mlp(self.layer_norm2(x))
        return x


class _Embeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.position_embedding = nn.Embedding(cfg["max_position_embeddings"], cfg["hidden_size"])


class _Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])


class _TextTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = _Embeddings(cfg)
        self.encoder = _Encoder(cfg)
        self.final_layer_norm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])


class CLIPTextModel(nn.Module):
    """Tensor names text_model.embeddings.{token,position}_embedding.weight, text_model.encoder.layers.N.*,
    text_model.final_layer_norm.*. forward(ids) -> last_hidden_state (after final LN).
    clip_skip=N (A1111 convention, N>=2) returns hidden state -N, still passed through final_layer_norm."""

    def __init__(self, config=None, **kw):
        super().__init__()
        cfg = dict(CLIP_DEFAULTS)
        cfg.update(config or {})
        cfg.update(kw)
        self.config = cfg
        self.text_model = _TextTransformer(cfg)

    def forward(self, input_ids, clip_skip=1):
        tm = self.text_model
        B, N = input_ids.shape
        pos = torch.arange(N, device=input_ids.device)
        x = tm.embeddings.token_embedding(input_ids) + tm.embeddings.position_embedding(pos)[None]
        mask = torch.full((N, N), float("-inf"), device=x.device, dtype=x.dtype).triu(1)[None, None]
        layers = tm.encoder.layers
        nrun = len(layers) - (clip_skip - 1)
        for layer in layers[:nrun]:
            x = layer(x, mask)
        return tm.final_layer_norm(x)


# ---------------------------------------------------------------- tokenizer

@lru_cache()
def bytes_to_unicode():
    """GPT-2 / CLIP reversible byte -> unicode char map (same order as CLIP's simple_tokenizer)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def base_vocab():
    """First 512 vocab entries: 256 byte symbols, then the same + '</w>'."""
    v = list(bytes_to_unicode().values())
    return v + [s + "</w>" for s in v]


def clean_text(text):
    """CLIP basic_clean (minus ftfy) + whitespace_clean + lower()."""
    text = html.unescape(html.unescape(text)).strip()
    text = " ".join(text.split())
    return text.lower()


SPECIALS = ("<|startoftext|>", "<|endoftext|>")
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def _is_letter(c):
    return unicodedata.category(c).startswith("L")


def _is_number(c):
    return unicodedata.category(c).startswith("N")


def pretokenize(text):
    """Exact equivalent of CLIP's regex (applied to cleaned, lower-cased text):
    <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+
    (findall semantics: characters matched by no alternative, i.e. whitespace, are skipped)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        m = next((s for s in SPECIALS + CONTRACTIONS if text.startswith(s, i)), None)
        if m is not None:
            out.append(m)
            i += len(m)
        elif _is_letter(c):
            j = i + 1
            while j < n and _is_letter(text[j]):
                j += 1
            out.append(text[i:j])
            i = j
        elif _is_number(c):
            out.append(c)
            i += 1
        elif not c.isspace():
            j = i + 1
            while j < n and not (text[j].isspace() or _is_letter(text[j]) or _is_number(text[j])):
                j += 1
            out.append(text[i:j])
            i = j
        else:
            i += 1
    return out


def bpe_word(word, ranks):
    """Byte-level BPE of one pre-token (already mapped to byte-unicode chars). Returns list of symbols."""
    sym = list(word[:-1]) + [word[-1] + "</w>"]
    while len(sym) > 1:
        best, best_rank = None, None
        for a, b in zip(sym, sym[1:]):
            r = ranks.get((a, b))
            if r is not None and (best_rank is None or r < best_rank):
                best, best_rank = (a, b), r
        if best is None:
            break
        new, i = [], 0
        while i < len(sym):
            if i < len(sym) - 1 and (sym[i], sym[i + 1]) == best:
                new.append(sym[i] + sym[i + 1])
                i += 2
            else:
                new.append(sym[i])
                i += 1
        sym = new
    return sym


class CLIPTokenizer:
    """CLIP BPE tokenizer. tok(text) -> 77 ids (BOS, tokens[:75], EOS, EOS-padded).
    tok.encode(text) -> raw BPE ids without BOS/EOS. tok.bos_token_id / eos_token_id / pad_token_id."""

    def __init__(self, vocab_file, merges_file, model_max_length=77, pad_with_eos=True):
        with open(vocab_file, encoding="utf-8") as f:
            self.encoder = json.load(f)
        self.decoder = {v: k for k, v in self.encoder.items()}
        with open(merges_file, encoding="utf-8") as f:
            lines = f.read().split("\n")
        merges = [tuple(l.split()) for l in lines[1:] if l.strip()]  # first line is "#version: ..."
        self.bpe_ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.max_length = model_max_length
        self.bos_token_id = self.encoder[SPECIALS[0]]
        self.eos_token_id = self.encoder[SPECIALS[1]]
        self.pad_token_id = self.eos_token_id if pad_with_eos else 0
        self._cache = {}

    @classmethod
    def from_folder(cls, folder):
        import os
        cfg = {}
        p = os.path.join(folder, "tokenizer_config.json")
        if os.path.exists(p):
            with open(p) as f:
                cfg = json.load(f)
        return cls(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"),
                   cfg.get("model_max_length", 77))

    def tokenize(self, text):
        """-> list of BPE token strings"""
        toks = []
        for w in pretokenize(clean_text(text)):
            if w in SPECIALS:
                toks.append(w)
                continue
            if w not in self._cache:
                u = "".join(self.byte_encoder[b] for b in w.encode("utf-8"))
                self._cache[w] = bpe_word(u, self.bpe_ranks)
            toks.extend(self._cache[w])
        return toks

    def encode(self, text):
        return [self.encoder[t] for t in self.tokenize(text)]

    def __call__(self, text, max_length=None):
        n = max_length or self.max_length
        ids = [self.bos_token_id] + self.encode(text)[: n - 2] + [self.eos_token_id]
        return ids + [self.pad_token_id] * (n - len(ids))

    def batch(self, texts):
        return torch.tensor([self(t) for t in texts], dtype=torch.long)

    def decode(self, ids):
        s = "".join(self.decoder[i] for i in ids)
        b = bytearray(self.byte_decoder[c] for c in s if c in self.byte_decoder)  # specials' chars are ASCII
        return b.decode("utf-8", errors="replace").replace("</w>", " ")

    def token_text(self, i):
        """Text of one token, '</w>' stripped (used by get_word_inds-style word/token alignment)."""
        s = self.decoder[i].replace("</w>", "")
        return bytearray(self.byte_decoder[c] for c in s if c in self.byte_decoder).decode("utf-8", errors="replace")
