# Sourced by the tests/cli scripts after they set INVEDIT: the source root,
# Python with PIL and numpy (exit 77 = skip without them), a scratch folder
# that is removed on exit (the current directory from here on), and the
# ok/fail counters.
ROOT=${INVEDIT_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
if ! $PY -c 'import PIL, numpy' 2>/dev/null; then
    echo "skip: $PY with PIL and numpy is needed"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
checks=0
failures=0
ok() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }
