#!/usr/bin/env sh
# Print the path of a Python >= 3.12 interpreter, or explain and exit 1.
# Order: $PYTHON, python3.13, python3.12, python3 on PATH, then pyenv's installed versions
# (their binaries directly: pyenv's shims only run with PYENV_VERSION set).
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
if [ -n "${PYTHON:-}" ]; then
    if ok "$PYTHON"; then command -v "$PYTHON" || echo "$PYTHON"; exit 0; fi
    echo "find-python: PYTHON=$PYTHON is not a Python >= 3.12" >&2; exit 1
fi
for c in python3.13 python3.12 python3; do
    if command -v "$c" >/dev/null 2>&1 && ok "$c"; then command -v "$c"; exit 0; fi
done
root=$(pyenv root 2>/dev/null) || root="${PYENV_ROOT:-$HOME/.pyenv}"
if [ -d "$root/versions" ]; then
    for v in $(ls -1 "$root/versions" 2>/dev/null | sort -t. -k1,1nr -k2,2nr -k3,3nr); do
        p="$root/versions/$v/bin/python3"
        if [ -x "$p" ] && ok "$p"; then echo "$p"; exit 0; fi
    done
fi
echo "find-python: no Python >= 3.12 found (tried \$PYTHON, python3.13, python3.12, python3, pyenv versions)." >&2
echo "find-python: install one, or run e.g. 'make test PYTHON=/path/to/python3.12'." >&2
exit 1
