"""Glue job runs on the local stack: the script really runs; success and failure are visible to the provider."""

from __future__ import annotations

import time
import uuid

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def aws(stack, monkeypatch):
    for key, value in stack.environment().items():
        if key.startswith(("AIRFLOW_CONN_", "AWS_")):
            monkeypatch.setenv(key, value)
    from airflow.providers.amazon.aws.hooks.glue import GlueJobHook
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    s3 = S3Hook(aws_conn_id="aws_default")
    if not s3.check_for_bucket("glue-runner-tests"):
        s3.create_bucket(bucket_name="glue-runner-tests")
    return s3, GlueJobHook(aws_conn_id="aws_default", job_poll_interval=1)


def make_job(s3, glue_hook, source: str, max_concurrent: int = 1) -> str:
    name = f"test-job-{uuid.uuid4().hex[:8]}"
    s3.load_string(source, key=f"scripts/{name}.py", bucket_name="glue-runner-tests")
    glue_hook.conn.create_job(
        Name=name,
        Role="arn:aws:iam::123456789012:role/test",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://glue-runner-tests/scripts/{name}.py"},
        DefaultArguments={"--greeting": "hello", "--target": "default"},
        ExecutionProperty={"MaxConcurrentRuns": max_concurrent},
    )
    return name


SUCCESS_SCRIPT = """
import sys, boto3
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
print("driver says", args["--greeting"], "to", args["--target"])
boto3.client("s3").put_object(Bucket="glue-runner-tests", Key="out/" + args["--JOB_NAME"], Body=args["--target"])
"""


def test_a_run_executes_the_script_with_merged_arguments(aws):
    s3, glue = aws
    name = make_job(s3, glue, SUCCESS_SCRIPT)
    run_id = glue.conn.start_job_run(JobName=name, Arguments={"--target": "run"})["JobRunId"]
    assert glue.job_completion(name, run_id)["JobRunState"] == "SUCCEEDED"
    assert s3.read_key(f"out/{name}", "glue-runner-tests") == "run"  # run argument overrides the default
    run = glue.conn.get_job_run(JobName=name, RunId=run_id)["JobRun"]
    assert run["ExecutionTime"] >= 0
    events = glue.logs_hook.get_conn().get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run_id)
    assert any("driver says hello to run" in e["message"] for e in events["events"])


def test_a_failing_script_fails_the_run_with_its_error(aws):
    s3, glue = aws
    name = make_job(s3, glue, "raise ValueError('source table missing: ratings')\n")
    run_id = glue.conn.start_job_run(JobName=name)["JobRunId"]
    from airflow.providers.common.compat.sdk import AirflowException

    with pytest.raises(AirflowException, match="FAILED"):
        glue.job_completion(name, run_id)
    run = glue.conn.get_job_run(JobName=name, RunId=run_id)["JobRun"]
    assert run["JobRunState"] == "FAILED"
    assert "ValueError: source table missing: ratings" in run["ErrorMessage"]


def test_max_concurrent_runs_is_enforced(aws):
    s3, glue = aws
    name = make_job(s3, glue, "import time; time.sleep(3)\n")
    first = glue.conn.start_job_run(JobName=name)["JobRunId"]
    with pytest.raises(glue.conn.exceptions.ConcurrentRunsExceededException):
        glue.conn.start_job_run(JobName=name)
    states = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = glue.conn.get_job_run(JobName=name, RunId=first)["JobRun"]["JobRunState"]
        states.append(state)
        if state == "SUCCEEDED":
            break
        time.sleep(0.5)
    assert "RUNNING" in states
    assert states[-1] == "SUCCEEDED"


def test_update_job_replaces_the_definition(aws):
    s3, glue = aws
    name = make_job(s3, glue, SUCCESS_SCRIPT)
    job = glue.conn.get_job(JobName=name)["Job"]
    glue.conn.update_job(
        JobName=name,
        JobUpdate={"Role": job["Role"], "Command": job["Command"], "DefaultArguments": {"--greeting": "hi"}},
    )
    assert glue.conn.get_job(JobName=name)["Job"]["DefaultArguments"] == {"--greeting": "hi"}
