"""Editing success rates of the three methods on the demo model, through the
C engine (`invedit edit`), judged from pixels:

  colour edit      "a red circle ..." -> "a yellow circle ...": the classified
                   object colour must be the new one;
  shape edit       circle -> square (etc.): the classified shape must change;
  background edit  "on a blue background" -> "on a green background": the
                   classified background colour must be the new one.

For the colour and shape edits the background (outside the ground-truth
object mask, dilated by 2 pixels so the silhouette's edge doesn't count) must
keep PSNR >= 25 dB against the input. Images are held-out dataset renders,
seeded.

    /usr/bin/python3 tools/demo/eval_edits.py --invedit build/cli/invedit --model models/demo \
        [--methods ef-ddpm,bdia,infedit] [--n 20] [--device cpu] [--json out.json]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dataset as ds  # noqa: E402
from classify import classify, heldout_prompts  # noqa: E402

# per-method options on top of the library defaults (documented in the README)
METHOD_ARGS = {
    "ef-ddpm": [],
    "bdia": [],
    "infedit": [],
}


def dilate(mask, r):
    out = mask.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


def psnr(a, b, where):
    d = (a.astype(np.float64) - b.astype(np.float64))[where] / 255.0
    mse = (d ** 2).mean() if d.size else 0.0
    return 99.0 if mse == 0 else 10 * np.log10(1.0 / mse)


def edits_for(attr, rng):
    """-> [(kind, new attr tuple)] for one image."""
    obj, bg, shape, pos, style = attr
    colours = [c for c in ds.COLORS if c not in (obj, bg)]
    shapes = [s for s in ds.SHAPES if s != shape]
    bgs = [c for c in ds.COLORS if c not in (obj, bg)]
    return [("colour", (colours[rng.randint(len(colours))], bg, shape, pos, style)),
            ("shape", (obj, bg, shapes[rng.randint(len(shapes))], pos, style)),
            ("background", (obj, bgs[rng.randint(len(bgs))], shape, pos, style))]


def changed_word(a, b):
    """The word of caption b that differs from caption a (for InfEdit's blend)."""
    wa, wb = ds.caption(*a).split(), ds.caption(*b).split()
    diff = [y for x, y in zip(wa, wb) if x != y]
    return " ".join(diff)


def run_edit(a, method, src_img, src_attr, tgt_attr, tmp, idx):
    inp = os.path.join(tmp, f"in{idx}.png")
    out = os.path.join(tmp, f"out{idx}.png")
    Image.fromarray(src_img).save(inp)
    cmd = [a.invedit, "edit", "--model", a.model, "--device", a.device, "--method", method, "-q",
           "--image", inp, "--source", ds.caption(*src_attr), "--target", ds.caption(*tgt_attr),
           "--seed", str(idx), "-o", out] + METHOD_ARGS[method]
    if method == "infedit":
        cmd += ["--blend-words", changed_word(src_attr, tgt_attr)]
    subprocess.run(cmd, check=True)
    return np.asarray(Image.open(out).convert("RGB"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--invedit", default="build/cli/invedit")
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", default="ef-ddpm,bdia,infedit")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--save", default=None, help="folder for a grid per method (input | edits)")
    a = ap.parse_args()
    attrs = heldout_prompts(a.n, a.seed)
    rng = np.random.RandomState(a.seed)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in a.methods.split(","):
            t0 = time.time()
            stats = {k: dict(ok=0, n=0, psnr=[]) for k in ("colour", "shape", "background")}
            grid = []
            for i, attr in enumerate(attrs):
                img, mask = ds.render(*attr, rng=np.random.RandomState(a.seed * 1000 + i))
                outside = ~dilate(mask, 2)
                row = [img]
                for kind, new in edits_for(attr, np.random.RandomState(i)):
                    res = run_edit(a, method, img, attr, new, tmp, i)
                    c = classify(res)
                    s = stats[kind]
                    s["n"] += 1
                    if kind == "colour":
                        s["ok"] += c["obj"] == new[0]
                    elif kind == "shape":
                        s["ok"] += c["shape"] == new[2]
                    else:
                        s["ok"] += c["bg"] == new[1]
                    if kind != "background":
                        s["psnr"].append(psnr(img, res, outside))
                    row.append(res)
                grid.append(np.concatenate(row, 1))
            el = time.time() - t0
            summary = {}
            for kind, s in stats.items():
                summary[kind] = dict(success=100.0 * s["ok"] / max(1, s["n"]), n=s["n"])
                if s["psnr"]:
                    p = np.array(s["psnr"])
                    summary[kind].update(bg_psnr_mean=float(p.mean()), bg_psnr_min=float(p.min()),
                                         bg_psnr_ge25=100.0 * float((p >= 25).mean()))
            summary["seconds"] = el
            results[method] = summary
            print(method, json.dumps(summary))
            if a.save:
                os.makedirs(a.save, exist_ok=True)
                Image.fromarray(np.concatenate(grid, 0)).resize((4 * 64 * 2, len(grid) * 64 * 2), Image.NEAREST).save(
                    os.path.join(a.save, f"edits-{method}.png"))
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
