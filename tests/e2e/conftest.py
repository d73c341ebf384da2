from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def run_dag(stack):
    """Run a whole DAG with `airflow dags test` against the test stack; return (succeeded, output)."""
    stack.migrate_airflow(lambda _m: None)

    def run(dag_id: str, conf: dict | None = None, timeout: int = 900) -> tuple[bool, str]:
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
