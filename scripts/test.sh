#!/usr/bin/env bash
# Set up everything the tests need, then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec .venv/bin/python -m pytest -q "$@"
