#!/usr/bin/env bash
# Set up everything the tests need, run the linter and the type checker, then the tests in two
# runs: those without the `timing` marker, then the process- and timing-sensitive ones (servers,
# kills, signals, progress) beside busy CPU hogs, as a shared CI machine runs them
# (scripts/load_check.sh). Each test runs once. Extra arguments go to both runs (a selection that
# holds tests of one kind only leaves the other run empty, which is fine); the exit status is the
# first failing run's.
set -uo pipefail
cd "$(dirname "$0")/.."
set -e
bash scripts/setup.sh --test
.venv/bin/ruff check vs_sr tests scripts
.venv/bin/mypy
set +e
NO_TESTS=5  # pytest's exit status when the selection holds no test

.venv/bin/python -m pytest -q -m "not timing" "$@"
plain=$?
bash scripts/load_check.sh "$@"
timing=$?
for status in "$plain" "$timing"; do
    if [ "$status" -ne 0 ] && [ "$status" -ne "$NO_TESTS" ]; then
        exit "$status"
    fi
done
if [ "$plain" -eq "$NO_TESTS" ] && [ "$timing" -eq "$NO_TESTS" ]; then
    echo "no test matched the selection" >&2
    exit "$NO_TESTS"
fi
exit 0
