"""Deploy the Lambda packages: upload (content-hashed, skipped when present), create or update, wait until active."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def upload_packages(s3_client: Any, bucket: str, packages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Upload each zip under its content-hashed key unless that key exists."""
    out = []
    for package in packages:
        try:
            s3_client.head_object(Bucket=bucket, Key=package["key"])
            uploaded = False
        except s3_client.exceptions.ClientError:
            s3_client.upload_file(package["path"], bucket, package["key"])
            uploaded = True
        log.info(
            "%s: s3://%s/%s (%s)", package["function"], bucket, package["key"], "uploaded" if uploaded else "unchanged"
        )
        out.append({**package, "bucket": bucket, "uploaded": uploaded})
    return out


def deploy_function(
    lambda_client: Any,
    iam_client: Any,
    name: str,
    package: dict[str, Any],
    environment: dict[str, str],
    timeout: int,
    memory: int,
) -> dict[str, Any]:
    """Create the function or update its code and configuration; wait until it is active and updated."""
    from recsys.streaming.packaging import ARCHITECTURE, RUNTIME

    config = {
        "Runtime": RUNTIME,
        "Handler": package["handler"],
        "Timeout": timeout,
        "MemorySize": memory,
        "Environment": {"Variables": environment},
    }
    try:
        current = lambda_client.get_function(FunctionName=name)["Configuration"]
    except lambda_client.exceptions.ResourceNotFoundException:
        current = None
    if current is None:
        role = iam_client.get_role(RoleName=f"{name}-role")["Role"]["Arn"]
        lambda_client.create_function(
            FunctionName=name,
            Role=role,
            Code={"S3Bucket": package["bucket"], "S3Key": package["key"]},
            Architectures=[ARCHITECTURE],
            Publish=False,
            **config,
        )
        action = "created"
    else:
        changed_code = current.get("CodeSha256") != _b64_sha(package["sha256"])
        if changed_code:
            lambda_client.update_function_code(FunctionName=name, S3Bucket=package["bucket"], S3Key=package["key"])
            lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name)
        lambda_client.update_function_configuration(FunctionName=name, **config)
        action = "updated code and configuration" if changed_code else "updated configuration"
    lambda_client.get_waiter("function_active_v2").wait(FunctionName=name)
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name)
    state = lambda_client.get_function(FunctionName=name)["Configuration"]
    log.info("%s: %s; state %s, code %s", name, action, state.get("State"), package["key"])
    return {"function": name, "action": action, "state": state.get("State"), "key": package["key"]}


def _b64_sha(hex_digest: str) -> str:
    import base64

    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
