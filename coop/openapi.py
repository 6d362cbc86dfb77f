"""The OpenAPI document: the bearer security scheme, and the problem answers of every route.

FastAPI documents what a route returns when all goes well; clients also need to know how it
fails. Each operation gets, as `application/problem+json`, the statuses it can answer:
`401`, `403` and `429` (with `Retry-After`) when it needs a token, `413` and `422` when it takes
a body, `422` for parameters, `404` for a resource named in the path, `409` for the commands that
depend on the current state, and the extras its domain declares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `type` is a short stable code (docs/protocol.md)",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "examples": ["rate_limited"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "validation_error: one entry per bad field",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
        "retry_after_s": {"type": "integer", "description": "rate_limited: as Retry-After"},
        "correlation_id": {"type": "string", "description": "internal_error: quote it"},
    },
    "additionalProperties": True,
}

DESCRIPTIONS = {
    401: "Missing, unknown, revoked or expired token (`unauthorized`)",
    403: "Not allowed for this account, or not its resource",
    404: "No such resource (or not one this caller may know of)",
    409: "Not possible in the resource's current state",
    413: "Body over `COOP_MAX_BODY_BYTES` (`payload_too_large`), refused unread",
    422: "Invalid request (`validation_error` names each field, or a domain type); a body that"
    " is not UTF-8, not JSON or not sent as `application/json` is a `validation_error` too",
    429: "Rate limit reached (`rate_limited`); retry after `Retry-After` seconds",
}

# Commands on the collection that depend on what exists (duplicates, an open trip, ...).
CONFLICTS_WITHOUT_PATH_ID = {
    ("post", "/v1/drivers"),
    ("post", "/v1/trips"),
    ("post", "/v1/fare-caps"),  # over another cap, or a jurisdiction without them
    ("post", "/v1/decision-reviews"),  # too many open requests
    ("post", "/v1/devices"),  # too many devices
}
# Reads that answer 409 or 404 from the state of things rather than their path.
EXTRA_STATUSES: dict[tuple[str, str], set[int]] = {
    ("get", "/v1/reports/regulator/municipalities"): {409},  # no municipalities supplied
    ("post", "/v1/decision-reviews"): {404},  # a trip or offer named in the body
    ("get", "/v1/drivers/me/photo"): {404},  # no photo uploaded yet
    ("get", "/v1/drivers/me/photo/image"): {404},
}
# Commands with an id in the path that answer no 409.
NO_CONFLICT = {("delete", "/v1/tokens/current")}


def _problem(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {"application/problem+json": {"schema": PROBLEM_REF}},
    }
    if status == 429:
        answer["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before trying again",
                "schema": {"type": "integer"},
            }
        }
    return answer


def statuses(method: str, path: str, operation: Mapping[str, Any]) -> set[int]:
    """The problem statuses an operation can answer, from what it takes."""
    found: set[int] = set()
    parameters: Iterable[Mapping[str, Any]] = operation.get("parameters", [])
    in_path = any(parameter.get("in") == "path" for parameter in parameters)
    if operation.get("security"):
        found |= {401, 403, 429}
    elif path.startswith("/v1/") or path == "/asyncapi.json":
        found.add(429)  # public routes are counted per client address (COOP_ANONYMOUS_LIMIT)
    if "requestBody" in operation:
        found |= {413, 422}
    if operation.get("parameters"):
        found.add(422)
    if in_path:
        found.add(404)
    command = method in {"post", "put", "patch", "delete"}
    if command and operation.get("security") and (method, path) not in NO_CONFLICT:
        if in_path or (method, path) in CONFLICTS_WITHOUT_PATH_ID:
            found.add(409)
    return found


def install(app: FastAPI, extra: Mapping[tuple[str, str], Iterable[int]] | None = None) -> None:
    """Replaces `app.openapi` with the documented version; `extra` adds statuses per
    (method, path), e.g. `{("post", "/v1/riders"): [429]}`."""
    extras = {key: set(value) for key, value in EXTRA_STATUSES.items()}
    for key, value in (extra or {}).items():
        extras.setdefault(key, set()).update(value)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                wanted = statuses(method, path, operation) | extras.get((method, path), set())
                for status in sorted(wanted):
                    key = str(status)
                    documented = responses.get(key, {})
                    responses[key] = (
                        {**_problem(status), **documented} if documented else _problem(status)
                    )
                    # Whatever FastAPI said, errors are problem details.
                    responses[key]["content"] = _problem(status)["content"]
                    if status == 429:
                        responses[key]["headers"] = _problem(429)["headers"]
        schema["components"]["schemas"].pop("HTTPValidationError", None)
        schema["components"]["schemas"].pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    setattr(app, "openapi", openapi)  # noqa: B010 (FastAPI's documented way to customise it)
