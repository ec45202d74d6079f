"""Editing a selection with prompts written for the whole image, on the demo
set: the context the model sees (ie_edit_context) and the selection's
compositing, through `invedit edit --mask` (the same library calls as the
GIMP plug-ins).

For each of the held-out images of eval_edits.py (colour edits, "a red circle
on the left ..." -> "a yellow circle on the left ...", whole-image prompts),
upscaled to --size pixels (bicubic), a feathered elliptical selection around
the object (its bounding box grown by --grow of its side each way, Gaussian
feather of sd --feather of the image side) is edited three ways:

  whole     no selection: the whole image (the reference)
  selection --mask: the library's context and compositing
  old       what the plug-ins did before: the selection's bounds + 1/8
            padding as the context, the model's render resized back
            (--composite off), composited through the raw feathered mask

and judged by the demo classifier (the result downscaled to 64 x 64):
success = the object's classified colour is the new one; and the share of
old-colour pixels left inside the selection: pixels inside the selection's
0.5 contour and the object's mask whose colour is nearer the old colour than
the new one.

    /usr/bin/python3 tools/demo/eval_selection.py --invedit build/cli/invedit --model models/demo \
        [--methods infedit,ef-ddpm,bdia] [--n 20] [--size 512]

--scene: instead, the issue's case: the 1024x1024 textured scene of the demo's
full-resolution case (fullres_demo.py scene), a feathered ellipse around the
red disc (radius 1.25 r, Gaussian feather sd 24 px), red -> yellow; prints the
share of old-colour pixels inside the selection for --mask and the old way.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageFilter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dataset as ds  # noqa: E402
from classify import classify, heldout_prompts  # noqa: E402
from eval_edits import METHOD_ARGS, changed_word  # noqa: E402


def selection(mask64, size, grow, feather):
    ys, xs = np.nonzero(mask64)
    s = size / mask64.shape[0]
    x0, x1, y0, y1 = xs.min() * s, (xs.max() + 1) * s, ys.min() * s, (ys.max() + 1) * s
    gx, gy = grow * (x1 - x0), grow * (y1 - y0)
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 + gx, (y1 - y0) / 2 + gy
    y, x = np.mgrid[0:size, 0:size] + 0.5
    hard = (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1).astype(np.uint8) * 255
    sel = Image.fromarray(hard).filter(ImageFilter.GaussianBlur(feather * size))
    return np.asarray(sel).astype(np.float64) / 255.0


def run(a, method, inp, out, src, tgt, seed, extra):
    cmd = [a.invedit, "edit", "--model", a.model, "--device", "cpu", "--method", method, "-q", "--image", inp,
           "--source", ds.caption(*src), "--target", ds.caption(*tgt), "--seed", str(seed), "-o", out]
    cmd += METHOD_ARGS[method] + extra
    if method == "infedit":
        cmd += ["--blend-words", changed_word(src, tgt)]
    subprocess.run(cmd, check=True)
    return np.asarray(Image.open(out).convert("RGB")).astype(np.float64)


def old_way(a, method, big, sel, src, tgt, seed, tmp):
    """The plug-ins before: selection bounds + 1/8 padding (>= 16), render resized back, raw feather."""
    ys, xs = np.nonzero(sel > 0)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    pad = max(16, max(x1 - x0, y1 - y0) // 8)
    n = big.shape[0]
    cx0, cy0, cx1, cy1 = max(0, x0 - pad), max(0, y0 - pad), min(n, x1 + pad), min(n, y1 + pad)
    crop = os.path.join(tmp, "crop.png")
    Image.fromarray(big[cy0:cy1, cx0:cx1].astype(np.uint8)).save(crop)
    res = run(a, method, crop, os.path.join(tmp, "crop-out.png"), src, tgt, seed, ["--composite", "off"])
    out = big.copy()
    m = sel[cy0:cy1, cx0:cx1, None]
    out[cy0:cy1, cx0:cx1] = big[cy0:cy1, cx0:cx1] + m * (res - big[cy0:cy1, cx0:cx1])
    return np.round(out)


def scene_case(a, tmp):
    import fullres_demo
    n = 1024
    big = np.asarray(fullres_demo.scene(n)).astype(np.float64)
    inp = os.path.join(tmp, "scene.png")
    Image.fromarray(big.astype(np.uint8)).save(inp)
    y, x = np.mgrid[0:n, 0:n] + 0.5
    d = np.hypot(x - 0.28 * n, y - 0.5 * n)
    hard = Image.fromarray(((d <= 0.19 * n * 1.25) * 255).astype(np.uint8))
    sel = np.asarray(hard.filter(ImageFilter.GaussianBlur(24))).astype(np.float64) / 255.0
    mpath = os.path.join(tmp, "mask.png")
    Image.fromarray(np.round(sel * 255).astype(np.uint8)).convert("RGB").save(mpath)
    src = ("red", "blue", "circle", "left", "plain")
    tgt = ("yellow", "blue", "circle", "left", "plain")
    inside = (sel >= 0.5) & (d < 0.19 * n)
    pal = {k: np.array(v, np.float64) for k, v in ds.PALETTE.items()}
    for method in a.methods.split(","):
        res = {"--mask": run(a, method, inp, os.path.join(tmp, "s.png"), src, tgt, 1, ["--mask", mpath]),
               "old plug-in": old_way(a, method, big, sel, src, tgt, 1, tmp)}
        for k, r in res.items():
            px = r[inside]
            share = (((px - pal["red"]) ** 2).sum(-1) < ((px - pal["yellow"]) ** 2).sum(-1)).mean()
            outside = (np.abs(r - big).max(-1)[sel == 0] == 0).mean()
            print(f"{method} {k}: old-colour pixels inside the selection {100 * share:.1f}%, mean colour "
                  f"{np.round(px.mean(0)).astype(int).tolist()}, outside the selection identical {100 * outside:.1f}%",
                  flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--invedit", default="build/cli/invedit")
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--methods", default="infedit,ef-ddpm,bdia")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--grow", type=float, default=0.2, help="selection margin, fraction of the object's side")
    ap.add_argument("--feather", type=float, default=0.03, help="feather sd, fraction of the image side")
    ap.add_argument("--scene", action="store_true", help="the 1024x1024 textured scene case instead")
    a = ap.parse_args()
    if a.scene:
        with tempfile.TemporaryDirectory() as tmp:
            scene_case(a, tmp)
        return
    attrs = heldout_prompts(a.n, a.seed)
    pal = {k: np.array(v, np.float64) for k, v in ds.PALETTE.items()}
    with tempfile.TemporaryDirectory() as tmp:
        for method in a.methods.split(","):
            ok = {"whole": 0, "selection": 0, "old": 0}
            old_share = {"whole": [], "selection": [], "old": []}
            for i, attr in enumerate(attrs):
                img, mask = ds.render(*attr, rng=np.random.RandomState(a.seed * 1000 + i))
                new = None
                for j, colour in enumerate(c for c in ds.COLORS if c not in (attr[0], attr[1])):
                    if j == np.random.RandomState(i).randint(6):
                        new = (colour,) + tuple(attr[1:])
                big = np.asarray(Image.fromarray(img).resize((a.size, a.size), Image.BICUBIC)).astype(np.float64)
                inp = os.path.join(tmp, "in.png")
                Image.fromarray(big.astype(np.uint8)).save(inp)
                sel = selection(mask, a.size, a.grow, a.feather)
                mpath = os.path.join(tmp, "mask.png")
                Image.fromarray(np.round(sel * 255).astype(np.uint8)).convert("RGB").save(mpath)
                obj = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((a.size, a.size))) > 127
                inside = (sel >= 0.5) & obj
                results = {
                    "whole": run(a, method, inp, os.path.join(tmp, "w.png"), attr, new, i, []),
                    "selection": run(a, method, inp, os.path.join(tmp, "s.png"), attr, new, i, ["--mask", mpath]),
                    "old": old_way(a, method, big, sel, attr, new, i, tmp),
                }
                for k, res in results.items():
                    small = np.asarray(Image.fromarray(res.astype(np.uint8)).resize((64, 64), Image.BICUBIC))
                    ok[k] += classify(small)["obj"] == new[0]
                    px = res[inside]
                    d_old = ((px - pal[attr[0]]) ** 2).sum(-1)
                    d_new = ((px - pal[new[0]]) ** 2).sum(-1)
                    old_share[k].append(float((d_old < d_new).mean()) if px.size else 0.0)
            n = len(attrs)
            print(f"{method}: success whole {100 * ok['whole'] / n:.0f}%, selection {100 * ok['selection'] / n:.0f}%, "
                  f"old plug-in {100 * ok['old'] / n:.0f}%; old-colour pixels inside the selection: "
                  f"whole {100 * np.mean(old_share['whole']):.1f}%, selection {100 * np.mean(old_share['selection']):.1f}%, "
                  f"old plug-in {100 * np.mean(old_share['old']):.1f}%", flush=True)


if __name__ == "__main__":
    main()
