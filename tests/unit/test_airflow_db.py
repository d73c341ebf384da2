"""Airflow's metadata database is reached through its cluster's socket, as its own role."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from recsys_local.airflow_db import DATABASE, ROLE, AirflowDBConfig


def test_the_url_names_the_socket_folder_and_survives_any_password():
    cfg = AirflowDBConfig(home=Path("/x/my stack"), password="p@ss/w:rd?&#%")
    url = make_url(cfg.sqlalchemy_url())
    assert url.drivername == "postgresql+psycopg2"
    assert (url.username, url.password, url.database, url.host) == (ROLE, "p@ss/w:rd?&#%", DATABASE, None)
    assert url.query == {"host": "/x/my stack/airflow-db", "port": "5432"}


def test_the_password_is_not_in_the_config_repr():
    assert "secret-value" not in repr(AirflowDBConfig(home=Path("/x"), password="secret-value"))
