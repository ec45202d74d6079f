# edit_folder.py - edit every PNG and JPEG in a folder with invedit, without a GUI (GIMP 3, Python).
#
# Each image in INVEDIT_IN (*.png, *.jpg, *.jpeg) is loaded, its selected layers are edited in
# place (whole layer), and it is exported under the same name to INVEDIT_OUT (created if needed).
# The settings come from environment variables, so the script itself needs no editing:
#
#   INVEDIT_IN=/photos INVEDIT_OUT=/photos/edited INVEDIT_MODEL=/models/sd15 \
#   INVEDIT_SOURCE="a photo of a cat on a sofa" INVEDIT_TARGET="a photo of a dog on a sofa" \
#   gimp-console-3.0 -i --quit --batch-interpreter=python-fu-eval -b - < edit_folder.py
#
# Optional: INVEDIT_METHOD (infedit, ef-ddpm, bdia), INVEDIT_STEPS, INVEDIT_STRENGTH, INVEDIT_SEED,
# INVEDIT_OUTPUT (in-place or new-layer). Every other argument of plug-in-invedit keeps its default;
# set more in `extra` below (Help > Procedure Browser lists them with their ranges).
# A file that fails is reported and skipped; the exit status of gimp-console stays 0.
import glob
import os
import sys

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

env = os.environ
in_dir, out_dir = env["INVEDIT_IN"], env["INVEDIT_OUT"]
os.makedirs(out_dir, exist_ok=True)
extra = {}
for var, name, conv in (("INVEDIT_METHOD", "method", str), ("INVEDIT_STEPS", "steps", int),
                        ("INVEDIT_STRENGTH", "strength", float), ("INVEDIT_SEED", "seed", int)):
    if env.get(var):
        extra[name] = conv(env[var])

pdb = Gimp.get_pdb()
proc = pdb.lookup_procedure("plug-in-invedit")
if proc is None:
    sys.exit("plug-in-invedit is not installed (see the invedit README)")

files = sorted(f for p in ("*.png", "*.PNG", "*.jpg", "*.JPG", "*.jpeg", "*.JPEG")
               for f in glob.glob(os.path.join(in_dir, p)))
done = 0
for path in files:
    img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    try:
        cfg = proc.create_config()
        cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
        cfg.set_property("image", img)
        cfg.set_core_object_array("drawables", img.get_selected_layers())
        cfg.set_property("model-path", env.get("INVEDIT_MODEL", ""))
        cfg.set_property("source-prompt", env.get("INVEDIT_SOURCE", ""))
        cfg.set_property("target-prompt", env.get("INVEDIT_TARGET", ""))
        cfg.set_property("output", env.get("INVEDIT_OUTPUT", "in-place"))
        for name, value in extra.items():
            cfg.set_property(name, value)
        status = proc.run(cfg).index(0)
        if status != Gimp.PDBStatusType.SUCCESS:
            print("invedit: FAILED %s: %s" % (path, pdb.get_last_error()))
            continue
        out = os.path.join(out_dir, os.path.basename(path))
        Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(out), None)
        print("invedit: %s -> %s" % (path, out))
        done += 1
    finally:
        img.delete()
print("invedit: edited %d of %d images" % (done, len(files)))
