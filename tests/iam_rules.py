"""Least-privilege rules for the platform's policies, shared by the static and the applied checks.

A rule returns what it finds wrong, naming the policy and the statement, so a failure says what to fix.
"""

from __future__ import annotations

from typing import Any

#: Actions AWS offers no resource-level permissions for: they may name Resource "*" (and only they may).
NO_RESOURCE_LEVEL = frozenset(
    {
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcEndpoints",
        "ec2:DescribeRouteTables",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSecurityGroupRules",
        "ec2:DescribeVpcs",
        "cloudwatch:PutMetricData",
        "s3:ListAllMyBuckets",
        "kms:CreateKey",
        "kms:ListAliases",
        "kinesis:DescribeLimits",
        "glue:CreateSecurityConfiguration",
        "glue:GetSecurityConfiguration",
        "glue:DeleteSecurityConfiguration",
    }
)
#: Tag actions AWS authorizes when a create request carries tags, before the resource exists: on Resource "*" only
#: under an aws:RequestTag condition.
TAG_ON_CREATE = frozenset({"kms:TagResource"})
#: Of those, the ones that must still carry a condition (a namespace, a tag key).
MUST_BE_CONDITIONED = frozenset({"cloudwatch:PutMetricData", "kms:CreateKey"})
#: AWS managed policies a role may have attached, each for a stated reason.
ALLOWED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess": "active tracing",
}
#: The only keys of the ml-artifacts bucket a Lambda reads (recsys_serving.runtime.bundle).
LAMBDA_ARTIFACT_KEYS = (
    "/latest.json",
    "/versions/*/model/inference_bundle.npz",
    "/versions/*/model/inference_bundle.json",
)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(policy.get("Statement"))


def identity_policy_violations(name: str, policy: dict[str, Any]) -> list[str]:
    """Rules for a role's policy: no wildcard action, Resource "*" only where AWS allows nothing narrower."""
    found = []
    for index, statement in enumerate(statements(policy)):
        if statement.get("Effect") != "Allow":
            continue
        where = f"{name} statement {statement.get('Sid') or index}"
        actions = as_list(statement.get("Action"))
        resources = as_list(statement.get("Resource"))
        if any(a in ("*", "*:*") or a.endswith(":*") for a in actions):
            found.append(f"{where}: wildcard action {actions}")
        tag_on_create = "aws:RequestTag/" in str(statement.get("Condition"))
        if "*" in resources:
            broad = [a for a in actions if a not in NO_RESOURCE_LEVEL and not (tag_on_create and a in TAG_ON_CREATE)]
            if broad:
                found.append(f"{where}: {broad} on Resource '*' (these have resource-level permissions)")
            if any(a in MUST_BE_CONDITIONED for a in actions) and not statement.get("Condition"):
                found.append(f"{where}: {actions} on '*' without a condition")
        for action in actions:
            tagging = action in ("ec2:CreateTags", "ec2:DeleteTags")
            limits = ("aws:TagKeys", "ec2:CreateAction", "aws:ResourceTag/")
            if tagging and ("*" in resources or not any(k in str(statement.get("Condition")) for k in limits)):
                found.append(f"{where}: {action} must be limited by tag key, creating action or resource tag")
            if action == "iam:PassRole" and "iam:PassedToService" not in str(statement.get("Condition")):
                found.append(f"{where}: iam:PassRole without iam:PassedToService")
    return found


def key_policy_violations(name: str, policy: dict[str, Any], account: str) -> list[str]:
    """Rules for a KMS key policy: kms:* only for the account root; service principals only under a condition."""
    found = []
    for index, statement in enumerate(statements(policy)):
        if statement.get("Effect") != "Allow":
            continue
        where = f"{name} statement {statement.get('Sid') or index}"
        principal = statement.get("Principal") or {}
        actions = as_list(statement.get("Action"))
        if "*" in actions:
            found.append(f"{where}: Action '*'")
        if "kms:*" in actions and as_list(principal.get("AWS")) != [f"arn:aws:iam::{account}:root"]:
            found.append(f"{where}: kms:* for {principal} (only the account root administers keys)")
        if principal.get("Service") and not statement.get("Condition"):
            found.append(f"{where}: service principal {principal['Service']} without a source or context condition")
    return found


def lambda_s3_violations(name: str, policy: dict[str, Any], artifacts_bucket: str, partition: str = "aws") -> list[str]:
    """A Lambda reads only the inference bundle's keys and the pointer, never the whole bucket (pickles)."""
    found = []
    allowed = {f"arn:{partition}:s3:::{artifacts_bucket}{key}" for key in LAMBDA_ARTIFACT_KEYS}
    for statement in statements(policy):
        actions = as_list(statement.get("Action"))
        if statement.get("Effect") == "Allow" and any(a.startswith("s3:") for a in actions):
            extra = set(as_list(statement.get("Resource"))) - allowed
            if extra:
                found.append(f"{name}: S3 access beyond the inference bundle: {sorted(extra)}")
    return found


#: Actions the Airflow workers' policies allow that no run of the rehearsal calls, outside a *Lifecycle statement
#: (update- and destroy-only actions), each with why it stays (tests/e2e/test_aws_deployment_rehearsal.py and
#: docs/iam-report.md).
UNCALLED_REASONS: dict[str, str] = {
    "ec2:DescribeNetworkInterfaces": "a destroy of streaming_inference waits for the Lambdas' network interfaces",
    "ec2:DescribeSecurityGroupRules": "the provider reads a security group rule back by it (make demo's record)",
    "ec2:DescribeVpcs": "AWS's Lambda checks the function's VPC as the caller; the emulator's does not",
    "glue:GetJobRuns": "a retry of run_glue_job looks up the run its first try started",
    "iam:CreateServiceLinkedRole": "RDS creates AWSServiceRoleForRDS as the caller at an account's first instance",
    "kms:CreateGrant": "RDS makes grants on the vector DB key as the caller (not in the emulator)",
    "kms:Decrypt": "S3, Secrets Manager and RDS decrypt on the workers' behalf (kms:ViaService; not in the emulator)",
    "kms:GenerateDataKey": "S3, Secrets Manager and RDS encrypt on the workers' behalf (kms:ViaService; not in the "
    "emulator)",
    "kms:DescribeKey": "RDS describes the vector DB key as the caller (and the provider reads each key)",
    "s3:AbortMultipartUpload": "a failed multipart upload of a Lambda zip is aborted",
    "lambda:ListTags": "AWS also requires it for GetFunction on a tagged function (every one here: default tags)",
    "kms:Encrypt": "Lambda encrypts the functions' environment with the delivery-stream key as the caller",
    "s3:GetObjectTagging": "the Glue job's source CA object (only with source_db_ssl_ca set)",
    "s3:PutObjectTagging": "the Glue job's source CA object (only with source_db_ssl_ca set)",
    "secretsmanager:TagResource": "RDS tags the master secret it creates as the caller (not in the emulator)",
    "secretsmanager:CreateSecret": "RDS creates the master secret as the caller (manage_master_user_password)",
}


_LAMBDA_ENIS = (
    "Lambda manages the function's network interfaces in the VPC as the role (the endpoint checks what Lambda checks "
    "on create: CreateNetworkInterface, DescribeNetworkInterfaces, DeleteNetworkInterface); the local runner runs the "
    "function on the host's network"
)
_XRAY = "active tracing: Lambda's X-Ray daemon sends segments as the role; the local runner traces nothing"
_THROUGH_KMS = "{}: the service encrypts or decrypts with the key as the role; the emulator's {} does not encrypt"
_GLUE_VPC = (
    "Glue puts the job's connection in the VPC (network interfaces it tags) as the role; the local runner reaches the "
    "source over the host's network"
)
_NOT_INVOKED = (
    "the model-inference Lambda answers its Function URL on demand: nothing calls it in the first runs "
    "(tests/e2e/test_streaming_dag.py does)"
)
_FIREHOSE_S3 = (
    "AWS's documented delivery-role list: Firehose's S3 writer checks the bucket and aborts unfinished multipart "
    "uploads; the local runner writes each object with one PutObject"
)
#: Per principal (glue, transformation, model inference, firehose): why its role allows an action its sessions did
#: not call in the rehearsal's first runs (the IAM report's "allowed, not called" rows of the services' roles).
SERVICE_UNCALLED_REASONS: dict[str, dict[str, str]] = {
    "glue": {
        "cloudwatch:PutMetricData": "the job's --enable-metrics (Glue's Spark metrics sink); the local runner has none",
        **dict.fromkeys(
            (
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcAttribute",
                "ec2:DescribeVpcEndpoints",
                "ec2:CreateTags",
                "ec2:DeleteTags",
            ),
            _GLUE_VPC,
        ),
        **dict.fromkeys(
            ("glue:GetConnection", "glue:GetDatabase", "glue:GetTable"),
            "Glue resolves the job's connection in the Data Catalog as the role when a run starts; the local runner "
            "takes it from the job's arguments",
        ),
        **dict.fromkeys(
            ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey", "logs:AssociateKmsKey"),
            _THROUGH_KMS.format("the job's security configuration (S3 output, logs, bookmarks)", "S3 or Logs"),
        ),
        "s3:DeleteObject": "step 3 deletes what neither the live nor the previous manifest lists: a first run leaves "
        "nothing to delete",
    },
    "transformation": {
        **dict.fromkeys(
            (
                "ec2:AssignPrivateIpAddresses",
                "ec2:DescribeSubnets",
                "ec2:UnassignPrivateIpAddresses",
            ),
            _LAMBDA_ENIS,
        ),
        **dict.fromkeys(("kms:Decrypt", "kms:GenerateDataKey"), _THROUGH_KMS.format("SSE-KMS objects", "S3")),
        **dict.fromkeys(
            (
                "xray:GetSamplingRules",
                "xray:GetSamplingStatisticSummaries",
                "xray:GetSamplingTargets",
                "xray:PutTelemetryRecords",
                "xray:PutTraceSegments",
            ),
            _XRAY,
        ),
    },
    "firehose": {
        **dict.fromkeys(
            ("kms:Decrypt", "kms:GenerateDataKey"), _THROUGH_KMS.format("the delivered objects (SSE-KMS)", "S3")
        ),
        "lambda:GetFunctionConfiguration": "Firehose reads the processor's configuration when the stream is created "
        "or updated; the local runner invokes it directly",
        "logs:PutLogEvents": "Firehose logs delivery errors to the stream's log group: the first runs deliver without "
        "one",
        **dict.fromkeys(
            (
                "s3:AbortMultipartUpload",
                "s3:GetBucketLocation",
                "s3:GetObject",
                "s3:ListBucket",
                "s3:ListBucketMultipartUploads",
            ),
            _FIREHOSE_S3,
        ),
    },
}
SERVICE_UNCALLED_REASONS["model inference"] = {
    **SERVICE_UNCALLED_REASONS["transformation"],
    **dict.fromkeys(
        ("logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject", "secretsmanager:GetSecretValue"), _NOT_INVOKED
    ),
}
#: Per principal, by Sid (or a managed policy's name): statements no request of the first runs needs, and why.
_LAMBDA_STATEMENTS = {
    "AWSXRayDaemonWriteAccess": _XRAY,
    "Decrypt": _THROUGH_KMS.format("SSE-KMS objects and the secret", "S3 or Secrets Manager"),
}
SERVICE_STATEMENTS_NO_RUN_NEEDS: dict[str, dict[str, str]] = {
    "glue": {
        "Encryption": _THROUGH_KMS.format("the job's security configuration", "S3 or Logs"),
        "Catalog": "Glue resolves the job's connection in the Data Catalog when a run starts (not the local runner)",
        "JobMetrics": "the job's --enable-metrics (no metrics sink locally)",
        "DescribeNetwork": _GLUE_VPC,
        "DescribeConnectionVpc": _GLUE_VPC,
        "ConnectionNetworkInterfaces": _GLUE_VPC,
        "DeleteConnectionNetworkInterfaces": _GLUE_VPC,
        "TagGlueNetworkResources": _GLUE_VPC,
    },
    "transformation": _LAMBDA_STATEMENTS,
    "model inference": {
        **_LAMBDA_STATEMENTS,
        "VectorDbCredentials": _NOT_INVOKED,
        "InferenceBundle": _NOT_INVOKED,
        "Logs": _NOT_INVOKED,
    },
    "firehose": {
        "Encryption": _THROUGH_KMS.format("the delivered objects (SSE-KMS)", "S3"),
        "Logs": "Firehose logs delivery errors only: the first runs deliver without one",
    },
}
#: Statements of the Airflow workers' policies (by Sid) that no request of the rehearsal's first runs needs, outside
#: the *Lifecycle ones, each with why it stays.
STATEMENTS_NO_RUN_NEEDS: dict[str, str] = {
    "UsePlatformKeysThroughServices": "S3 and Secrets Manager call KMS on the workers' behalf (SSE-KMS objects, the "
    "secrets); the emulator's do not",
    "RdsUsesTheVectorDbKey": "RDS uses the vector DB key as the caller when it creates the instance (not emulated)",
    "RdsManagedMasterSecret": "RDS creates and tags the master secret as the caller (not emulated)",
    "RdsServiceLinkedRole": "RDS creates its service-linked role at an account's first instance",
    "FunctionsUseTheDeliveryStreamKey": "Lambda encrypts the functions' environment as the caller (not emulated)",
    "LingeringInterfacesLifecycle": "a destroy of a group a Lambda's network interfaces still hold",
    "ScriptsBucketObjects": "the Glue job's source CA object, only with source_db_ssl_ca set",
}


# --- the Service Authorization Reference: every action and condition key AWS knows ---------------------------------
#: Global condition keys (the IAM User Guide's list, the ones a policy here may use); ``${...}`` is any text.
GLOBAL_CONDITION_KEYS = (
    "aws:CalledVia",
    "aws:CalledViaFirst",
    "aws:CalledViaLast",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:PrincipalOrgID",
    "aws:PrincipalServiceName",
    "aws:PrincipalTag/${TagKey}",
    "aws:RequestedRegion",
    "aws:RequestTag/${TagKey}",
    "aws:ResourceAccount",
    "aws:ResourceTag/${TagKey}",
    "aws:SecureTransport",
    "aws:SourceAccount",
    "aws:SourceArn",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:TagKeys",
    "aws:ViaAWSService",
)


def service_reference() -> dict[str, dict[str, Any]]:
    """AWS's actions and condition keys per service prefix, from the copy of the Service Authorization Reference that
    the parliament policy linter ships (read as data: its module needs setuptools' pkg_resources)."""
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.find_spec("parliament")
    assert spec is not None, "parliament (requirements-dev.txt) is not installed"
    folder = Path(next(iter(spec.submodule_search_locations or [])))
    return {service["prefix"]: service for service in json.loads((folder / "iam_definition.json").read_text())}


def _template(text: str) -> str:
    import re

    return "^" + ".*".join(re.escape(part) for part in re.split(r"\$\{[^}]*\}", text)) + "$"


def unknown_actions(name: str, policy: dict[str, Any], reference: dict[str, dict[str, Any]]) -> list[str]:
    """Actions (or wildcard patterns) that name no action of AWS: a typo refuses what it was meant to allow."""
    import fnmatch

    found = []
    for index, statement in enumerate(statements(policy)):
        sid = statement.get("Sid") or str(index)
        for action in as_list(statement.get("Action")) + as_list(statement.get("NotAction")):
            prefix, _, verb = str(action).partition(":")
            service = reference.get(prefix.lower())
            known = [p["privilege"] for p in service["privileges"]] if service else []
            if not any(fnmatch.fnmatchcase(k.lower(), verb.lower()) for k in known):
                found.append(f"{name}/{sid}: {action} is no action of AWS" + ("" if service else f" ({prefix}?)"))
    return found


def unknown_condition_keys(name: str, policy: dict[str, Any], reference: dict[str, dict[str, Any]]) -> list[str]:
    """Condition keys neither global nor their service's (a condition on a key that is never set never matches)."""
    import re

    found = []
    for index, statement in enumerate(statements(policy)):
        sid = statement.get("Sid") or str(index)
        condition = statement.get("Condition") or {}
        flat = [operator for operator, keys in condition.items() if not isinstance(keys, dict)]
        if flat:  # IAM's grammar: {operator: {key: values}}
            found.append(f"{name}/{sid}: condition {flat} is not {{operator: {{key: values}}}}")
        for key in [k for keys in condition.values() if isinstance(keys, dict) for k in keys]:
            if "${" in key and not key.startswith(("aws:", "kms:", "s3:")):  # an interpolation Terraform resolves
                continue
            prefix = key.partition(":")[0].lower()
            service = reference.get(prefix)
            # the reference writes a tag key as ${TagKey}, or for a few services as "tag-key"
            candidates = list(GLOBAL_CONDITION_KEYS) + [
                c["condition"].replace("/tag-key", "/${TagKey}") for c in (service or {}).get("conditions", [])
            ]
            if not any(re.match(_template(c), key, re.IGNORECASE) for c in candidates):
                found.append(f"{name}/{sid}: condition key {key} is neither global nor {prefix}'s")
    return found


#: Resource types an action is authorized on that the reference's copy does not list, each with where AWS says so.
RESOURCE_TYPES_BEYOND_THE_REFERENCE: dict[str, tuple[str, ...]] = {
    # the endpoint authorizes it on log-group:* as AWS does (CloudWatch Logs' access-control examples grant it on a
    # log-group ARN); the reference lists no resource type for it
    "logs:DescribeLogGroups": ("log-group",),
    # Glue tags databases and connections now (AWS Glue's "AWS tags in AWS Glue"); the provider reads them with GetTags
    "glue:GetTags": ("database", "connection"),
}


def resource_mismatches(name: str, policy: dict[str, Any], reference: dict[str, dict[str, Any]]) -> list[str]:
    """A rendered policy's statements whose resources and actions do not meet (the linter's resource mismatch): a
    resource ARN that is of no resource type any of the statement's actions applies to (a typo in a service, a type
    or a separator matches nothing the roots create), and an action none of the statement's resources can be (the
    grant can never allow anything). Resource "*" meets every action."""
    import re

    def tokens(template: str) -> tuple[str, ...]:  # ${Partition}, ${Region}, ${Account}: one ARN field each
        out: list[str] = []
        for part in re.split(r"(\$\{[^}]*\})", template):
            if part.startswith("${"):
                out.append(_FIELD if part in ("${Partition}", "${Region}", "${Account}") else _ANY)
            else:
                out += list(part)
        return tuple(out)

    arns = {
        (prefix, item["resource"]): tokens(item["arn"])
        for prefix, service in reference.items()
        for item in service.get("resources", [])
    }

    def types(action: str) -> list[tuple[str, ...]] | None:
        """The ARN patterns of the resource types ``action`` applies to; None when AWS names none (Resource "*")."""
        prefix, _, verb = action.partition(":")
        service = reference.get(prefix.lower(), {})
        privilege = next((p for p in service.get("privileges", []) if p["privilege"].lower() == verb.lower()), None)
        if privilege is None:
            return []  # unknown actions are unknown_actions' finding
        named = [t["resource_type"].rstrip("*") for t in privilege["resource_types"] if t["resource_type"]]
        named += RESOURCE_TYPES_BEYOND_THE_REFERENCE.get(action, ())
        return [arns[(prefix.lower(), t)] for t in named if (prefix.lower(), t) in arns] or None

    def expanded(action: str) -> list[str]:
        """An action pattern's actions (``glue:Get*``: every Get action of Glue)."""
        import fnmatch

        prefix, _, verb = action.partition(":")
        if not any(c in verb for c in "*?"):
            return [action]
        known = [p["privilege"] for p in reference.get(prefix.lower(), {}).get("privileges", [])]
        return [f"{prefix}:{k}" for k in known if fnmatch.fnmatchcase(k.lower(), verb.lower())]

    found = []
    for index, statement in enumerate(statements(policy)):
        resources = [str(r) for r in as_list(statement.get("Resource"))]
        actions = [str(a) for a in as_list(statement.get("Action"))]
        if statement.get("Effect") != "Allow" or not resources or "*" in resources:
            continue  # NotResource, or every resource: nothing to meet
        if any(any(c in a.split(":", 1)[0] for c in "*?") for a in actions):
            continue  # a service wildcard: the identity rules refuse it
        where = f"{name}/{statement.get('Sid') or index}"
        patterns = {action: types(action) for action in actions if not any(c in action for c in "*?")}
        families = {action: [types(a) for a in expanded(action)] for action in actions if action not in patterns}
        reachable = [p for found_types in patterns.values() for p in found_types or []]
        reachable += [p for family in families.values() for found_types in family for p in found_types or []]
        for resource in resources:
            if not any(_overlap(resource, p) for p in reachable):
                found.append(f"{where}: {resource} is a resource none of {sorted(actions)} applies to")
        for action, family in families.items():  # a pattern: some action it names must meet some resource
            if not any(_overlap(r, p) for found_types in family for p in found_types or [] for r in resources):
                found.append(f"{where}: no action of {action} applies to any of {resources}")
        for action, found_types in patterns.items():
            if found_types is None:
                found.append(f"{where}: {action} applies to no resource type (it needs Resource '*')")
            elif found_types and not any(_overlap(r, p) for p in found_types for r in resources):
                found.append(f"{where}: {action} applies to none of {resources}")
    return found


#: wildcards: any run of characters; a run without ":" (one ARN field); one character (IAM's ?)
_ANY, _FIELD, _ONE = "\x00any", "\x00field", "\x00one"


def _overlap(resource: str, template: tuple[str, ...]) -> bool:
    """Some ARN matches both the policy's resource (IAM's ``*``: any run of characters) and a resource type's ARN
    template (its fields)."""
    import functools

    first = tuple(_ANY if c == "*" else _ONE if c == "?" else c for c in resource)
    second = template

    def accepts(wildcard: str, char: str) -> bool:
        return char in (_ANY, _FIELD, _ONE) or wildcard == _ANY or char != ":"

    @functools.cache
    def meet(i: int, j: int) -> bool:
        if i == len(first) and j == len(second):
            return True
        if i < len(first) and first[i] == _ONE:  # exactly one character of the other side's
            if j < len(second) and second[j] in (_ANY, _FIELD):
                return meet(i + 1, j) or meet(i, j + 1)
            return j < len(second) and meet(i + 1, j + 1)
        if i < len(first) and first[i] in (_ANY, _FIELD):
            return meet(i + 1, j) or (j < len(second) and accepts(first[i], second[j]) and meet(i, j + 1))
        if j < len(second) and second[j] in (_ANY, _FIELD):
            return meet(i, j + 1) or (i < len(first) and accepts(second[j], first[i]) and meet(i + 1, j))
        return i < len(first) and j < len(second) and first[i] == second[j] and meet(i + 1, j + 1)

    return meet(0, 0)
