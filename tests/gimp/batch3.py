# GIMP 3 batch driver for the invedit plug-in tests. Runs INSIDE GIMP, as
#   gimp-console-3.0 -i --quit --batch-interpreter=python-fu-eval -b - < (CONF line + this file)
# where the first line, written by gimp3-tests.sh, sets
#   CONF = {"tests": <tests/gimp folder>, "work": <work folder>, "model": <model path>,
#           "impl": "fake"|"real", "table": <invedit-param-table output>, "only": [case names] or None,
#           "results": <json path>, "cancel": bool, "interactive": bool}
# It runs every case of cases.py: the 'python' ones through the PDB from
# Python, the 'scheme' ones as Script-Fu v3 code (named arguments) through
# plug-in-script-fu-eval, exports the results, and writes a JSON summary
# for check.py. Every case is caught, so one failure never stops the session.
import json
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

sys.path.insert(0, CONF["tests"])  # noqa: F821 (CONF comes from the first line)
import cases as C  # noqa: E402

pdb = Gimp.get_pdb()
WORK = CONF["work"]  # noqa: F821

# Argument types, from the parameter table dump (so nothing is listed twice).
TYPES = {}
for line in CONF["table"].splitlines():  # noqa: F821
    f = line.split("\t")
    if len(f) >= 2:
        TYPES[f[0]] = f[1]


def scheme_value(name, v):
    t = TYPES.get(name, "string")
    if t in ("string", "method"):
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if t == "bool":
        return "#t" if v else "#f"
    if t == "double":
        return repr(float(v))
    return str(int(v))


def scheme_case(case, out_path, args):
    kind = case["sel"][0] if case["sel"] else None
    lines = ["(script-fu-use-v3)",
             '(let* ((img (gimp-file-load RUN-NONINTERACTIVE "%s/%s"))' % (WORK, case["image"]),
             "       (layers (gimp-image-get-layers img))",
             "       (layer (vector-ref layers 0)))"]
    if case["shrink"]:
        lines.append("  (gimp-layer-resize layer %d %d 0 0)" % case["shrink"])
    if kind:
        _, x, y, w, h = case["sel"]
        fn = "gimp-image-select-rectangle" if kind == "rect" else "gimp-image-select-ellipse"
        lines.append("  (%s img CHANNEL-OP-REPLACE %d %d %d %d)" % (fn, x, y, w, h))
        if case["feather"]:
            lines.append("  (gimp-selection-feather img %r)" % float(case["feather"]))
    named = " ".join("#:%s %s" % (k, scheme_value(k, v)) for k, v in args.items())
    lines.append("  (plug-in-invedit #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector layer) %s)" % named)
    if case["output"] == "new-layer":
        lines.append("  (let ((now (gimp-image-get-layers img)))")
        lines.append('    (if (not (= (vector-length now) 2)) (error "expected a new layer above the original"))')
        lines.append("    (gimp-image-remove-layer img (vector-ref now 1)))")
    lines.append("  (gimp-selection-none img)")
    # file-png-export without the thumbnail: GIMP 3.0.4's thumbnail code logs CRITICALs for 16-bit images
    lines.append('  (file-png-export #:run-mode RUN-NONINTERACTIVE #:image img #:file "%s" #:include-thumbnail #f)'
                 % out_path)
    lines.append("  (gimp-image-delete img))")
    return "\n".join(lines)


def run_scheme(code):
    proc = pdb.lookup_procedure("plug-in-script-fu-eval")
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("script", code)
    res = proc.run(cfg)
    status = res.index(0)
    err = res.index(1) if status != Gimp.PDBStatusType.SUCCESS and res.length() > 1 else ""
    return status.value_nick, err or ""


def export_png(img, path):
    """file-png-export without the thumbnail (GIMP 3.0.4's thumbnail code logs
    CRITICALs for 16-bit images)."""
    proc = pdb.lookup_procedure("file-png-export")
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", img)
    cfg.set_property("file", Gio.File.new_for_path(path))
    cfg.set_property("include-thumbnail", False)
    res = proc.run(cfg)
    if res.index(0) != Gimp.PDBStatusType.SUCCESS:
        raise RuntimeError("export of %s failed: %s" % (path, pdb.get_last_error()))


def sample_selection(img):
    """The selection's values (0..255) along cases.SAMPLE_ROW and SAMPLE_COL."""
    return [Gimp.Selection.value(img, i, C.SAMPLE_ROW) for i in range(C.SAMPLE_N)] + \
        [Gimp.Selection.value(img, C.SAMPLE_COL, i) for i in range(C.SAMPLE_N)]


def python_case(case, out_path, args, run_mode):
    img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path("%s/%s" % (WORK, case["image"])))
    try:
        layer = img.get_layers()[0]
        if case["shrink"]:
            layer.resize(case["shrink"][0], case["shrink"][1], 0, 0)
        if case["sel"]:
            kind, x, y, w, h = case["sel"]
            select = img.select_rectangle if kind == "rect" else img.select_ellipse
            select(Gimp.ChannelOps.REPLACE, x, y, w, h)
            if case["feather"]:
                Gimp.Selection.feather(img, float(case["feather"]))
        before = sample_selection(img) if case["sample_sel"] else None
        proc = pdb.lookup_procedure("plug-in-invedit")
        cfg = proc.create_config()
        cfg.set_property("run-mode", run_mode)
        cfg.set_property("image", img)
        cfg.set_core_object_array("drawables", [layer])
        for k, v in args.items():
            t = TYPES.get(k, "string")
            cfg.set_property(k, float(v) if t == "double" else int(v) if t == "int" else bool(v) if t == "bool" else v)
        res = proc.run(cfg)
        status = res.index(0)
        err = pdb.get_last_error() if status != Gimp.PDBStatusType.SUCCESS else ""
        layers = img.get_layers()
        info = {"layers": len(layers), "top": layers[0].get_name()}
        if before is not None:
            info["sel_before"], info["sel_after"] = before, sample_selection(img)
        info["channels"] = len(img.get_channels())
        if status == Gimp.PDBStatusType.SUCCESS and case["output"] in ("new-layer", "any") and len(layers) == 2:
            img.remove_layer(layers[1])  # export the new layer alone
        Gimp.Selection.none(img)
        # Exported also after an error or a cancel: the image must be unchanged then.
        export_png(img, out_path)
        return status.value_nick, err or "", info
    finally:
        img.delete()


def main():
    results = {}
    todo = [C.defaults(C.CANCEL_CASE)] if CONF.get("cancel") else C.all_cases(CONF["impl"])  # noqa: F821
    interactive = CONF.get("interactive")  # noqa: F821
    if interactive:
        todo = [C.defaults(C.UI_CASE)]
    only = CONF.get("only")  # noqa: F821
    for case in todo:
        if only and case["name"] not in only:
            continue
        out_path = "%s/out-%s/%s.png" % (WORK, CONF["impl"], case["name"])  # noqa: F821
        args = C.call_args(case, CONF["model"])  # noqa: F821
        info = {}
        try:
            if interactive:
                status, err, info = python_case(case, out_path, {"model-path": CONF["model"]},  # noqa: F821
                                                Gimp.RunMode.INTERACTIVE)
            elif case["lang"] == "scheme":
                before = {im.get_id() for im in Gimp.get_images()}
                try:
                    status, err = run_scheme(scheme_case(case, out_path, args))
                finally:
                    # A failed call aborts the script before its gimp-image-delete:
                    # delete the image it loaded (else GIMP reports a stray image).
                    for im in Gimp.get_images():
                        if im.get_id() not in before:
                            im.delete()
            else:
                status, err, info = python_case(case, out_path, args, Gimp.RunMode.NONINTERACTIVE)
        except Exception:
            status, err = "exception", traceback.format_exc()
        results[case["name"]] = dict(status=status, error=err, lang=case["lang"], **info)
        print("CASE %-28s %-8s %s %s" % (case["name"], case["lang"], status, err.strip().replace("\n", " | ")))
    with open(CONF["results"], "w") as f:  # noqa: F821
        json.dump(results, f, indent=1)


main()
