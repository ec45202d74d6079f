"""The GIMP batch test cases, shared by the GIMP 3 driver (batch3.py, run by
GIMP's Python), the GIMP 2.10 Script-Fu generator (gen_scheme2.py) and the
pixel checker (check.py). Pure data plus small helpers; standard library only.

A case edits one test image (made by pngtool.py) with plug-in-invedit and
exports the result, or expects the call to fail with a message:

  name      unique, also the output file name (<name>.png)
  image     input file in the work folder
  lang      'scheme' (Script-Fu v3, named arguments) or 'python' (GIMP 3 only;
            GIMP 2.10 runs every case in Script-Fu)
  sel       None (no selection) or ('rect'|'ellipse', x, y, w, h) in image pixels
  feather   feather radius in pixels (0: a hard edge)
  output    'in-place' or 'new-layer' (for new-layer the test removes the
            original layer before exporting, so the export is the new layer)
  args      extra plug-in arguments (name -> value), over BASE_ARGS
  shrink    (w, h): resize the layer to w x h at (0, 0) first (so a selection
            can miss it)
  expect    'edit' | ('error', regular expression found in the message) | 'cancel'
  impl      which library builds run it: {'fake', 'real'}
  reach     how far beyond the selection's edge its feather is not yet 0 (default feather + 1.5; GIMP's
            Gaussian feather has a longer tail: a feather of 70 reaches 79 pixels on GIMP 3)
  ring      check the 0.5 contour of a feathered selection: inside it the edit applies in full
            (fake: exactly inverted; real: no old-colour pixels on the object)
  twin      the name of a new-layer case with the same edit: this (in-place) case's export must
            equal the twin's, bit for bit
  sample_sel  the drivers record the selection along SAMPLE_ROW and SAMPLE_COL before and after
            the call: it must be unchanged
  far       for the real library: pixels inside the selection at least this far
            from the disc (pngtool.FULL_DISC) must stay bit-identical (what the
            edit did not change keeps its pixels), and the disc must change
"""

W, H = 96, 64

# Prompts in the demo model's caption style (tools/demo/dataset.py).
SOURCE = "a red circle on the left on a blue gradient background"
TARGET = "a green circle on the left on a blue gradient background"

# The full-resolution scene's prompts (pngtool.fullres_scene)
FULL_SOURCE = "a red circle on the left on a blue background"
FULL_TARGET = "a yellow circle on the left on a blue background"

# Arguments every call passes (the model path is added by the drivers).
BASE_ARGS = {"method": "infedit", "source-prompt": SOURCE, "target-prompt": TARGET, "steps": 4, "seed": 7}

# A circle 4 pixels wider than the disc (pngtool.FULL_DISC at 384x384), feathered by 70 (a Gaussian of
# sigma 20): the feather's inner half reaches well into the disc.
FEATHER_SEL = ("ellipse", 31, 115, 154, 154)
# Where the drivers sample the selection before and after an in-place call (sample_sel): the row
# and the column through the disc's centre, across the feather on both sides.
SAMPLE_ROW, SAMPLE_COL = 192, 108
SAMPLE_N = 384

BOTH = {"fake", "real"}
FAKE = {"fake"}

CASES = [
    dict(name="rgb-whole-inplace", image="rgb.png", lang="scheme", sel=None, output="in-place"),
    dict(name="rgb-rect-feather-inplace", image="rgb.png", lang="scheme", sel=("rect", 24, 16, 40, 32), feather=8,
         output="in-place"),
    dict(name="rgb-rect-newlayer", image="rgb.png", lang="python", sel=("rect", 8, 8, 36, 28), output="new-layer"),
    dict(name="rgb-ellipse-bdia", image="rgb.png", lang="python", sel=("ellipse", 40, 8, 48, 44), output="in-place",
         args={"method": "bdia", "steps": 5, "strength": 0.8, "cfg-source": 3.0, "cfg-target": 3.0}),
    dict(name="rgba-ellipse-newlayer", image="rgba.png", lang="python", sel=("ellipse", 30, 10, 48, 40),
         output="new-layer"),
    dict(name="rgba-rect-feather-inplace", image="rgba.png", lang="scheme", sel=("rect", 10, 10, 50, 40), feather=4,
         output="in-place"),
    dict(name="gray-rect-inplace", image="gray.png", lang="python", sel=("rect", 16, 16, 48, 32), output="in-place"),
    dict(name="gray-whole-newlayer", image="gray.png", lang="scheme", sel=None, output="new-layer"),
    dict(name="rgb16-rect-inplace", image="rgb16.png", lang="python", sel=("rect", 20, 12, 40, 28),
         output="in-place"),
    dict(name="rgb16-feather-newlayer", image="rgb16.png", lang="scheme", sel=("rect", 30, 14, 44, 36), feather=6,
         output="new-layer", args={"method": "ef-ddpm", "steps": 6, "strength": 0.5}),
    # Full resolution (384x384 with fine texture, worked at 64x64): inside the selection, what the
    # edit did not change keeps the input's pixels; the change mask as a layer mask.
    dict(name="fullres-rect-inplace", image="fullres.png", lang="python", sel=("rect", 16, 40, 352, 304), output="in-place",
         args={"target-prompt": FULL_TARGET, "source-prompt": FULL_SOURCE, "blend-words": "yellow", "steps": 15},
         far=0.25 * 384),
    dict(name="fullres-ellipse-mask", image="fullres.png", lang="scheme", sel=("ellipse", 8, 24, 368, 336), feather=12,
         output="new-layer-mask",
         args={"target-prompt": FULL_TARGET, "source-prompt": FULL_SOURCE, "blend-words": "yellow", "steps": 15},
         far=0.25 * 384),
    # A feather wide enough to cross the object's edge, written in place and as a new layer: in place,
    # the layer must end up equal to the new layer (the library's composite, which applies the
    # selection once: the full edit inside its 0.5 contour, no ring of the old colour inside the
    # feather), and the selection must be as it was (sampled along two lines, before and after).
    dict(name="fullres-feather-newlayer", image="fullres.png", lang="python", sel=FEATHER_SEL, feather=70, reach=90,
         output="new-layer", ring=True,
         args={"target-prompt": FULL_TARGET, "source-prompt": FULL_SOURCE, "blend-words": "yellow", "steps": 15}),
    dict(name="fullres-feather-inplace", image="fullres.png", lang="python", sel=FEATHER_SEL, feather=70, reach=90,
         output="in-place", ring=True, twin="fullres-feather-newlayer", sample_sel=True,
         args={"target-prompt": FULL_TARGET, "source-prompt": FULL_SOURCE, "blend-words": "yellow", "steps": 15}),
    # The same region and source twice with another target: the second call (a new plug-in process)
    # takes EF-DDPM's inversion from the disk cache (the real library logs it).
    dict(name="cache-first-try", image="rgb.png", lang="scheme", sel=None, output="new-layer",
         args={"method": "ef-ddpm", "steps": 6, "strength": 0.5}),
    dict(name="cache-second-try", image="rgb.png", lang="python", sel=None, output="new-layer",
         args={"method": "ef-ddpm", "steps": 6, "strength": 0.5,
               "target-prompt": "a yellow circle on the left on a blue gradient background"}),
    # Errors: a message that says what to do, and the image untouched.
    dict(name="indexed-error", image="indexed.png", lang="scheme", sel=None, output="in-place",
         expect=("error", "needs an RGB or grayscale image")),
    dict(name="selection-misses-layer", image="rgb.png", lang="python", sel=("rect", 60, 40, 20, 16),
         shrink=(32, 24), output="in-place", expect=("error", "does not touch the layer")),
    dict(name="no-model", image="rgb.png", lang="python", sel=None, output="in-place", args={"model-path": ""},
         expect=("error", "No model set")),
    dict(name="bad-model", image="rgb.png", lang="scheme", sel=None, output="in-place",
         args={"model-path": "/nonexistent/sd-model"}, expect=("error", "Could not open the model")),
    dict(name="strength-out-of-range", image="rgb.png", lang="scheme", sel=None, output="in-place",
         args={"strength": 2.0}, expect=("error", "strength|out of range")),
    # Loading options reach the library: a LoRA and a VAE that do not exist are named (real library).
    dict(name="bad-lora", image="rgb.png", lang="scheme", sel=None, output="in-place",
         args={"lora": "/nonexistent/style.safetensors:0.8"}, expect=("error", "LoRA /nonexistent/style.safetensors"),
         impl={"real"}),
    dict(name="bad-vae", image="rgb.png", lang="python", sel=None, output="in-place",
         args={"vae": "/nonexistent/vae.safetensors"}, expect=("error", "VAE /nonexistent/vae.safetensors"),
         impl={"real"}),
    # Fake-library knobs: the CPU-fallback note, and out of memory.
    dict(name="vulkan-fallback-note", image="rgb.png", lang="python", sel=None, output="in-place",
         args={"device": "vulkan"}, impl=FAKE),
    dict(name="out-of-memory", image="rgb.png", lang="scheme", sel=None, output="in-place",
         args={"target-prompt": "fake:nomem"}, expect=("error", "Out of memory"), impl=FAKE),
]

# Run in a session of its own with INVEDIT_TEST_CANCEL_AFTER=1: the progress
# callback answers "cancel" at the second step.
CANCEL_CASE = dict(name="cancel", image="rgb.png", lang="python", sel=("rect", 8, 8, 40, 30), output="new-layer",
                   expect="cancel")

# The UI test: one interactive call; the dialog answers itself (INVEDIT_UI_TEST).
# The dialog starts from the last-used values, so the output mode is whatever
# was used last: "any".
# With the real library the edit's prompts are the last-used ones (empty in a
# fresh profile), and an edit that asks for no change now keeps every pixel
# (full-resolution compositing): only what is outside the selection is checked.
UI_CASE = dict(name="dialog", image="rgb.png", lang="python", sel=("rect", 24, 16, 40, 32), output="any",
               edited=False)


def defaults(case):
    c = dict(feather=0, args={}, shrink=None, expect="edit", impl=BOTH, far=None, edited=True, ring=False,
             twin=None, sample_sel=False, reach=None)
    c.update(case)
    return c


def all_cases(impl):
    return [defaults(c) for c in CASES if impl in defaults(c)["impl"]]


def call_args(case, model_path):
    """The plug-in arguments of a case: BASE_ARGS, the model, the output, the case's own."""
    a = dict(BASE_ARGS)
    a["model-path"] = model_path
    a["output"] = case["output"]
    a.update(case.get("args", {}))
    return a
