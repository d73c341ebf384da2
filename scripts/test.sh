#!/usr/bin/env bash
# `make test`'s pytest: the whole suite in three lanes at once, each against services of its own, so the
# mostly-waiting work of one (Terraform's provider waits, Firehose buffers, Airflow task start-up) overlaps the others.
#
#   lane A  tests/e2e but the two below: the test stack, .local/test-stack (13307/15433/15055; Airflow's API
#           server on 18080: the other lanes start no Airflow server, they run DAGs with `airflow dags test`)
#   lane B  tests/unit, tests/dags, tests/terraform, tests/integration: a second test stack, .local/test-stack-b
#           (13308/15434/15056)
#   lane C  tests/e2e/test_aws_deployment_rehearsal.py in an emulated account of its own, .local/rehearsal-account
#           (23307/25433/25055), then tests/e2e/test_batch_reliability.py on a third test stack, .local/test-stack-c
#           (13309/15435/15057)
#
# Lanes B and C run in the background, each with its own TMPDIR (Terraform work copies, the Lambda build cache),
# pytest cache and reliability table under .local/test-lanes/; their output is kept in .local/test-lanes/lane-<x>.log
# and printed when every lane has ended. Lane A prints as it runs. The last line gives each lane's exit code and time.
#
# The run fails when any lane fails, and a lane fails on:
#   - a failed test (or one over its timeout: the captured log says how long each Terraform command took);
#   - a skipped or xfailed test not named in tests/skip_allowlist.py (every lane runs with RECSYS_FAIL_ON_SKIP=1;
#     each skip is listed with its reason at the end of the lane's output, the allowed ones with why);
#   - selecting no test (pytest's exit 5), in a run without arguments (what `make test` and CI run).
# Arguments go to every lane's pytest (e.g. -x, -k NAME); with arguments, a lane they leave empty does not fail the
# run. DURATIONS=N (default 25) sets how many slow tests each lane prints.
#
# Usage: scripts/test.sh [PYTEST_ARGS...]    scripts/test.sh -h|--help (this text)
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" # the comment block above
  exit 0
fi

narrowed=$# # arguments narrow every lane's selection
PY=$PWD/.venv/bin/python
export RECSYS_FAIL_ON_SKIP=1 # tests/conftest.py: a skip not in tests/skip_allowlist.py fails the lane
DURATIONS=${DURATIONS:-25}
out=$PWD/.local/test-lanes
rehearsal=tests/e2e/test_aws_deployment_rehearsal.py
batch_reliability=tests/e2e/test_batch_reliability.py
started=$(date +%s)
rm -rf "$out"
mkdir -p "$out"

declare -A pids
# lane NAME TEST_STACK_ENV... -- PYTEST_PATHS...: a pytest run in a session of its own (an interrupted run stops
# it and everything it started), in the background
lane() {
  local name=$1
  shift
  local env=()
  while [[ $1 != "--" ]]; do
    env+=("$1")
    shift
  done
  shift
  mkdir -p "$out/tmp-$name"
  setsid env "${env[@]}" TMPDIR="$out/tmp-$name" RELIABILITY_DIR="$out/reliability-$name" \
    bash -c '"$@"; rc=$?; echo $(( $(date +%s) - '"$started"' )) > "'"$out"'/lane-'"$name"'.seconds"; exit $rc' \
    lane "$PY" -m pytest -o cache_dir="$out/cache-$name" --durations="$DURATIONS" "$@" \
    >"$out/lane-$name.log" 2>&1 &
  pids[$name]=$!
}

lane b TEST_STACK_HOME="$PWD/.local/test-stack-b" TEST_MYSQL_PORT=13308 TEST_VECTOR_DB_PORT=15434 \
  TEST_AWS_PORT=15056 -- \
  "$@" tests/unit tests/dags tests/terraform tests/integration
lane c TEST_STACK_HOME="$PWD/.local/test-stack-c" TEST_MYSQL_PORT=13309 TEST_VECTOR_DB_PORT=15435 \
  TEST_AWS_PORT=15057 -- \
  "$@" "$rehearsal" "$batch_reliability"
trap 'for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done; wait' INT TERM
echo "lanes B (unit, dags, terraform, integration on .local/test-stack-b) and C (the AWS deployment rehearsal," \
  "then batch reliability on .local/test-stack-c) run in the background: $out/lane-b.log, $out/lane-c.log"

(
  unset TEST_STACK_HOME TEST_MYSQL_PORT TEST_VECTOR_DB_PORT TEST_AWS_PORT TEST_AIRFLOW_PORT
  "$PY" -m pytest --durations="$DURATIONS" "$@" tests/e2e --ignore "$rehearsal" --ignore "$batch_reliability"
)
rc_a=$?
status=0
summary=""
# lane_ended NAME RC SECONDS: the lane's part of the last line; a lane that failed or selected nothing fails the run
lane_ended() {
  local verdict="exit $2"
  if [[ $2 -eq 5 && $narrowed -gt 0 ]]; then
    verdict+=" (selected nothing: narrowed by arguments)"
  elif [[ $2 -eq 5 ]]; then
    verdict+=" (selected no test: FAILED)"
    status=1
  elif [[ $2 -ne 0 ]]; then
    verdict+=" (FAILED)"
    status=1
  fi
  summary+="${summary:+; }lane $1: $verdict after $3 s"
}
lane_ended A "$rc_a" "$(($(date +%s) - started))"
for name in b c; do
  wait "${pids[$name]}"
  rc=$?
  echo
  echo "================================ lane ${name^^} ($out/lane-$name.log) ================================"
  cat "$out/lane-$name.log"
  lane_ended "${name^^}" "$rc" "$(cat "$out/lane-$name.seconds" 2>/dev/null || echo "?")"
done
trap - INT TERM
echo
echo "$summary"
exit $status
