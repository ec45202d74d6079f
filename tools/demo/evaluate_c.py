"""The demo model's quality through the C engine: the same held-out captions,
sampler (DDIM 50 steps, CFG 5, eta 0) and pixel classifier as evaluate.py,
but the images come from `invedit generate`.

    /usr/bin/python3 tools/demo/evaluate_c.py --invedit build/cli/invedit --model models/demo \
        [--device cpu|vulkan] [--n 100] [--compare metrics.json]

Prints the % correct for object colour / background colour / shape / position
and, with --compare (evaluate.py --json output), the difference in points.
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
from classify import heldout_prompts, score  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--invedit", default="build/cli/invedit")
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare", default=None, help="evaluate.py --json output to compare with")
    ap.add_argument("--json", default=None)
    ap.add_argument("--grid", default=None)
    a = ap.parse_args()
    attrs = heldout_prompts(a.n, a.seed)
    prompts = [ds.caption(*c) for c in attrs]
    with tempfile.TemporaryDirectory() as tmp:
        pfile = os.path.join(tmp, "prompts.txt")
        with open(pfile, "w") as f:
            f.write("\n".join(prompts) + "\n")
        t0 = time.time()
        cmd = [a.invedit, "generate", "--model", a.model, "--device", a.device, "--prompts", pfile,
               "--steps", str(a.steps), "--cfg-target", str(a.cfg), "--seed", str(a.seed * 1000), "-q", "-o", tmp]
        subprocess.run(cmd, check=True)
        el = time.time() - t0
        imgs = np.stack([np.asarray(Image.open(os.path.join(tmp, "%04d.png" % i)).convert("RGB"))
                         for i in range(a.n)])
    acc, _ = score(imgs, attrs)
    print(f"C engine ({a.device}), {a.n} held-out captions, DDIM {a.steps}, CFG {a.cfg}, {el:.0f}s (%):",
          json.dumps(acc))
    out = dict(generation_c=acc, device=a.device, n=a.n, seconds=el)
    if a.compare:
        ref = json.load(open(a.compare))["generation"]
        diff = {k: round(acc[k] - ref[k], 1) for k in acc}
        print("difference to PyTorch (points):", json.dumps(diff))
        out["difference"] = diff
    if a.grid:
        ds.save_grid(imgs, a.grid, ncol=10, scale=2)
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
