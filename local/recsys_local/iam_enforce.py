"""The local endpoint authorizes every request as AWS would: the caller's identity policies, evaluated for each
action the request needs on each resource it names (ARNs), with the condition keys AWS sets (issue 34).

Who calls: an access key of an IAM user, or the temporary key of an assumed role (STS), is that principal; its
inline and attached policies are read from moto's IAM in this process. Any other key (the emulator's ``test``) is the
account's administrator, which bootstraps the emulated account (prerequisites, the administrator's step 0); the
platform's principals act with their own credentials.

What a request needs (:func:`checks`): its IAM actions (:mod:`recsys_local.aws_operations`) on the resource ARNs its
parameters name, resolved per service below (a KMS alias to its key, a secret's name to its ARN, a Glue table to the
catalog, its database and itself), plus the actions AWS authorizes on the caller's behalf: ``iam:PassRole`` when a
request hands a role to a service (``iam:PassedToService``), ``ec2:CreateTags`` when a create request tags
(``ec2:CreateAction``). Condition keys: ``aws:RequestTag/*`` and ``aws:TagKeys`` from the request's tags,
``aws:ResourceTag/*`` from the resource's (KMS keys, security groups, secrets), ``kms:ResourceAliases``,
``iam:PolicyARN``, ``iam:AWSServiceName``, ``secretsmanager:ResourceTag/*``. An action without a resolver here is
checked against ``*``: only a statement on every resource allows it (stricter than AWS, never looser).

A refusal is AWS's: the protocol's AccessDenied error (HTTP 403, 400 for the JSON protocols), naming the principal,
the action and the resource. ``sts:AssumeRole`` also needs the role's trust policy to name the caller (a service, the
account, the user or role; its conditions; :func:`recsys_local.iam_policy.evaluate_trust`): an emulated service
signs with its stand-in key (:func:`recsys_local.service_roles.service_key`), which only assumes roles. A bucket's
policy and a KMS key's policy are evaluated beside the caller's (:func:`resource_policy_refusal`: a bucket policy's
explicit deny wins; a key policy must allow). The account's administrator (the bootstrap) is exempt from all but trust
policies. Not evaluated: permission boundaries, SCPs, signatures (moto checks none of these either).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Response

from recsys.config import LOCAL_ACCOUNT_ID
from recsys_local.aws_operations import Operation, operation
from recsys_local.aws_server import AwsCall, Forward
from recsys_local.iam_policy import (
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    Caller,
    Context,
    Decision,
    evaluate,
    evaluate_resource_policy,
    evaluate_trust,
)
from recsys_local.service_roles import service_of

log = logging.getLogger("recsys_local.iam")

PARTITION = "aws"
#: The decisions' log, in the endpoint's state folder.
DECISIONS = "iam-decisions.jsonl"
#: Actions AWS authorizes for every principal.
ALWAYS_ALLOWED = frozenset({"sts:GetCallerIdentity"})
#: An unsigned GET of this path answers the enforcement's counters (no bucket can be named "_recsys")
TIMING_PATH = "/_recsys/iam-timing"


@dataclass
class Check:
    """One authorization AWS makes for a request: an action on a resource, with its condition keys."""

    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)


# --- parameters ----------------------------------------------------------------------------------------------------
def _get(params: dict[str, Any], *path: str) -> Any:
    value: Any = params
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _find_all(value: Any, key: str) -> list[Any]:
    """Every value of ``key`` anywhere in a JSON document (a role ARN nested in a Firehose destination)."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key and isinstance(v, str):
                found.append(v)
            found += _find_all(v, key)
    elif isinstance(value, list):
        for item in value:
            found += _find_all(item, key)
    return found


def _indexed(params: dict[str, Any], prefix: str) -> list[str]:
    """Query-protocol lists: ``Prefix.1``, ``Prefix.2``... (or ``Prefix.member.N``)."""
    pattern = re.compile(rf"^{re.escape(prefix)}(\.member)?\.(\d+)$")
    found = sorted((int(m.group(2)), v) for k, v in params.items() if (m := pattern.match(k)))
    return [v for _, v in found]


def request_tags(op: Operation) -> dict[str, str]:
    """The tags a request sets, in any of the protocols' shapes."""
    p = op.params
    tags: dict[str, str] = {}
    raw = p.get("Tags", p.get("tags"))
    if isinstance(raw, dict):
        tags.update({str(k): str(v) for k, v in raw.items()})
    elif isinstance(raw, list):
        for tag in raw:
            if isinstance(tag, dict):
                key = tag.get("Key", tag.get("TagKey"))
                if key is not None:
                    tags[str(key)] = str(tag.get("Value", tag.get("TagValue", "")))
    # query protocols: Tags.member.N.Key (IAM), Tags.Tag.N.Key (RDS), TagSpecification.N.Tag.M.Key (EC2)
    for key, value in p.items():
        found = re.match(r"^(Tags\.member|Tags\.Tag|TagSpecification\.\d+\.Tag|Tag|Tags)\.(\d+)\.Key$", key)
        if found:
            tags[str(value)] = str(p.get(key[: -len("Key")] + "Value", ""))
    return tags


def _tag_context(tags: dict[str, str], prefix: str = "aws:RequestTag") -> dict[str, Any]:
    context: dict[str, Any] = {f"{prefix}/{k}": v for k, v in tags.items()}
    if prefix == "aws:RequestTag" and tags:
        context["aws:TagKeys"] = list(tags)
    return context


# --- moto's models, read in this process ----------------------------------------------------------------------------
def _backend(service: str, region: str) -> Any:
    from moto.backends import get_backend

    return get_backend(service)[LOCAL_ACCOUNT_ID][region if service not in ("iam", "sts") else "global"]


def _kms_key(key_id: str, region: str) -> tuple[str, dict[str, Any]]:
    """A key's ARN and its condition keys (aliases, tags), from an id, ARN, alias name or alias ARN."""
    kms = _backend("kms", region)
    try:
        key = kms.keys[kms.any_id_to_key_id(key_id)]
    except Exception:
        return f"arn:{PARTITION}:kms:{region}:{LOCAL_ACCOUNT_ID}:key/{key_id}", {}
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(key.id).get("Tags", [])}
    return key.arn, {"kms:ResourceAliases": sorted(key.aliases), **_tag_context(tags, "aws:ResourceTag")}


def _secret(secret_id: str, region: str) -> tuple[str, dict[str, Any]]:
    prefix = f"arn:{PARTITION}:secretsmanager:{region}:{LOCAL_ACCOUNT_ID}:secret:"
    try:
        secret = _backend("secretsmanager", region).describe_secret(secret_id)
        info = secret.to_dict() if hasattr(secret, "to_dict") else secret
    except Exception:
        return secret_id if secret_id.startswith(prefix) else f"{prefix}{secret_id}-000000", {}
    tags = {t["Key"]: t["Value"] for t in info.get("Tags") or []}
    context = {**_tag_context(tags, "aws:ResourceTag"), **_tag_context(tags, "secretsmanager:ResourceTag")}
    return str(info["ARN"]), context


def _security_group_tags(group_id: str, region: str) -> dict[str, Any]:
    try:
        group = _backend("ec2", region).get_security_group_from_id(group_id)
    except Exception:
        return {}
    tags = group.get_tags() if group is not None and hasattr(group, "get_tags") else []
    return _tag_context({t["key"]: t["value"] for t in tags}, "aws:ResourceTag")


def _role_arn(name: str) -> str:
    try:
        return str(_backend("iam", "global").get_role(name).arn)
    except Exception:
        return f"arn:{PARTITION}:iam::{LOCAL_ACCOUNT_ID}:role/{name}"


# --- resources per service -----------------------------------------------------------------------------------------
def _s3(op: Operation, action: str) -> list[Check]:
    bucket, key = op.params.get("Bucket"), op.params.get("Key")
    if action == "s3:ListAllMyBuckets" or not bucket:
        return [Check(action, "*")]
    if op.name == "CopyObject" and action == "s3:GetObject":
        source = str(op.params.get("CopySource", "")).lstrip("/").split("?")[0]
        return [Check(action, f"arn:{PARTITION}:s3:::{source}")]
    object_level = key and ("Object" in action or action in ("s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"))
    if op.name == "DeleteObjects":
        return [Check(action, f"arn:{PARTITION}:s3:::{bucket}/*")]
    if not object_level:
        return [Check(action, f"arn:{PARTITION}:s3:::{bucket}")]
    checks = [Check(action, f"arn:{PARTITION}:s3:::{bucket}/{key}")]
    if op.name in ("GetObject", "HeadObject") and not _s3_object_exists(str(bucket), str(key)):
        # AWS answers a missing key with 404 only to a caller who may list the bucket, else with 403
        checks.append(Check("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}"))
    return checks


def _s3_object_exists(bucket: str, key: str) -> bool:
    try:
        found = _backend("s3", "global").buckets.get(bucket)
        return found is None or found.keys.get(key) is not None  # no such bucket: NoSuchBucket either way
    except Exception:  # no such bucket: the answer does not depend on ListBucket
        return True


def _lambda(op: Operation, action: str) -> list[Check]:
    p = op.params
    name = str(p.get("FunctionName") or "")
    if not name:
        arn = p.get("Resource") or p.get("ARN")
        return [Check(action, str(arn) if arn else "*")]
    if ":function:" in name:
        name = name.split(":function:", 1)[1]
    name, _, inline_qualifier = name.partition(":")
    base = f"arn:{PARTITION}:lambda:{op.region}:{LOCAL_ACCOUNT_ID}:function:{name}"
    qualifier = p.get("Qualifier") or inline_qualifier
    checks = [Check(action, f"{base}:{qualifier}" if qualifier and "Alias" not in op.name else base)]
    role = p.get("Role")
    if role and op.name in ("CreateFunction", "UpdateFunctionConfiguration"):
        checks.append(Check("iam:PassRole", str(role), {"iam:PassedToService": "lambda.amazonaws.com"}))
    return checks


def _kinesis(op: Operation, action: str) -> list[Check]:
    p = op.params
    arn = p.get("StreamARN")
    name = p.get("StreamName")
    if not arn and not name and p.get("ShardIterator"):  # GetRecords: AWS authorizes the iterator's stream
        from moto.kinesis.utils import decompose_shard_iterator

        try:
            name = decompose_shard_iterator(str(p["ShardIterator"]))[0]
        except Exception:  # not one of moto's: moto answers it with its own error
            name = None
    if not arn and name:
        arn = f"arn:{PARTITION}:kinesis:{op.region}:{LOCAL_ACCOUNT_ID}:stream/{name}"
    return [Check(action, str(arn) if arn else "*", _tag_context(request_tags(op)))]


def _firehose(op: Operation, action: str) -> list[Check]:
    name = op.params.get("DeliveryStreamName")
    arn = f"arn:{PARTITION}:firehose:{op.region}:{LOCAL_ACCOUNT_ID}:deliverystream/{name}" if name else "*"
    checks = [Check(action, arn, _tag_context(request_tags(op)))]
    if op.name in ("CreateDeliveryStream", "UpdateDestination"):
        for role in sorted(set(_find_all(op.params, "RoleARN"))):
            checks.append(Check("iam:PassRole", role, {"iam:PassedToService": "firehose.amazonaws.com"}))
    return checks


def _glue(op: Operation, action: str) -> list[Check]:
    p, arn = op.params, f"arn:{PARTITION}:glue:{op.region}:{LOCAL_ACCOUNT_ID}"
    tags = _tag_context(request_tags(op))
    if "SecurityConfiguration" in op.name:
        return [Check(action, "*")]
    if p.get("ResourceArn"):
        return [Check(action, str(p["ResourceArn"]))]
    job = p.get("JobName") or (p.get("Name") if "Job" in op.name else None)
    if job:
        checks = [Check(action, f"{arn}:job/{job}", tags)]
        role = str(p.get("Role") or _get(p, "JobUpdate", "Role") or "")
        if role and op.name in ("CreateJob", "UpdateJob"):
            role_arn = role if role.startswith("arn:") else _role_arn(role.rsplit("/", 1)[-1])
            checks.append(Check("iam:PassRole", role_arn, {"iam:PassedToService": "glue.amazonaws.com"}))
        return checks
    connection = _get(p, "ConnectionInput", "Name") or (p.get("Name") if "Connection" in op.name else None)
    if connection:
        return [Check(action, f"{arn}:catalog"), Check(action, f"{arn}:connection/{connection}", tags)]
    database = (
        p.get("DatabaseName") or _get(p, "DatabaseInput", "Name") or (p.get("Name") if "Database" in op.name else None)
    )
    if database:
        checks = [Check(action, f"{arn}:catalog"), Check(action, f"{arn}:database/{database}", tags)]
        table = p.get("TableName") or _get(p, "TableInput", "Name") or (p.get("Name") if "Table" in op.name else None)
        if table:
            checks.append(Check(action, f"{arn}:table/{database}/{table}"))
        return checks
    return [Check(action, "*")]


def _logs(op: Operation, action: str) -> list[Check]:
    p, arn = op.params, f"arn:{PARTITION}:logs:{op.region}:{LOCAL_ACCOUNT_ID}"
    if p.get("resourceArn"):
        return [Check(action, str(p["resourceArn"]))]
    group = p.get("logGroupName")
    if not group:
        return [Check(action, f"{arn}:log-group:*" if op.name == "DescribeLogGroups" else "*")]
    stream = p.get("logStreamName")
    resource = f"{arn}:log-group:{group}:log-stream:{stream}" if stream else f"{arn}:log-group:{group}"
    return [Check(action, resource, _tag_context(request_tags(op)))]


def _kms(op: Operation, action: str) -> list[Check]:
    p, region = op.params, op.region
    if op.name in ("CreateKey", "ListAliases", "ListKeys", "GenerateRandom"):
        return [Check(action, "*", _tag_context(request_tags(op)))]
    checks = []
    if p.get("AliasName"):
        checks.append(Check(action, f"arn:{PARTITION}:kms:{region}:{LOCAL_ACCOUNT_ID}:{p['AliasName']}"))
        target = p.get("TargetKeyId") or p.get("AliasName")
        arn, context = _kms_key(str(target), region)
        checks.append(Check(action, arn, context))
        return checks
    if p.get("KeyId"):
        arn, context = _kms_key(str(p["KeyId"]), region)
        return [Check(action, arn, {**context, **_tag_context(request_tags(op))})]
    return [Check(action, "*")]


def _secretsmanager(op: Operation, action: str) -> list[Check]:
    p = op.params
    secret = p.get("SecretId") or p.get("Name")
    if not secret:
        return [Check(action, "*")]
    arn, context = _secret(str(secret), op.region)
    return [Check(action, arn, {**context, **_tag_context(request_tags(op))})]


def _iam(op: Operation, action: str) -> list[Check]:
    p, arn = op.params, f"arn:{PARTITION}:iam::{LOCAL_ACCOUNT_ID}"
    if op.name == "CreateServiceLinkedRole":
        service = str(p.get("AWSServiceName", ""))
        role = f"{arn}:role/aws-service-role/{service}/AWSServiceRoleFor{service.split('.')[0].upper()}"
        return [Check(action, role, {"iam:AWSServiceName": service})]
    if p.get("RoleName"):
        context = {"iam:PolicyARN": p["PolicyArn"]} if p.get("PolicyArn") else {}
        return [Check(action, _role_arn(str(p["RoleName"])), {**context, **_tag_context(request_tags(op))})]
    if p.get("PolicyArn"):
        return [Check(action, str(p["PolicyArn"]))]
    if p.get("PolicyName") and op.name == "CreatePolicy":
        return [Check(action, f"{arn}:policy/{p['PolicyName']}", _tag_context(request_tags(op)))]
    if p.get("UserName"):
        return [Check(action, f"{arn}:user/{p['UserName']}")]
    return [Check(action, "*")]


def _ec2(op: Operation, action: str) -> list[Check]:
    p, arn = op.params, f"arn:{PARTITION}:ec2:{op.region}:{LOCAL_ACCOUNT_ID}"
    if op.name == "DescribeVpcAttribute":  # the one Describe* with a resource: the VPC
        return [Check(action, f"{arn}:vpc/{p.get('VpcId', '*')}")]
    if op.name.startswith("Describe"):
        return [Check(action, "*")]
    tags = request_tags(op)
    if op.name == "CreateSecurityGroup":
        checks = [
            Check(action, f"{arn}:vpc/{p.get('VpcId', '*')}"),
            Check(action, f"{arn}:security-group/*", _tag_context(tags)),
        ]
        if tags:
            create_tags = {"ec2:CreateAction": op.name, **_tag_context(tags)}
            checks.append(Check("ec2:CreateTags", f"{arn}:security-group/*", create_tags))
        return checks
    if op.name in ("CreateTags", "DeleteTags"):
        checks = []
        for resource in _indexed(p, "ResourceId"):
            kind = (
                "security-group-rule"
                if resource.startswith("sgr-")
                else "security-group"
                if resource.startswith("sg-")
                else "*"
            )
            context = _security_group_tags(resource, op.region) if kind == "security-group" else {}
            checks.append(
                Check(action, f"{arn}:{kind}/{resource}" if kind != "*" else "*", {**context, **_tag_context(tags)})
            )
        return checks or [Check(action, "*")]
    group = p.get("GroupId")
    if group:
        checks = [Check(action, f"{arn}:security-group/{group}", _security_group_tags(str(group), op.region))]
        if tags and op.name.startswith("Authorize"):
            create_tags = {"ec2:CreateAction": op.name, **_tag_context(tags)}
            checks.append(Check("ec2:CreateTags", f"{arn}:security-group-rule/*", create_tags))
        return checks
    return [Check(action, "*")]


def _rds(op: Operation, action: str) -> list[Check]:
    p, arn = op.params, f"arn:{PARTITION}:rds:{op.region}:{LOCAL_ACCOUNT_ID}"
    tags = _tag_context(request_tags(op))
    if p.get("ResourceName"):
        return [Check(action, str(p["ResourceName"]), tags)]
    checks = []
    if p.get("DBInstanceIdentifier") or op.name == "DescribeDBInstances":
        checks.append(Check(action, f"{arn}:db:{p.get('DBInstanceIdentifier', '*')}", tags))
    if p.get("DBSubnetGroupName") or op.name == "DescribeDBSubnetGroups":
        checks.append(Check(action, f"{arn}:subgrp:{p.get('DBSubnetGroupName', '*')}", tags))
    if op.name == "CreateDBInstance":
        engine, version = str(p.get("Engine", "")), str(p.get("EngineVersion", "")).split(".")[0]
        checks.append(Check(action, f"{arn}:og:default:{engine}-{version}"))
        checks.append(Check(action, f"{arn}:pg:default.{engine}{version}"))
    if op.name == "DeleteDBInstance" and p.get("FinalDBSnapshotIdentifier"):
        checks.append(Check("rds:CreateDBSnapshot", f"{arn}:snapshot:{p['FinalDBSnapshotIdentifier']}"))
    return checks or [Check(action, "*")]


RESOLVERS = {
    "s3": _s3,
    "lambda": _lambda,
    "kinesis": _kinesis,
    "firehose": _firehose,
    "glue": _glue,
    "logs": _logs,
    "kms": _kms,
    "secretsmanager": _secretsmanager,
    "iam": _iam,
    "ec2": _ec2,
    "rds": _rds,
}


#: Create operations that carry tags, and the tag action AWS also authorizes then, on the resource being created
#: (each service's "tag on create"; EC2's, with ec2:CreateAction, is in :func:`_ec2`).
TAG_ON_CREATE = {
    "lambda:CreateFunction": "lambda:TagResource",
    "logs:CreateLogGroup": "logs:TagResource",
    "kms:CreateKey": "kms:TagResource",
    "secretsmanager:CreateSecret": "secretsmanager:TagResource",
    "rds:CreateDBInstance": "rds:AddTagsToResource",
    "rds:CreateDBSubnetGroup": "rds:AddTagsToResource",
    "iam:CreateRole": "iam:TagRole",
    "firehose:CreateDeliveryStream": "firehose:TagDeliveryStream",
    "kinesis:CreateStream": "kinesis:AddTagsToStream",
}


def checks(op: Operation) -> list[Check]:
    """Every authorization AWS makes for the request: each IAM action on each resource, and the implied ones."""
    resolver = RESOLVERS.get(op.service)
    out: list[Check] = []
    for action in op.actions:
        if action in ALWAYS_ALLOWED:
            continue
        found = resolver(op, action) if resolver else [Check(action, "*")]
        tagging = TAG_ON_CREATE.get(action)
        tags = request_tags(op) if tagging else {}
        if tagging and tags and found:
            found.append(Check(tagging, found[0].resource, _tag_context(tags)))
        out += found
    return out


# --- principals ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Principal:
    arn: str
    policies: tuple[tuple[str, dict[str, Any]], ...]


#: The emulator's administrator key (moto's placeholder, not a secret): the account's bootstrap and the operator.
#: Any other key must be an IAM user's access key or an STS session's, as in AWS.
ADMIN_KEY = "test"


class UnknownKey(Exception):
    """A request signed with a key that is neither the administrator's nor any user's or session's."""


def principal(access_key: str, headers: dict[str, str]) -> Principal | None:
    """The IAM user or assumed role that owns the key, with its policies; None for the account's administrator;
    :class:`UnknownKey` for a key nobody owns (AWS refuses it before any policy: InvalidClientTokenId)."""
    from moto.iam.access_control import CreateAccessKeyFailure, create_access_key

    if access_key == ADMIN_KEY:
        return None
    try:
        owner = create_access_key(LOCAL_ACCOUNT_ID, PARTITION, access_key, headers)
    except CreateAccessKeyFailure:
        raise UnknownKey(access_key) from None
    try:
        collected = owner.collect_policies()
    except Exception:  # a session of a role deleted since: it holds no policy, so everything is refused
        collected = []
    return Principal(owner.arn, _documents(collected))


def role_principal(arn: str) -> Principal | None:
    """The role ``arn`` names, with its inline and attached policies (what a service acting as it holds); None when
    there is no such role."""
    name = arn.rsplit("/", 1)[-1]
    if not arn.startswith(f"arn:{PARTITION}:iam::{LOCAL_ACCOUNT_ID}:role/") or not name:
        return None
    iam = _backend("iam", "global")
    try:
        collected: list[Any] = [iam.get_role_policy(name, policy)[1] for policy in iam.list_role_policies(name)]
        collected += iam.list_attached_role_policies(name)[0]
    except Exception:  # moto's NoSuchEntity
        return None
    return Principal(arn, _documents(collected))


def _documents(collected: list[Any]) -> tuple[tuple[str, dict[str, Any]], ...]:
    """moto's policies of a principal (inline documents as text, attached managed policies) as named documents."""
    policies: list[tuple[str, dict[str, Any]]] = []
    for index, policy in enumerate(collected):
        if isinstance(policy, str):
            policies.append((f"inline-{index}", json.loads(policy)))
            continue
        versions = getattr(policy, "versions", [])
        default = next((v for v in versions if v.is_default), None)
        document = default.document if default is not None else getattr(policy, "document", "{}")
        policies.append(
            (str(getattr(policy, "name", index)), json.loads(document) if isinstance(document, str) else document)
        )
    return tuple(policies)


def _trust_policy(arn: str) -> dict[str, Any] | None:
    """The trust policy of the role ``arn`` names in this account; None when there is no such role."""
    name = arn.rsplit("/", 1)[-1]
    if not arn.startswith(f"arn:{PARTITION}:iam::{LOCAL_ACCOUNT_ID}:role/") or not name:
        return None
    try:
        role = _backend("iam", "global").get_role(name)
    except Exception:  # moto's NoSuchEntity
        return None
    return _parsed(role.assume_role_policy_document)  # unreadable: trusts nobody


_KEY_ARN = re.compile(r"arn:[a-z-]+:kms:([a-z0-9-]+):\d+:key/(.+)")


def resource_policy(resource: str, region: str) -> tuple[str, dict[str, Any]] | None:
    """The resource-based policy that governs ``resource`` besides the caller's own: a bucket's policy (for the
    bucket and its objects) or a KMS key's key policy; None when the resource has none."""
    if resource.startswith(f"arn:{PARTITION}:s3:::"):
        bucket = resource.removeprefix(f"arn:{PARTITION}:s3:::").split("/", 1)[0]
        try:
            document = _backend("s3", "global").get_bucket(bucket).policy
        except Exception:  # no such bucket (the request fails on its own)
            return None
        return ("bucket policy", _parsed(document)) if document else None
    key = _KEY_ARN.fullmatch(resource)
    if key:
        try:
            document = _backend("kms", key.group(1)).keys[key.group(2)].policy
        except Exception:
            return None
        return ("key policy", _parsed(document)) if document else None
    return None


def _parsed(document: Any) -> dict[str, Any]:
    """A resource-based policy as moto holds it (JSON text, bytes or already a dict); {} when unreadable: it grants
    nothing. Parsed once per text (a bucket's policy is read on every request to it)."""
    if isinstance(document, (str, bytes)):
        return _parsed_text(document)
    return document if isinstance(document, dict) else {}


@functools.lru_cache(maxsize=256)
def _parsed_text(document: str | bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(document)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def resource_policy_refusal(caller: Caller, check: Check, region: str) -> tuple[str, Decision] | None:
    """What a bucket or key policy refuses that the caller's own policies allowed (None: nothing): a bucket policy's
    explicit Deny (e.g. TLS only: the local endpoint stands for AWS's HTTPS one, so ``aws:SecureTransport`` is true);
    a key policy that does not allow the caller (in AWS a key's policy must allow, itself or by naming the account
    so that IAM policies decide, as our keys do)."""
    found = resource_policy(check.resource, region)
    if found is None:
        return None
    kind, document = found
    context = {
        **check.context,
        "aws:SecureTransport": "true",
        "aws:PrincipalAccount": caller.account,
        "aws:PrincipalArn": caller.arns[-1] if caller.arns else "",
    }
    verdict = evaluate_resource_policy(document, caller, check.action, check.resource, Context.of(context), kind)
    if verdict.effect == EXPLICIT_DENY or (kind == "key policy" and verdict.effect != ALLOW):
        return kind, verdict
    return None


def _trust_caller(access_key: str, who: Principal | None, service: str) -> Caller:
    """The caller as a trust policy names it: a service, the account's root (the administrator), a user, or a role
    session (its session ARN and its role's ARN)."""
    if service:
        return Caller(LOCAL_ACCOUNT_ID, service=service)
    if who is None:
        return Caller(LOCAL_ACCOUNT_ID, (f"arn:{PARTITION}:iam::{LOCAL_ACCOUNT_ID}:root",))
    session = re.fullmatch(r"arn:([a-z-]+):sts::(\d+):assumed-role/([^/]+)/.+", who.arn)
    if session:
        partition, account, role = session.groups()
        return Caller(account, (who.arn, f"arn:{partition}:iam::{account}:role/{role}"))
    return Caller(LOCAL_ACCOUNT_ID, (who.arn,))


# --- what a service checks itself ---------------------------------------------------------------------------------
#: What Lambda checks the execution role of a function in a VPC may do before it accepts the configuration (it creates
#: and removes the function's network interfaces as the role), in the order it reports the first one missing.
LAMBDA_VPC_ACTIONS = ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface")


def lambda_vpc_checks(op: Operation) -> tuple[str, list[Check]] | None:
    """For CreateFunction / UpdateFunctionConfiguration with subnets: the execution role's ARN and the authorizations
    Lambda makes as that role (each ENI action on the subnets, security groups and a new interface); None otherwise."""
    if op.service != "lambda" or op.name not in ("CreateFunction", "UpdateFunctionConfiguration"):
        return None
    vpc = op.params.get("VpcConfig")
    role = str(op.params.get("Role") or "")
    if op.name == "UpdateFunctionConfiguration" and (vpc is None or not role):
        # an update keeps what it does not name: the function's subnets and groups, its role
        name = str(op.params.get("FunctionName") or "").split(":function:")[-1].split(":")[0]
        try:
            function = _backend("lambda", op.region).get_function(name)
        except Exception:  # no such function: the request fails on its own
            return None
        current = getattr(function, "_vpc_config", None) or getattr(function, "vpc_config", None) or {}
        vpc = vpc if vpc is not None else current
        role = role or str(function.role)
    subnets = [str(s) for s in (vpc or {}).get("SubnetIds") or []]
    if not subnets:
        return None
    ec2 = f"arn:{PARTITION}:ec2:{op.region}:{LOCAL_ACCOUNT_ID}"
    interface = f"{ec2}:network-interface/*"
    create = [interface, *(f"{ec2}:subnet/{s}" for s in subnets)]
    create += [f"{ec2}:security-group/{g}" for g in vpc.get("SecurityGroupIds") or []]
    return role, [
        *(Check("ec2:CreateNetworkInterface", resource) for resource in create),
        Check("ec2:DescribeNetworkInterfaces", "*"),
        Check("ec2:DeleteNetworkInterface", interface),
    ]


def lambda_vpc_refused(op: Operation, action: str) -> Response:
    """Lambda's answer when the execution role may not manage the function's network interfaces."""
    call = action.split(":")[1]
    message = f"<Message>The provided execution role does not have permissions to call {call} on EC2</Message>"
    return _refusal(op, "InvalidParameterValueException", message, status=400)


# --- refusals ------------------------------------------------------------------------------------------------------
def _refusal(
    op: Operation, code: str, message: str, status: int = 403, ec2: tuple[str, str, int] | None = None
) -> Response:
    """AWS's refusal ``code`` in the request's protocol: S3's XML, EC2's (``ec2``: its own code, text and status),
    the query protocol's (IAM, STS, RDS, CloudWatch), Lambda's REST JSON, the JSON protocol's (status 400 for
    AccessDeniedException, as AWS answers it)."""
    request_id = str(uuid.uuid4())
    if op.service == "s3":
        return Response(
            _xml("Error", f"<Code>{code}</Code>{message}<RequestId>{request_id}</RequestId>"),
            status=status,
            content_type="application/xml",
        )
    if op.service == "ec2" and ec2 is not None:
        ec2_code, ec2_message, ec2_status = ec2
        error = (
            f"<Errors><Error><Code>{ec2_code}</Code><Message>{ec2_message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID>"
        )
        return Response(_xml("Response", error), status=ec2_status, content_type="text/xml")
    text = re.sub(r"<[^>]+>", "", message.split("</Message>")[0])
    if op.service in ("iam", "sts", "rds", "cloudwatch"):
        error = f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{text}</Message></Error>"
        return Response(
            _xml("ErrorResponse", error + f"<RequestId>{request_id}</RequestId>"),
            status=status,
            content_type="text/xml",
        )
    json_type = "AccessDeniedException" if code == "AccessDenied" else code
    headers = {"x-amzn-ErrorType": json_type, "x-amzn-RequestId": request_id}
    if op.service == "lambda":
        return Response(
            json.dumps({"Type": "User", "Message": text}),
            status=status,
            headers=headers,
            content_type="application/json",
        )
    body = json.dumps({"__type": json_type, "message": text})
    json_status = 400 if json_type == "AccessDeniedException" else status
    return Response(body, status=json_status, headers=headers, content_type="application/x-amz-json-1.1")


def unrecognized(op: Operation) -> Response:
    """AWS's answer to a key it does not know, in the request's protocol."""
    if op.service == "s3":
        message = (
            "<Message>The AWS Access Key Id you provided does not exist in our records.</Message>"
            f"<AWSAccessKeyId>{op.access_key}</AWSAccessKeyId>"
        )
        return _refusal(op, "InvalidAccessKeyId", message)
    message = "<Message>The security token included in the request is invalid.</Message>"
    code = (
        "InvalidClientTokenId" if op.service in ("iam", "sts", "rds", "cloudwatch") else "UnrecognizedClientException"
    )
    return _refusal(
        op, code, message, ec2=("AuthFailure", "AWS was not able to validate the provided access credentials", 401)
    )


def denied(op: Operation, who: str, check: Check, explicit: bool, kind: str = "identity-based") -> Response:
    """AWS's AccessDenied for the request's protocol (``kind``: the policy that refused, a role's trust policy being
    "resource-based")."""
    why = (
        f"with an explicit deny in {'an' if kind[0] in 'aeiou' else 'a'} {kind} policy"
        if explicit
        else (f"because no {kind} policy allows the {check.action} action")
    )
    message = f"User: {who} is not authorized to perform: {check.action} on resource: {check.resource} {why}"
    ec2 = ("UnauthorizedOperation", f"You are not authorized to perform this operation. {message}", 403)
    return _refusal(op, "AccessDenied", f"<Message>{message}</Message>", ec2=ec2)


def _xml(root: str, inner: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>'


#: True when the endpoint only records what it would refuse (``--enforce-iam audit``): :mod:`recsys_local.aws_endpoint`
#: sets it before the extension loads.
AUDIT_ONLY = False


class IamEnforcement:
    """Extension: refuses what the caller's policies do not allow (see the module docstring); answers nothing else."""

    def __init__(self, state_dir: Path | None) -> None:
        #: every decision on a principal's request, one JSON line each: the proof that each statement is needed
        #: (remove it and replay the log) and the record of what a refusal named
        self.decisions = state_dir / DECISIONS if state_dir is not None else None
        self._lock = threading.Lock()
        self.audit_only = AUDIT_ONLY
        #: what enforcement costs: signed requests authorized and the seconds spent deciding them (the request
        #: waits for the decision: an upper bound of the time it adds); GET TIMING_PATH answers them (make bench)
        self.authorized = 0
        self.seconds = 0.0
        self._verb = "would deny" if self.audit_only else "denied"

    def intercept(self, call: AwsCall, forward: Forward) -> Response | None:
        environ = call.environ
        if (
            environ.get("PATH_INFO") == TIMING_PATH
            and environ.get("REQUEST_METHOD") == "GET"
            and not (environ.get("HTTP_AUTHORIZATION") or "X-Amz-Signature" in environ.get("QUERY_STRING", ""))
        ):
            with self._lock:
                counters = {"authorized": self.authorized, "seconds": round(self.seconds, 6)}
            return Response(json.dumps(counters), content_type="application/json")
        started = time.perf_counter()
        op = operation(call.environ, call.body)
        if op is None:
            return None
        if not op.access_key:  # unsigned (the endpoint's own probes): nothing to authorize
            return None
        try:
            return self._authorize(call, op)
        finally:
            spent = time.perf_counter() - started
            with self._lock:
                self.authorized += 1
                self.seconds += spent

    def _authorize(self, call: AwsCall, op: Operation) -> Response | None:
        token = call.environ.get("HTTP_X_AMZ_SECURITY_TOKEN")
        service = service_of(op.access_key)
        who: Principal | None = None
        if not service:
            try:
                who = principal(op.access_key, {"X-Amz-Security-Token": str(token)} if token else {})
            except UnknownKey:
                log.warning("%s an unknown access key %s (%s)", self._verb, op.access_key, op.service)
                return None if self.audit_only else unrecognized(op)
        try:
            return self._decide(op, who, service)
        except ValueError as exc:  # a policy this evaluator cannot read (an operator it does not know)
            log.warning("%s %s: a policy cannot be evaluated: %s", self._verb, op.access_key, exc)
            if self.audit_only:
                return None
            check = Check(op.actions[0] if op.actions else f"{op.service}:?", "*")
            caller = who.arn if who else service or f"arn:{PARTITION}:iam::{LOCAL_ACCOUNT_ID}:root"
            return denied(op, caller, check, explicit=False)

    def _decide(self, op: Operation, who: Principal | None, service: str) -> Response | None:
        """The refusal of ``op`` by ``who`` (or the ``service`` whose key signed it), or None."""
        if op.service == "sts" and op.name == "AssumeRole":
            refusal = self._trust(op, who, service)
            if refusal is not None or service:
                return refusal
        elif service:  # a service's own key only assumes roles: what it does, it does as the role
            log.warning("%s %s %s: a service acts through a role's session", self._verb, service, op.actions[0])
            if not self.audit_only:
                return denied(op, service, Check(op.actions[0], "*"), explicit=False)
            return None
        if who is None:
            return self._lambda_vpc_role(op)
        caller = _trust_caller(op.access_key, who, "")
        for check in checks(op):
            decision = evaluate(who.policies, check.action, check.resource, Context.of(check.context))
            self._record(who, op.access_key, check, decision.effect, decision.statement)
            if decision.effect != ALLOW:
                log.warning("%s %s %s on %s (%s)", self._verb, who.arn, check.action, check.resource, decision.effect)
                if not self.audit_only:
                    return denied(op, who.arn, check, decision.effect == EXPLICIT_DENY)
            refused = resource_policy_refusal(caller, check, op.region)
            if refused is not None:
                kind, verdict = refused
                self._record_line(who.arn, op.access_key, check, verdict.effect, verdict.statement, policy=kind)
                log.warning("%s %s %s on %s (%s: %s)", self._verb, who.arn, check.action, check.resource, kind,
                            verdict.statement or verdict.effect)  # fmt: skip
                if not self.audit_only:
                    return denied(op, who.arn, check, verdict.effect == EXPLICIT_DENY, kind="resource-based")
        return self._lambda_vpc_role(op)

    def _lambda_vpc_role(self, op: Operation) -> Response | None:
        """A function in a VPC: Lambda checks its execution role may manage the network interfaces, whoever asks
        (the decisions are the role's: the IAM report counts them as its calls)."""
        found = lambda_vpc_checks(op)
        if found is None:
            return None
        role_arn, needed = found
        role = role_principal(role_arn)
        if role is None:
            if self.audit_only:
                return None
            message = "<Message>The role defined for the function cannot be assumed by Lambda.</Message>"
            return _refusal(op, "InvalidParameterValueException", message, status=400)
        for check in needed:
            decision = evaluate(role.policies, check.action, check.resource, Context.of(check.context))
            self._record(role, "lambda.amazonaws.com", check, decision.effect, decision.statement)
            if decision.effect != ALLOW:
                log.warning("%s %s: Lambda's check of %s %s on %s", self._verb, role_arn, op.name, check.action,
                            check.resource)  # fmt: skip
                if not self.audit_only:
                    return lambda_vpc_refused(op, check.action)
        return None

    def _trust(self, op: Operation, who: Principal | None, service: str) -> Response | None:
        """sts:AssumeRole: the role exists and its trust policy lets the caller assume it (the account's administrator
        included: it is the account's root, which a trust policy names as the account), as AWS decides it."""
        arn = str(op.params.get("RoleArn", ""))
        check = Check("sts:AssumeRole", arn)
        caller = _trust_caller(op.access_key, who, service)
        document = _trust_policy(arn)
        if document is None:  # nobody assumes a role that does not exist (moto would)
            decision = Decision(IMPLICIT_DENY, "no such role")
        else:
            context = {
                "aws:PrincipalAccount": LOCAL_ACCOUNT_ID,
                "sts:RoleSessionName": op.params.get("RoleSessionName"),
            }
            if service:
                context |= {"aws:SourceAccount": LOCAL_ACCOUNT_ID, "aws:PrincipalServiceName": service}
            else:
                context["aws:PrincipalArn"] = caller.arns[-1]  # a role session's: its role's ARN, as in AWS
            decision = evaluate_trust(document, caller, check.action, arn, Context.of(context))
        self._record_line(caller.name, op.access_key, check, decision.effect, decision.statement, policy="trust")
        if decision.effect == ALLOW:
            return None
        log.warning("%s %s sts:AssumeRole of %s (trust policy: %s)", self._verb, caller.name, arn, decision.statement
                    or decision.effect)  # fmt: skip
        if self.audit_only:
            return None
        return denied(op, caller.name, check, decision.effect == EXPLICIT_DENY, kind="resource-based")

    def _record(self, who: Principal, key: str, check: Check, effect: str, statement: str) -> None:
        self._record_line(who.arn, key, check, effect, statement)

    def _record_line(
        self, who: str, key: str, check: Check, effect: str, statement: str, policy: str = "identity"
    ) -> None:
        if self.decisions is None:
            return
        line = {
            "principal": who,
            "policy": policy,
            "key": key,  # the session's access key id (not a secret): ties actions.jsonl's requests to a principal
            "action": check.action,
            "resource": check.resource,
            "context": check.context,
            "effect": effect,
            "statement": statement,
        }
        with self._lock, open(self.decisions, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")

    def restore(self, endpoint_url: str) -> None:
        return None

    def start(self, endpoint_url: str) -> None:
        return None

    def stop(self) -> None:
        return None
