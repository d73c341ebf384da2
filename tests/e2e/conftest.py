from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

#: Modules whose DAG runs apply no root of ``recsys.demo.EARLY_APPLIES`` (the ETL root and reads only): while they
#: run, those roots' first applies (mostly the provider's waits) go on in the background, as in `make demo`.
OVERLAPPED = {"test_batch_reliability", "test_batch_training_data_dag", "test_recommender_model_dag"}


@pytest.fixture(scope="session")
def early_applies(stack) -> Iterator[Callable[[], None]]:
    """Start the background applies of ``make demo`` (``recsys.demo.EARLY_APPLIES``) once per session; yields
    ``join()``, which waits for them (a failure there is only reported: the DAG applies the root again)."""
    from recsys.demo import EARLY_APPLIES, EarlyApply

    applies = [EarlyApply(stack, *entry) for entry in EARLY_APPLIES.values()]
    for apply in applies:
        apply.start()

    def join() -> None:
        while applies:
            applies.pop().join()

    yield join
    join()


@pytest.fixture(autouse=True)
def _roots_ready(request):
    """Every e2e test outside :data:`OVERLAPPED` starts after the background applies ended (they hold the roots)."""
    if request.node.module.__name__.rpartition(".")[2] not in OVERLAPPED:
        request.getfixturevalue("early_applies")()


@pytest.fixture(scope="session")
def run_dag(stack, early_applies):
    """Run a whole DAG with `airflow dags test` against the test stack; return (succeeded, output). The first use
    starts the background applies; a DAG that applies one of their roots waits for them."""
    from recsys.demo import EARLY_APPLIES

    stack.migrate_airflow(lambda _m: None)

    def run(dag_id: str, conf: dict | None = None, timeout: int = 900) -> tuple[bool, str]:
        if dag_id in EARLY_APPLIES:
            early_applies()
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


@pytest.fixture(scope="session")
def task_states(stack):
    """``states(dag_id, output)``: {task_id: state} of the run whose output ``run_dag`` returned, as Airflow's
    metadata database holds them (a task id in the output says only that the task exists)."""

    def states(dag_id: str, output: str) -> dict[str, str]:
        finished = [line for line in output.splitlines() if "DagRun Finished:" in line]
        assert finished, f"no finished run of {dag_id} in the output"
        run_id = re.search(r"\brun_id=([^,\s]+)", finished[-1])
        assert run_id, finished[-1]
        airflow = str(Path(sys.executable).parent / "airflow")
        result = subprocess.run(
            [airflow, "tasks", "states-for-dag-run", dag_id, run_id[1], "--output", "json"],
            env={**os.environ, **stack.environment()},
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        rows = json.loads(result.stdout[result.stdout.index("[") :])
        return {row["task_id"]: row["state"] for row in rows}

    return states


@pytest.fixture(scope="session")
def deployed_platform(stack, run_dag, task_states) -> dict[str, object]:
    """The whole chain, once per session, from a freshly seeded source: batch -> model -> vector DB -> streaming
    deploy. Returns when it started and the streaming DAG's output and task states, for the tests that read what it
    deployed."""
    from datetime import UTC, datetime

    from recsys.seed.generator import SeedSpec
    from recsys.seed.loader import seed

    started = datetime.now(UTC)
    seed(stack.mariadb(), SeedSpec())
    for dag_id in CHAIN:
        ok, output = run_dag(dag_id)
        assert ok, f"{dag_id}:\n{output[-5000:]}"
    return {"started": started, "output": output, "states": task_states(CHAIN[-1], output)}


#: The nightly chain, in the order its Assets start it.
CHAIN = ("batch_training_data", "recommender_model", "vector_db_embeddings", "streaming_recommendations")


@pytest.fixture(scope="session")
def run_chain(stack, run_dag):
    """Run DAGs in order (default: the whole chain) with `airflow dags test`; fail with the first failure's output.
    A source with no tables yet (a fresh test stack) is seeded first, as `make up` does."""

    def run(dag_ids: tuple[str, ...] = CHAIN) -> None:
        if "batch_training_data" in dag_ids:
            from recsys.seed.loader import seed_if_empty

            seed_if_empty(stack.mariadb())
        for dag_id in dag_ids:
            ok, output = run_dag(dag_id)
            assert ok, f"{dag_id}:\n{output[-5000:]}"

    return run
