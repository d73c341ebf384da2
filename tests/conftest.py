"""Shared fixtures. Integration tests run against a test instance of the local stack with its own home and ports
(.local/test-stack, ports 13307/15433/15055, Airflow 18080), so they never touch the data of a stack you run with
`make up`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from recsys.config import local_stack_settings, project_root
from recsys.localstack import mariadb, vectordb
from recsys.localstack.stack import AWS_SERVICE, Stack

TEST_STACK_ENV = {
    "LOCAL_STACK_HOME": str(project_root() / ".local" / "test-stack"),
    "MYSQL_PORT": os.environ.get("TEST_MYSQL_PORT", "13307"),
    "VECTOR_DB_PORT": os.environ.get("TEST_VECTOR_DB_PORT", "15433"),
    "AWS_PORT": os.environ.get("TEST_AWS_PORT", "15055"),
    "AIRFLOW_PORT": os.environ.get("TEST_AIRFLOW_PORT", "18080"),
}


def test_stack_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "VECTOR_DB_", "AWS_", "AIRFLOW_PORT"))}
    return local_stack_settings({**env, **TEST_STACK_ENV})


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The test stack, started for the session when it is not running (and stopped again afterwards)."""
    stack = Stack(test_stack_settings())
    started_here = [s for s in (mariadb.SERVICE, vectordb.SERVICE, AWS_SERVICE) if stack.state.running(s) is None]
    stack.up(lambda message: print(f"[test stack] {message}"), migrate_airflow=False)
    yield stack
    if started_here:
        stack.down(lambda message: print(f"[test stack] {message}"))
