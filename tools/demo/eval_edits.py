"""Editing success rates of the three methods on the demo model, through the
C engine (`invedit edit`), judged from pixels:

  colour edit      "a red circle ..." -> "a yellow circle ...": the classified
                   object colour must be the new one;
  shape edit       circle -> square (etc.): the classified shape must be the new one;
  background edit  "on a blue background" -> "on a green background": the
                   classified background colour must be the new one.

What an edit must keep is measured as PSNR against the input (the "kept"
figures): for the colour and shape edits the background (outside the
ground-truth object mask, dilated by 2 pixels so the silhouette's edge doesn't
count; for the shape edit, outside both the old and the new shape's mask), for
the background edit the object (inside the mask, eroded by 2). The target is
a mean >= 25 dB; the share of images at >= 25 dB is printed too. Images are
held-out dataset renders, seeded.

    /usr/bin/python3 tools/demo/eval_edits.py --invedit build/cli/invedit --model models/demo \
        [--methods ef-ddpm,bdia,infedit] [--n 20] [--device cpu] [--json out.json] [--check]

--check (the test suite's semantic test) exits 1 unless every method meets
CHECKS below: the colour edit succeeds on >= 80% of the images, the shape and
background edits on >= 70%, and each edit keeps a mean PSNR >= 25 dB.
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
    # the authors' cfg_tar 15 is tuned for SD at 512x512; the demo model's small UNet
    # over-saturates at it and repaints the background (colour edits: 20.7 dB kept
    # at 15, 28.1 dB at 5, same success rate)
    "ef-ddpm": ["--cfg-target", "5"],
    # likewise BDIA's cfg 3: at 3 a background edit repaints the object too (object
    # kept 22.1 dB mean); at 2 it keeps 29.9 dB and every edit succeeds as often
    "bdia": ["--cfg-source", "2", "--cfg-target", "2"],
    "infedit": [],
}


# --check: (kind, minimum success %, minimum mean kept PSNR dB)
CHECKS = [("colour", 80.0, 25.0), ("shape", 70.0, 25.0), ("background", 70.0, 25.0)]
# Targets a method is known to miss on the demo model (method, kind, "kept" or
# "success"): printed, not failed. None at present.
KNOWN_GAPS = set()


def check(results):
    """-> list of failed requirements (empty: all hold)."""
    bad = []
    for method, summary in results.items():
        for kind, min_ok, min_psnr in CHECKS:
            r = summary.get(kind)
            if not r or not r["n"]:
                continue
            if r["success"] < min_ok:
                bad.append(f"{method} {kind}: success {r['success']:.0f}% < {min_ok:.0f}%")
            if r.get("kept_psnr_mean", 99.0) < min_psnr:
                msg = f"{method} {kind}: kept PSNR {r['kept_psnr_mean']:.1f} dB < {min_psnr:.0f} dB"
                if (method, kind, "kept") in KNOWN_GAPS:
                    print("known gap (not failed):", msg)
                else:
                    bad.append(msg)
    return bad


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
           "--seed", str(idx), "-o", out] + METHOD_ARGS[method] + a.extra
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
    ap.add_argument("--kinds", default="colour,shape,background", help="which edits to run")
    ap.add_argument("--args", default="", help="extra `invedit edit` options for every method")
    ap.add_argument("--check", action="store_true", help="exit 1 unless the CHECKS hold")
    a = ap.parse_args()
    a.extra = a.args.split()
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
                inside = ~dilate(~mask, 2)  # the object, eroded: what a background edit keeps
                row = [img]
                for kind, new in edits_for(attr, np.random.RandomState(i)):
                    if kind not in a.kinds.split(","):
                        continue
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
                    # the part the edit must keep: the background, or the object for a background edit
                    keep = outside
                    if kind == "background":
                        keep = inside
                    elif kind == "shape":  # neither the old nor the new silhouette (same centre and size)
                        _, new_mask = ds.render(*new, rng=np.random.RandomState(a.seed * 1000 + i))
                        keep = ~dilate(mask | new_mask, 2)
                    s["psnr"].append(psnr(img, res, keep))
                    row.append(res)
                grid.append(np.concatenate(row, 1))
            el = time.time() - t0
            summary = {}
            for kind, s in stats.items():
                summary[kind] = dict(success=100.0 * s["ok"] / max(1, s["n"]), n=s["n"])
                if s["psnr"]:
                    p = np.array(s["psnr"])
                    summary[kind].update(kept_psnr_mean=float(p.mean()), kept_psnr_min=float(p.min()),
                                         kept_psnr_ge25=100.0 * float((p >= 25).mean()))
            summary["seconds"] = el
            results[method] = summary
            print(method, json.dumps(summary))
            if a.save:
                os.makedirs(a.save, exist_ok=True)
                Image.fromarray(np.concatenate(grid, 0)).resize((4 * 64 * 2, len(grid) * 64 * 2), Image.NEAREST).save(
                    os.path.join(a.save, f"edits-{method}.png"))
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)
    if a.check:
        bad = check(results)
        for b in bad:
            print("FAILED:", b)
        if bad:
            sys.exit(1)
        print(f"all edits meet the targets ({len(attrs)} images per method)")


if __name__ == "__main__":
    main()
