"""A whole run of the platform_health DAG with `airflow dags test` against the test stack."""

from __future__ import annotations

import pytest

from recsys_local.seed.generator import SeedSpec
from recsys_local.seed.loader import seed

# the budget of each test here: one run (~10 s)
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(300)]


def test_platform_health_dag_run_succeeds(stack, run_dag):
    seed(stack.mariadb(), SeedSpec(customers=40, products=30, ratings=300))
    ok, output = run_dag("platform_health")
    assert ok, output[-3000:]
