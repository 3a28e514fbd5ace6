#!/usr/bin/env bash
# Property-based API testing with Schemathesis against a fresh server and its own OpenAPI document.
#
#   pip install schemathesis        # once (PyPI)
#   scripts/schemathesis.sh [SECONDS]   # default 120 s of generated requests
#
# Starts the server on a temporary data directory, seeds a field worker to modify and one
# submission to read, then lets Schemathesis generate requests for every operation and check
# every answer: no 5xx, statuses, content types, headers and bodies as the spec says. Path
# parameters are pinned to the seeded resources so requests reach real data (random ids only
# ever find 404). Exits non-zero if any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
command -v schemathesis >/dev/null || { echo "schemathesis not found: pip install schemathesis" >&2; exit 2; }

cargo build --quiet
work=$(mktemp -d)
password="fuzz-admin-$RANDOM$RANDOM"
SURVEY_BIND=127.0.0.1:0 SURVEY_DATA_DIR="$work/data" SURVEY_SCHEMAS_DIR=schemas \
  SURVEY_ADMIN_PASSWORD="$password" SURVEY_LOG=warn \
  target/debug/survey-server >"$work/stdout" 2>"$work/stderr" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do
  grep -q "listening on" "$work/stdout" 2>/dev/null && break
  sleep 0.1
done
base=$(sed -n 's/^survey-server listening on //p' "$work/stdout")

token=$(python3 scripts/seed_for_fuzzing.py "$base" "$password")
id=$(cat "$work/../$(basename "$work").id" 2>/dev/null || true)
export SURVEY_FUZZ_TOKEN="${token%% *}" SURVEY_FUZZ_ID="${token##* }"

schemathesis --config-file scripts/schemathesis.toml run "$base/api/v1/openapi.json" \
  --max-time "$seconds" --workers 2 --seed 2017
status=$?
if grep -q "panicked" "$work/stderr"; then
  echo "the server panicked:" >&2
  cat "$work/stderr" >&2
  exit 1
fi
exit $status
