#!/usr/bin/env python3
"""The high-resolution case of the demo (scripts/setup.sh demo) and its crops
for the README.

    fullres_demo.py scene N OUT.png
        the demo scene "a red circle on the left on a blue background" at N x N
        with what a 64-pixel render cannot carry: a fine weave (period 6 px),
        twelve thin dark strokes and grain (the recipe of tests/fullres_scene.h)
    fullres_demo.py crops INPUT OFF KEEP MASK OUT.jpg [--size 160]
        three 1:1 crops side by side around the disc's right edge: the input,
        the edit with --composite off (the model's render resized back) and
        with keep-detail (the default), plus the change mask scaled to the
        same height, as one small JPEG
"""
import math
import sys

import numpy as np
from PIL import Image

BLUE = np.array([40, 70, 215]) / 255.0
RED = np.array([215, 35, 35]) / 255.0


def scene(n):
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:n, 0:n].astype(np.float64) + 0.5
    d = np.hypot(x - 0.28 * n, y - 0.5 * n)
    cov = np.clip(0.19 * n - d + 0.5, 0, 1)[..., None]
    img = BLUE * (1 - cov) + RED * cov
    img += (0.03 * np.sin(2 * math.pi * x / 6) * np.sin(2 * math.pi * y / 6))[..., None]
    for _ in range(12):
        a, off = rng.uniform(0, math.pi), rng.uniform(-n / 2, n / 2)
        dist = np.abs((x - n / 2) * math.sin(a) - (y - n / 2) * math.cos(a) - off)
        img -= (0.12 * np.clip(1.5 - dist, 0, 1.5) / 1.5)[..., None]
    img += rng.normal(0, 0.03, img.shape)
    return Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))


def crops(paths, out, size):
    ims = [Image.open(p).convert("RGB") for p in paths[:3]]
    n = ims[0].width
    cx, cy = int(0.47 * n), int(0.42 * n)  # the disc's upper right edge: object, border and background
    box = (cx - size // 2, cy - size // 2, cx + size // 2, cy + size // 2)
    mask = Image.open(paths[3]).convert("RGB").resize((size, size), Image.BILINEAR)
    sheet = Image.new("RGB", (4 * size + 3 * 4, size), (255, 255, 255))
    for i, im in enumerate([im.crop(box) for im in ims] + [mask]):
        sheet.paste(im, (i * (size + 4), 0))
    sheet.save(out, quality=88)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "scene":
        scene(int(sys.argv[2])).save(sys.argv[3])
    elif len(sys.argv) >= 7 and sys.argv[1] == "crops":
        size = int(sys.argv[8]) if len(sys.argv) >= 9 and sys.argv[7] == "--size" else 160
        crops(sys.argv[2:6], sys.argv[6], size)
    else:
        print(__doc__)
        sys.exit(2)
