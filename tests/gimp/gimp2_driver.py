#!/usr/bin/env python3
"""GIMP 2.10 side of the invedit plug-in tests (GIMP 2.10 has no Python-Fu on
Debian 12, so every case runs as Script-Fu).

    gimp2_driver.py gen --work DIR --model PATH --impl fake|real --table TSV [--cancel|--ui] > cmds.txt
        one Script-Fu command per line, one per case of cases.py, for
        gimp-console-2.10 -b ...; each prints CASE-BEGIN / CASE-END markers
    gimp2_driver.py args --table TSV
        the default positional arguments (for an interactive call: the dialog sets them)
    gimp2_driver.py parse --log LOG [--cancel|--ui] --impl fake|real > results.json
        the per-case status and message, in the form check.py reads

2.10's plug-in-invedit takes positional arguments: run-mode, image, drawable,
then the parameter table's entries in order (as printed by
invedit-param-table: model-path first, output last). Arguments a case does
not set take the table's defaults, so the parameter list is never repeated here.
"""
import argparse
import json
import re
import sys
import os

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases as C  # noqa: E402



def todo(impl, cancel, ui):
    if ui:
        return [C.defaults(C.UI_CASE)]
    if cancel:
        return [C.defaults(C.CANCEL_CASE)]
    return C.all_cases(impl)


def scheme_string(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def positional(table, args):
    out = []
    for name, typ, default in table:
        v = args.get(name, default)
        if typ in ("string", "method"):
            out.append(scheme_string(v))
        elif typ == "bool":
            out.append("1" if v is True or str(v).lower() in ("1", "1.0", "true", "yes") else "0")
        elif typ == "double":
            out.append(repr(float(v)))
        else:
            out.append(str(int(float(v))))
    return " ".join(out)


def command(case, work, model, impl, table, run_mode):
    n = case["name"]
    inp = "%s/%s" % (work, case["image"])
    out = "%s/out-%s/%s.png" % (work, impl, n)
    s = ['(gimp-message "CASE-BEGIN %s")' % n,
         '(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE "%s" "%s")))' % (inp, inp),
         "(layer (car (gimp-image-get-active-layer img))))"]
    if case["shrink"]:
        s.append("(gimp-layer-resize layer %d %d 0 0)" % case["shrink"])
    if case["sel"]:
        kind, x, y, w, h = case["sel"]
        fn = "gimp-image-select-rectangle" if kind == "rect" else "gimp-image-select-ellipse"
        s.append("(%s img CHANNEL-OP-REPLACE %d %d %d %d)" % (fn, x, y, w, h))
        if case["feather"]:
            s.append("(gimp-selection-feather img %r)" % float(case["feather"]))
    if case["sample_sel"]:
        s.append(sample_selection("CASE-SEL-BEFORE"))
    s.append("(plug-in-invedit %s img layer %s)" % (run_mode, positional(table, C.call_args(case, model))))
    if case["sample_sel"]:
        s.append(sample_selection("CASE-SEL-AFTER"))
    s.append('(gimp-message (string-append "CASE-CHANNELS " (number->string (car (gimp-image-get-channels img)))))')
    # Report the layers; with a new layer on top, export that one alone.
    s.append("(let ((ls (gimp-image-get-layers img)))"
             '(gimp-message (string-append "CASE-LAYERS " (number->string (car ls))))'
             '(gimp-message (string-append "CASE-TOP " (car (gimp-item-get-name (aref (cadr ls) 0)))))'
             + ("(if (= (car ls) 2) (gimp-image-merge-visible-layers img CLIP-TO-IMAGE)))"
                if case["output"] == "new-layer-mask" else "(if (= (car ls) 2) (gimp-image-remove-layer img layer)))"))
    s.append("(gimp-selection-none img)")
    s.append("(let ((d (aref (cadr (gimp-image-get-layers img)) 0)))"
             '(gimp-file-save RUN-NONINTERACTIVE img d "%s" "%s"))' % (out, out))
    s.append("(gimp-image-delete img))")
    s.append('(gimp-message "CASE-END %s")' % n)
    return "(begin " + " ".join(s) + ")"


def sample_selection(tag):
    """Script-Fu that prints the selection's values (0..255) along cases.SAMPLE_ROW and SAMPLE_COL."""
    def line(xy):
        return ("(let loop ((i 0) (acc \"\")) (if (< i %d) (loop (+ i 1) (string-append acc \" \" "
                "(number->string (car (gimp-selection-value img %s))))) acc))" % (C.SAMPLE_N, xy))
    return '(gimp-message (string-append "%s" %s %s))' % (tag, line("i %d" % C.SAMPLE_ROW),
                                                           line("%d i" % C.SAMPLE_COL))


CLEANUP = "(let ((l (gimp-image-list))) (map gimp-image-delete (vector->list (cadr l))))"


def parse(log, cases):
    text = open(log, errors="replace").read()
    results = {}
    for case in cases:
        n = case["name"]
        m = re.search(r"CASE-BEGIN %s\n(.*?)(?=CASE-BEGIN |\Z)" % re.escape(n), text, re.S)
        if not m:
            continue
        seg = m.group(1)
        r = {"status": "success", "error": "", "lang": "scheme"}
        err = re.search(r"batch command experienced an execution error:?\s*(.*?)(?:\n\n|\n[^ ]*-?Warning|\Z)", seg, re.S)
        if "CASE-END %s" % n not in seg:
            r["status"] = "calling-error" if err and "invalid input arguments" in err.group(1) else "execution-error"
            r["error"] = err.group(1).strip() if err else seg.strip()[-500:]
        elif "invedit: cancelled" in seg:
            r["status"] = "cancel"
        top = re.search(r"CASE-TOP (.*)", seg)
        if top:
            r["top"] = top.group(1).strip()
        layers = re.search(r"CASE-LAYERS (\d+)", seg)
        if layers:
            r["layers"] = int(layers.group(1))
        for key, tag in (("sel_before", "CASE-SEL-BEFORE"), ("sel_after", "CASE-SEL-AFTER")):
            m2 = re.search(tag + r"((?: -?[0-9.e+-]+)+)", seg)
            if m2:
                r[key] = [float(v) for v in m2.group(1).split()]
        ch = re.search(r"CASE-CHANNELS (\d+)", seg)
        if ch:
            r["channels"] = int(ch.group(1))
        settings = re.findall(r"^invedit: run-mode=\d+ (.*)$", seg, re.M)
        if settings:
            r["settings"] = settings[-1]
        results[n] = r
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["gen", "parse", "args"])
    ap.add_argument("--work")
    ap.add_argument("--model")
    ap.add_argument("--impl", default="fake")
    ap.add_argument("--table")
    ap.add_argument("--log")
    ap.add_argument("--cancel", action="store_true")
    ap.add_argument("--ui", action="store_true")
    a = ap.parse_args()
    if a.mode == "args":  # the default positional arguments (for a dialog-driven call)
        table = [ln.split("\t")[:3] for ln in open(a.table).read().splitlines() if ln.strip()]
        print(positional(table, {}))
        return
    cs = todo(a.impl, a.cancel, a.ui)
    if a.mode == "gen":
        table = [ln.split("\t")[:3] for ln in open(a.table).read().splitlines() if ln.strip()]
        mode = "RUN-INTERACTIVE" if a.ui else "RUN-NONINTERACTIVE"
        for c in cs:
            print(command(c, a.work, a.model, a.impl, table, mode))
            # A failed call aborts its command before gimp-image-delete: delete
            # what it left (an undeleted image is leaked GeglBuffers at quit).
            print(CLEANUP)
    else:
        json.dump(parse(a.log, cs), sys.stdout, indent=1)


if __name__ == "__main__":
    main()
