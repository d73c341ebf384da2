"""The platform checks, through Airflow's provider hooks and AIRFLOW_CONN_* connections, against the test stack."""

from __future__ import annotations

import pytest

from recsys.checks.platform import PlatformCheckError, check_aws, check_mysql_source, check_vector_db
from recsys_local import mariadb
from recsys_local.seed.generator import SeedSpec
from recsys_local.seed.loader import seed

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


def test_the_vector_db_check_without_a_host_reads_the_roots_outputs_or_says_it_is_not_applied_yet(
    connections, monkeypatch, tmp_path
):
    """The AWS setup: the connection holds only the TLS settings (docs/aws-deployment.md's table); the endpoint and the
    master secret are terraform/vector_db's outputs, which exist only after vector_db_embeddings' first apply."""
    import json
    import os

    from recsys.provisioning import provisioner
    from recsys_local.restore import applied_roots

    stack_conn = json.loads(connections.environment()["AIRFLOW_CONN_VECTOR_DB"])
    tls_only = {"conn_type": "postgres", "extra": {k: stack_conn["extra"][k] for k in ("sslmode", "sslrootcert")}}
    monkeypatch.setenv("AIRFLOW_CONN_VECTOR_DB", json.dumps(tls_only))

    monkeypatch.setenv("LOCAL_STACK_HOME", str(tmp_path / "never-applied"))  # a target without the root's state
    monkeypatch.setenv("TERRAFORM_WORK_DIR", str(tmp_path / "work"))
    not_yet = check_vector_db()
    assert not_yet["checked"] is False
    assert "terraform/vector_db has no outputs" in not_yet["reason"]
    assert "vector_db_embeddings" in not_yet["reason"]

    monkeypatch.setenv("LOCAL_STACK_HOME", str(connections.settings.home))
    terraform = provisioner({**os.environ, **connections.environment()})  # the test stack's ports, not .env's
    if "vector_db" not in applied_roots(terraform.target):  # a fresh test stack: its DAG's first apply
        terraform.provision("vector_db", apply=True)
    checked = check_vector_db()
    assert checked["checked"] is True
    assert checked["pgvector_available"].startswith("0.")
