"""Procedural, seeded "shapes" dataset for the invedit demo model.

Each image (default 64x64) holds ONE large flat-coloured object (circle / square / triangle) in one of 8
colours at one of 5 positions, on a plain / gradient / low-frequency-textured background of another
palette colour. Caption: "a red circle on the left on a blue gradient background".
Ground-truth object masks are returned alongside the images.

Held-out split: a fixed, seeded subset of attribute combinations (object colour, background colour,
shape, position, style) never appears in training; evaluation prompts come from it.

    python3 tools/demo/dataset.py --preview /tmp/ds_preview.png     # writes a grid of samples
"""
import itertools
import math

import numpy as np

SIZE = 64
PALETTE = {  # mutually distant RGB values (min pairwise distance ~100)
    "red": (215, 35, 35),
    "green": (35, 165, 60),
    "blue": (40, 70, 215),
    "yellow": (240, 215, 40),
    "orange": (240, 135, 25),
    "purple": (135, 50, 175),
    "white": (240, 240, 240),
    "black": (25, 25, 25),
}
COLORS = list(PALETTE)
SHAPES = ["circle", "square", "triangle"]
# position name -> (centre x, centre y) as a fraction of the image size; caption phrase
POSITIONS = {
    "left": ((0.28, 0.5), "on the left"),
    "right": ((0.72, 0.5), "on the right"),
    "top": ((0.5, 0.28), "at the top"),
    "bottom": ((0.5, 0.72), "at the bottom"),
    "center": ((0.5, 0.5), "in the center"),
}
POS_NAMES = list(POSITIONS)
STYLES = ["plain", "gradient", "textured"]
SS = 4  # supersampling factor for anti-aliased edges


def caption(obj, bg, shape, pos, style):
    bgp = {"plain": f"{bg} background", "gradient": f"{bg} gradient background",
           "textured": f"textured {bg} background"}[style]
    art = lambda w: "an" if w[0] in "aeiou" else "a"
    return f"{art(obj)} {obj} {shape} {POSITIONS[pos][1]} on {art(bgp)} {bgp}"


def all_combos():
    return [(o, b, s, p, st) for o, b, s, p, st in itertools.product(COLORS, COLORS, SHAPES, POS_NAMES, STYLES)
            if o != b]


def split_combos(seed=0, heldout_frac=0.05):
    """-> (train_combos, heldout_combos), deterministic from seed."""
    c = all_combos()
    rng = np.random.RandomState(seed + 12345)
    idx = rng.permutation(len(c))
    nh = int(round(len(c) * heldout_frac))
    held = sorted(idx[:nh].tolist())
    train = sorted(idx[nh:].tolist())
    return [c[i] for i in train], [c[i] for i in held]


def shape_mask(shape, cx, cy, r, size=SIZE, ss=SS):
    """Anti-aliased coverage in [0,1] ([size,size] float32) of a shape with 'radius' r centred at (cx,cy)
    (pixel units, pixel centres at i+0.5). Areas: circle pi r^2, square (1.77 r)^2, triangle ~same."""
    n = size * ss
    g = (np.arange(n, dtype=np.float32) + 0.5) / ss
    X, Y = np.meshgrid(g, g)
    dx, dy = X - cx, Y - cy
    if shape == "circle":
        m = dx * dx + dy * dy <= r * r
    elif shape == "square":
        h = r * math.sqrt(math.pi) / 2  # same area as the circle
        m = (np.abs(dx) <= h) & (np.abs(dy) <= h)
    elif shape == "triangle":
        # equilateral, apex up (dy=-R), base at dy=R/2 relative to the centroid, same area as the circle
        a = math.sqrt(4 * math.pi * r * r / math.sqrt(3))  # side length
        R = a / math.sqrt(3)  # circumradius
        dy = dy - R / 4  # centre the bounding box (not the centroid) on (cx, cy)
        m = (dy <= R / 2) & (dy >= -R) & (np.abs(dx) <= (dy + R) / math.sqrt(3))
    else:
        raise ValueError(shape)
    return m.reshape(size, ss, size, ss).mean(axis=(1, 3)).astype(np.float32)


def _smooth_noise(rng, size, grid):
    """Low-frequency noise: grid x grid N(0,1) values, bicubic-ish (separable cosine) upsampled to size."""
    v = rng.randn(grid + 1, grid + 1).astype(np.float32)
    t = (np.arange(size, dtype=np.float32) + 0.5) / size * grid
    i0 = np.floor(t).astype(int)
    f = t - i0
    f = (1 - np.cos(f * np.pi)) / 2  # smooth interpolation weights
    rows = v[i0] * (1 - f)[:, None] + v[i0 + 1] * f[:, None]          # [size, grid+1]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]  # [size, size]


def background(bg, style, rng, size=SIZE):
    base = np.array(PALETTE[bg], np.float32)[None, None, :]
    img = np.repeat(np.repeat(base, size, 0), size, 1)
    if style == "gradient":
        ang = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(20, 32)  # +- brightness (0..255 units) across the image
        g = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
        X, Y = np.meshgrid(g, g)
        lin = (X * np.cos(ang) + Y * np.sin(ang)) * 2 * amp
        img = img + lin[:, :, None]
    elif style == "textured":
        n = _smooth_noise(rng, size, grid=rng.randint(3, 6))
        n = n / (np.abs(n).max() + 1e-6)
        img = img + rng.uniform(18, 26) * n[:, :, None]
    return img


def render(obj, bg, shape, pos, style, rng, size=SIZE):
    """-> (uint8 [size,size,3], bool mask [size,size])"""
    (fx, fy), _ = POSITIONS[pos]
    r = rng.uniform(0.17, 0.21) * size
    cx = fx * size + rng.uniform(-0.03, 0.03) * size
    cy = fy * size + rng.uniform(-0.03, 0.03) * size
    cov = shape_mask(shape, cx, cy, r, size)
    img = background(bg, style, rng, size)
    col = np.array(PALETTE[obj], np.float32)[None, None, :]
    img = img * (1 - cov[:, :, None]) + col * cov[:, :, None]
    return np.clip(np.round(img), 0, 255).astype(np.uint8), cov >= 0.5


def generate(n, seed, combos, size=SIZE, with_masks=False):
    """n images drawn uniformly from combos (cycled in a seeded random order).
    -> dict(images uint8 [n,H,W,3], captions list, attrs list of tuples[, masks bool [n,H,W]])"""
    rng = np.random.RandomState(seed)
    order = np.concatenate([rng.permutation(len(combos)) for _ in range(n // len(combos) + 1)])[:n]
    imgs = np.zeros((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size), bool) if with_masks else None
    caps, attrs = [], []
    for k, ci in enumerate(order):
        c = combos[ci]
        im, m = render(*c, rng=rng, size=size)
        imgs[k] = im
        if with_masks:
            masks[k] = m
        caps.append(caption(*c))
        attrs.append(c)
    out = dict(images=imgs, captions=caps, attrs=attrs)
    if with_masks:
        out["masks"] = masks
    return out


def corpus_words():
    """All words used by captions (for the BPE vocabulary)."""
    words = set()
    for c in all_combos():
        words.update(caption(*c).split())
    return sorted(words)


def save_grid(images, path, ncol=10, scale=2):
    """images uint8 [N,H,W,3] -> PNG grid (PIL)."""
    from PIL import Image
    n, h, w, _ = images.shape
    nrow = (n + ncol - 1) // ncol
    grid = np.full((nrow * (h + 2), ncol * (w + 2), 3), 128, np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = images[i]
    Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(path)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--preview", default="/tmp/ds_preview.png")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    tr, he = split_combos(a.seed)
    d = generate(40, a.seed, tr)
    save_grid(d["images"], a.preview)
    print(len(tr), "train combos,", len(he), "held-out combos")
    for c in d["captions"][:10]:
        print(c)
