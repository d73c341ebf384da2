"""Which AWS operation a request to the endpoint is, and which IAM action AWS authorizes it as.

The endpoint sees HTTP: the signing service in the ``Authorization`` header's credential scope, then the operation in
``X-Amz-Target`` (JSON protocols), the ``Action`` parameter (query protocols), the path of an RPC v2 CBOR request, or
the method and path of a REST request matched against botocore's service model (``requestUri`` templates, with the
query literals that tell ``GET /bucket?versioning`` from ``GET /bucket``). The IAM action is the service's prefix and
the operation's name, except where the Service Authorization Reference names another (:data:`IAM_ACTIONS`: S3's
``HeadObject`` is ``s3:GetObject``, Lambda's ``Invoke`` is ``lambda:InvokeFunction``).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/")
_CBOR_PATH = re.compile(r"^/service/[^/]+/operation/([A-Za-z0-9]+)$")
#: Signing names that are not the IAM prefix.
IAM_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}
#: Signing names botocore shares between services: the one the platform calls.
SERVICE_FOR_SIGNING_NAME = {"rds": "rds", "monitoring": "cloudwatch", "s3": "s3", "sts": "sts", "iam": "iam"}
#: Operations AWS authorizes under another action name (the Service Authorization Reference, per service).
IAM_ACTIONS: dict[str, tuple[str, ...]] = {
    "s3:HeadObject": ("s3:GetObject",),
    "s3:HeadBucket": ("s3:ListBucket",),
    "s3:ListObjects": ("s3:ListBucket",),
    "s3:ListObjectsV2": ("s3:ListBucket",),
    "s3:ListObjectVersions": ("s3:ListBucketVersions",),
    "s3:ListBuckets": ("s3:ListAllMyBuckets",),
    "s3:CopyObject": ("s3:GetObject", "s3:PutObject"),
    "s3:CreateMultipartUpload": ("s3:PutObject",),
    "s3:UploadPart": ("s3:PutObject",),
    "s3:CompleteMultipartUpload": ("s3:PutObject",),
    "s3:DeleteObjects": ("s3:DeleteObject",),
    "s3:GetBucketLifecycleConfiguration": ("s3:GetLifecycleConfiguration",),
    "s3:PutBucketLifecycleConfiguration": ("s3:PutLifecycleConfiguration",),
    "s3:DeleteBucketLifecycle": ("s3:PutLifecycleConfiguration",),
    "s3:GetBucketEncryption": ("s3:GetEncryptionConfiguration",),
    "s3:PutBucketEncryption": ("s3:PutEncryptionConfiguration",),
    "s3:DeleteBucketEncryption": ("s3:PutEncryptionConfiguration",),
    "s3:GetBucketCors": ("s3:GetBucketCORS",),
    "s3:PutBucketCors": ("s3:PutBucketCORS",),
    "s3:DeleteBucketCors": ("s3:PutBucketCORS",),
    "s3:GetBucketAccelerateConfiguration": ("s3:GetAccelerateConfiguration",),
    "s3:GetPublicAccessBlock": ("s3:GetBucketPublicAccessBlock",),
    "s3:PutPublicAccessBlock": ("s3:PutBucketPublicAccessBlock",),
    "s3:DeletePublicAccessBlock": ("s3:PutBucketPublicAccessBlock",),
    "s3:DeleteBucketOwnershipControls": ("s3:PutBucketOwnershipControls",),
    "s3:DeleteBucketTagging": ("s3:PutBucketTagging",),
    "s3:GetBucketReplication": ("s3:GetReplicationConfiguration",),
    "s3:GetObjectLockConfiguration": ("s3:GetBucketObjectLockConfiguration",),
    "s3:GetBucketNotificationConfiguration": ("s3:GetBucketNotification",),
    "s3:GetObjectAttributes": ("s3:GetObject", "s3:GetObjectAttributes"),
    "lambda:Invoke": ("lambda:InvokeFunction",),
    "lambda:InvokeWithResponseStream": ("lambda:InvokeFunction",),
    "lambda:GetFunctionUrlConfig": ("lambda:GetFunctionUrlConfig",),
    "lambda:ListTags": ("lambda:ListTags",),
}


@dataclass(frozen=True)
class Operation:
    """One request: who signed it (access key), the service's IAM prefix, the operation, its IAM actions, the region
    it was signed for and its parameters (top-level members; path labels of a REST request)."""

    access_key: str
    service: str
    name: str
    actions: tuple[str, ...]
    region: str = ""
    params: dict[str, Any] = field(default_factory=dict, compare=False)


@functools.cache
def _service_models() -> dict[str, Any]:
    """botocore's service model for each signing name the endpoint may see."""
    import botocore.session

    session = botocore.session.get_session()
    models: dict[str, Any] = {}
    for service in session.get_available_services():
        model = session.get_service_model(service)
        signing = model.metadata.get("signingName") or model.metadata.get("endpointPrefix") or service
        preferred = SERVICE_FOR_SIGNING_NAME.get(signing)
        if preferred is not None and preferred != service:
            continue
        models.setdefault(signing, model)
    return models


@functools.cache
def _rest_routes(signing: str) -> list[tuple[str, re.Pattern[str], frozenset[str], frozenset[str], int, str]]:
    """(method, path pattern, query keys, headers, specificity, operation) of a REST service, most specific first:
    the query literals of its ``requestUri`` and its required query and header members must be in the request
    (``x-amz-copy-source`` tells CopyObject from PutObject, ``partNumber`` UploadPart)."""
    model = _service_models()[signing]
    routes = []
    for name in model.operation_names:
        if model.operation_model(name).deprecated:  # S3's GetBucketLifecycle shares its path with the current one
            continue
        operation_model = model.operation_model(name)
        http = operation_model.http
        path, _, query = http.get("requestUri", "/").partition("?")
        literal_keys = {part.split("=", 1)[0] for part in query.split("&") if part}
        headers: set[str] = set()
        shape = operation_model.input_shape
        for member in shape.required_members if shape is not None else ():
            location = shape.members[member].serialization
            if location.get("location") == "querystring":
                literal_keys.add(location["name"])
            elif location.get("location") == "header":
                headers.add(location["name"].lower())
        pattern, literals = "", 0
        for piece in re.split(r"(\{[^}]+\})", path):
            if piece.startswith("{"):
                label = piece.strip("{}+")
                pattern += f"(?P<{label}>.+)" if piece.endswith("+}") else f"(?P<{label}>[^/]+)"
            else:
                pattern += re.escape(piece)
                literals += len(piece.strip("/"))
        if pattern.endswith("/") and pattern != "/":
            pattern += "?"
        specificity = literals * 10 + (len(literal_keys) + len(headers)) * 100
        method = http.get("method", "POST")
        routes.append(
            (method, re.compile(f"^{pattern}/?$"), frozenset(literal_keys), frozenset(headers), specificity, name)
        )
    routes.sort(key=lambda route: -route[4])
    return routes


def _header_members(signing: str, name: str, environ: dict[str, Any]) -> dict[str, Any]:
    """A REST request's input members sent as headers (S3's ``x-amz-copy-source`` is CopyObject's ``CopySource``)."""
    shape = _service_models()[signing].operation_model(name).input_shape
    members: dict[str, Any] = {}
    for member, member_shape in shape.members.items() if shape is not None else ():
        location = member_shape.serialization
        if location.get("location") == "header":
            value = environ.get("HTTP_" + str(location["name"]).upper().replace("-", "_"))
            if value is not None:
                members[member] = unquote(str(value))
    return members


def _resolve(signing: str, environ: dict[str, Any], body: bytes) -> tuple[str, dict[str, Any]]:
    """The operation's name and its parameters: the JSON body, the query and form fields (first values), or a REST
    request's path labels, query fields and JSON body."""
    query = {k: v[0] for k, v in parse_qs(str(environ.get("QUERY_STRING") or ""), keep_blank_values=True).items()}
    content_type = str(environ.get("CONTENT_TYPE") or "")
    document: dict[str, Any] = {}
    if body and "json" in content_type:
        try:
            loaded = json.loads(body)
        except ValueError:
            loaded = None
        document = loaded if isinstance(loaded, dict) else {}
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    if target:
        return target.rsplit(".", 1)[-1], document
    path = str(environ.get("PATH_INFO") or "/")
    cbor = _CBOR_PATH.match(path)
    if cbor:
        return cbor.group(1), {}
    form: dict[str, Any] = {}
    if body and "x-www-form-urlencoded" in content_type:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", errors="replace")).items()}
    if "Action" in query or "Action" in form:
        return str(query.get("Action") or form["Action"]), {**query, **form}
    if signing not in _service_models():
        return "", {}
    method = str(environ.get("REQUEST_METHOD") or "GET")
    host = str(environ.get("HTTP_HOST") or "")
    if signing == "s3" and host.count(".") >= 3 and not re.match(r"^[\d.]+(:\d+)?$", host):
        path = "/" + host.split(".", 1)[0] + path  # virtual-hosted style: the bucket is the host's first label
    path = unquote(path)
    present = {key[5:].lower().replace("_", "-") for key in environ if key.startswith("HTTP_")}
    for route_method, pattern, keys, headers, _specificity, name in _rest_routes(signing):
        found = pattern.match(path) if route_method == method else None
        if found and keys <= set(query) and headers <= present:
            return name, {**document, **query, **_header_members(signing, name, environ), **found.groupdict()}
    return "", {}


def operation(environ: dict[str, Any], body: bytes) -> Operation | None:
    """The operation of a signed request to the endpoint, or None for an unsigned one (moto's own API)."""
    found = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION") or ""))
    if found is None:
        return None
    access_key, region, signing = found.groups()
    name, params = _resolve(signing, environ, body)
    prefix = IAM_PREFIX.get(signing, signing)
    if not name:
        return Operation(access_key, prefix, "", (f"{prefix}:?",), region, params)
    action = f"{prefix}:{name}"
    return Operation(access_key, prefix, name, IAM_ACTIONS.get(action, (action,)), region, params)
