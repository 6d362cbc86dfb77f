"""RFC 9457 problem details: one base error, its subclasses, and the handlers that render them.

Every error the service answers is `application/problem+json` with a short stable `type` code.
Unexpected exceptions answer 500 with a correlation id and are logged; no stack trace leaves.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dispatch.core.observability import internal_error_body, log_unexpected, request_id_var

PROBLEM_JSON = "application/problem+json"


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


def problem_body(status: int, type_: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The RFC 9457 body of every error the service answers, over HTTP or a socket handshake."""
    return {"type": type_, "title": title, "status": status, "detail": detail, **extra}


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


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    return problem_response(
        422, "validation_error", "The request is not valid", detail, errors=errors
    )


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
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


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    """The last resort, for a failure outside `RequestContextMiddleware` (which answers and logs
    every other one the same way)."""
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
    app.add_exception_handler(Exception, _unexpected_handler)
