"""DAG integrity: every file in dags/ parses, follows the house rules, and parses cheaply and offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.config import project_root

DAGS_DIR = project_root() / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
HEAVY_MODULES = ("torch", "pyspark", "pandas", "boto3", "sklearn", "psycopg", "pymysql")


def test_there_are_dags_to_check():
    assert DAG_FILES, f"no DAG files in {DAGS_DIR}"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR), safe_mode=False)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_one_dag_per_file_named_after_the_module(dagbag, path):
    dag_ids = [d for d, dag in dagbag.dags.items() if Path(dag.fileloc).name == path.name]
    assert dag_ids == [path.stem]


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_house_rules(dagbag, path):
    dag = dagbag.dags[path.stem]
    assert dag.owner not in ("", "airflow")
    assert dag.tags
    assert dag.doc_md
    assert len(dag.doc_md) > 200
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.retries >= 2, task.task_id
        assert task.owner == dag.owner, task.task_id
        # a reschedule-mode sensor races the executor's late "success" for its previous poke and the scheduler
        # fails the try as killed externally (apache/airflow#71172): sensors poke or defer
        assert getattr(task, "mode", "poke") != "reschedule", task.task_id


# The Amazon provider's operator modules import boto3 themselves, and a DAG cannot use GlueJobOperator or
# S3KeySensor without importing them. The probe therefore imports the provider modules a DAG file names first and
# then checks what the DAG file and our own package add on top: that must be nothing heavy.
PROBE = r"""
import ast, importlib, json, runpy, sys
from airflow.sdk import Variable
from airflow.sdk.bases.hook import BaseHook

tree = ast.parse(open(sys.argv[1]).read())
for node in tree.body:
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow.providers."):
        importlib.import_module(node.module)

def refuse(*args, **kwargs):
    raise RuntimeError("read at parse time: " + repr(args[:2]))

Variable.get = staticmethod(refuse)
BaseHook.get_connection = classmethod(refuse)
before = set(sys.modules)
runpy.run_path(sys.argv[1])
print(json.dumps(sorted(m.split(".")[0] for m in set(sys.modules) - before)))
"""


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parsing_imports_nothing_heavy_and_reads_no_variable_or_connection(path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not imported & set(HEAVY_MODULES), sorted(imported & set(HEAVY_MODULES))


@pytest.mark.parametrize(
    ("param", "workers", "deployed"),
    [
        ("", "aaa,bbb", "aaa,bbb"),  # an Asset-started run (no Params) on workers without the package index
        ("ccc,ddd", "aaa,bbb", "ccc,ddd"),  # a manual run names other packages
        ("", "", None),  # neither: the run builds
    ],
)
def test_the_lambda_packages_are_the_params_else_the_workers_prebuilt_ones(
    dagbag, monkeypatch, param, workers, deployed
):
    """``build_and_upload_packages`` deploys the run's ``prebuilt_packages``, else ``RECSYS_PREBUILT_PACKAGES``, else
    builds: what it hands on decides what the streaming root applies."""
    import airflow.providers.amazon.aws.hooks.s3 as s3_hooks

    import recsys.streaming.pipeline as pipeline

    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(s3_hooks, "S3Hook", lambda **_kw: type("Hook", (), {"get_conn": lambda self: "client"})())
    monkeypatch.setattr(pipeline, "prebuilt_packages", lambda _c, bucket, sha: calls.append(("prebuilt", sha)) or {})
    monkeypatch.setattr(pipeline, "build_and_upload", lambda _c, bucket: calls.append(("build", bucket)) or {})
    monkeypatch.setenv("RECSYS_PREBUILT_PACKAGES", workers)
    task = dagbag.dags["streaming_recommendations"].get_task("build_and_upload_packages")
    params = {"rollback_to_versions": "", "prebuilt_packages": param}
    task.python_callable(etl={"scripts_bucket": "scripts"}, params=params)
    assert calls == ([("prebuilt", deployed)] if deployed else [("build", "scripts")])
