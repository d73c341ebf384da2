"""Glue job runs on the local stack: the script really runs; success and failure are visible to the provider."""

from __future__ import annotations

import json
import time
import uuid

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def aws(stack, monkeypatch):
    # the runner is under test here, not the workers' permissions: the administrator makes the buckets and jobs
    for key, value in stack.admin_environment().items():
        if key.startswith(("AIRFLOW_CONN_", "AWS_")):
            monkeypatch.setenv(key, value)
    from airflow.providers.amazon.aws.hooks.glue import GlueJobHook
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    s3 = S3Hook(aws_conn_id="aws_default")
    if not s3.check_for_bucket("glue-runner-tests"):
        s3.create_bucket(bucket_name="glue-runner-tests")
    job_role(stack.client("iam"))
    return s3, GlueJobHook(aws_conn_id="aws_default", job_poll_interval=1)


#: The jobs' role on the test stack, whose endpoint enforces IAM: the runner reads the script, runs the driver and
#: ships its logs as this role, as Glue does. It may read the scripts and write under out/, nothing else.
JOB_ROLE = "glue-runner-tests-job"
JOB_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::glue-runner-tests/scripts/*"},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::glue-runner-tests/out/*"},
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "arn:aws:logs:*:123456789012:log-group:/aws-glue/*",
        },
    ],
}


def job_role(iam) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    try:
        arn = iam.get_role(RoleName=JOB_ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=JOB_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=JOB_ROLE, PolicyName="job", PolicyDocument=json.dumps(JOB_POLICY))
    return str(arn)


def make_job(s3, glue_hook, source: str, max_concurrent: int = 1, role: str = JOB_ROLE) -> str:
    name = f"test-job-{uuid.uuid4().hex[:8]}"
    s3.load_string(source, key=f"scripts/{name}.py", bucket_name="glue-runner-tests")
    glue_hook.conn.create_job(
        Name=name,
        Role=f"arn:aws:iam::123456789012:role/{role}",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://glue-runner-tests/scripts/{name}.py"},
        DefaultArguments={"--greeting": "hello", "--target": "default"},
        ExecutionProperty={"MaxConcurrentRuns": max_concurrent},
    )
    return name


SUCCESS_SCRIPT = """
import sys, time, boto3
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
print("driver says", args["--greeting"], "to", args["--target"])
time.sleep(2)
print("driver done", flush=True)
boto3.client("s3").put_object(Bucket="glue-runner-tests", Key="out/" + args["--JOB_NAME"], Body=args["--target"])
"""


def test_a_run_executes_the_script_with_merged_arguments(aws):
    s3, glue = aws
    name = make_job(s3, glue, SUCCESS_SCRIPT)
    started = time.monotonic()
    run_id = glue.conn.start_job_run(JobName=name, Arguments={"--target": "run"})["JobRunId"]
    assert glue.job_completion(name, run_id)["JobRunState"] == "SUCCEEDED"
    elapsed = time.monotonic() - started
    assert s3.read_key(f"out/{name}", "glue-runner-tests") == "run"  # run argument overrides the default
    run = glue.conn.get_job_run(JobName=name, RunId=run_id)["JobRun"]
    assert 2 <= run["ExecutionTime"] <= elapsed  # the script sleeps 2 s; the run took no longer than the wait
    assert run["CompletedOn"] >= run["StartedOn"]
    # the whole output is in CloudWatch once the run reads SUCCEEDED, its last line included
    events = glue.logs_hook.get_conn().get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run_id)
    messages = [e["message"] for e in events["events"]]
    assert "driver says hello to run" in messages
    assert messages[-1] == "driver done"


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


def test_the_run_acts_as_the_jobs_role_and_fails_on_what_it_does_not_grant(aws):
    """As Glue: the driver's calls are the job role's; a write the role does not allow fails the run, naming it."""
    s3, glue = aws
    name = make_job(
        s3,
        glue,
        "import boto3\nboto3.client('s3').put_object(Bucket='glue-runner-tests', Key='elsewhere/x', Body=b'')\n",
    )
    run_id = glue.conn.start_job_run(JobName=name)["JobRunId"]
    from airflow.providers.common.compat.sdk import AirflowException

    with pytest.raises(AirflowException, match="FAILED"):
        glue.job_completion(name, run_id)
    error = glue.conn.get_job_run(JobName=name, RunId=run_id)["JobRun"]["ErrorMessage"]
    assert "AccessDenied" in error
    assert f"assumed-role/{JOB_ROLE}/GlueJobRunnerSession is not authorized to perform: s3:PutObject" in error


def test_a_job_whose_role_does_not_exist_fails_its_run(aws):
    s3, glue = aws
    name = make_job(s3, glue, "print('never runs')\n", role="no-such-role")
    run_id = glue.conn.start_job_run(JobName=name)["JobRunId"]
    from airflow.providers.common.compat.sdk import AirflowException

    with pytest.raises(AirflowException, match="FAILED"):
        glue.job_completion(name, run_id)
    error = glue.conn.get_job_run(JobName=name, RunId=run_id)["JobRun"]["ErrorMessage"]
    assert "sts:AssumeRole on resource: arn:aws:iam::123456789012:role/no-such-role" in error


def test_a_job_whose_role_trusts_another_service_fails_its_run(stack, aws):
    """The role exists and grants what the job needs, but its trust policy names Lambda: Glue cannot assume it."""
    s3, glue = aws
    iam = stack.client("iam")
    lambdas_only = "glue-runner-tests-lambda-role"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        iam.get_role(RoleName=lambdas_only)
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(RoleName=lambdas_only, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=lambdas_only, PolicyName="job", PolicyDocument=json.dumps(JOB_POLICY))
    name = make_job(s3, glue, "print('never runs')\n", role=lambdas_only)
    run_id = glue.conn.start_job_run(JobName=name)["JobRunId"]
    from airflow.providers.common.compat.sdk import AirflowException

    with pytest.raises(AirflowException, match="FAILED"):
        glue.job_completion(name, run_id)
    error = glue.conn.get_job_run(JobName=name, RunId=run_id)["JobRun"]["ErrorMessage"]
    role_arn = f"arn:aws:iam::123456789012:role/{lambdas_only}"
    assert f"glue.amazonaws.com is not authorized to perform: sts:AssumeRole on resource: {role_arn}" in error
    assert "no resource-based policy allows" in error


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


@pytest.fixture
def local_glue(in_process_aws, monkeypatch):
    """The endpoint in-process, its Glue executor's minute shortened to a second, a secret in its environment."""
    monkeypatch.setenv("VECTOR_DB_PASSWORD", "endpoint-only-secret")
    server, client = in_process_aws
    runner = next(e for e in server.extensions if type(e).__name__ == "GlueRunner")
    runner.minute_seconds = 1.0
    client("s3").create_bucket(Bucket="scripts")

    def job(source: str, **extra) -> str:
        name = f"job-{uuid.uuid4().hex[:8]}"
        client("s3").put_object(Bucket="scripts", Key=f"{name}.py", Body=source.encode())
        client("glue").create_job(
            Name=name,
            Role="arn:aws:iam::123456789012:role/test",
            Command={"Name": "glueetl", "ScriptLocation": f"s3://scripts/{name}.py"},
            **extra,
        )
        return name

    return client, job


def wait_for_end(glue, name, run_id, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]
        if run["JobRunState"] not in ("STARTING", "RUNNING", "STOPPING"):
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} still {run['JobRunState']}")


def test_simultaneous_starts_never_exceed_max_concurrent_runs(local_glue):
    from concurrent.futures import ThreadPoolExecutor

    client, job = local_glue
    name = job("import time; time.sleep(2)\n", ExecutionProperty={"MaxConcurrentRuns": 1})

    glue = client("glue")  # one client for the eight threads: a client is thread-safe, creating clients is not

    def start(_):
        try:
            return glue.start_job_run(JobName=name)["JobRunId"]
        except glue.exceptions.ConcurrentRunsExceededException:
            return None

    with ThreadPoolExecutor(8) as pool:
        started = [r for r in pool.map(start, range(8)) if r]
    assert len(started) == 1
    assert wait_for_end(client("glue"), name, started[0])["JobRunState"] == "SUCCEEDED"


def test_the_run_timeout_stops_the_driver(local_glue):
    client, job = local_glue
    name = job("import time\nprint('working', flush=True)\ntime.sleep(120)\n", Timeout=10)
    started = time.monotonic()
    run_id = client("glue").start_job_run(JobName=name, Timeout=2)["JobRunId"]  # the run's Timeout wins
    run = wait_for_end(client("glue"), name, run_id)
    assert run["JobRunState"] == "TIMEOUT"
    assert "timed out after 2 minute" in run["ErrorMessage"]
    assert time.monotonic() - started < 30


def test_driver_output_reaches_cloudwatch_while_it_runs(local_glue):
    client, job = local_glue
    name = job("import time\nprint('step one done', flush=True)\ntime.sleep(8)\nprint('step two done')\n")
    run_id = client("glue").start_job_run(JobName=name)["JobRunId"]
    logs = client("logs")
    seen: list[str] = []
    deadline = time.monotonic() + 7
    while time.monotonic() < deadline and "step one done" not in seen:
        time.sleep(0.5)
        try:
            events = logs.get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run_id)["events"]
        except logs.exceptions.ResourceNotFoundException:
            continue
        seen = [e["message"] for e in events]
    assert "step one done" in seen
    assert client("glue").get_job_run(JobName=name, RunId=run_id)["JobRun"]["JobRunState"] == "RUNNING"
    assert wait_for_end(client("glue"), name, run_id)["JobRunState"] == "SUCCEEDED"
    events = logs.get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run_id)["events"]
    assert [e["message"] for e in events] == ["step one done", "step two done"]  # each line once


def test_the_driver_does_not_inherit_the_endpoints_environment(local_glue):
    client, job = local_glue
    script = (
        "import os, boto3\n"
        "boto3.client('s3').put_object(Bucket='scripts', Key='env.txt', Body='\\n'.join(sorted(os.environ)))\n"
    )
    name = job(script)
    run_id = client("glue").start_job_run(JobName=name)["JobRunId"]
    assert wait_for_end(client("glue"), name, run_id)["JobRunState"] == "SUCCEEDED"
    names = client("s3").get_object(Bucket="scripts", Key="env.txt")["Body"].read().decode().split()
    assert "VECTOR_DB_PASSWORD" not in names
    assert {"AWS_ENDPOINT_URL", "PATH", "SPARK_LOCAL_IP"} <= set(names)


def test_extra_files_are_in_the_scripts_working_directory_as_in_glue(local_glue):
    client, job = local_glue
    s3 = client("s3")
    s3.put_object(Bucket="scripts", Key="glue/certs/ca.pem", Body=b"-----BEGIN CERTIFICATE-----\n")
    s3.put_object(Bucket="scripts", Key="conf/settings.json", Body=b'{"k": 1}')
    script = (
        "import boto3, pathlib\n"
        "here = sorted(pathlib.Path('.').iterdir())\n"
        "found = {p.name: p.read_text() for p in here if p.suffix in ('.pem', '.json')}\n"
        "boto3.client('s3').put_object(Bucket='scripts', Key='found.txt', Body=repr(found))\n"
    )
    extra = "s3://scripts/glue/certs/ca.pem, s3://scripts/conf/settings.json"
    name = job(script, DefaultArguments={"--extra-files": extra})
    run_id = client("glue").start_job_run(JobName=name)["JobRunId"]
    assert wait_for_end(client("glue"), name, run_id)["JobRunState"] == "SUCCEEDED"
    found = s3.get_object(Bucket="scripts", Key="found.txt")["Body"].read().decode()
    assert found == repr({"ca.pem": "-----BEGIN CERTIFICATE-----\n", "settings.json": '{"k": 1}'})
