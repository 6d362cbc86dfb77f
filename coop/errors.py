"""RFC 9457 problem details: one base error, its subclasses, and the handlers that render them.

Every error the service answers is `application/problem+json` with a short stable `type` code.
Unexpected exceptions answer 500 with a correlation id and are logged; no stack trace leaves.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import asyncpg
import redis.exceptions
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from coop.observability import internal_error_body, log_unexpected, request_id_var
from coop.problems import PROBLEM_JSON, problem_body

__all__ = ["PROBLEM_JSON", "problem_body"]  # the one builder, used from here by the domains

logger = logging.getLogger("coop.errors")


class ProblemError(Exception):
    """Base of every error the service answers on purpose."""

    status: ClassVar[int] = 400
    type: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        # Response headers that go with the problem (e.g. Retry-After on a 429).
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        return problem_body(self.status, self.type, self.title, self.detail, **self.extra)

    def response(self) -> JSONResponse:
        response = problem_response(self.status, self.type, self.title, self.detail, **self.extra)
        response.headers.update(self.headers)
        return response


class Unauthorized(ProblemError):
    status = 401
    type = "unauthorized"
    title = "Missing or invalid token"


class Forbidden(ProblemError):
    status = 403
    type = "forbidden"
    title = "Not allowed for this account"


class NotFound(ProblemError):
    status = 404
    type = "not_found"
    title = "Not found"


class Conflict(ProblemError):
    status = 409
    type = "conflict"
    title = "Conflict with the current state"


class InvalidTransition(Conflict):
    type = "invalid_transition"
    title = "Not allowed from the current status"


class UnprocessableEntity(ProblemError):
    status = 422
    type = "validation_error"
    title = "The request is not valid"


class OutOfServiceArea(UnprocessableEntity):
    type = "out_of_service_area"
    title = "Position outside the service area"


class RateLimited(ProblemError):
    """A rate limit was reached; `Retry-After` says in how many seconds to try again."""

    status = 429
    type = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.headers["Retry-After"] = str(retry_after_s)


class ServiceUnavailable(ProblemError):
    status = 503
    type = "unavailable"
    title = "Service unavailable"


# How long a client should wait before retrying when PostgreSQL or Redis is unreachable.
RETRY_AFTER_S = 5

# What a lost connection to PostgreSQL looks like, below SQLAlchemy's wrapping: the server gone
# (a restart, a network cut), starting up or shutting down, or a pool that could not connect.
_DATABASE_DOWN: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.PostgresConnectionError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection could be had in time
)
_REDIS_DOWN: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 16:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def dependency_down(exc: BaseException) -> str | None:
    """`database` or `redis` when `exc` says that dependency could not be reached (so the
    request may be retried once it is back), None for any other failure."""
    for link in _chain(exc):
        if isinstance(link, _REDIS_DOWN):
            return "redis"
        if isinstance(link, _DATABASE_DOWN):
            return "database"
        if isinstance(link, sqlalchemy.exc.DBAPIError) and link.connection_invalidated:
            return "database"
    for link in _chain(exc):
        # A socket that could not be opened or broke (refused, reset, timed out, no such file):
        # every network client here is PostgreSQL's or Redis's, and Redis's errors are wrapped.
        if isinstance(link, OSError) and not isinstance(link, redis.exceptions.RedisError):
            return "database"
    return None


class DependencyUnavailable(ProblemError):
    status = 503
    type = "dependency_unavailable"
    title = "A service this needs is unreachable"

    def __init__(self, dependency: str) -> None:
        name = "PostgreSQL" if dependency == "database" else "Redis"
        super().__init__(
            f"The {dependency} ({name}) cannot be reached just now; nothing was changed unless "
            f"this says so. Retry in {RETRY_AFTER_S} s.",
            dependency=dependency,
        )


def dependency_response(dependency: str) -> JSONResponse:
    problem = DependencyUnavailable(dependency)
    return JSONResponse(
        problem.body(),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def problem_response(
    status: int, type_: str, title: str, detail: str, **extra: Any
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, type_, title, detail, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
    )


def field_errors(errors: Any) -> list[dict[str, str]]:
    """Pydantic errors as `[{field, reason}]`, the field a dotted path without the `body.`."""
    named = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] in {"body", "query", "path", "header"} and len(location) > 1:
            location = location[1:] if location[0] == "body" else location
        named.append({"field": ".".join(location) or "body", "reason": error.get("msg", "")})
    return named


HTTP_TYPES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Missing or invalid token"),
    403: ("forbidden", "Not allowed for this account"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


async def _problem_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return exc.response()


# FastAPI's answer when a body cannot be read as text (a body that is not UTF-8): a 400 the
# OpenAPI document cannot name per route. Every unreadable body is a `validation_error` instead.
UNREADABLE_BODY_DETAIL = "There was an error parsing the body"
NOT_JSON_REASON = "the body must be a JSON document sent as Content-Type: application/json"
NOT_UTF8_REASON = "the body must be JSON encoded in UTF-8"


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _validation_problem(errors: list[dict[str, str]]) -> JSONResponse:
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    return problem_response(
        422, "validation_error", "The request is not valid", detail, errors=errors
    )


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    if not _is_json(request.headers.get("content-type")):
        # A body without a JSON Content-Type is handed over as bytes, so pydantic's reason ("a
        # valid dictionary") would not tell the client what it did wrong.
        errors = [
            {"field": "body", "reason": NOT_JSON_REASON} if error["field"] == "body" else error
            for error in errors
        ]
    return _validation_problem(errors)


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == UNREADABLE_BODY_DETAIL and exc.__cause__:
        return _validation_problem([{"field": "body", "reason": NOT_UTF8_REASON}])
    type_, title = HTTP_TYPES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No resource at {request.url.path}"
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    response = problem_response(exc.status_code, type_, title, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _dependency_handler(request: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL or Redis unreachable: 503 with Retry-After. Any other failure of theirs goes
    on to `RequestContextMiddleware`, which answers and logs every unexpected error."""
    dependency = dependency_down(exc)
    if dependency is None:
        raise exc
    logger.warning("%s unreachable: %s: %s", dependency, type(exc).__name__, exc)
    return dependency_response(dependency)


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    """The last resort, for a failure outside `RequestContextMiddleware` (which answers and logs
    every other one the same way)."""
    dependency = dependency_down(exc)
    if dependency is not None:
        logger.warning("%s unreachable: %s: %s", dependency, type(exc).__name__, exc)
        return dependency_response(dependency)
    correlation_id = request.scope.get("coop_request_id") or request_id_var.get() or "-"
    log_unexpected(exc, scope=request.scope, correlation_id=correlation_id)
    return JSONResponse(
        internal_error_body(correlation_id),
        status_code=500,
        media_type=PROBLEM_JSON,
        headers={"X-Request-ID": correlation_id},
    )


def register(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _problem_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    # Database and Redis failures are answered here rather than by the last-resort handler
    # below (which re-raises to the server after answering): an outage is an expected event.
    for kind in (
        OSError,
        sqlalchemy.exc.SQLAlchemyError,
        redis.exceptions.RedisError,
        asyncpg.exceptions.PostgresError,
        asyncpg.exceptions.InterfaceError,
    ):
        app.add_exception_handler(kind, _dependency_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
