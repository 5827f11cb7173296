#!/usr/bin/env bash
# Set up everything the tests need, then run the linter, the type checker and the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check vs_sr tests scripts
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
