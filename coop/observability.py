"""Structured JSON logs, request correlation ids and Prometheus metrics.

Logs never carry what people sent: an exception is written as its type and its stack (file,
line, function), never its message, since a database error's message can quote a row or the
statement's parameters (and the engine hides parameters too, `coop.db`). A request that
fails unexpectedly is logged once, by `RequestContextMiddleware`, with its correlation id, its
route and the exception's type; never its body or query string.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid
from collections.abc import Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import IO, Any
from urllib.parse import unquote_plus

from prometheus_client import CollectorRegistry, Counter, Histogram
from pythonjsonlogger.json import JsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coop.problems import PROBLEM_JSON, problem_body

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


# A token in a URL (`?token=`, as a WebSocket from a browser sends it) or in an Authorization
# header value: never written to a log, whoever logs it (uvicorn's access log included). A
# query parameter is recognised by its name once percent-decoded, as the server reads it:
# `?%74oken=` is `?token=` to the socket's handshake, so it must be to the log too.
_QUERY_PARAMETER = re.compile(r"([?&;])([^=&;?\s\"'#]+)=([^&\s\"'#]*)")
_TOKEN_PARAMETERS = frozenset({"token", "access_token"})
_BEARER = re.compile(r"(\bbearer\s+)[^\s\"',;]+", re.IGNORECASE)
REDACTED = "[redacted]"
# A shared trip's link carries its token in the path (`/t/…`, `/v1/shared/…`, and revoking
# `…/share/…`): an access log line must not be a way to open someone's trip.
_SHARE_PATH = re.compile(r"(/(?:t|v1/shared|share)/)([A-Za-z0-9_%-]+)")


def _redact_parameter(match: re.Match[str]) -> str:
    separator, name, value = match.groups()
    if value and unquote_plus(name).lower() in _TOKEN_PARAMETERS:
        return f"{separator}{name}={REDACTED}"
    return match.group(0)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    text = _QUERY_PARAMETER.sub(_redact_parameter, text)
    text = _BEARER.sub(lambda match: match.group(1) + REDACTED, text)
    text = _SHARE_PATH.sub(lambda match: match.group(1) + REDACTED, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class RedactTokens(logging.Filter):
    """Rewrites each record's message (and traceback) with tokens replaced by `[redacted]`."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is
            message = str(record.msg)
        record.msg = redact(message, self.secrets)
        record.args = None
        # Tracebacks are formatted without their messages (`SafeFormatter`): code, no tokens.
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


class UnloggedPaths(logging.Filter):
    """Drops uvicorn's access lines of the requests whose path matches: those that must leave
    no trace of who made them and when (the composition root says which: a member's ballot).
    Left out altogether, since a line's place among the others dates it even without a time of
    its own; /metrics still counts them, by route."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "uvicorn.access" or not isinstance(record.args, tuple):
            return True
        # uvicorn's access record: (client address, method, path with query, HTTP version,
        # status).
        path = record.args[2] if len(record.args) > 2 else None
        return not (isinstance(path, str) and self.pattern.match(path))


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def exception_type(exc: BaseException) -> str:
    kind = type(exc)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def format_exception_safely(exc: BaseException) -> str:
    """An exception as a traceback without any message: for each exception of the chain
    (causes and contexts, oldest first) its stack and its type. A message may quote personal
    data or SQL parameters; the stack and the type are code."""
    lines: list[str] = []
    seen: set[int] = set()
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    for position, item in enumerate(reversed(chain)):
        if position:
            lines.append("During handling of the above exception, another exception occurred:")
        lines.append("Traceback (most recent call last):")
        for frame in traceback.extract_tb(item.__traceback__):
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        lines.append(f"{exception_type(item)} (message withheld from the log)")
    return "\n".join(lines)


class _SafeExceptions:
    """Formats exceptions without their messages (mixed into both formatters)."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        exc = ei[1] if isinstance(ei, tuple) else None
        if not isinstance(exc, BaseException):
            return ""
        return format_exception_safely(exc)


class SafeFormatter(_SafeExceptions, logging.Formatter):
    pass


class SafeJsonFormatter(_SafeExceptions, JsonFormatter):
    pass


def configure_logging(
    level: str = "INFO",
    json_logs: bool = True,
    stream: IO[str] | None = None,
    secrets: Sequence[str] = (),
    unlogged_paths: re.Pattern[str] | None = None,
) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_logs:
        handler.setFormatter(
            SafeJsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "at", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(_RequestIdFilter())
    if unlogged_paths is not None:  # before RedactTokens, which flattens the record's args
        handler.addFilter(UnloggedPaths(unlogged_paths))
    handler.addFilter(RedactTokens(secrets))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)


class Metrics:
    """The service's Prometheus collectors, one registry per app so tests stay independent."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "coop_http_requests_total",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "coop_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )


class RequestContextMiddleware:
    """Gives every request a correlation id (`X-Request-ID`) and records its metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope["coop_request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # Answered and logged here, not re-raised: the server would log the exception
            # again, message and all.
            log_unexpected(exc, scope=scope, correlation_id=request_id)
            if not response_started:
                await send_internal_error(send_wrapper, request_id)
        finally:
            route_path = route_of(scope)
            method = scope.get("method", "GET")
            self.metrics.http_requests.labels(method, route_path, str(status)).inc()
            self.metrics.http_latency.labels(method, route_path).observe(
                time.perf_counter() - started
            )
            request_id_var.reset(token)


unexpected_logger = logging.getLogger("coop.errors")

INTERNAL_ERROR_DETAIL = (
    "Something went wrong on our side; quote the correlation id when reporting it."
)


def route_of(scope: Scope) -> str:
    """The route's path template (`/v1/trips/{trip_id}`), never the path itself."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def log_unexpected(exc: BaseException, *, scope: Scope, correlation_id: str) -> None:
    """One log line for an unexpected failure: the correlation id, the route (its template and
    method) and the exception's type, with its stack; no message, body, query or parameters."""
    route = route_of(scope)
    method = scope.get("method", "-")
    unexpected_logger.error(
        "unhandled error in %s %s: %s",
        method,
        route,
        exception_type(exc),
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={
            "correlation_id": correlation_id,
            "route": route,
            "method": method,
            "exception_type": exception_type(exc),
        },
    )


def internal_error_body(correlation_id: str) -> dict[str, Any]:
    return problem_body(
        500,
        "internal_error",
        "Internal error",
        INTERNAL_ERROR_DETAIL,
        correlation_id=correlation_id,
    )


async def send_internal_error(send: Send, correlation_id: str) -> None:
    body = json.dumps(internal_error_body(correlation_id)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
