"""The platform checks, through Airflow's provider hooks and AIRFLOW_CONN_* connections, against the test stack."""

from __future__ import annotations

import pytest

from recsys.checks.platform import PlatformCheckError, check_aws, check_mysql_source, check_vector_db
from recsys.localstack import mariadb
from recsys.seed.generator import SeedSpec
from recsys.seed.loader import seed

pytestmark = pytest.mark.integration


@pytest.fixture
def connections(stack, monkeypatch):
    for key, value in stack.environment().items():
        if key.startswith(("AIRFLOW_CONN_", "AWS_", "RECSYS_")):
            monkeypatch.setenv(key, value)
    return stack


def test_checks_pass_on_a_seeded_stack(connections):
    counts = seed(connections.mariadb(), SeedSpec(customers=40, products=30, ratings=300))
    assert check_mysql_source()["ratings"] == counts["ratings"]
    assert check_vector_db()["pgvector_available"].startswith("0.")
    result = check_aws()
    assert result["account"] == "123456789012"
    assert set(result["buckets"]) == set(connections.settings.names.buckets())


def test_missing_ratings_table_names_the_connection(connections):
    seed(connections.mariadb(), SeedSpec(customers=40, products=30, ratings=300))
    mariadb.root_sql(connections.mariadb(), f"DROP TABLE `{connections.mariadb().database}`.ratings;")
    with pytest.raises(PlatformCheckError, match=r"'mysql_source'.*ratings"):
        check_mysql_source()
    seed(connections.mariadb(), SeedSpec(customers=40, products=30, ratings=300))
