#!/usr/bin/env bash
# The Python package's tests, as a new user would meet it: a fresh venv,
# maturin and pytest from PyPI, `pip install ./python` (which builds the
# extension module in release mode through maturin), then pytest against the
# installed package (never the source tree's `python/monocore`).
#
# Run ./scripts/setup.sh first (the same host needs as the Rust tests). With
# MONOCORE_REQUIRE_BOOT=1 a host that cannot boot fails the boot tests
# instead of skipping them.
#
#   PYTHON            the interpreter to make the venv with (python3)
#   MONOCORE_PYTHON_VENV  where the venv goes (target/python-venv)
#   CARGO_TARGET_DIR  the build's target directory (target/python)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

python=${PYTHON:-python3}
venv=${MONOCORE_PYTHON_VENV:-$repo/target/python-venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/python}

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip maturin pytest
"$venv/bin/python" -m pip install --quiet "$repo/python"

# From the venv's bin, so `import monocore` is the installed package.
cd "$venv/bin"
./python -c 'import monocore, sys; print(f"monocore {monocore.__version__} from {monocore.__file__} (Python {sys.version.split()[0]})")'
./pytest -p no:cacheprovider -rs "$repo/python/tests" "$@"
