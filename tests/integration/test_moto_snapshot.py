"""A graceful stop of the local AWS endpoint keeps every resource it was given; a kill keeps its last checkpoint,
taken a second after each change, without Glue job runs (recsys_local.moto_snapshot). The endpoint runs as its own
process, as in the stack."""

from __future__ import annotations

import json
import signal
import stat
import time

import pytest
from endpoint_process import Endpoint
from test_local_lambda_and_firehose import create_fn

pytestmark = pytest.mark.integration

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:role/glue"},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::cfg/*",
        }
    ],
}


def give(endpoint: Endpoint) -> None:
    """One of each kind of resource the Terraform roots create, configured as they configure them."""
    c = endpoint.client
    key = c("kms").create_key(Description="snapshot")["KeyMetadata"]["KeyId"]
    c("kms").create_alias(AliasName="alias/snapshot", TargetKeyId=key)
    c("iam").create_role(RoleName="glue", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
    c("iam").put_role_policy(
        RoleName="glue",
        PolicyName="inline",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    c("glue").create_database(DatabaseInput={"Name": "lake"})
    c("glue").create_job(Name="etl", Role="glue", Command={"Name": "glueetl", "ScriptLocation": "s3://cfg/job.py"})
    c("secretsmanager").create_secret(Name="source", SecretString='{"username": "u", "password": "p"}')
    create_fn(c, 10)
    version = c("lambda").publish_version(FunctionName="fn")["Version"]
    c("lambda").create_alias(FunctionName="fn", Name="live", FunctionVersion=version)
    s3 = c("s3")
    s3.create_bucket(Bucket="cfg")
    s3.put_bucket_versioning(Bucket="cfg", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(
        Bucket="cfg",
        LifecycleConfiguration={
            "Rules": [
                {"ID": "old", "Status": "Enabled", "Filter": {}, "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}
            ]
        },
    )
    s3.put_bucket_policy(Bucket="cfg", Policy=json.dumps(POLICY))
    s3.put_bucket_tagging(Bucket="cfg", Tagging={"TagSet": [{"Key": "project", "Value": "recsys"}]})
    s3.put_object(Bucket="cfg", Key="job.py", Body=b"print('etl')")
    s3.put_object(Bucket="cfg", Key="slow.py", Body=b"import time\ntime.sleep(120)\n")
    c("glue").create_job(Name="slow", Role="glue", Command={"Name": "glueetl", "ScriptLocation": "s3://cfg/slow.py"})
    kinesis = c("kinesis")
    kinesis.create_stream(StreamName="activity", ShardCount=1)
    kinesis.start_stream_encryption(StreamName="activity", EncryptionType="KMS", KeyId=key)
    kinesis.add_tags_to_stream(StreamName="activity", Tags={"project": "recsys"})
    kinesis.put_record(StreamName="activity", Data=b"event", PartitionKey="k")


class Missing(str):
    """A resource read back as an error code (the resource is gone)."""


def seen(endpoint: Endpoint) -> dict[str, object]:
    """What a Terraform refresh reads back, minus per-request noise; a missing resource reads as its error code."""
    c = endpoint.client

    def read(call, *path):
        try:
            value = call()
            for step in path:
                value = value[step]
        except KeyError as exc:  # e.g. no versioning status: never configured
            return Missing(f"no {exc}")
        except Exception as exc:  # botocore's ClientError: the resource is gone
            return Missing(getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__))
        return value

    s3 = c("s3")
    stream = read(lambda: c("kinesis").describe_stream_summary(StreamName="activity"), "StreamDescriptionSummary")
    return {
        "alias": read(lambda: [a for a in c("kms").list_aliases()["Aliases"] if a["AliasName"] == "alias/snapshot"]),
        "role": read(lambda: c("iam").get_role_policy(RoleName="glue", PolicyName="inline"), "PolicyDocument"),
        "database": read(lambda: c("glue").get_database(Name="lake"), "Database", "Name"),
        "job": read(lambda: c("glue").get_job(JobName="etl"), "Job", "Command"),
        "secret": read(lambda: c("secretsmanager").get_secret_value(SecretId="source"), "SecretString"),
        "alias_live": read(lambda: c("lambda").get_alias(FunctionName="fn", Name="live"), "FunctionVersion"),
        "code": read(lambda: c("lambda").get_function(FunctionName="fn"), "Configuration", "CodeSha256"),
        "versioning": read(lambda: s3.get_bucket_versioning(Bucket="cfg"), "Status"),
        "lifecycle": read(lambda: s3.get_bucket_lifecycle_configuration(Bucket="cfg"), "Rules"),
        "policy": read(lambda: json.loads(s3.get_bucket_policy(Bucket="cfg")["Policy"])),
        "tags": read(lambda: s3.get_bucket_tagging(Bucket="cfg"), "TagSet"),
        "object": read(lambda: s3.get_object(Bucket="cfg", Key="job.py")["Body"].read()),
        "stream": stream
        if isinstance(stream, str)
        else {k: stream.get(k) for k in ("StreamARN", "EncryptionType", "KeyId")},
        "stream_tags": read(lambda: c("kinesis").list_tags_for_stream(StreamName="activity"), "Tags"),
    }


def checkpointed_after(snapshot, since_ns: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not (snapshot.exists() and snapshot.stat().st_mtime_ns > since_ns):
        assert time.monotonic() < deadline, "no checkpoint followed the change"
        time.sleep(0.2)


def test_a_graceful_stop_keeps_every_resource_and_a_kill_keeps_the_last_checkpoint_without_job_runs(tmp_path):
    endpoint = Endpoint(tmp_path / "state", tmp_path / "endpoint.log")
    snapshot = tmp_path / "state" / "moto" / "snapshot.pickle"
    final = tmp_path / "state" / "moto" / "snapshot.final"
    marker = tmp_path / "state" / "moto" / "restored.json"
    endpoint.start()
    try:
        give(endpoint)
        before = seen(endpoint)
        assert not [name for name, value in before.items() if isinstance(value, Missing)], before

        glue = endpoint.client("glue")
        interrupted = glue.start_job_run(JobName="slow")["JobRunId"]
        deadline = time.monotonic() + 60
        while glue.get_job_run(JobName="slow", RunId=interrupted)["JobRun"]["JobRunState"] != "RUNNING":
            assert time.monotonic() < deadline, "the slow run never started"
            time.sleep(0.5)

        endpoint.stop(signal.SIGTERM)
        assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600  # it holds the secret's value
        assert final.exists()
        endpoint.start()
        assert not final.exists(), "a loaded snapshot is a checkpoint from then on: later changes may be missing"
        loaded = json.loads(marker.read_text())
        assert (loaded["pid"], loaded["left_out"], loaded["final"]) == (endpoint.process.pid, [], True)
        assert seen(endpoint) == before
        # moto alone would call the interrupted run SUCCEEDED; the runner kept what happened to it
        run = endpoint.client("glue").get_job_run(JobName="slow", RunId=interrupted)["JobRun"]
        assert run["JobRunState"] == "FAILED"
        assert "stopped during the run" in run["ErrorMessage"]
        answer = endpoint.client("lambda").invoke(FunctionName="fn", Qualifier="live", Payload=b'{"n": 1}')
        assert "FunctionError" not in answer, answer["Payload"].read()

        # a change answered after the restart: a checkpoint follows it within seconds
        changed = time.time_ns()
        endpoint.client("glue").create_database(DatabaseInput={"Name": "later"})
        checkpointed_after(snapshot, changed)
        expected = seen(endpoint)
        endpoint.stop(signal.SIGKILL)
        endpoint.start()
        loaded = json.loads(marker.read_text())
        assert (loaded["pid"], loaded["final"]) == (endpoint.process.pid, False)
        assert seen(endpoint) == expected == before  # every resource, each bucket's and stream's configuration
        assert endpoint.client("glue").get_database(Name="later")["Database"]["Name"] == "later"
        assert (
            endpoint.client("kinesis").get_records(
                ShardIterator=endpoint.client("kinesis").get_shard_iterator(
                    StreamName="activity", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )["Records"][0]["Data"]
            == b"event"
        )  # the journal's record
        # no job run comes back from a checkpoint: the runner that knew their outcome is gone, and moto alone would
        # answer SUCCEEDED for a run that failed or never finished
        with pytest.raises(glue.exceptions.EntityNotFoundException):
            endpoint.client("glue").get_job_run(JobName="slow", RunId=interrupted)
        answer = endpoint.client("lambda").invoke(FunctionName="fn", Qualifier="live", Payload=b'{"n": 2}')
        assert "FunctionError" not in answer, answer["Payload"].read()
    finally:
        endpoint.stop(signal.SIGTERM)
