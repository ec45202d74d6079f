"""Evaluate the demo model: a pixel classifier for object colour / background colour / shape / position,
checked first on real dataset images, then applied to DDIM samples of held-out captions.

    /usr/bin/python3 tools/demo/evaluate.py --model models/demo --n 100 --grid /tmp/demo_samples.png

Classifier: background colour = nearest palette colour of the median border pixel; every pixel gets its
nearest palette colour; object colour = most frequent non-background colour; object mask = pixels
nearest to the object colour; shape = best IoU against circle/square/triangle templates of the same
area and centroid; position = nearest of the 5 nominal positions to the mask's bounding-box centre.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import dataset as ds  # noqa: E402

from classify import PAL, classify, heldout_prompts, score  # noqa: E402,F401  (numpy-only classifier)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--grid", default="/tmp/demo_samples.png")
    ap.add_argument("--real-only", action="store_true")
    ap.add_argument("--json", default=None, help="write the metrics here")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    # 1. classifier on real held-out images
    attrs = heldout_prompts(500, a.seed + 1)
    rng = np.random.RandomState(a.seed + 2)
    real = np.stack([ds.render(*c, rng=rng)[0] for c in attrs])
    acc_real, _ = score(real, attrs)
    print("classifier on 500 real held-out images (%):", json.dumps(acc_real))
    out = dict(classifier_real=acc_real)
    if not a.real_only:
        sys.path.insert(0, os.path.join(HERE, ".."))
        from sdref import load_diffusers, ddim_sample
        t0 = time.time()
        pipe = load_diffusers(a.model)
        attrs = heldout_prompts(a.n, a.seed)
        prompts = [ds.caption(*c) for c in attrs]
        imgs = []
        for i in range(0, a.n, a.batch):
            x = ddim_sample(pipe, prompts[i:i + a.batch], steps=a.steps, guidance=a.cfg, seed=a.seed * 1000 + i)
            imgs.append((x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
        imgs = np.concatenate(imgs)
        acc, preds = score(imgs, attrs)
        el = time.time() - t0
        print(f"generation ({a.n} held-out captions, DDIM {a.steps}, CFG {a.cfg}, {el:.0f}s) (%):", json.dumps(acc))
        for p, pr in list(zip(prompts, preds))[:12]:
            print("  ", p, "->", pr)
        ds.save_grid(imgs[:100], a.grid, ncol=10, scale=2)
        print("grid:", a.grid)
        out.update(generation=acc, n=a.n, steps=a.steps, cfg=a.cfg, seconds=el)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
