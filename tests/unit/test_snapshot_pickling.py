"""The snapshot pickles what moto's models hold; `make up` reads its marker once (recsys_local.moto_snapshot)."""

from __future__ import annotations

import json
import pickle
import threading
import weakref
from collections import defaultdict

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from recsys_local.moto_snapshot import _dumps, restored


class Holder:
    pass


def test_what_plain_pickle_refuses_round_trips():
    function = Holder()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    curve = ec.generate_private_key(ec.SECP256R1())
    aliases = defaultdict(lambda: {})  # as moto's LambdaStorage has it
    aliases["fn"]["live"] = "1"
    value = {
        "key": key,
        "curve": curve,
        "arns": weakref.WeakValueDictionary({"arn:fn": function}),
        "function": function,
        "aliases": aliases,
        "lock": threading.Lock(),
        "rlock": threading.RLock(),
    }
    for name in ("key", "arns", "aliases", "lock"):
        try:
            pickle.dumps(value[name])
        except Exception:  # noqa: S110 - the point: plain pickle cannot
            pass
        else:
            raise AssertionError(f"plain pickle handles {name}: the reducer is not what makes it work")

    back = pickle.loads(_dumps(value))  # noqa: S301 - our own bytes
    assert back["key"].private_numbers() == key.private_numbers()
    assert back["curve"].private_numbers() == curve.private_numbers()
    assert back["arns"]["arn:fn"] is back["function"]  # the same object, still weakly held
    assert back["aliases"]["fn"] == {"live": "1"}
    assert back["aliases"]["new"] == {}
    assert back["lock"].acquire(blocking=False)
    assert back["rlock"].acquire(blocking=False)


def test_the_marker_is_read_once_and_only_by_the_endpoint_that_wrote_it(tmp_path):
    marker = tmp_path / "moto" / "restored.json"
    marker.parent.mkdir()
    marker.write_text(json.dumps({"pid": 41, "taken": "2026-12-06T03:00:00+00:00", "left_out": []}))
    assert restored(tmp_path, 42) is None  # another endpoint's start: stale
    assert not marker.exists()
    marker.write_text(json.dumps({"pid": 42, "taken": "t", "left_out": ["moto.x.models:x_backends"]}))
    assert restored(tmp_path, 42) == {"pid": 42, "taken": "t", "left_out": ["moto.x.models:x_backends"]}
    assert restored(tmp_path, 42) is None


def call(method: str, path: str = "/", target: str = "", body: bytes = b"", query: str = ""):
    from recsys_local.aws_server import AwsCall

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    return AwsCall(environ=environ, body=body)


def test_checkpoints_follow_control_plane_changes_not_reads_or_data():
    from recsys_local.moto_snapshot import mutates

    changes = [
        call("POST", target="AWSGlue.CreateJob", body=b"{}"),
        call("POST", target="secretsmanager.PutSecretValue", body=b"{}"),
        call("POST", target="Firehose_20150804.CreateDeliveryStream", body=b"{}"),
        call("POST", body=b"Action=CreateRole&Version=2010-05-08&RoleName=r"),  # IAM, query protocol
        call("POST", body=b"Version=2014-10-31&Action=CreateDBInstance"),  # RDS
        call("POST", "/2015-03-31/functions"),  # Lambda CreateFunction
        call("PUT", "/2015-03-31/functions/fn/aliases/live"),
        call("PUT", "/bucket"),  # CreateBucket
        call("PUT", "/bucket", query="lifecycle"),
        call("DELETE", "/bucket", query="policy"),
    ]
    unchanged = [
        call("POST", target="AWSGlue.GetJobRun", body=b"{}"),
        call("POST", target="Kinesis_20131202.PutRecords", body=b"{}"),  # the journal keeps records
        call("POST", target="Firehose_20150804.PutRecordBatch", body=b"{}"),
        call("POST", target="Logs_20140328.PutLogEvents", body=b"{}"),
        call("POST", target="AWSGlue.StartJobRun", body=b"{}"),  # runs belong to the Glue runner
        call("POST", body=b"Action=GetCallerIdentity&Version=2011-06-15"),
        call("POST", body=b"Action=DescribeDBInstances&Version=2014-10-31"),
        call("POST", "/2015-03-31/functions/fn/invocations"),
        call("GET", "/2015-03-31/functions/fn"),
        call("PUT", "/bucket/key.parquet"),  # objects: the S3 mirror keeps them
        call("DELETE", "/bucket/a/b"),
        call("POST", "/bucket", query="delete"),  # DeleteObjects
        call("GET", "/bucket", query="lifecycle"),
        call("PUT", "/bucket/key", body=b"x&Action=CreateRole"),  # an object's body is not a query
    ]
    assert [c.environ for c in changes if not mutates(c)] == []
    assert [c.environ for c in unchanged if mutates(c)] == []


def test_a_checkpoint_is_pickled_by_a_forked_child_while_requests_take_the_lock_again(tmp_path, monkeypatch):
    """The request lock is held only for the fork: the copy is pickled and written by the child (issue: a pickle
    under the lock paused every call for the whole snapshot)."""
    import os
    import time

    import boto3
    from moto import mock_aws

    from recsys_local.aws_server import MOTO_LOCK
    from recsys_local.moto_snapshot import MotoSnapshot

    started = tmp_path / "child-started"
    write = MotoSnapshot._write

    def slow_write(self, final, locked=True):  # runs in the child: says so, then takes its time
        started.write_text(str(os.getpid()))
        time.sleep(1.5)
        return write(self, final, locked)

    monkeypatch.setattr(MotoSnapshot, "_write", slow_write)
    snapshot = MotoSnapshot(tmp_path)
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
        iam.create_role(RoleName="kept-by-the-checkpoint", AssumeRolePolicyDocument="{}")
        result: list[bool] = []
        worker = threading.Thread(target=lambda: result.append(snapshot._checkpoint()))
        worker.start()
        for _ in range(600):
            if started.exists() and started.read_text():
                break
            time.sleep(0.05)
        child = int(started.read_text())
        assert child != os.getpid()
        with MOTO_LOCK:  # a request's turn, while the child still pickles
            os.kill(child, 0)  # alive (raises ProcessLookupError otherwise)
        worker.join(timeout=60)
    assert result == [True]
    saved = pickle.loads(snapshot.path.read_bytes())  # noqa: S301 - written by this test
    roles = next(v for k, v in saved["backends"].items() if k.startswith("moto.iam."))
    assert "kept-by-the-checkpoint" in {role.name for role in roles["123456789012"]["global"].roles.values()}
