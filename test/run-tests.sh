#!/usr/bin/env bash
# Runs lint and the whole mocha suite; ends with the plain summary line `N passed, N failed`.
set -uo pipefail
cd "$(dirname "$0")/.."
# The pinned Node 24 (node_modules/.bin/node) must win over the machine's node.
export PATH="$PWD/node_modules/.bin:$PATH"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
lint_failed=0
if ! make --no-print-directory lint >&2; then lint_failed=1; fi
# The whole suite; `mocha FILE...` alone (with .mocharc.json's hooks and timeout) runs just FILE.
node_modules/.bin/mocha 'sidecar/**/*.test.ts' 'operator/**/*.test.ts' 'test/**/*.test.ts' 2>&1 | tee "$report"
mocha_status=${PIPESTATUS[0]}
passed=$(grep -Eo '^ +[0-9]+ passing' "$report" | grep -Eo '[0-9]+' || echo 0)
failed=$(grep -Eo '^ +[0-9]+ failing' "$report" | grep -Eo '[0-9]+' || echo 0)
pending=$(grep -Eo '^ +[0-9]+ pending' "$report" | grep -Eo '[0-9]+' || echo 0)
failed=$((failed + lint_failed))
if [ "$pending" != 0 ]; then
  echo "error: $pending test(s) pending; tests must not skip" >&2
  failed=$((failed + pending))
fi
if [ "$mocha_status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
echo "${passed} passed, ${failed} failed"
[ "$failed" = 0 ]
