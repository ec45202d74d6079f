#!/usr/bin/env python3
"""libinvedit.so exports exactly the public API.

    test_exports.py path/to/libinvedit.so include/invedit.h include/invedit_status.h

Every function the public headers declare must be marked IE_API and be
exported by the shared library, and the library must export nothing else
(no engine internals, no symbols of the static libraries it is made of).
The soname must be libinvedit.so.<major ABI>. Uses nm and readelf (binutils).
"""
import re
import subprocess
import sys

# Names the linker itself defines in every shared object.
LINKER_SYMBOLS = {"_init", "_fini", "_edata", "_end", "__bss_start"}
# What sanitizer instrumentation adds to a -Db_sanitize build (not the library's API).
INSTRUMENTATION = re.compile(r"^(__asan|__odr_asan|__ubsan|__sanitizer|__lsan)")


def declared_functions(path):
    """(all function names declared, those marked IE_API) in a header."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # drop preprocessor lines (with their continuations)
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    declared, marked = set(), set()
    # top-level statements: split at ';' and at braces
    for stmt in re.split(r"[;{}]", text):
        stmt = " ".join(stmt.split())
        if stmt.startswith("typedef"):
            continue
        m = re.search(r"\b(ie_\w+)\s*\(", stmt)
        if not m or "=" in stmt[: m.start()]:
            continue
        declared.add(m.group(1))
        if re.match(r"IE_API\b", stmt):
            marked.add(m.group(1))
    return declared, marked


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    lib, headers = sys.argv[1], sys.argv[2:]
    failures = 0
    declared, marked = set(), set()
    for h in headers:
        d, m = declared_functions(h)
        declared |= d
        marked |= m
    if len(declared) < 40:
        print(f"FAIL only {len(declared)} functions found in {headers}: the header parser is broken")
        return 1
    for name in sorted(declared - marked):
        print(f"FAIL {name}: declared in a public header without IE_API (hidden in the library)")
        failures += 1

    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True, check=True).stdout
    exported = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            exported.add(parts[2].split("@")[0])
    for name in sorted(n for n in exported - declared - LINKER_SYMBOLS if not INSTRUMENTATION.match(n)):
        print(f"FAIL {name}: exported by {lib} but not in the public headers")
        failures += 1
    for name in sorted(declared - exported):
        print(f"FAIL {name}: declared in the public headers but not exported by {lib}")
        failures += 1

    dyn = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True, check=True).stdout
    soname = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", dyn)
    if not soname or not re.fullmatch(r"libinvedit\.so\.\d+", soname.group(1)):
        print(f"FAIL soname: {soname.group(1) if soname else 'none'}, want libinvedit.so.N")
        failures += 1

    print(f"test_exports: {len(declared)} public functions, {len(exported)} exported symbols, "
          f"soname {soname.group(1) if soname else '-'}, {failures} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
