"""Scenario 7 (and the retry half of scenario 2) of the reliability suite, under a real scheduler (`make airflow`'s
four components against the test stack): for each DAG, one task's process is SIGKILLed while it works (as the
kernel's OOM killer would), Airflow retries it, and the final state is compared with what an undisturbed run leaves.

* ``batch_training_data``: ``provision_etl_infrastructure`` killed while Terraform runs; then ``run_glue_job`` is
  cleared while its Glue run is active, and the new try re-attaches to that run instead of starting a second one.
* ``recommender_model``: ``train_model`` killed mid-training; the retry stages the same version, byte for byte.
* ``vector_db_embeddings``: ``load_embeddings`` killed while connected to the vector DB; the live tables end complete
  and no staging table is left.
* ``streaming_recommendations``: ``build_and_upload_packages`` killed while pip installs the Lambda dependencies;
  the functions end with the same code (CodeSha256) as the undisturbed deploy.
* ``platform_health``: ``check_aws`` killed; the run still ends green.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import source_faults
from airflow_api import AirflowApi

from recsys.config import TRAINING_DATA_PREFIX
from recsys.etl.glue_job import read_manifest
from recsys.model.artifacts import ITEM_EMBEDDINGS, USER_EMBEDDINGS, model_version, read_pointer
from recsys.provisioning.terraform import OWNER_FILE, remove_abandoned_copies
from recsys.vectordb.loader import current_state
from recsys_serving import search

# the budget of each test here: may start the session's chain; one run with a kill and its retry (~140 s)
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.reliability, pytest.mark.timeout(1500)]

DAGS = ("batch_training_data", "recommender_model", "vector_db_embeddings", "streaming_recommendations")
LAMBDA_CACHE = Path(tempfile.gettempdir()) / "recsys-lambda-cache"  # packaging's default cache


@pytest.fixture(scope="module")
def airflow_api(stack, airflow, deployed_platform) -> AirflowApi:
    """The platform in its undisturbed state (the session's chain), then the shared Airflow, every DAG paused."""
    api = airflow.api()
    for dag_id in (*DAGS, "platform_health"):
        api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})
        api.end_unfinished_runs(dag_id)
    return api


class Killed:
    """What was killed, when, and how the run ended."""

    def __init__(self) -> None:
        self.what = ""
        self.seconds_into_task = 0.0
        self.pid = 0
        self.state = ""
        self.tries: list[str] = []
        self.leftovers: list[str] = []  # processes of the killed task still alive afterwards


def run_with_kill(
    api: AirflowApi,
    dag_id: str,
    task_id: str,
    ready: Callable[[psutil.Process], str | None],
    conf: dict | None = None,
    during: Callable[[str], None] | None = None,
    timeout: float = 900,
) -> tuple[str, Killed]:
    """Trigger ``dag_id``; when ``task_id`` runs and ``ready(its process)`` names what it is doing, SIGKILL the
    process; wait for the run to end. ``during(run_id)`` is called on every poll."""
    run_id = api.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})[
        "dag_run_id"
    ]
    api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    killed, orphans = Killed(), []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for other in api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?state=queued")["dag_runs"]:
                if other["dag_run_id"] != run_id:  # the catch-up or Asset-triggered run unpausing creates
                    api.call("DELETE", f"/api/v2/dags/{dag_id}/dagRuns/{other['dag_run_id']}")
            run = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                killed.state = run["state"]
                break
            if not killed.what:
                ti = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
                if ti["state"] == "running" and ti.get("pid"):
                    try:
                        process = psutil.Process(ti["pid"])
                        what = ready(process)
                        if what:
                            orphans = process.children(recursive=True)
                            process.send_signal(signal.SIGKILL)
                            killed.what, killed.pid = what, ti["pid"]
                            killed.seconds_into_task = time.time() - process.create_time()
                    except psutil.NoSuchProcess:
                        pass
            if during:
                during(run_id)
            time.sleep(0.2)
    finally:
        api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})
    tries = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
    killed.tries = [t["state"] for t in sorted(tries["task_instances"], key=lambda t: t["try_number"])]
    killed.leftovers = [" ".join(p.cmdline()[:3]) for p in orphans if p.is_running()]
    return run_id, killed


def closely(check: Callable[[psutil.Process], str | None]) -> Callable[[psutil.Process], str | None]:
    """``check`` polled every 10 ms for as long as the task's process lives (some moments last under a second)."""

    def ready(process: psutil.Process) -> str | None:
        while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
            what = check(process)
            if what:
                return what
            time.sleep(0.01)
        return None

    return ready


def descendant_named(name: str, *subcommands: str) -> Callable[[psutil.Process], str | None]:
    """Ready once the task runs ``name`` (as a program or ``python -m name``), with one of ``subcommands`` if given."""

    def ready(process: psutil.Process) -> str | None:
        for child in process.children(recursive=True):
            try:
                cmdline = child.cmdline()
            except psutil.NoSuchProcess:
                continue
            at = next((i for i, part in enumerate(cmdline[:4]) if Path(part).name == name), None)
            if at is not None and (not subcommands or cmdline[at + 1 : at + 2] in ([c] for c in subcommands)):
                return " ".join([name, *cmdline[at + 1 : at + 3]])
        return None

    return ready


def after_seconds(seconds: float) -> Callable[[psutil.Process], str | None]:
    """Ready ``seconds`` after the task was first seen running (timed here, not by the API polls, which a busy
    api-server slows down)."""

    def ready(process: psutil.Process) -> str | None:
        time.sleep(max(0.0, seconds - (time.time() - process.create_time())))
        return f"at least {seconds:.1f} s into the task" if process.is_running() else None

    return ready


def glue_runs_of(stack, run_id: str) -> list[dict]:
    """The Glue runs a DAG run started (its run id is the job's ``--run_id`` argument)."""
    pages = stack.client("glue").get_paginator("get_job_runs").paginate(JobName=stack.settings.names.glue_job)
    return [r for page in pages for r in page["JobRuns"] if r.get("Arguments", {}).get("--run_id") == run_id]


def task_log(api: AirflowApi, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
    return str(api.call("GET", path))


def sha(s3, bucket: str, key: str) -> str:
    return hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()


def assert_retried_to_success(killed: Killed) -> None:
    assert killed.what, "the task ended before the kill could land"
    assert killed.tries[0] == "failed", killed.tries
    assert killed.tries[-1] == "success", killed.tries
    assert killed.state == "success"


def describe(killed: Killed) -> str:
    leftovers = f"; still running after: {killed.leftovers}" if killed.leftovers else ""
    return (
        f"killed {killed.seconds_into_task:.1f} s in ({killed.what}); tries {killed.tries}; run {killed.state}"
        f"{leftovers}"
    )


def test_platform_health_killed_mid_check_ends_green(stack, airflow_api, reliability):
    _run_id, killed = run_with_kill(airflow_api, "platform_health", "check_aws", after_seconds(0.5))
    reliability(
        "7. task SIGKILLed: platform_health",
        "SIGKILL of check_aws at least 0.5 s into the task",
        describe(killed),
        "retried; run succeeds",
    )
    assert_retried_to_success(killed)


def test_recommender_training_killed_mid_training_stages_the_same_version(stack, airflow_api, reliability):
    s3, bucket = stack.client("s3"), stack.settings.names.ml_artifacts_bucket
    keys = (ITEM_EMBEDDINGS, USER_EMBEDDINGS, "model/inference_bundle.npz")
    live_data = read_manifest(s3, f"s3://{stack.settings.names.datalake_bucket}/{TRAINING_DATA_PREFIX}")["run_id"]
    data_and_seed = model_version(live_data, 42).rsplit("-", 1)[1]  # a version name ends with hash(data run, seed)

    def fingerprint(version: str) -> dict[str, str]:
        return {k: sha(s3, bucket, f"versions/{version}/{k}") for k in keys}

    # the undisturbed result: the live version when it was trained on this data with the default seed, else one
    # undisturbed run now
    undisturbed_version = read_pointer(s3, bucket)["model_version"]
    if not undisturbed_version.endswith(data_and_seed):
        _run_id, undisturbed_run = run_with_kill(airflow_api, "recommender_model", "train_model", lambda _p: None)
        assert undisturbed_run.state == "success"
        undisturbed_version = read_pointer(s3, bucket)["model_version"]
    undisturbed = fingerprint(undisturbed_version)
    log_dir = stack.settings.airflow_home / "logs" / "dag_id=recommender_model"

    def mid_training(_process: psutil.Process) -> str | None:
        # on the test data the whole training takes ~0.2 s after this line: the kill lands in training or staging
        logs = [
            log for log in log_dir.glob("run_id=*/task_id=train_model/attempt=1.log") if log.stat().st_mtime >= since
        ]
        lines = logs[-1].read_text(errors="replace").splitlines() if logs else []
        if any("training on" in line for line in lines):
            return "after it loaded the data; last log line: " + json.loads(lines[-1]).get("event", "")[:60]
        return None

    since = time.time()  # this run's log is the one written from now on
    _killed_run, killed = run_with_kill(airflow_api, "recommender_model", "train_model", closely(mid_training))
    version = read_pointer(s3, bucket)["model_version"]
    after = fingerprint(version)
    same = after == undisturbed
    reliability(
        "7. task SIGKILLed: recommender_model",
        "SIGKILL of train_model once its data is loaded (training or staging under way)",
        f"{describe(killed)}; version {undisturbed_version} -> {version}; embeddings and bundle identical to the "
        f"undisturbed run's: {same}",
        "retried; a new version of the same data and seed, byte for byte the undisturbed one",
    )
    assert_retried_to_success(killed)
    assert version != undisturbed_version
    assert version.endswith(data_and_seed)
    assert same, (undisturbed, after)


def test_vector_db_load_killed_while_connected_ends_complete(stack, airflow_api, reliability):
    cfg, s3 = stack.vectordb(), stack.client("s3")
    bucket = stack.settings.names.ml_artifacts_bucket
    with search.connect(**cfg.conninfo()) as conn:
        before = current_state(conn)
    version = read_pointer(s3, bucket)["model_version"]  # what an undisturbed run loads: the published version

    def rows(key: str) -> int:
        return len(s3.get_object(Bucket=bucket, Key=f"versions/{version}/{key}")["Body"].read().splitlines()) - 1

    expected = (rows(ITEM_EMBEDDINGS), rows(USER_EMBEDDINGS))

    def connected(process: psutil.Process) -> str | None:
        if any(c.raddr and c.raddr.port == cfg.port for c in process.net_connections(kind="tcp")):
            return "while connected to the vector DB"
        return None

    _run_id, killed = run_with_kill(airflow_api, "vector_db_embeddings", "load_embeddings", closely(connected))
    with search.connect(**cfg.conninfo()) as conn:
        after = current_state(conn)
        staging = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE right(tablename, 8) = '_staging'")]
    reliability(
        "7. task SIGKILLed: vector_db_embeddings",
        "SIGKILL of load_embeddings while it holds a vector DB connection",
        f"{describe(killed)}; live {before['model_version']} -> {after['model_version']} (published {version}); "
        f"rows {after['items']}/{after['users']} of {expected[0]}/{expected[1]}; staging tables left: {len(staging)}",
        "retried; the published version live and complete, as an undisturbed load leaves it; no staging table left",
    )
    assert_retried_to_success(killed)
    assert after["model_version"] == version
    assert (after["items"], after["users"]) == expected
    assert after["recorded_rows"] == expected
    assert not staging


def test_lambda_build_killed_mid_pip_install_deploys_the_same_code(stack, airflow_api, reliability):
    lam, names = stack.client("lambda"), stack.settings.names
    functions = (names.transformation_lambda, names.model_inference_lambda)

    def code() -> dict[str, str]:
        return {f: lam.get_function(FunctionName=f, Qualifier="live")["Configuration"]["CodeSha256"] for f in functions}

    before = code()
    for deps in LAMBDA_CACHE.glob("deps-*"):  # a cold cache, so the build runs pip
        shutil.rmtree(deps, ignore_errors=True)
    _run_id, killed = run_with_kill(
        airflow_api,
        "streaming_recommendations",
        "build_and_upload_packages",
        closely(descendant_named("pip", "install")),
    )
    after = code()
    half_installed = [p.name for p in LAMBDA_CACHE.glob("deps-*") if not (p / ".complete").exists()]
    reliability(
        "7. task SIGKILLed: streaming_recommendations",
        "SIGKILL of build_and_upload_packages while pip installs the Lambda dependencies (cold cache)",
        f"{describe(killed)}; live code identical to the undisturbed deploy: {after == before}; incomplete "
        f"dependency folders: {half_installed}",
        "retried; the same CodeSha256 for both functions; smoke test passes",
    )
    assert_retried_to_success(killed)
    assert after == before
    assert not [p for p in half_installed if ".installing-" not in p]


def test_batch_killed_in_terraform_and_glue_task_cleared_runs_one_glue_run(stack, airflow_api, reliability):
    s3 = stack.client("s3")
    target = f"s3://{stack.settings.names.datalake_bucket}/{TRAINING_DATA_PREFIX}"
    before = read_manifest(s3, target)
    dag_id = "batch_training_data"
    cleared: dict[str, str] = {}

    def clear_glue_task_while_its_run_is_active(run_id: str) -> None:
        if cleared:
            return
        ti = airflow_api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/run_glue_job")
        if ti["state"] != "deferred":
            return
        active = [r for r in glue_runs_of(stack, run_id) if r["JobRunState"] == "RUNNING"]
        if active:
            body = {"dry_run": False, "dag_run_id": run_id, "task_ids": ["run_glue_job"], "only_failed": False}
            airflow_api.call("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", body)
            cleared["run"] = active[0]["Id"]

    with source_faults.slow_ratings(stack, 0.005):  # the Glue run lasts ~20 s more: time to clear its task
        run_id, killed = run_with_kill(
            airflow_api,
            dag_id,
            "provision_etl_infrastructure",
            closely(descendant_named("terraform", "plan", "apply")),
            during=clear_glue_task_while_its_run_is_active,
        )
    runs = glue_runs_of(stack, run_id)
    glue_ti = airflow_api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/run_glue_job")
    reattached = "Found Glue job_run_id by task UUID" in task_log(
        airflow_api, dag_id, run_id, "run_glue_job", glue_ti["try_number"]
    )
    after = read_manifest(s3, target)
    fields = ("output_rows", "customers", "partition_count", "excluded")
    # the next provisioning call removes what the killed one left: its work copy (plan file) and provider plugins
    work = Path(os.environ.get("TERRAFORM_WORK_DIR") or Path(tempfile.gettempdir()) / "recsys-terraform")
    remove_abandoned_copies(work)
    stray_plugins = [
        p.info["name"]
        for p in psutil.process_iter(["name", "cwd"])
        if (p.info["name"] or "").startswith("terraform-provider-") and str(p.info["cwd"] or "").startswith(str(work))
    ]
    copies_left = [c.name for c in work.iterdir() if (c / OWNER_FILE).exists()] if work.exists() else []
    reliability(
        "7 + 2c. task SIGKILLed / cleared: batch_training_data",
        "SIGKILL of provision_etl_infrastructure while Terraform runs; run_glue_job cleared while its Glue run is "
        "active",
        f"{describe(killed)}; Glue runs for the DAG run: {len(runs)}; the cleared task's new try re-attached: "
        f"{reattached}; dataset {', '.join(f'{f} {before[f]} -> {after[f]}' for f in fields)}; Terraform work "
        f"copies left {len(copies_left)}, provider plugins left {len(stray_plugins)}",
        "retried; one Glue run (re-attached); the dataset equals the undisturbed run's",
    )
    assert_retried_to_success(killed)
    assert cleared, "the Glue run was never seen active"
    assert glue_ti["try_number"] >= 2
    assert reattached
    assert [r["Id"] for r in runs] == [cleared["run"]]
    assert after["run_id"] != before["run_id"]
    assert {f: after[f] for f in fields} == {f: before[f] for f in fields}
    assert not stray_plugins
    assert not copies_left
