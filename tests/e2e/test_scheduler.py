"""The nightly chain under a real scheduler: `make airflow`'s four components against the test stack, one
`batch_training_data` run triggered through the REST API, and the Assets start the rest with no other action
(the session's ``deployed_platform``, which the tests that read the deployed platform share)."""

from __future__ import annotations

import contextlib
import warnings

import psutil
import pytest

from recsys_local import airflow_services
from recsys_local.process import StackError, wait_until

# the budget of each test here: the session's chain under the scheduler (~170 s; its own deadline 15 min)
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(1500)]

CHAIN = ("batch_training_data", "recommender_model", "vector_db_embeddings", "streaming_recommendations")
ALL_DAGS = {*CHAIN, "platform_health"}


def descendants(stack) -> list[psutil.Process]:
    found = []
    for component in airflow_services.COMPONENTS:
        record = stack.state.running(airflow_services.service(component))
        if record and (process := record.process()):
            found += [process, *process.children(recursive=True)]
    return found


def test_the_nightly_chain_runs_by_itself_under_a_real_scheduler(deployed_platform):
    """``deployed_platform`` triggered one ``batch_training_data`` run through the REST API under `make airflow`'s
    components; each later link was started by the Asset event of the run before it (checked there, run by run)."""
    assert set(deployed_platform["paused_before"]) >= ALL_DAGS, deployed_platform["paused_before"]
    assert all(deployed_platform["paused_before"][d] for d in ALL_DAGS), "DAGs must start paused"
    assert deployed_platform["import_errors"] == 0
    assert list(deployed_platform["accepted"]) == list(CHAIN)
    assert deployed_platform["accepted"]["batch_training_data"] == deployed_platform["run_id"]
    assert deployed_platform["manifest_urls"], "the training-data event reached the model DAG"
    assert all(url.startswith("s3://") for url in deployed_platform["manifest_urls"]), deployed_platform
    # an undisturbed chain needs no retry: each one is a first-run hazard (and a retry delay)
    assert not deployed_platform["retried"], f"tasks retried in an undisturbed chain: {deployed_platform['retried']}"
    assert deployed_platform["batch_runs"] == [deployed_platform["run_id"]], "the chain ran more than once"
    for dag_id, states in deployed_platform["states"].items():
        assert set(states.values()) <= {"success", "skipped"}, (dag_id, states)


def test_stopping_airflow_leaves_no_process(stack, airflow):
    """`make down`'s part: nothing the components started is left, running or defunct."""
    airflow.api()
    processes = descendants(stack)
    airflow.stop()
    # an orphaned child exits, then waits (a zombie) for init to reap it: wait for every process to be gone; what
    # is still there after the wait is named below
    with contextlib.suppress(StackError):
        wait_until(lambda: not any(p.is_running() for p in processes), "the exit of every Airflow process", 30)
    left = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    zombies = [p for p in processes if p.is_running() and p.status() == psutil.STATUS_ZOMBIE]
    assert processes, "no Airflow process was found to stop"
    assert not left, [(p.pid, p.name()) for p in left]
    assert not zombies, [(p.pid, p.name()) for p in zombies]
    # a component that outlives SIGTERM by 30 s is killed (and reaped): still nothing left, but worth seeing in CI
    if killed := [line for line in airflow.log if line.endswith(": killed")]:
        warnings.warn(f"stopping Airflow killed a component: {killed}", stacklevel=1)
    assert not [
        line
        for line in airflow.log
        if "stopped" not in line
        and "started" not in line
        and "healthy" not in line
        and "UI:" not in line
        and "migrating" not in line
        and line not in killed
    ], airflow.log


def test_airflow_rejects_a_taken_port_with_the_setting_to_change(stack, airflow):
    airflow.stop()  # the shared components (the next test that needs them starts them again)
    import socket

    from recsys_local.process import StackError

    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port may be in TIME_WAIT
        blocker.bind((stack.settings.host, stack.settings.airflow_port))
        blocker.listen()
        with pytest.raises(StackError, match=r"port 18080 .* AIRFLOW_PORT=<port>"):
            airflow_services.start(stack, lambda _m: None)
    assert not airflow_services.running(stack)
