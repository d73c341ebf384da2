"""The model-inference Lambda (``<prefix>-model-inference``) behind a Lambda Function URL: the lab's API.

* ``POST /user_embeddings`` body ``{"users": [{"city", "country", "credit_limit"}, ...]}`` (or one such object)
  -> ``{"model_version", "embeddings": [[...32 floats], ...]}``
* ``POST /items_from_user?limit=N`` body: one user's features, or ``{"customer_number": N}`` -> top items
* ``GET /items_from_item?item_id=CODE&limit=N`` -> the most similar items, the item itself excluded

Bad input gets a 400 with a message; unknown ids a 404. SQL is parameterised (see ``recsys_serving.search``).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from recsys_serving import runtime, search
from recsys_serving.settings import SettingsError

log = logging.getLogger()
log.setLevel(logging.INFO)


class BadRequest(ValueError):
    pass


def _response(status: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(payload)}


def _body(event: dict[str, Any]) -> Any:
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8")
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise BadRequest(f"body is not JSON: {exc.msg}") from None


def _limit(event: dict[str, Any]) -> int:
    raw = (event.get("queryStringParameters") or {}).get("limit", "10")
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest(f"limit must be an integer, got {raw!r}") from None
    if not 1 <= limit <= 100:
        raise BadRequest("limit must be between 1 and 100")
    return limit


def _user_features(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("a user is an object with city, country and credit_limit")
    for key in ("city", "country"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise BadRequest(f"{key}: expected a non-empty string")
    credit = data.get("credit_limit")
    if credit is not None and (isinstance(credit, bool) or not isinstance(credit, int | float)):
        raise BadRequest("credit_limit: expected a number or null")
    return {"city": data["city"], "country": data["country"], "creditLimit": credit}


def route(event: dict[str, Any]) -> dict[str, Any]:
    http = event.get("requestContext", {}).get("http", {})
    method, path = http.get("method", "GET"), event.get("rawPath", "/")
    if method == "POST" and path == "/user_embeddings":
        data = _body(event)
        users = data.get("users", [data]) if isinstance(data, dict) else data
        if not isinstance(users, list) or not users:
            raise BadRequest("send {'users': [...]} or one user object")
        bundle = runtime.bundle()
        vectors = bundle.user_embeddings([_user_features(u) for u in users])
        return _response(200, {"model_version": bundle.model_version, "embeddings": vectors.tolist()})
    if method == "POST" and path == "/items_from_user":
        data, limit = _body(event), _limit(event)
        if isinstance(data, dict) and "customer_number" in data:
            number = data["customer_number"]
            if isinstance(number, bool) or not isinstance(number, int):
                raise BadRequest("customer_number: expected an integer")
            bundle = runtime.bundle()
            items_table, users_table = search.version_tables(bundle.model_version)
            matches = search.items_from_user(
                runtime.connection(), customer_number=number, k=limit, items_table=items_table, users_table=users_table
            )
        else:
            bundle = runtime.bundle()
            vector = bundle.user_embeddings([_user_features(data)])[0]
            items_table = search.version_tables(bundle.model_version)[0]
            matches = search.items_from_user(runtime.connection(), embedding=vector, k=limit, items_table=items_table)
        items = [{"product_code": c, "score": s} for c, s in matches]
        return _response(200, {"model_version": bundle.model_version, "items": items})
    if method == "GET" and path == "/items_from_item":
        item_id = (event.get("queryStringParameters") or {}).get("item_id")
        if not item_id:
            raise BadRequest("item_id is required")
        bundle = runtime.bundle()
        items_table = search.version_tables(bundle.model_version)[0]
        matches = search.items_from_item(runtime.connection(), item_id, k=_limit(event), items_table=items_table)
        items = [{"product_code": c, "score": s} for c, s in matches]
        return _response(200, {"model_version": bundle.model_version, "item_id": item_id, "items": items})
    return _response(404, {"message": f"no route for {method} {path}"})


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    try:
        return route(event)
    except BadRequest as exc:
        return _response(400, {"message": str(exc)})
    except SettingsError as exc:  # the function's environment, not the request: the operator's to fix, in the log
        log.error("the function's environment is invalid: %s", exc)
        return _response(500, {"message": "the function's environment is invalid: see its log"})
    except search.ModelVersionUnavailable as exc:
        return _response(503, {"message": str(exc)})
    except LookupError as exc:
        return _response(404, {"message": str(exc)})
    except ValueError as exc:
        return _response(400, {"message": str(exc)})
