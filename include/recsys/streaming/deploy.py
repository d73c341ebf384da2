"""Deploy the Lambdas: upload content-hashed packages, then publish a version and move the ``live`` alias.

Terraform owns each function's configuration and code location (``terraform/modules/streaming_inference``): the
deploy DAG applies it with the new package keys, which updates ``$LATEST``. Traffic never sees ``$LATEST``: Firehose
and the Function URL invoke the ``live`` alias, which this module moves to a version published from exactly the
package the DAG built (a deploy is atomic), or back to an earlier version (a rollback).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

log = logging.getLogger(__name__)

ALIAS = "live"


class DeployError(RuntimeError):
    """The function is not in the state a deploy needs; the message says which and why."""


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


def b64_sha256(hex_digest: str) -> str:
    """Lambda's ``CodeSha256`` (base64) of a package's hex sha256."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def alias_version(lambda_client: Any, name: str, alias: str = ALIAS) -> str:
    return str(lambda_client.get_alias(FunctionName=name, Name=alias)["FunctionVersion"])


def publish_and_promote(lambda_client: Any, name: str, package: dict[str, Any], alias: str = ALIAS) -> dict[str, Any]:
    """Publish ``$LATEST`` as a version if it runs exactly ``package``, then point ``alias`` at that version."""
    waiter = lambda_client.get_waiter("function_updated_v2")
    waiter.wait(FunctionName=name)
    latest = lambda_client.get_function_configuration(FunctionName=name)
    expected = b64_sha256(package["sha256"])
    if latest.get("CodeSha256") != expected:
        raise DeployError(
            f"{name}: $LATEST runs code {latest.get('CodeSha256')}, not the package built by this run "
            f"({package['key']}, {expected}); was the streaming_inference root applied with this package key?"
        )
    previous = alias_version(lambda_client, name, alias)
    version = str(
        lambda_client.publish_version(FunctionName=name, CodeSha256=expected, Description=f"{package['key']}"[:256])[
            "Version"
        ]
    )
    lambda_client.update_alias(FunctionName=name, Name=alias, FunctionVersion=version)
    log.info("%s: alias %s %s -> %s (%s)", name, alias, previous, version, package["key"])
    return {"function": name, "alias": alias, "version": version, "previous_version": previous, "key": package["key"]}


def roll_back(lambda_client: Any, name: str, version: str, alias: str = ALIAS) -> dict[str, Any]:
    """Point ``alias`` at an already published ``version``."""
    versions = {
        v["Version"]
        for page in lambda_client.get_paginator("list_versions_by_function").paginate(FunctionName=name)
        for v in page["Versions"]
    }
    if version not in versions or version == "$LATEST":
        published = sorted((v for v in versions if v != "$LATEST"), key=int)
        raise DeployError(f"{name} has no published version {version!r}; published: {', '.join(published) or 'none'}")
    previous = alias_version(lambda_client, name, alias)
    lambda_client.update_alias(FunctionName=name, Name=alias, FunctionVersion=version)
    log.info("%s: rolled back alias %s %s -> %s", name, alias, previous, version)
    return {"function": name, "alias": alias, "version": version, "previous_version": previous, "key": None}
