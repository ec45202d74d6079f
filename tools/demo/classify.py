"""Pixel classifier for demo-model images (numpy only, no torch): object
colour, background colour, shape and position, from the known palette and
shape templates. Shared by evaluate.py (PyTorch sampling), evaluate_c.py (the C
engine) and eval_edits.py (editing success rates)."""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dataset as ds  # noqa: E402

PAL = np.array([ds.PALETTE[c] for c in ds.COLORS], np.float32)


def classify(img):
    """img uint8 [H,W,3] -> dict(obj, bg, shape, pos, mask)"""
    H, W, _ = img.shape
    x = img.astype(np.float32)
    d = ((x[:, :, None, :] - PAL[None, None]) ** 2).sum(-1)  # [H,W,8]
    near = d.argmin(-1)
    ring = np.concatenate([x[:2].reshape(-1, 3), x[-2:].reshape(-1, 3), x[:, :2].reshape(-1, 3), x[:, -2:].reshape(-1, 3)])
    bg = int(((np.median(ring, 0)[None] - PAL) ** 2).sum(-1).argmin())
    counts = np.bincount(near.ravel(), minlength=len(PAL))
    counts[bg] = 0
    obj = int(counts.argmax())
    mask = near == obj
    res = dict(bg=ds.COLORS[bg], obj=ds.COLORS[obj], shape=None, pos=None, mask=mask)
    A = int(mask.sum())
    if A < 15:
        return res
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
    best, best_iou = None, -1.0
    r = np.sqrt(A / np.pi)
    for s in ds.SHAPES:
        t = ds.shape_mask(s, cx, cy, r, size=H, ss=2)
        ty, tx = np.nonzero(t >= 0.5)
        if len(tx) == 0:
            continue
        # re-render so the template's centroid coincides with the mask's
        t = ds.shape_mask(s, 2 * cx - (tx.mean() + 0.5), 2 * cy - (ty.mean() + 0.5), r, size=H, ss=2) >= 0.5
        iou = (t & mask).sum() / max(1, (t | mask).sum())
        if iou > best_iou:
            best, best_iou = s, iou
    res["shape"] = best
    res["iou"] = float(best_iou)
    bx, by = (xs.min() + xs.max() + 1) / 2 / W, (ys.min() + ys.max() + 1) / 2 / H
    res["pos"] = min(ds.POS_NAMES, key=lambda p: (ds.POSITIONS[p][0][0] - bx) ** 2 + (ds.POSITIONS[p][0][1] - by) ** 2)
    return res


def score(images, attrs):
    """-> dict of % correct for obj/bg/shape/pos, plus per-image predictions"""
    keys = ("obj", "bg", "shape", "pos")
    hits = {k: 0 for k in keys}
    preds = []
    for im, (o, b, s, p, _st) in zip(images, attrs):
        r = classify(im)
        truth = dict(obj=o, bg=b, shape=s, pos=p)
        for k in keys:
            hits[k] += int(r[k] == truth[k])
        preds.append({k: r[k] for k in keys})
    n = len(images)
    return {k: 100.0 * v / n for k, v in hits.items()}, preds


def heldout_prompts(n, seed):
    _, held = ds.split_combos(0)
    rng = np.random.RandomState(seed)
    idx = rng.choice(len(held), size=n, replace=n > len(held))
    return [held[i] for i in idx]
