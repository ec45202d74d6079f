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
"""

W, H = 96, 64

# Prompts in the demo model's caption style (tools/demo/dataset.py).
SOURCE = "a red circle on the left on a blue gradient background"
TARGET = "a green circle on the left on a blue gradient background"

# Arguments every call passes (the model path is added by the drivers).
BASE_ARGS = {"method": "infedit", "source-prompt": SOURCE, "target-prompt": TARGET, "steps": 4, "seed": 7}

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
UI_CASE = dict(name="dialog", image="rgb.png", lang="python", sel=("rect", 24, 16, 40, 32), output="any")


def defaults(case):
    c = dict(feather=0, args={}, shrink=None, expect="edit", impl=BOTH)
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
