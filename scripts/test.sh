#!/usr/bin/env bash
# The project's one test command (README: `npm test`; .ci/run calls it).
# Installs what the suite needs, builds, type-checks tests, runs tap, and prints
# a closing "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh test || exit 1
npx tsc -p tsconfig.json || { echo "0 passed, 1 failed"; exit 1; }
out=$(mktemp)
npx tap --reporter=tap "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
pass=$(grep -a -E '^# \{ total:' "$out" | tail -1 | sed -nE 's/.*pass: ([0-9]+).*/\1/p')
fail=$(grep -a -E '^# \{ total:' "$out" | tail -1 | sed -nE 's/.*fail: ([0-9]+).*/\1/p')
rm -f "$out"
echo "${pass:-0} passed, ${fail:-0} failed"
if [ "$rc" -ne 0 ] && [ "${fail:-0}" = "0" ]; then echo "tap exited $rc"; fi
exit "$rc"
