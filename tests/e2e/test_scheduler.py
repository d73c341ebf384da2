"""The nightly chain under a real scheduler: `make airflow`'s four components against the test stack, one
`batch_training_data` run triggered through the REST API, and the Assets start the rest with no other action."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psutil
import pytest
from airflow_api import AirflowApi

from recsys.localstack import airflow_services
from recsys.seed.generator import SeedSpec
from recsys.seed.loader import seed

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CHAIN = ("batch_training_data", "recommender_model", "vector_db_embeddings", "streaming_recommendations")
ALL_DAGS = {*CHAIN, "platform_health"}


def descendants(stack) -> list[psutil.Process]:
    found = []
    for component in airflow_services.COMPONENTS:
        record = stack.state.running(airflow_services.service(component))
        if record and (process := record.process()):
            found += [process, *process.children(recursive=True)]
    return found


def test_the_nightly_chain_runs_by_itself_under_a_real_scheduler(stack):
    seed(stack.mariadb(), SeedSpec())
    log: list[str] = []
    airflow_services.start(stack, log.append, timeout=300)
    processes: list[psutil.Process] = []
    api = None
    try:
        api = AirflowApi(stack)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # the dag-processor parses the five files
            dags = {d["dag_id"]: d for d in api.call("GET", "/api/v2/dags?limit=100")["dags"]}
            if set(dags) >= ALL_DAGS:
                break
            time.sleep(3)
        assert set(dags) >= ALL_DAGS, sorted(dags)
        assert all(dags[d]["is_paused"] for d in ALL_DAGS), "DAGs must start paused"
        assert api.call("GET", "/api/v2/importErrors")["total_entries"] == 0

        started_at, started = datetime.now(UTC), time.monotonic()
        # the run takes the logical date of the interval unpausing would create a catch-up run for: the scheduler
        # then skips that run ("run already exists") instead of running the chain twice, the catch-up first
        due = api.call("GET", "/api/v2/dags/batch_training_data")
        logical_date = None
        if due.get("next_dagrun_run_after") and datetime.fromisoformat(due["next_dagrun_run_after"]) <= started_at:
            logical_date = due["next_dagrun_logical_date"]
        run = api.call("POST", "/api/v2/dags/batch_training_data/dagRuns", {"logical_date": logical_date, "conf": {}})
        for dag_id in CHAIN:
            api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

        succeeded: dict[str, float] = {}
        accepted: dict[str, str] = {}  # the run of each link; the next must be triggered by its Asset event
        deadline = time.monotonic() + 40 * 60
        while time.monotonic() < deadline and len(succeeded) < len(CHAIN):
            for index, dag_id in enumerate(CHAIN):
                runs = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=50&order_by=-run_after")["dag_runs"]
                for dag_run in runs:
                    if dag_id == "batch_training_data" and dag_run["dag_run_id"] != run["dag_run_id"]:
                        api.drop_catch_up_run(dag_id, dag_run)  # the 02:00 run unpausing creates: not this test's
                        continue
                    if datetime.fromisoformat(dag_run["run_after"]) < started_at:
                        continue
                    if dag_run["state"] == "failed":
                        path = f"/api/v2/dags/{dag_id}/dagRuns/{dag_run['dag_run_id']}/taskInstances"
                        failed = [
                            t["task_id"] for t in api.call("GET", path)["task_instances"] if t["state"] == "failed"
                        ]
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
                            assert str(ours[0]["extra"].get("manifest_url", "")).startswith("s3://"), ours[0]
                    succeeded[dag_id] = time.monotonic() - started
                    accepted[dag_id] = dag_run["dag_run_id"]
            time.sleep(5)
        assert set(succeeded) == set(CHAIN), f"after {time.monotonic() - started:.0f} s only {succeeded}"
        retried = [  # an undisturbed chain needs no retry: each one is a first-run hazard (and a retry delay)
            f"{dag_id}.{t['task_id']} (try {t['try_number']})"
            for dag_id, run_id in accepted.items()
            for t in api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
            if t["try_number"] > 1
        ]
        assert not retried, f"tasks retried in an undisturbed chain: {retried}; logs in AIRFLOW_HOME"
        batch_runs = [
            r["dag_run_id"]
            for r in api.call("GET", "/api/v2/dags/batch_training_data/dagRuns?limit=50")["dag_runs"]
            if r["state"] in ("queued", "running")
            or (r.get("start_date") and datetime.fromisoformat(r["start_date"]) >= started_at)
        ]
        assert batch_runs == [run["dag_run_id"]], f"the chain ran more than once: {batch_runs}"
        print(
            "nightly chain under the scheduler: "
            + ", ".join(f"{d} done at {s:.0f} s" for d, s in succeeded.items())
            + f"; wall time {max(succeeded.values()):.0f} s"
        )
    finally:
        processes = descendants(stack)
        try:  # leave the test stack's DAGs paused, as a fresh install has them
            for dag_id in CHAIN if api else ():
                api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})
        except Exception as exc:
            print(f"could not pause the DAGs again: {exc}")
        airflow_services.stop(stack, log.append)
    # make down's part: nothing the components started is left, running or defunct
    time.sleep(1)
    left = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    zombies = [p for p in processes if p.is_running() and p.status() == psutil.STATUS_ZOMBIE]
    assert processes, "no Airflow process was found to stop"
    assert not left, [(p.pid, p.name()) for p in left]
    assert not zombies, [(p.pid, p.name()) for p in zombies]
    assert not [
        line
        for line in log
        if "stopped" not in line
        and "started" not in line
        and "healthy" not in line
        and "UI:" not in line
        and "migrating" not in line
    ], log


def test_airflow_rejects_a_taken_port_with_the_setting_to_change(stack):
    import socket

    from recsys.localstack.process import StackError

    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port may be in TIME_WAIT
        blocker.bind((stack.settings.host, stack.settings.airflow_port))
        blocker.listen()
        with pytest.raises(StackError, match=r"port 18080 .* AIRFLOW_PORT=<port>"):
            airflow_services.start(stack, lambda _m: None)
    assert not airflow_services.running(stack)
