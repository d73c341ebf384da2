"""docker-compose.yaml can't run here (no Docker engine): check it statically."""

from __future__ import annotations

import re

import pytest
import yaml

from recsys.config import project_root

COMPOSE = project_root() / "docker-compose.yaml"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def test_services_of_the_platform(compose):
    assert {"airflow", "airflow-init", "airflow-db", "mysql", "vector-db", "aws"} <= set(compose["services"])
    assert "pgvector" in compose["services"]["vector-db"]["image"]


def walk(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")
    else:
        yield path, str(node)


def test_no_literal_secret_in_the_file(compose):
    """Every password is a ${VARIABLE} from .env (moto's placeholder key "test" is not a secret)."""
    checked = 0
    for path, value in walk(compose):
        if "PASSWORD" in path.upper():
            assert value.startswith("${"), path
            checked += 1
        for literal in re.findall(r'"password": "([^"]*)"', value):
            assert literal.startswith("${") or literal == "test", path
            checked += 1
    assert checked >= 6
    assert "x-airflow" in compose


def test_the_aws_endpoint_runs_the_projects_executors(compose):
    assert "recsys.localstack.aws_server" in compose["services"]["aws"]["command"]


def test_the_airflow_image_has_terraform():
    dockerfile = (project_root() / "Dockerfile").read_text()
    assert "ARG TERRAFORM_VERSION=" in dockerfile
    assert "sha256sum -c" in dockerfile
    assert "TERRAFORM_DIR=/opt/airflow/terraform" in dockerfile
