"""Where moto answers differently from AWS for the Terraform roots, the local endpoint answers as AWS does.

The local stack applies the very Terraform roots that deploy to AWS (``terraform/<pipeline>``). Where moto's answer
would make the AWS provider fail or see drift on every plan, this extension corrects moto's models in the endpoint's
own process (moto runs in-process, so a corrected model answers every API that reads it):

* **S3 bucket policies**: moto evaluates statements without their conditions, so the platform's
  ``DenyInsecureTransport`` statement (Deny ``*`` when ``aws:SecureTransport`` is false) would deny every request.
  The loopback endpoint stands in for AWS's TLS endpoints, so that statement is evaluated as for a TLS request:
  it does not apply. Every other statement is evaluated as moto does.
* **Security group rules**: a rule that references a group keeps its description in the referenced group's entry;
  ``DescribeSecurityGroupRules`` answered none (drift on every ``aws_vpc_security_group_*_rule``).
* **Kinesis**: ``CreateStream`` dropped its ``Tags`` (drift on the provider's default tags).
* **Firehose**: a stream created with server-side encryption reported no encryption ``Status``; AWS reports
  ``ENABLED`` once created (the provider read ``enabled = false``: drift on every plan).
* **Glue connections**: ``GetConnection`` answered without ``ConnectionType`` (drift on ``aws_glue_connection``).
* **IAM**: AWS managed policies (``AWSLambdaVPCAccessExecutionRole``, ``AWSXRayDaemonWriteAccess``) exist, as in
  every account (moto loads them only when asked: ``MOTO_IAM_LOAD_MANAGED_POLICIES``).
* **RDS**: each instance has its own ``DbiResourceId`` (moto gives all the same one, and the provider reads an
  instance by it); the instance's endpoint is the embedded PostgreSQL (the stack's host; the root's
  ``vector_db_port`` variable gives the port), and the secret RDS manages for the master user
  (``manage_master_user_password``) holds the local database's real credentials for the root's master user name, so
  clients that read the secret connect.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Response

from recsys_local.aws_server import AwsCall, Forward

log = logging.getLogger("recsys_local.fidelity")

_patched: dict[str, Any] = {}


def _is_insecure_transport_statement(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition") or {}
    bool_condition = condition.get("Bool") or {}
    return set(condition) == {"Bool"} and str(bool_condition.get("aws:SecureTransport", "")).lower() == "false"


def policy_for_tls_request(policy: str) -> str:
    """The bucket policy as AWS evaluates it for a request over TLS: secure-transport denials drop out."""
    document = json.loads(policy)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    document["Statement"] = [s for s in statements if not _is_insecure_transport_statement(s)]
    return json.dumps(document)


def _patch_s3() -> None:
    from moto.s3.models import FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        from moto.iam.access_control import IAMPolicy, PermissionResult

        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = policy_for_tls_request(self.policy.decode())
        if not json.loads(policy)["Statement"]:
            return PermissionResult.NEUTRAL
        return IAMPolicy(policy).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission


def _patch_security_group_rules() -> None:
    from moto.ec2.models.security_groups import SecurityGroupRule

    def description(self: Any) -> str | None:
        return self.ip_range.get("Description") or (self.source_group or {}).get("Description")

    SecurityGroupRule.description = property(description)


def _patch_glue_connections() -> None:
    from moto.glue.models import FakeConnection

    original = FakeConnection.as_dict

    def as_dict(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        result = original(self, *args, **kwargs)
        connection_type = self.connection_input.get("ConnectionType")
        if connection_type:
            result["ConnectionType"] = connection_type
        return result

    FakeConnection.as_dict = as_dict


def _patch_kinesis() -> None:
    from moto.kinesis.responses import KinesisResponse

    original = KinesisResponse.create_stream

    def create_stream(self: Any) -> Any:
        result = original(self)
        tags = self._get_param("Tags")
        if tags:
            self.kinesis_backend.add_tags_to_stream(None, self._get_param("StreamName"), tags)
        return result

    KinesisResponse.create_stream = create_stream


def _patch_firehose() -> None:
    from moto.firehose.models import DeliveryStream

    original = DeliveryStream.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        encryption = self.delivery_stream_encryption_configuration
        if encryption and encryption.get("KeyType") and "Status" not in encryption:
            self.delivery_stream_encryption_configuration = {**encryption, "Status": "ENABLED"}

    DeliveryStream.__init__ = __init__


def _patch_rds(state_dir: Path) -> None:
    from moto.rds.models import DBInstance, MasterUserSecret

    @functools.cache  # the stack's settings and passwords do not change while the endpoint runs
    def local_database() -> dict[str, Any]:
        from recsys_local.secrets import load_or_create
        from recsys_local.settings import stack_settings

        settings = stack_settings({**os.environ, "LOCAL_STACK_HOME": str(state_dir.parent)})
        return {
            "host": settings.host,
            "user": settings.vector_db_user,
            "password": load_or_create(settings.home)["vector_db_password"],
        }

    def address(self: Any) -> str:
        return str(local_database()["host"])

    def secret_string(self: Any) -> str:
        local = local_database()
        if self.resource.master_username != local["user"]:
            log.warning(
                "RDS %s: master user %r is not the local database's user %r; set the root's master user name "
                "variable to it (the local stack's Terraform variables do)",
                getattr(self.resource, "db_instance_identifier", "?"),
                self.resource.master_username,
                local["user"],
            )
        return json.dumps({"username": self.resource.master_username, "password": local["password"]})

    DBInstance.address = property(address)
    MasterUserSecret._generate_secret_string = secret_string
    DBInstance.__init__ = with_unique_resource_id(DBInstance.__init__)


#: The characters of an RDS resource id after ``db-`` (26 of them, as AWS writes them).
_RESOURCE_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def with_unique_resource_id(init: Callable[..., None]) -> Callable[..., None]:
    """moto gives every DB instance the same ``DbiResourceId``; the AWS provider reads an instance by that id (a
    ``dbi-resource-id`` filter), so with two instances in one account it finds both and fails ("couldn't find
    resource"). AWS gives each instance its own: so does this."""

    @functools.wraps(init)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.dbi_resource_id = "db-" + "".join(secrets.choice(_RESOURCE_ID_ALPHABET) for _ in range(26))

    return wrapped


class MotoFidelity:
    """Extension that corrects moto's models at load; it answers no call itself."""

    def __init__(self, state_dir: Path) -> None:
        os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")  # read when the IAM backend is created
        for name, patch in (
            ("s3", _patch_s3),
            ("security_group_rules", _patch_security_group_rules),
            ("glue_connections", _patch_glue_connections),
            ("kinesis", _patch_kinesis),
            ("firehose", _patch_firehose),
            ("rds", lambda: _patch_rds(state_dir)),
        ):
            if name not in _patched:
                patch()
                _patched[name] = True

    def intercept(self, call: AwsCall, forward: Forward) -> Response | None:
        return None

    def restore(self, endpoint_url: str) -> None:
        return None

    def start(self, endpoint_url: str) -> None:
        return None

    def stop(self) -> None:
        return None
