#!/usr/bin/env bash
# Runs kpipe's whole test suite. Installs what the tests need beyond the Rust toolchain
# and Python itself (pyarrow, DuckDB and moto in ./.venv; Debian's chromium), then runs
# the tests. Arguments go
# to the test runner: scripts/test.sh run_fixtures
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export KPIPE_PYTHON="$PWD/.venv/bin/python"

# A test renders the bonus statements in headless Chromium: Debian's package.
if [ -z "${KPIPE_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
    else
        echo "scripts/test.sh: the tests need Chromium: sudo apt-get install chromium" >&2
        exit 1
    fi
fi

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast "$@"
else
    cargo test --no-fail-fast "$@"
fi
