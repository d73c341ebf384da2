#!/usr/bin/env bash
# `make test`'s pytest: the whole suite in two lanes at once, each against services of its own, so the
# mostly-waiting work of one (Terraform's provider waits, Firehose buffers, Airflow task start-up) overlaps the other.
#
#   lane A  tests/e2e (but the rehearsal): the test stack, .local/test-stack (ports 13307/15433/15055, Airflow 18080)
#   lane B  tests/unit, tests/dags, tests/terraform, tests/integration: a second test stack, .local/test-stack-b
#           (ports 13308/15434/15056, Airflow 18081); then the AWS deployment rehearsal, in its own emulated
#           account (.local/rehearsal-account)
#
# Lane A prints as it runs; lane B's output is kept in .local/test-lanes/lane-b.log and printed when both ended.
# Either lane failing fails the run. Arguments are passed to both pytest runs (e.g. -x); DURATIONS=N (default 25)
# sets how many of the slowest tests each lane prints.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

PY=.venv/bin/python
DURATIONS=${DURATIONS:-25}
out=.local/test-lanes
mkdir -p "$out"
rehearsal=tests/e2e/test_aws_deployment_rehearsal.py
started=$(date +%s)

(
  export TEST_STACK_HOME="$PWD/.local/test-stack-b" TEST_MYSQL_PORT=13308 TEST_VECTOR_DB_PORT=15434 \
    TEST_AWS_PORT=15056 TEST_AIRFLOW_PORT=18081
  # its own cache file: the two lanes would overwrite each other's
  $PY -m pytest -p no:cacheprovider --durations="$DURATIONS" "$@" \
    tests/unit tests/dags tests/terraform tests/integration "$rehearsal"
) >"$out/lane-b.log" 2>&1 &
lane_b=$!
echo "lane B (unit, dags, terraform, integration on .local/test-stack-b, then the AWS rehearsal) runs in the" \
  "background: $out/lane-b.log"

$PY -m pytest --durations="$DURATIONS" "$@" tests/e2e --deselect "$rehearsal"
rc_a=$?
seconds_a=$(($(date +%s) - started))
wait "$lane_b"
rc_b=$?
seconds_b=$(($(date +%s) - started))

echo
echo "================================ lane B ($out/lane-b.log) ================================"
cat "$out/lane-b.log"
echo
echo "lane A (tests/e2e): exit $rc_a after ${seconds_a} s; lane B: exit $rc_b after ${seconds_b} s"
[[ $rc_a -eq 0 && $rc_b -eq 0 ]]
