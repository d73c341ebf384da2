"""A whole run of the platform_health DAG with `airflow dags test` against the test stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.seed.generator import SeedSpec
from recsys.seed.loader import seed

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_platform_health_dag_run_succeeds(stack):
    seed(stack.mariadb(), SeedSpec(customers=40, products=30, ratings=300))
    stack.migrate_airflow(lambda _m: None)
    env = {**os.environ, **stack.environment()}
    airflow = str(Path(sys.executable).parent / "airflow")
    result = subprocess.run(
        [airflow, "dags", "test", "platform_health", "--conf", json.dumps({})],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    output = result.stdout + result.stderr
    finished = [line for line in output.splitlines() if "DagRun Finished:" in line]
    assert result.returncode == 0, output[-3000:]
    assert finished, output[-3000:]
    assert "state=success" in finished[-1]
    assert stack.secrets()["mysql_etl_password"] not in output
