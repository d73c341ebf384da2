"""Requests as the AWS SDK sends them, for tests of what the local endpoint makes of a request: botocore builds and
signs each one, and it is captured before it leaves, as the WSGI environ and body the endpoint would see."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

ENDPOINT = "http://127.0.0.1:5055"
#: Placeholder keys of an IAM user that need not exist (the request is never sent).
EXAMPLE_KEYS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}


class _Sent(Exception):
    pass


def signed_request(
    service: str,
    method: str,
    params: dict[str, Any],
    credentials: dict[str, str] | None = None,
    endpoint: str = ENDPOINT,
) -> tuple[dict[str, Any], bytes]:
    """The WSGI environ and body of the request botocore signs for ``service.method(**params)``."""
    client = boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        **(credentials or EXAMPLE_KEYS),
    )
    captured: dict[str, Any] = {}

    def capture(request: Any, **_kwargs: Any) -> None:
        captured["request"] = request
        raise _Sent

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Sent):
        getattr(client, method)(**params)
    request = captured["request"]
    url = urlsplit(request.url)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "PATH_INFO": url.path or "/",
        "QUERY_STRING": url.query,
        "HTTP_HOST": url.netloc,
    }
    for name, value in request.headers.items():
        text = value.decode() if isinstance(value, bytes) else value
        environ["HTTP_" + name.upper().replace("-", "_")] = text
        if name.lower() == "content-type":
            environ["CONTENT_TYPE"] = text
    body = request.body or b""
    if hasattr(body, "read"):
        body = body.read()
    return environ, body if isinstance(body, bytes) else body.encode()
