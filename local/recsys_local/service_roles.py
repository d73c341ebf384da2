"""Who the emulated services are: the role AWS would act as for each of them.

In AWS, Glue runs a job with the job's role, Lambda runs a function with its execution role and Firehose reads,
transforms and delivers with its delivery stream's role: each gets an STS session of that role, and what it does is
authorized against that role's policies. The local endpoint's executors do the same when the endpoint enforces IAM
(``--enforce-iam``, which sets :data:`ENFORCING` in the endpoint's own process): they assume the role through the
endpoint's STS, as the service, and use the session's keys for everything the service does on the resource's behalf.
Without enforcement they keep the administrator's key (nothing would be checked anyway).

Each service assumes as itself (:func:`service_key`): the role's trust policy must name the service, as in AWS (a
Glue job cannot run under a role only Lambda may assume), and a role that does not exist cannot be assumed. Refused,
the job run, the invocation or the delivery fails with STS's AccessDenied, as it would in an account.
"""

from __future__ import annotations

import threading
import time

from recsys.config import LOCAL_ACCOUNT_ID
from recsys_local.clients import local_client

#: True in the endpoint's own process when it enforces IAM (on or audit): :mod:`recsys_local.aws_endpoint` sets it
#: before the executors load.
ENFORCING = False
#: How long a session is asked for, and how long before its end a cached one is replaced.
SESSION_SECONDS = 3600
RENEW_BEFORE_SECONDS = 600
#: How an emulated service's key begins (:func:`service_key`).
SERVICE_KEY_PREFIX = "service:"
#: The service principals of the platform's roles.
GLUE, LAMBDA, FIREHOSE = "glue.amazonaws.com", "lambda.amazonaws.com", "firehose.amazonaws.com"
#: The service that assumes the Airflow workers' role: MWAA's, as the default trust of terraform/airflow_workers.
MWAA = "airflow-env.amazonaws.com"


def enforcing() -> bool:
    return ENFORCING


def role_arn(role: str) -> str:
    """Glue and Lambda take a role's name or ARN."""
    return role if role.startswith("arn:") else f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{role}"


def service_key(service: str) -> str:
    """The access key an AWS service signs with on the local endpoint (``service:glue.amazonaws.com``): this emulator's
    stand-in for the service's own identity, never a real key. It only assumes roles, and only roles whose trust
    policy names the service (:mod:`recsys_local.iam_enforce`)."""
    return SERVICE_KEY_PREFIX + service


def service_of(access_key: str) -> str:
    """The service a :func:`service_key` stands for; empty for any other key."""
    return access_key.removeprefix(SERVICE_KEY_PREFIX) if access_key.startswith(SERVICE_KEY_PREFIX) else ""


def credentials(endpoint_url: str, role: str, session_name: str, service: str) -> dict[str, str] | None:
    """A new session of ``role``, assumed as ``service`` (its trust policy must name it), as environment variables;
    None when the endpoint does not enforce IAM."""
    if not enforcing():
        return None
    key = service_key(service)
    sts = local_client("sts", endpoint_url, credentials={"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": key})
    found = sts.assume_role(RoleArn=role_arn(role), RoleSessionName=session_name, DurationSeconds=SESSION_SECONDS)
    keys = found["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": keys["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
        "AWS_SESSION_TOKEN": keys["SessionToken"],
    }


class Sessions:
    """Sessions kept per (role, session name) until shortly before they end: a function's warm worker keeps its
    environment (and so is not restarted) for as long as its session lasts."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, str], tuple[float, dict[str, str] | None]] = {}

    def get(self, endpoint_url: str, role: str, session_name: str) -> dict[str, str] | None:
        key = (role_arn(role), session_name)
        with self._lock:
            found = self._sessions.get(key)
            if found is not None and found[0] > time.monotonic():
                return found[1]
            fresh = credentials(endpoint_url, role, session_name, self.service)
            self._sessions[key] = (time.monotonic() + SESSION_SECONDS - RENEW_BEFORE_SECONDS, fresh)
            return fresh
