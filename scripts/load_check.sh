#!/usr/bin/env bash
# The load check: the process- and timing-sensitive tests (pytest marker `timing`: the studio,
# batch kills and stalls, signals during encoding, Triton, progress) beside two busy CPU hogs, as
# on a shared CI machine. A test that fails here waits on a clock instead of an event.
# scripts/test.sh runs it after the other tests (and sets up .venv first); extra arguments go to
# pytest. The hogs are stopped however this ends; the exit status is pytest's.
set -uo pipefail
cd "$(dirname "$0")/.."
HOGS=${VS_SR_LOAD_HOGS:-2}

hogs=()
tests=""
stop() {
    # pytest first (interrupted, it still tears down its fixtures: what the tests started), then the hogs.
    if [ -n "$tests" ]; then
        kill -INT "$tests" 2>/dev/null || true  # pytest tears its fixtures down on SIGINT
        wait "$tests" 2>/dev/null || true
    fi
    for pid in "${hogs[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq "$HOGS"); do
    .venv/bin/python -c 'while True: pass' &
    hogs+=("$!")
done
echo "load check: $HOGS CPU hogs running (pids ${hogs[*]}); the timing tests:" >&2
# In the background, so that a signal to this script is handled at once (bash runs traps only
# between foreground commands), and pytest is stopped with it.
env --default-signal=INT .venv/bin/python -m pytest -q -m timing "$@" &  # not ignoring SIGINT, as a background job would
tests=$!
wait "$tests"
status=$?
tests=""
exit "$status"
