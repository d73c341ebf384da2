from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

#: Modules whose DAG runs apply no root of ``recsys_local.demo.EARLY_APPLIES`` (the ETL root and reads only): while they
#: run, those roots' first applies (mostly the provider's waits) go on in the background, as in `make demo`.
OVERLAPPED = {"test_batch_reliability", "test_batch_training_data_dag", "test_recommender_model_dag"}


@pytest.fixture(scope="session")
def early_applies(stack) -> Iterator[Callable[[], None]]:
    """Start the background applies of ``make demo`` (``recsys_local.demo.EARLY_APPLIES``) once per session; yields
    ``join()``, which waits for them (a failure there is only reported: the DAG applies the root again)."""
    from recsys_local.demo import EARLY_APPLIES, EarlyApply

    applies = [EarlyApply(stack, *entry) for entry in EARLY_APPLIES.values()]
    for apply in applies:
        apply.start()

    def join() -> None:
        while applies:
            applies.pop().join()

    yield join
    join()


#: Modules that deploy into an emulated account of their own, not the test stack.
OWN_ACCOUNT = {"test_aws_deployment_rehearsal"}


@pytest.fixture(autouse=True)
def _roots_ready(request):
    """Every e2e test outside :data:`OVERLAPPED` starts after the background applies ended (they hold the roots)."""
    if request.node.module.__name__.rpartition(".")[2] not in OVERLAPPED | OWN_ACCOUNT:
        request.getfixturevalue("early_applies")()


@pytest.fixture(scope="session")
def run_dag(stack, early_applies):
    """Run a whole DAG with `airflow dags test` against the test stack; return (succeeded, output). The first use
    starts the background applies; a DAG that applies one of their roots waits for them."""
    from recsys_local.demo import EARLY_APPLIES

    stack.migrate_airflow(lambda _m: None)

    def run(dag_id: str, conf: dict | None = None, timeout: int = 900, provision: bool = True) -> tuple[bool, str]:
        """``provision=False``: the run's subject is the Glue job, not Terraform; the ETL root is applied as the
        DAG applies it (here, when the job is missing: a fresh test stack) and the run skips its own apply (conf
        ``provision_infrastructure: false``, ~15 s of Terraform plan)."""
        if dag_id in EARLY_APPLIES:
            early_applies()
        if not provision:
            assert dag_id == "batch_training_data", dag_id
            etl_applied(stack)
            conf = {**(conf or {}), "provision_infrastructure": False}
        env = {**os.environ, **stack.environment(), "RECSYS_RETRY_DELAY_SECONDS": "1"}
        result = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "dags", "test", dag_id, "--conf", json.dumps(conf or {})],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        output = result.stdout + result.stderr
        finished = [line for line in output.splitlines() if "DagRun Finished:" in line]
        assert stack.secrets()["mysql_etl_password"] not in output
        return result.returncode == 0 and bool(finished) and "state=success" in finished[-1], output

    return run


def etl_applied(stack) -> None:
    """The ETL root applied with the DAG's variables (nothing to do when its Glue job exists with the source's
    endpoint among its arguments: a job applied before those existed is applied again)."""
    glue = stack.client("glue")
    try:
        job = glue.get_job(JobName=stack.settings.names.glue_job)["Job"]
        if "--source_host" in job.get("DefaultArguments", {}):
            return
    except glue.exceptions.EntityNotFoundException:
        pass
    from recsys.provisioning import provisioner

    provisioner({**os.environ, **stack.environment()}).provision("etl", apply=True)


class SharedAirflow:
    """`make airflow`'s four components on the test stack, started once and shared by every test that needs a real
    scheduler (a test that stops them, as ``make down`` does, leaves the next user to start them again). Tasks retry
    after 1 s and the vector DB DAG waits ``ARTIFACT_WAIT`` seconds for a model version's files (two pokes: in the
    chain the Asset event comes after the files, so only the half-published scenario waits it out)."""

    ARTIFACT_WAIT: ClassVar[int] = 6
    ENV: ClassVar[dict[str, str]] = {
        "RECSYS_RETRY_DELAY_SECONDS": "1",
        "RECSYS_ARTIFACT_WAIT_SECONDS": str(ARTIFACT_WAIT),
    }

    def __init__(self, stack) -> None:
        self.stack = stack
        self.log: list[str] = []  # what start and stop reported
        self._api = None

    def api(self):
        """The REST API of the running components (started here when they are not running), every DAG listed."""
        from airflow_api import AirflowApi

        from recsys_local import airflow_services

        if len(airflow_services.running(self.stack)) < len(airflow_services.COMPONENTS):
            with pytest.MonkeyPatch.context() as patch:  # the components' environment is the test process's
                for key, value in self.ENV.items():
                    patch.setenv(key, value)
                airflow_services.start(self.stack, self.log.append, timeout=300)
            self._api = None
        if self._api is None:
            self._api = AirflowApi(self.stack)
            self._api.wait_for_dags((*CHAIN, "platform_health"))
        return self._api

    def stop(self) -> None:
        from recsys_local import airflow_services

        airflow_services.stop(self.stack, self.log.append)
        self._api = None


#: The session's SharedAirflow once a test asked for it.
_SHARED: list[SharedAirflow] = []


@pytest.fixture(scope="session")
def airflow(stack, early_applies) -> Iterator[SharedAirflow]:
    early_applies()
    _SHARED.append(SharedAirflow(stack))
    yield _SHARED[0]
    _SHARED.pop().stop()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """The shared Airflow stops after the last e2e test: the tests after them expect the stack without Airflow (and
    its idle scheduler's CPU)."""
    if _SHARED and (nextitem is None or Path(nextitem.path).parent != Path(item.path).parent):
        _SHARED[0].stop()


@pytest.fixture(scope="session")
def deployed_platform(stack, airflow) -> dict[str, object]:
    """The nightly chain, once per session, under the real scheduler, from a freshly seeded source: one
    ``batch_training_data`` run triggered through the REST API, and the Assets start the rest. Returns what the
    tests read: when it started, each link's run and finish time, the task states, retried tasks, and the batch
    runs the scheduler ran meanwhile."""
    from datetime import UTC, datetime

    from recsys_local.seed.generator import SeedSpec
    from recsys_local.seed.loader import seed

    seed(stack.mariadb(), SeedSpec())
    api = airflow.api()
    paused = {d["dag_id"]: d["is_paused"] for d in api.call("GET", "/api/v2/dags?limit=100")["dags"]}
    import_errors = api.call("GET", "/api/v2/importErrors")["total_entries"]
    for dag_id in (*CHAIN, "platform_health"):
        api.end_unfinished_runs(dag_id)
    started_at, started = datetime.now(UTC), time.monotonic()
    # the run takes the logical date of the interval unpausing would create a catch-up run for: the scheduler
    # then skips that run ("run already exists") instead of running the chain twice, the catch-up first
    due = api.call("GET", "/api/v2/dags/batch_training_data")
    logical_date = None
    if due.get("next_dagrun_run_after") and datetime.fromisoformat(due["next_dagrun_run_after"]) <= started_at:
        logical_date = due["next_dagrun_logical_date"]
    try:
        run = api.call("POST", "/api/v2/dags/batch_training_data/dagRuns", {"logical_date": logical_date, "conf": {}})
    except urllib.error.HTTPError as exc:  # 409: a run of that date exists (an earlier session's), no catch-up
        if exc.code != 409 or logical_date is None:
            raise
        run = api.call("POST", "/api/v2/dags/batch_training_data/dagRuns", {"logical_date": None, "conf": {}})
    try:
        for dag_id in CHAIN:
            api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        succeeded: dict[str, float] = {}
        accepted: dict[str, str] = {}  # the run of each link; the next must be triggered by its Asset event
        manifest_urls: list[str] = []
        deadline = time.monotonic() + 15 * 60  # ~2.5 min measured
        while time.monotonic() < deadline and len(succeeded) < len(CHAIN):
            for index, dag_id in enumerate(CHAIN):
                runs = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=50&order_by=-run_after")["dag_runs"]
                for dag_run in runs:
                    if dag_id == "batch_training_data" and dag_run["dag_run_id"] != run["dag_run_id"]:
                        api.drop_catch_up_run(dag_id, dag_run)  # the 02:00 run unpausing creates: not this chain's
                        continue
                    if datetime.fromisoformat(dag_run["run_after"]) < started_at:
                        continue
                    if dag_run["state"] == "failed":
                        path = f"/api/v2/dags/{dag_id}/dagRuns/{dag_run['dag_run_id']}/taskInstances"
                        tis = api.call("GET", path)["task_instances"]
                        failed = [t["task_id"] for t in tis if t["state"] == "failed"]
                        pytest.fail(f"{dag_id} run {dag_run['dag_run_id']} failed at {failed}; logs in AIRFLOW_HOME")
                    if dag_run["state"] != "success" or dag_id in succeeded:
                        continue
                    upstream = CHAIN[index - 1] if index else None
                    if upstream:  # started by the Asset event of the upstream run, not by an older event or a clock
                        if upstream not in accepted or dag_run["run_type"] != "asset_triggered":
                            continue
                        path = f"/api/v2/dags/{dag_id}/dagRuns/{dag_run['dag_run_id']}/upstreamAssetEvents"
                        events = api.call("GET", path)["asset_events"]
                        ours = [e for e in events if e.get("source_run_id") == accepted[upstream]]
                        if not ours:
                            continue
                        if upstream == "batch_training_data":  # the event carries the run's manifest
                            manifest_urls.append(str(ours[0]["extra"].get("manifest_url", "")))
                    succeeded[dag_id] = time.monotonic() - started
                    accepted[dag_id] = dag_run["dag_run_id"]
            time.sleep(3)
        assert set(succeeded) == set(CHAIN), f"after {time.monotonic() - started:.0f} s only {succeeded}"
        states: dict[str, dict[str, str]] = {}
        retried: list[str] = []
        for dag_id, run_id in accepted.items():
            tis = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
            states[dag_id] = {t["task_id"]: t["state"] for t in tis}
            retried += [f"{dag_id}.{t['task_id']} (try {t['try_number']})" for t in tis if t["try_number"] > 1]
        batch_runs = [
            r["dag_run_id"]
            for r in api.call("GET", "/api/v2/dags/batch_training_data/dagRuns?limit=50")["dag_runs"]
            if r["state"] in ("queued", "running")
            or (r.get("start_date") and datetime.fromisoformat(r["start_date"]) >= started_at)
        ]
    finally:  # leave the test stack's DAGs paused, as a fresh install has them
        for dag_id in CHAIN:
            api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})
    print(
        "nightly chain under the scheduler: "
        + ", ".join(f"{d} done at {s:.0f} s" for d, s in succeeded.items())
        + f"; wall time {max(succeeded.values()):.0f} s"
    )
    return {
        "started": started_at,
        "run_id": run["dag_run_id"],
        "succeeded": succeeded,
        "accepted": accepted,
        "manifest_urls": manifest_urls,
        "states": states,
        "retried": retried,
        "batch_runs": batch_runs,
        "paused_before": paused,
        "import_errors": import_errors,
    }


#: The nightly chain, in the order its Assets start it.
CHAIN = ("batch_training_data", "recommender_model", "vector_db_embeddings", "streaming_recommendations")


@pytest.fixture(scope="session")
def run_chain(stack, run_dag):
    """Run DAGs in order (default: the whole chain) with `airflow dags test`; fail with the first failure's output.
    A source with no tables yet (a fresh test stack) is seeded first, as `make up` does."""

    def run(dag_ids: tuple[str, ...] = CHAIN) -> None:
        if "batch_training_data" in dag_ids:
            from recsys_local.seed.loader import seed_if_empty

            seed_if_empty(stack.mariadb())
        for dag_id in dag_ids:
            ok, output = run_dag(dag_id)
            assert ok, f"{dag_id}:\n{output[-5000:]}"

    return run
