#!/usr/bin/env bash
# The Python package from nothing: a fresh venv (pinned tests/requirements.txt: maturin, pytest,
# langchain-core), the `ondo` wheel built by maturin (release, abi3) and installed into it, then
# pytest on tests/. Exits non-zero on any failure.
# Env: ONDO_BIN (the CLI the seed test compares with; default target/release/ondo, else
# target/debug/ondo), ONDO_TEST_MODELS (model folder), CI=true (a missing model fails),
# PYTHON (default python3), PYTEST_ARGS (extra pytest arguments).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "-- venv (pinned tests/requirements.txt)"
"${PYTHON:-python3}" -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check -r "$here/tests/requirements.txt"

echo "-- wheel (maturin build --release)"
"$work/venv/bin/maturin" build --quiet --release -m "$here/Cargo.toml" -i "$py" --out "$work/wheels"
"$py" -m pip install --quiet --disable-pip-version-check --no-index --find-links "$work/wheels" ondo

echo "-- pytest"
# From an empty folder, so `import ondo` is the installed wheel, not the source tree.
cd "$work"
# shellcheck disable=SC2086
"$py" -m pytest -q -rs -p no:cacheprovider "$here/tests" ${PYTEST_ARGS:-}
