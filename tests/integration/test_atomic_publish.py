"""The Glue job's publish is atomic: killed mid-upload or mid-cleanup, the previous dataset stays complete; a reader
that follows the manifest never sees a missing file or two runs mixed. Real processes killed with SIGKILL."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.etl.glue_job import MANIFEST_NAME, publish, read_manifest

pytestmark = pytest.mark.integration

BUCKET = "lake"
TARGET = f"s3://{BUCKET}/ratings-ml-training/"
CUSTOMERS = 12


def stage(tmp_path, name: str, rows_per_file: int) -> list[tuple[str, str]]:
    """A staging folder as Spark leaves it: one file per customer folder; every row says which run wrote it."""
    files = []
    for customer in range(1, CUSTOMERS + 1):
        path = tmp_path / name / f"customerNumber={customer}" / "part-00000.snappy.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"run": [name] * rows_per_file, "productRating": [3] * rows_per_file}), path)
        files.append((f"customerNumber={customer}/part-00000.snappy.parquet", str(path)))
    return files


def base_manifest(name: str, rows_per_file: int) -> dict:
    return {"run_id": name, "target_path": TARGET, "output_rows": rows_per_file * CUSTOMERS}


def read_dataset(s3) -> tuple[dict, set[str], int]:
    """What a reader does: resolve the live manifest, read exactly its files."""
    manifest = read_manifest(s3, TARGET)
    runs, rows = set(), 0
    for key in manifest["files"]:
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
        runs |= set(table.column("run").to_pylist())
        rows += table.num_rows
    return manifest, runs, rows


def publish_and_die(server, tmp_path, name: str, rows: int, method: str, after: int) -> int:
    """Publish run ``name`` in a child process that SIGKILLs itself once ``after`` calls of ``s3.<method>`` have
    completed (``after=0``: at the first call, before it runs). The uploads run concurrently, so calls already in
    flight may complete too."""
    files = stage(tmp_path, name, rows)
    script = textwrap.dedent(
        f"""
        import os, signal, boto3
        from recsys.etl.glue_job import publish
        s3 = boto3.client("s3", endpoint_url={server.endpoint_url!r}, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        import threading
        class Dying:
            done = 0
            lock = threading.Lock()
            def __getattr__(self, attr):
                real = getattr(s3, attr)
                if attr != {method!r}:
                    return real
                def call(*args, **kwargs):
                    if {after} == 0:
                        os.kill(os.getpid(), signal.SIGKILL)
                    result = real(*args, **kwargs)
                    with Dying.lock:
                        Dying.done += 1
                        if Dying.done >= {after}:
                            os.kill(os.getpid(), signal.SIGKILL)
                    return result
                return call
        publish(Dying(), {files!r}, {TARGET!r}, {name!r}, {base_manifest(name, rows)!r})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    return result.returncode


def keys(s3) -> set[str]:
    return {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
    }


def test_runs_killed_during_upload_and_during_cleanup_leave_a_complete_dataset(in_process_aws, tmp_path):
    server, client = in_process_aws
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    a = publish(s3, stage(tmp_path, "run-a", 3), TARGET, "run-a", base_manifest("run-a", 3))

    # killed once 5 of 12 concurrent uploads are done (before its commit): run-a stays live and complete; the
    # orphans (5, or a few more that were in flight) are never read
    assert publish_and_die(server, tmp_path, "run-b", 4, "upload_file", after=5) == -9
    manifest, runs, rows = read_dataset(s3)
    assert (manifest["run_id"], runs, rows) == ("run-a", {"run-a"}, 3 * CUSTOMERS)
    assert 5 <= len([k for k in keys(s3) if "/run-b-" in k]) <= 12

    # killed at its first delete: run-c is committed and complete, run-a's files are all still there (grace)
    assert publish_and_die(server, tmp_path, "run-c", 5, "delete_objects", after=0) == -9
    manifest, runs, rows = read_dataset(s3)
    assert (manifest["run_id"], manifest["previous_run_id"], runs, rows) == ("run-c", "run-a", {"run-c"}, 60)
    assert set(a["files"]) <= keys(s3)

    # the next good run deletes run-a (two commits old) and run-b's orphans, keeps run-c for readers of it
    d = publish(s3, stage(tmp_path, "run-d", 6), TARGET, "run-d", base_manifest("run-d", 6))
    remaining = keys(s3)
    assert not {k for k in remaining if "/run-a-" in k or "/run-b-" in k}
    assert {k for k in remaining if "/run-c-" in k} == set(manifest["files"])
    assert remaining == set(d["files"]) | set(manifest["files"]) | {f"ratings-ml-training/{MANIFEST_NAME}"}
    assert read_dataset(s3)[1:] == ({"run-d"}, 6 * CUSTOMERS)


def test_a_reader_concurrent_with_publishes_never_sees_a_missing_file_or_two_runs(in_process_aws, tmp_path):
    _server, client = in_process_aws
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    publish(s3, stage(tmp_path, "run-0", 1), TARGET, "run-0", base_manifest("run-0", 1))
    commits: list[str] = ["run-0"]
    stop = threading.Event()
    observed: list[tuple[str, int]] = []
    problems: list[str] = []

    def reader() -> None:
        reader_s3 = client("s3")
        while not stop.is_set():
            commits_before = len(commits)
            try:
                manifest, runs, rows = read_dataset(reader_s3)
            except Exception as exc:  # a missing file
                if len(commits) - commits_before < 2:  # within the documented grace: a real violation
                    problems.append(f"{type(exc).__name__}: {exc}")
                continue
            if runs != {manifest["run_id"]} or rows != manifest["output_rows"]:
                problems.append(f"manifest {manifest['run_id']} read runs {runs}, {rows} rows")
            observed.append((manifest["run_id"], rows))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for number in range(1, 7):
            name = f"run-{number}"
            publish(s3, stage(tmp_path, name, number + 1), TARGET, name, base_manifest(name, number + 1))
            commits.append(name)
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not problems, problems[:5]
    assert len({run for run, _ in observed}) >= 3, observed  # the reader really overlapped several publishes
