#!/usr/bin/env bash
# Runs kpipe's whole test suite. Installs what the tests need beyond the Rust toolchain
# and Python itself (pyarrow and DuckDB, in ./.venv), then runs the tests. Arguments go
# to the test runner: scripts/test.sh run_fixtures
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export KPIPE_PYTHON="$PWD/.venv/bin/python"

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast "$@"
else
    cargo test --no-fail-fast "$@"
fi
