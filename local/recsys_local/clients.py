"""boto3 clients for the local endpoint, with moto's throwaway credentials."""

from __future__ import annotations

import threading

import boto3
from botocore.config import Config

from recsys.config import DEFAULT_REGION
from recsys_local.process import port_accepts
from recsys_local.settings import SharedAwsConfig

#: What a session reads from the environment once, when it is made: the shared files and the profile they name.
_sessions: dict[tuple[str, ...], boto3.session.Session] = {}
_sessions_lock = threading.Lock()


def _session() -> boto3.session.Session:
    """A session per shared-config environment. boto3's default session reads the config file once per process, so
    a profile named later (a test or a tool that took a stack's environment: the workers' profile) was "not found"
    even for a client given explicit keys."""
    key = tuple(SharedAwsConfig.load().model_dump().values())
    with _sessions_lock:
        if key not in _sessions:
            _sessions[key] = boto3.session.Session()
        return _sessions[key]


def local_client(
    service: str,
    endpoint_url: str,
    region: str = DEFAULT_REGION,
    attempts: int = 3,
    credentials: dict[str, str] | None = None,
    config: Config | None = None,
):
    """A boto3 client for the local endpoint with moto's throwaway credentials (the administrator's), or with
    ``credentials`` (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``: a role's session, see
    :func:`recsys_local.service_roles.credentials`); ``attempts`` counts the first one (botocore's ``max_attempts``
    counts retries only: ``max_attempts=1`` is two attempts); ``config`` replaces the client's whole configuration."""
    keys = credentials or {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    session = _session()
    with _sessions_lock:  # making a client from a shared session is not thread-safe
        return session.client(
            service,
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=keys.get("AWS_SESSION_TOKEN"),
            config=config or Config(retries={"total_max_attempts": attempts}),
        )


def aws_healthy(endpoint_url: str) -> tuple[bool, str]:
    """The endpoint answers S3 ListBuckets (what every pipeline needs first)."""
    host, _, port = endpoint_url.removeprefix("http://").partition(":")
    if not port_accepts(host, int(port)):
        return False, "not listening"
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = local_client(
        "s3",
        endpoint_url,
        DEFAULT_REGION,
        config=Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 2}),
    )
    try:
        buckets = s3.list_buckets().get("Buckets", [])
    except (BotoCoreError, ClientError) as exc:
        return False, str(exc)
    return True, f"moto answering S3 ({len(buckets)} buckets)"
