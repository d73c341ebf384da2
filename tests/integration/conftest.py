"""Fixtures for tests that run the local AWS endpoint in-process (no test stack needed)."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from recsys_local.aws_endpoint import EXTENSIONS
from recsys_local.aws_server import LocalAwsServer


@pytest.fixture
def in_process_aws(tmp_path) -> Iterator[tuple[LocalAwsServer, Callable[[str], Any]]]:
    """The local endpoint (moto + executors) on a free port, reset to an empty account; yields (server, client)."""
    # no snapshot at stop: moto's state is this process's, reset for every test (recsys_local.moto_snapshot)
    extensions = [spec for spec in EXTENSIONS if not spec.endswith(":MotoSnapshot")]
    server = LocalAwsServer("127.0.0.1", 0, tmp_path / "state", extensions)
    server.start()
    # moto's state lives in this process: start every test from an empty account
    urllib.request.urlopen(urllib.request.Request(f"{server.endpoint_url}/moto-api/reset", method="POST"))  # noqa: S310

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    yield server, client
    server.stop()
